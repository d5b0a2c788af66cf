"""A one-line progress bar with rate and ETA, redrawn in place on stderr.

`render` is a pure function of the numbers (tested directly); `Progress` decides when to
redraw (at most ten times a second) and measures the rate over the last few seconds, so
the ETA follows the link as it is now rather than its average since the start.
"""

from __future__ import annotations

import collections
import time

__all__ = ["Progress", "render", "human_bytes"]

_WINDOW = 3.0      # seconds of history the rate is measured over
_REDRAW = 0.1      # seconds between redraws
_BAR = 24          # characters in the bar


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes:02}:{secs:02}"


def render(label: str, done: int, total: int, rate: float | None,
           elapsed: float | None = None) -> str:
    """``label  42% [=========>      ] 4.2 MiB / 10.0 MiB  1.3 MiB/s  ETA 00:04``; with
    ``elapsed`` (the end) the time taken replaces the ETA."""
    fraction = 1.0 if total <= 0 else min(done / total, 1.0)
    filled = int(fraction * _BAR)
    bar = "=" * filled + (">" if filled < _BAR else "") + " " * (_BAR - filled - 1)
    speed = "--" if rate is None else f"{human_bytes(rate)}/s"
    if elapsed is not None:
        tail = f"in {elapsed:.1f} s" if elapsed < 60 else f"in {_clock(elapsed)}"
    else:
        eta = None if not rate else max(total - done, 0) / rate
        tail = f"ETA {_clock(eta)}"
    return (f"{label}  {fraction * 100:3.0f}% [{bar[:_BAR]}] {human_bytes(done)} / "
            f"{human_bytes(total)}  {speed}  {tail}")


class Progress:
    """Tracks bytes done out of ``total`` and draws `render` on ``stream`` when enabled."""

    def __init__(self, label: str, total: int, stream, *, enabled: bool,
                 clock=time.monotonic) -> None:
        self.label = label
        self.total = total
        self.stream = stream
        self.enabled = enabled
        self._clock = clock
        self.started = clock()
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self._samples.append((self.started, 0))
        self._drawn = float("-inf")
        self._width = 0
        self.done = 0

    def rate(self) -> float | None:
        """Bytes per second over the last few seconds; None until time has passed."""
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        if t1 - t0 <= 0:
            return None
        return (d1 - d0) / (t1 - t0)

    def update(self, done: int) -> None:
        now = self._clock()
        self.done = done
        samples = self._samples
        samples.append((now, done))
        while len(samples) > 2 and now - samples[1][0] >= _WINDOW:
            samples.popleft()
        if self.enabled and now - self._drawn >= _REDRAW:
            self._drawn = now
            self._draw(render(self.label, done, self.total, self.rate()), end="")

    def finish(self, done: int | None = None) -> float:
        """Draw the final line (with the average rate) and return the seconds taken."""
        if done is not None:
            self.done = done
        elapsed = self._clock() - self.started
        if self.enabled:
            average = self.done / elapsed if elapsed > 0 else None
            self._draw(render(self.label, self.done, self.total, average, elapsed),
                       end="\n")
        return elapsed

    def _draw(self, line: str, end: str) -> None:
        pad = " " * max(self._width - len(line), 0)
        self._width = len(line)
        self.stream.write("\r" + line + pad + end)
        self.stream.flush()
