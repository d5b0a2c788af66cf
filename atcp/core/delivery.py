"""Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation).

A model-based controller such as BBR needs, on every ACK, how fast the path has been
delivering data: a `RateSample`. The estimate is taken per transmission, not per round
trip, and never counts the ACK clock of one flight against the sending rate of another:

* On every transmission (first or retransmission) the segment's record (`recovery.Sent`)
  takes a snapshot of the connection's counters: ``C.delivered`` (bytes delivered so
  far), ``C.delivered_time`` (when that last grew), ``C.first_sent_time`` (when the
  transmission that started the current sampling interval left) and whether the
  connection was application-limited. When nothing is outstanding both times restart at
  the moment of sending, so an idle period is never part of an interval (draft 3.2).
* On an ACK, ``C.delivered`` grows by what it newly delivered (cumulatively or by SACK),
  and the most recently sent of the newly delivered records gives the sample (3.3): the
  bytes delivered since its snapshot, over the longer of two intervals, the send interval
  (its transmission minus the first transmission of its flight) and the ACK interval (now
  minus its snapshot's delivery time). Taking the longer one keeps ACK compression and
  stretched ACKs from inflating the rate. An interval shorter than the minimum RTT cannot
  be a real one and gives no sample (4.1.2).
* The application being the limit (3.4): when the sender runs out of data with room left
  in the window, ``C.app_limited`` marks the point (in delivered bytes) until which every
  transmission is flagged; samples from flagged transmissions may under-measure the path,
  and a controller uses them only when they show more than it already believes.

Bytes and seconds throughout. The connection creates a `DeliveryRate` only when its
controller says ``wants_rate_samples``, so other controllers pay nothing; then the
`Scoreboard` calls `on_send` for every transmission and the connection calls `on_ack`
once per ACK and `check_app_limited` where its send loop finds nothing more to send.
"""

from __future__ import annotations

__all__ = ["DeliveryRate", "RateSample"]

_EPSILON = 1e-9   # float noise: an interval equal to the minimum RTT is a plausible one


class RateSample:
    """One ACK's delivery-rate sample (draft section 3.3; ``rs`` there). One object per
    connection, refilled on every ACK: read it inside ``on_rate_sample``, do not keep it.

    ``delivered`` is -1 and ``delivery_rate`` 0 when this ACK gave no sample (it delivered
    no whole record) and ``interval`` is 0 when the interval was implausible (under the
    minimum RTT); only a sample with ``interval > 0`` measures the path.
    """

    __slots__ = ("delivery_rate", "delivered", "interval", "is_app_limited",
                 "prior_delivered", "prior_time", "send_elapsed", "ack_elapsed", "rtt",
                 "newly_acked", "losses", "prior_in_flight", "estimator")

    def __init__(self, estimator: "DeliveryRate") -> None:
        self.estimator = estimator    # the connection's estimator, for `mark_app_limited`
        self.delivery_rate = 0.0      # bytes/s
        self.delivered = -1           # bytes delivered over the interval
        self.interval = 0.0           # seconds: max(send_elapsed, ack_elapsed)
        self.is_app_limited = False
        self.prior_delivered = 0      # C.delivered when the sampled record was sent
        self.prior_time = 0.0         # C.delivered_time when it was sent
        self.send_elapsed = 0.0
        self.ack_elapsed = 0.0
        self.rtt: float | None = None  # this ACK's RTT sample (RACK's, RFC 8985)
        self.newly_acked = 0          # bytes this ACK delivered, cumulatively or by SACK
        self.losses = 0               # records this ACK's processing presumed lost
        self.prior_in_flight = 0      # bytes in flight (RFC 6675 pipe) before the ACK

    def __repr__(self) -> str:
        return (f"<RateSample rate={self.delivery_rate:.0f} delivered={self.delivered} "
                f"interval={self.interval:.6f} app_limited={self.is_app_limited}>")


class DeliveryRate:
    """The connection-wide counters of the draft (``C.*``) and the per-ACK sampling."""

    __slots__ = ("delivered", "delivered_time", "first_sent_time", "app_limited",
                 "_lost_marked", "rs")

    def __init__(self) -> None:
        self.delivered = 0            # C.delivered: bytes delivered, cumulatively or SACKed
        self.delivered_time = 0.0     # C.delivered_time
        self.first_sent_time = 0.0    # C.first_sent_time
        self.app_limited = 0          # C.app_limited: 0, or the end of the limited period
        self._lost_marked = 0         # the scoreboard's lost count at the previous ACK
        self.rs = RateSample(self)

    def on_send(self, rec, nothing_outstanding: bool, now: float) -> None:
        """Snapshot the counters on the record of a transmission (draft 3.2)."""
        if nothing_outstanding:
            self.first_sent_time = now
            self.delivered_time = now
        rec.d_delivered = self.delivered
        rec.d_time = self.delivered_time
        rec.d_first = self.first_sent_time
        rec.d_app = self.app_limited != 0

    def on_ack(self, sb, now: float, rtt: float | None, min_rtt: float | None,
               prior_in_flight: int) -> RateSample:
        """The sample for the ACK just applied to ``sb`` (a `Scoreboard` whose
        ``delivered`` holds the records it newly delivered), draft 3.3."""
        rs = self.rs
        rs.rtt = rtt
        rs.prior_in_flight = prior_in_flight
        rs.newly_acked = newly = sb.delivered_bytes
        lost = sb.lost_marked
        rs.losses = lost - self._lost_marked
        self._lost_marked = lost
        if newly:
            self.delivered += newly
            self.delivered_time = now
        newest = None
        for rec in sb.delivered:
            if newest is None or rec.tx > newest.tx:
                newest = rec
        if self.app_limited and self.delivered > self.app_limited:
            self.app_limited = 0    # the limited stretch has been delivered (3.4)
        if newest is None:
            rs.delivered = -1
            rs.interval = 0.0
            rs.delivery_rate = 0.0
            return rs
        rs.prior_delivered = newest.d_delivered
        rs.prior_time = newest.d_time
        rs.is_app_limited = newest.d_app
        rs.send_elapsed = send = newest.time - newest.d_first
        rs.ack_elapsed = ack = self.delivered_time - newest.d_time
        # The next interval starts where this one's newest transmission left.
        self.first_sent_time = newest.time
        rs.delivered = self.delivered - newest.d_delivered
        interval = send if send > ack else ack
        if interval <= 0 or (min_rtt is not None and interval < min_rtt - _EPSILON):
            rs.interval = 0.0
            rs.delivery_rate = 0.0
        else:
            rs.interval = interval
            rs.delivery_rate = rs.delivered / interval
        return rs

    def check_app_limited(self, in_flight: int, cwnd: int, lost: int) -> None:
        """The send loop found no more data to send (draft 3.4): with room left in the
        window and no loss waiting to be repaired, the application is the limit."""
        if in_flight < cwnd and not lost:
            self.mark_app_limited(in_flight)

    def mark_app_limited(self, in_flight: int) -> None:
        """Flag transmissions until what is in flight now has been delivered (also what
        BBR's ProbeRTT does, so its deliberately low rate is not taken for the path's)."""
        self.app_limited = (self.delivered + in_flight) or 1
