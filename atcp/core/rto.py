"""The retransmission timeout of RFC 6298.

SRTT and RTTVAR are smoothed from round-trip samples (section 2); a sample is never taken
from a retransmitted segment (Karn's algorithm, section 3); each expiry doubles the timeout
up to the maximum (section 5.5). All times are in seconds.
"""

from __future__ import annotations

__all__ = ["RtoEstimator"]

ALPHA = 1 / 8
BETA = 1 / 4
K = 4
#: Clock granularity G: asyncio timers are good to about a millisecond.
GRANULARITY = 0.001


class RtoEstimator:
    __slots__ = ("srtt", "rttvar", "rto", "backoff", "_min", "_max")

    def __init__(self, initial: float, minimum: float, maximum: float) -> None:
        self.srtt: float | None = None
        self.rttvar: float | None = None
        self.rto = initial
        self.backoff = 0
        self._min = minimum
        self._max = maximum

    def sample(self, rtt: float, per_rtt: int = 1) -> None:
        """Fold in a round-trip measurement (RFC 6298 2.2, 2.3) and clear the backoff.

        ``per_rtt``: how many samples a round trip brings. With timestamps every ACK is a
        sample, so the gains are divided by that number (RFC 7323 Appendix G) to keep the
        estimator's memory about the same number of round trips as one sample per RTT.
        """
        if rtt < 0:
            return
        if self.srtt is None:
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:
            alpha, beta = ALPHA / per_rtt, BETA / per_rtt
            self.rttvar = (1 - beta) * self.rttvar + beta * abs(self.srtt - rtt)
            self.srtt = (1 - alpha) * self.srtt + alpha * rtt
        self.backoff = 0
        self._set(self.srtt + max(GRANULARITY, K * self.rttvar))

    def expired(self) -> None:
        """The timer expired: back off (RFC 6298 5.5)."""
        self.backoff += 1
        self._set(self.rto * 2)

    def reset_after_syn_loss(self) -> None:
        """A SYN was retransmitted and no sample exists: data starts at 3 s (RFC 6298 5.7)."""
        if self.srtt is None:
            self.rto = min(max(3.0, self._min), self._max)

    def _set(self, value: float) -> None:
        self.rto = min(max(value, self._min), self._max)
