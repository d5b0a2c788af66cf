"""CUBIC (RFC 9438), with HyStart++ (RFC 9406) for the initial slow start.

After a loss the window drops to beta = 0.7 of itself and then follows a cubic curve of the
time since that moment, W_cubic(t) = C (t - K)^3 + W_max (section 4.2): fast far below the
window where the loss happened (W_max), flat near it, probing faster again beyond it. K is
the time the curve takes to climb back to W_max. Below the curve's rate, the Reno-friendly
estimate W_est (4.3) takes over, so CUBIC never does worse than Reno on short-RTT paths.

Windows in the formulas are in segments and times in seconds, as in the RFC; ``cwnd`` and
``ssthresh`` are kept in bytes for the sender, with the fractional growth carried over.
"""

from __future__ import annotations

from . import INFINITE_SSTHRESH, CongestionControl
from .hystart import HyStartPlusPlus

__all__ = ["Cubic", "C", "BETA", "ALPHA"]

C = 0.4                                  # 4.1
BETA = 0.7                               # 4.6: multiplicative decrease factor
ALPHA = 3 * (1 - BETA) / (1 + BETA)      # 4.3: Reno-friendly additive increase
FAST_CONVERGENCE = True                  # 4.7


def cubic_k(w_max: float, cwnd_epoch: float) -> float:
    """K of equation 2: when W_cubic climbs from ``cwnd_epoch`` back to ``w_max``."""
    if cwnd_epoch >= w_max:
        return 0.0
    return ((w_max - cwnd_epoch) / C) ** (1 / 3)


def w_cubic(t: float, k: float, w_max: float) -> float:
    """Equation 1: the window (segments) ``t`` seconds into the congestion-avoidance epoch."""
    return C * (t - k) ** 3 + w_max


class Cubic(CongestionControl):
    name = "cubic"

    def __init__(self, mss: int, initial_window: int, *, paced: bool = True,
                 hystart: bool = True) -> None:
        super().__init__(mss, initial_window, paced=paced)
        self.hystart = HyStartPlusPlus(paced) if hystart else None
        self._slow_start_limit = None if paced else 8   # L of RFC 9406 4.3, for plain slow start
        self.w_max = 0.0            # segments
        self.k = 0.0
        self.epoch_start: float | None = None
        self.cwnd_epoch = 0.0
        self.w_est = 0.0
        self.cwnd_prior = 0.0
        self.srtt: float | None = None
        self._carry = 0.0           # growth below one byte, kept for the next ACK

    # -- growth ---------------------------------------------------------------------------
    def on_ack(self, acked: int, rtt: float | None, now: float, in_flight: int,
               round_trip: int) -> None:
        if rtt is not None:
            self.srtt = rtt if self.srtt is None else self.srtt + (rtt - self.srtt) / 8
        if 2 * in_flight < self.cwnd:
            return   # application-limited: the window is not validated (RFC 7661, RFC 9438 5.8)
        if self.cwnd < self.ssthresh:
            self._slow_start(acked, rtt, round_trip)
        else:
            self._congestion_avoidance(acked, now)

    def _slow_start(self, acked: int, rtt: float | None, round_trip: int) -> None:
        mss = self.mss
        hs = self.hystart
        if hs is not None and not hs.done and self.ssthresh == INFINITE_SSTHRESH:
            self._grow(hs.on_ack(acked, mss, rtt, round_trip))
            if hs.done:
                self.ssthresh = self.cwnd   # RFC 9406 4.2: CSS rounds over, enter CA
            return
        limit = self._slow_start_limit
        self._grow(acked if limit is None else min(acked, limit * mss))

    def _congestion_avoidance(self, acked: int, now: float) -> None:
        mss = self.mss
        cwnd = self.cwnd / mss
        if self.epoch_start is None:
            self._start_epoch(now, cwnd)
        segments = acked / mss
        t = now - self.epoch_start
        rtt = self.srtt or 0.0
        # 4.2: aim for where the curve will be one RTT from now, within [cwnd, 1.5 cwnd].
        target = w_cubic(t + rtt, self.k, self.w_max)
        if target < cwnd:
            target = cwnd
        elif target > 1.5 * cwnd:
            target = 1.5 * cwnd
        # 4.3: the Reno-friendly estimate grows by ALPHA per window, 1 once past cwnd_prior.
        alpha = 1.0 if self.w_est >= self.cwnd_prior else ALPHA
        self.w_est += alpha * segments / cwnd
        if w_cubic(t, self.k, self.w_max) < self.w_est:
            new = self.w_est
        else:
            new = cwnd + (target - cwnd) / cwnd * segments
        self._grow((new - cwnd) * mss)

    def _start_epoch(self, now: float, cwnd: float) -> None:
        self.epoch_start = now
        self.cwnd_epoch = cwnd
        if cwnd < self.w_max:
            self.k = cubic_k(self.w_max, cwnd)
        else:
            # No loss yet, or after a timeout (4.8): the curve starts flat at today's window.
            self.k = 0.0
            self.w_max = cwnd
        self.w_est = cwnd

    def _grow(self, nbytes: float) -> None:
        if nbytes <= 0:
            return
        total = nbytes + self._carry
        whole = int(total)
        self._carry = total - whole
        self.cwnd += whole

    # -- reductions -----------------------------------------------------------------------
    def on_congestion(self, now: float, in_flight: int) -> None:
        """4.6 multiplicative decrease, with 4.7 fast convergence."""
        self.save()
        mss = self.mss
        cwnd = self.cwnd / mss
        if FAST_CONVERGENCE and cwnd < self.w_max:
            self.w_max = cwnd * (1 + BETA) / 2
        else:
            self.w_max = cwnd
        self.cwnd_prior = cwnd
        self.epoch_start = None
        self.ssthresh = max(round(self.cwnd * BETA), 2 * mss)
        self.cwnd = self.ssthresh
        self._carry = 0.0
        if self.hystart is not None:
            self.hystart.done = True

    def on_restart(self, now: float, idle: float, rto: float) -> None:
        """RFC 5681 4.1 as the base class does; the cubic curve then starts a new epoch
        from the restart window, since its time (t of equation 1) stood still while
        nothing was sent."""
        if idle <= rto:
            return
        super().on_restart(now, idle, rto)
        self.epoch_start = None
        self._carry = 0.0

    def on_rto(self, now: float, in_flight: int, first: bool) -> None:
        """4.8: Reno's loss window, but ssthresh from beta; the next epoch starts with K = 0
        and W_max at the window congestion avoidance begins with."""
        if first:
            self.save()
            self.ssthresh = max(round(self.cwnd * BETA), 2 * self.mss)
            self.cwnd_prior = self.cwnd / self.mss
            self.w_max = 0.0
        self.epoch_start = None
        self.cwnd = self.mss
        self._carry = 0.0
        if self.hystart is not None:
            self.hystart.done = True

    def save(self) -> None:
        self._saved = (self.cwnd, self.ssthresh, self.w_max, self.k, self.epoch_start,
                       self.cwnd_epoch, self.w_est, self.cwnd_prior)

    def undo(self) -> None:
        """4.9: a spurious reduction restores the cubic state as well as the window."""
        saved = self._saved
        if saved is None:
            return
        super().undo()
        (_, _, self.w_max, self.k, self.epoch_start, self.cwnd_epoch, self.w_est,
         self.cwnd_prior) = saved
