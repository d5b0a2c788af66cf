"""Congestion control: how big the congestion window is, and how fast to pace it.

A controller owns two numbers the sender obeys, ``cwnd`` and ``ssthresh`` (bytes, RFC 5681
names), and changes them when the `Connection` tells it what happened:

* ``on_ack``: new data was delivered (cumulatively or by SACK) outside loss recovery;
* ``on_congestion``: a loss was detected and fast recovery begins (or a tail loss probe
  repaired one): reduce once per episode;
* ``on_recovery_end``: fast recovery is over;
* ``on_rto``: the retransmission timer expired;
* ``undo``: the last reduction turned out to be spurious (RFC 8985 DSACK, Eifel RFC 3522);
* ``pacing_rate``: bytes per second to spread the window over a round trip;
* ``on_rate_sample``: a delivery-rate sample (`atcp.core.delivery.RateSample`), on every
  ACK, in recovery too, for a controller whose class sets ``wants_rate_samples = True``
  (the connection then runs the estimator of draft-cheng-iccrg-delivery-rate-estimation;
  otherwise it does not, and the method is never called). It comes after ``on_ack`` (which
  such a controller may leave empty) and before ``on_congestion`` for the same ACK.

Who decides *what* to send (the SACK scoreboard, RACK-TLP, NewReno's partial ACKs) is loss
recovery's business (`atcp.core.recovery` and the connection); a controller only says how
much may be in flight. It sees no segments and keeps no timers, so a user can supply their
own: subclass `CongestionControl` and pass the class as ``Config(congestion=...)``.

The built-in controllers are registered by name: ``"cubic"`` (RFC 9438 with HyStart++,
RFC 9406; the default), ``"newreno"`` (RFC 5681 window rules, as FreeBSD's default) and
``"bbr"`` (BBR v1, draft-cardwell-iccrg-bbr-congestion-control-00: a model of the path's
bandwidth and round-trip time instead of loss as the signal; see `bbr`).
"""

from __future__ import annotations

__all__ = ["CongestionControl", "resolve", "names", "INFINITE_SSTHRESH"]

#: ssthresh before the first loss: "arbitrarily high" (RFC 5681 3.1).
INFINITE_SSTHRESH = 1 << 30


class CongestionControl:
    """The interface every controller implements; also the shared RFC 5681 basics.

    ``mss`` is the sender's SMSS in bytes, ``initial_window`` the initial window in
    segments (RFC 6928) and ``paced`` whether the sender paces (which may change how fast
    slow start may grow per ACK). ``cwnd`` and ``ssthresh`` are plain attributes in bytes
    that the sender reads on every transmission; keep them ints.
    """

    #: The name shown in ``tcp_info`` and accepted by ``Config(congestion=...)``.
    name = "base"
    #: True: the connection samples delivery rates and calls `on_rate_sample` per ACK.
    wants_rate_samples = False

    def __init__(self, mss: int, initial_window: int, *, paced: bool = False) -> None:
        self.mss = mss
        self.paced = paced
        self.cwnd = initial_window * mss
        self.initial_cwnd = self.cwnd   # IW in bytes: RFC 5681 4.1's restart window caps at it
        self.ssthresh = INFINITE_SSTHRESH
        self._saved: tuple | None = None   # state before the last reduction, for undo

    # -- events -----------------------------------------------------------------------
    def on_ack(self, acked: int, rtt: float | None, now: float, in_flight: int,
               round_trip: int) -> None:
        """``acked`` bytes were newly delivered outside recovery. ``rtt`` is this ACK's
        round-trip sample (None if it gave none), ``in_flight`` the bytes in flight before
        the ACK, ``round_trip`` a counter the sender bumps once per round trip."""
        raise NotImplementedError

    def on_congestion(self, now: float, in_flight: int) -> None:
        """A loss was detected: reduce ssthresh and cwnd, once per loss episode."""
        raise NotImplementedError

    def on_recovery_end(self, now: float, in_flight: int) -> None:
        """Fast recovery ended (the recovery point was acknowledged). RFC 6582 3.2 step 3
        (option 1): no more than ssthresh, and no burst beyond what is in flight."""
        mss = self.mss
        self.cwnd = max(min(self.ssthresh, in_flight + mss), mss)

    def on_rto(self, now: float, in_flight: int, first: bool) -> None:
        """The retransmission timer expired (``first``: not a backed-off repeat). RFC 5681
        3.1: ssthresh from the flight on the first expiry, cwnd down to the loss window."""
        if first:
            self.save()
            self.ssthresh = max(in_flight // 2, 2 * self.mss)
        self.cwnd = self.mss

    def on_restart(self, now: float, idle: float, rto: float) -> None:
        """Data goes out with nothing in flight, ``idle`` seconds after the last data
        sent; ``rto`` is the current retransmission timeout. RFC 5681 4.1: after more than
        an RTO the window no longer describes the path, so sending restarts from the
        restart window, min(IW, cwnd). ssthresh keeps three quarters of the old window, so
        that slow start climbs back to it (RFC 2861 2; FreeBSD does the same)."""
        if idle <= rto:
            return
        cwnd = self.cwnd
        self.ssthresh = max(self.ssthresh, 3 * cwnd // 4)
        self.cwnd = min(cwnd, self.initial_cwnd)

    def undo(self) -> None:
        """The last reduction was spurious: go back to the state `save` recorded."""
        saved = self._saved
        if saved is None:
            return
        self._saved = None
        cwnd, ssthresh = saved[0], saved[1]
        self.cwnd = max(self.cwnd, cwnd)
        self.ssthresh = max(self.ssthresh, ssthresh)

    def on_rate_sample(self, rs, now: float, in_flight: int) -> None:
        """One ACK's delivery-rate sample ``rs`` (`atcp.core.delivery.RateSample`, reused:
        read it here, do not keep it), with ``in_flight`` the bytes in flight after the
        ACK. Only called when the class sets ``wants_rate_samples``."""

    def info(self) -> dict:
        """What the controller says of itself in ``tcp_info.congestion_state`` (a fresh
        dict of plain values); nothing beyond cwnd and ssthresh by default."""
        return {}

    def pacing_rate(self, srtt: float | None) -> float | None:
        """Bytes per second to pace at, None for no pacing (no RTT known yet). Twice the
        window per RTT in slow start, 1.2 times after, so pacing never holds back the
        growth it is measuring (the gains Linux uses)."""
        if not srtt:
            return None
        gain = 2.0 if self.cwnd < self.ssthresh else 1.2
        return gain * self.cwnd / srtt

    # -- helpers for subclasses ---------------------------------------------------------
    def save(self) -> None:
        """Record the state `undo` restores; subclasses extend it with their own fields."""
        self._saved = (self.cwnd, self.ssthresh)

    @property
    def in_slow_start(self) -> bool:
        return self.cwnd < self.ssthresh

    def __repr__(self) -> str:
        return f"<{type(self).__name__} cwnd={self.cwnd} ssthresh={self.ssthresh}>"


def _registry() -> dict[str, type[CongestionControl]]:
    from .bbr import Bbr
    from .cubic import Cubic
    from .newreno import NewReno
    return {"bbr": Bbr, "cubic": Cubic, "newreno": NewReno}


def names() -> list[str]:
    """The names ``Config(congestion=...)`` accepts."""
    return sorted(_registry())


def resolve(spec) -> type[CongestionControl]:
    """The controller class for ``spec``: a registered name or a `CongestionControl`
    subclass. Raises ValueError or TypeError otherwise."""
    if isinstance(spec, str):
        registry = _registry()
        if spec not in registry:
            raise ValueError(f"unknown congestion control {spec!r}; "
                             f"choose one of {', '.join(sorted(registry))} or pass a class")
        return registry[spec]
    if isinstance(spec, type) and issubclass(spec, CongestionControl):
        if spec is CongestionControl:
            raise TypeError("CongestionControl is the interface; pass a subclass")
        return spec
    raise TypeError("congestion control must be a name or a CongestionControl subclass, "
                    f"not {spec!r}")
