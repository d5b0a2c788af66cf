"""Reno's window rules (RFC 5681 3.1), as used with NewReno loss recovery (RFC 6582).

Slow start adds min(acked, SMSS) per ACK (equation 2); congestion avoidance adds one SMSS
each time a window's worth of bytes has been acknowledged (the byte counting 3.1
recommends, so delayed ACKs do not halve the growth); a loss halves the flight (equation
4). The window only grows while the sender actually uses it: an application-limited flow
whose flight stays under half the window does not earn more (RFC 7661's validated
window). After more than an RTO without sending, sending restarts from min(IW, cwnd)
(RFC 5681 4.1, the base class's `on_restart`).
"""

from __future__ import annotations

from . import CongestionControl

__all__ = ["NewReno"]


class NewReno(CongestionControl):
    name = "newreno"

    def __init__(self, mss: int, initial_window: int, *, paced: bool = False) -> None:
        super().__init__(mss, initial_window, paced=paced)
        self.bytes_acked = 0   # acknowledged in congestion avoidance, toward the next SMSS

    def on_ack(self, acked: int, rtt: float | None, now: float, in_flight: int,
               round_trip: int) -> None:
        if 2 * in_flight < self.cwnd:
            return   # not cwnd-limited (RFC 7661)
        mss = self.mss
        if self.cwnd < self.ssthresh:
            self.cwnd += min(acked, mss)
            return
        self.bytes_acked += acked
        if self.bytes_acked >= self.cwnd:
            self.bytes_acked -= self.cwnd
            self.cwnd += mss

    def on_congestion(self, now: float, in_flight: int) -> None:
        self.save()
        self.bytes_acked = 0
        self.ssthresh = max(in_flight // 2, 2 * self.mss)
        self.cwnd = self.ssthresh
