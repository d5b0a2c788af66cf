"""HyStart++ (RFC 9406): leave slow start when the RTT starts to rise, before a loss.

Slow start doubles the window every round trip until something drops, which on a deep
buffer means a burst of losses. HyStart++ watches the minimum RTT of each round: when it
rises by more than a threshold over the previous round's (section 4.2), the queue is
building, so growth slows to a quarter (Conservative Slow Start, CSS). If the RTT falls
back below the baseline, that was noise and slow start resumes; after ``CSS_ROUNDS`` rounds
of CSS the window is taken as the new ssthresh and congestion avoidance begins.

RFC 9406 4.2 recommends it for the initial slow start only; the controller stops consulting
it once a loss has set ssthresh. All times are in seconds.
"""

from __future__ import annotations

import math

__all__ = ["HyStartPlusPlus"]

# RFC 9406 4.3 constants.
MIN_RTT_THRESH = 0.004
MAX_RTT_THRESH = 0.016
MIN_RTT_DIVISOR = 8
N_RTT_SAMPLE = 8
CSS_GROWTH_DIVISOR = 4
CSS_ROUNDS = 5
#: L, the most SMSS one ACK may add: 8 for an unpaced sender, unbounded when paced (4.3).
L_UNPACED = 8

_INF = math.inf


class HyStartPlusPlus:
    """Slow-start growth per ACK, with RFC 9406's exit to CSS and to congestion avoidance."""

    __slots__ = ("limit", "in_css", "done", "_round", "_last_min", "_cur_min", "_samples",
                 "_baseline", "_css_rounds")

    def __init__(self, paced: bool) -> None:
        self.limit = None if paced else L_UNPACED
        self.in_css = False
        self.done = False
        self._round: int | None = None
        self._last_min = _INF
        self._cur_min = _INF
        self._samples = 0
        self._baseline = _INF
        self._css_rounds = 0

    def on_ack(self, acked: int, mss: int, rtt: float | None, round_trip: int) -> float:
        """Bytes to add to cwnd for ``acked`` newly acknowledged bytes. Sets ``done`` when
        slow start should end (the caller then sets ssthresh = cwnd)."""
        if round_trip != self._round:
            self._new_round(round_trip)
            if self.done:
                return 0.0
        if rtt is not None:
            if rtt < self._cur_min:
                self._cur_min = rtt
            self._samples += 1
        grow = acked if self.limit is None else min(acked, self.limit * mss)
        if self.in_css:
            self._check_css_spurious()
            return grow / CSS_GROWTH_DIVISOR if self.in_css else grow
        self._check_rtt_increase()
        return grow

    def _new_round(self, round_trip: int) -> None:
        """4.2: at the start of each round, the last round's minimum becomes the baseline
        for comparison; CSS counts its rounds."""
        self._round = round_trip
        self._last_min = self._cur_min
        self._cur_min = _INF
        self._samples = 0
        if self.in_css:
            self._css_rounds += 1
            if self._css_rounds >= CSS_ROUNDS:
                self.in_css = False
                self.done = True

    def _check_rtt_increase(self) -> None:
        if (self._samples >= N_RTT_SAMPLE and self._cur_min != _INF
                and self._last_min != _INF):
            thresh = max(MIN_RTT_THRESH, min(self._last_min / MIN_RTT_DIVISOR, MAX_RTT_THRESH))
            if self._cur_min >= self._last_min + thresh:
                self._baseline = self._cur_min
                self.in_css = True
                self._css_rounds = 0

    def _check_css_spurious(self) -> None:
        """An RTT back under the CSS baseline: the rise was spurious, resume slow start."""
        if self._samples >= N_RTT_SAMPLE and self._cur_min < self._baseline:
            self._baseline = _INF
            self.in_css = False
