"""Pacing: spread a window of segments over the round trip instead of one burst.

A token bucket in bytes, filled at the congestion controller's pacing rate. Timers fire
with about a millisecond of granularity (asyncio, and the timing wheel's tick), so pacing
per segment is impossible in Python; instead the bucket holds up to two milliseconds'
worth of bytes (never less than two segments), and each timer tick sends a small burst.
A segment may go whenever the bucket is not empty, leaving it in debt, so a segment larger
than the bucket still leaves, and the debt delays the next one.
"""

from __future__ import annotations

__all__ = ["Pacer", "QUANTUM"]

#: Timer granularity the bucket is sized for (seconds).
QUANTUM = 0.001


class Pacer:
    __slots__ = ("tokens", "last", "rate")

    def __init__(self, initial: int) -> None:
        self.tokens = float(initial)   # the first burst (the initial window) goes at once
        self.last: float | None = None
        self.rate: float | None = None

    def refill(self, now: float, rate: float | None, mss: int) -> None:
        """Accrue tokens for the time since the last refill, up to the bucket's size."""
        last = self.last
        self.last = now
        self.rate = rate
        if rate is None or last is None:
            return
        cap = 2 * QUANTUM * rate
        if cap < 2 * mss:
            cap = 2 * mss
        tokens = self.tokens + (now - last) * rate
        if tokens > cap:
            tokens = max(cap, self.tokens)   # never drain a bigger initial allowance
        self.tokens = tokens

    def ready(self) -> bool:
        return self.rate is None or self.tokens > 0

    def spend(self, nbytes: int) -> None:
        self.tokens -= nbytes

    def wait(self) -> float:
        """Seconds until the bucket is positive again (at least one tick)."""
        if self.rate is None or self.tokens > 0:
            return 0.0
        return max(QUANTUM, -self.tokens / self.rate)
