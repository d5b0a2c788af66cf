"""Loss injection: a misbehaving link in front of an endpoint's outgoing datagrams.

`Impairment` says what to do to datagrams (drop, duplicate, reorder, delay, jitter, a rate
limit); every entry point accepts one as ``impairment=`` and the endpoint it creates runs
its outgoing datagrams through an `Impairer`. Only what leaves is impaired, so impairing
both ends of a connection impairs both directions.

Decisions come from a `random.Random` seeded with ``seed``: for the same sequence of
datagrams, the same ones are dropped, duplicated and delayed by the same amounts. (Over
real sockets the sequence itself depends on timing, so a seed makes a run repeatable in
its impairment decisions, not in its packet trace.)

Delayed datagrams wait in one heap with one ``loop.call_at`` armed at the earliest, so a
burst of delayed datagrams costs one timer, not one each.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import math
import random
import time
from dataclasses import dataclass
from typing import Callable

__all__ = ["Impairment", "Impairer"]

#: How long a reordered datagram is held back when no delay is configured: long enough for
#: the datagrams sent right after it to overtake it (asyncio timers are good to ~1 ms).
_REORDER_HOLD = 0.001
#: Datagrams due within this much of each other leave in one timer callback.
_BATCH = 0.0005


@dataclass(frozen=True, slots=True)
class Impairment:
    """What happens to each outgoing datagram.

    * ``loss``: probability that a datagram is dropped.
    * ``duplicate``: probability that it is sent twice.
    * ``reorder``: probability that it is held back so that later datagrams overtake it
      (by ``delay``, or 1 ms when there is no delay).
    * ``delay``: seconds added to every datagram; ``jitter``: a further uniformly random
      0..``jitter`` seconds each (so jitter alone also reorders).
    * ``rate``: bytes per second of a bottleneck the datagrams cross one after another
      (None: unlimited); at most ``limit`` datagrams wait for it, the rest are dropped.
    * ``seed``: seeds the decisions; None draws a random seed.
    """

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0
    rate: float | None = None
    seed: int | None = None
    limit: int = 1000

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            value = _number(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Impairment.{name} must be a probability in [0, 1], "
                                 f"got {value!r}")
        for name in ("delay", "jitter"):
            value = _number(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"Impairment.{name} must be a finite number of seconds "
                                 f">= 0, got {value!r}")
        if self.rate is not None:
            value = _number(self, "rate")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"Impairment.rate must be positive bytes/s or None, "
                                 f"got {value!r}")
        if self.seed is not None and (not isinstance(self.seed, int)
                                      or isinstance(self.seed, bool)):
            raise TypeError(f"Impairment.seed must be an int or None, not {self.seed!r}")
        if not isinstance(self.limit, int) or isinstance(self.limit, bool):
            raise TypeError(f"Impairment.limit must be an int, not {self.limit!r}")
        if self.limit < 1:
            raise ValueError(f"Impairment.limit must be at least 1, got {self.limit}")

    @property
    def active(self) -> bool:
        """False when the impairment would let every datagram through untouched."""
        return bool(self.loss or self.duplicate or self.reorder or self.delay or self.jitter
                    or self.rate is not None)


def _number(obj, name: str) -> float:
    value = getattr(obj, name)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"Impairment.{name} must be a number, not {value!r}")
    return float(value)


class Impairer:
    """Applies an `Impairment` to datagrams on their way to ``send(data, addr)``."""

    def __init__(self, impairment: Impairment, loop, send: Callable[[bytes, object], None],
                 *, clock: Callable[[], float] = time.monotonic,
                 on_drained: Callable[[], None] | None = None) -> None:
        self.impairment = impairment
        self._loop = loop
        self._send = send
        self._clock = clock
        self._on_drained = on_drained
        self._rng = random.Random(impairment.seed)
        self._heap: list[tuple[float, int, bytes, object]] = []
        self._order = itertools.count()
        self._timer = None
        self._timer_at = math.inf
        self._link_free = 0.0                      # when the rate-limited link is idle
        self._waiting: collections.deque[float] = collections.deque()  # link departures
        self.stats: collections.Counter[str] = collections.Counter()

    @property
    def pending(self) -> int:
        """Datagrams held back and not yet sent."""
        return len(self._heap)

    def submit(self, data: bytes, addr) -> None:
        """Impair one datagram: drop it, or send it (once or twice) now or later."""
        imp = self.impairment
        rng = self._rng
        self.stats["submitted"] += 1
        if imp.loss and rng.random() < imp.loss:
            self.stats["lost"] += 1
            return
        copies = 1
        if imp.duplicate and rng.random() < imp.duplicate:
            copies = 2
            self.stats["duplicated"] += 1
        for _ in range(copies):
            extra = imp.delay
            if imp.jitter:
                extra += rng.random() * imp.jitter
            if imp.reorder and rng.random() < imp.reorder:
                extra += imp.delay or _REORDER_HOLD
                self.stats["reordered"] += 1
            self._schedule(data, addr, extra)

    def _schedule(self, data: bytes, addr, extra: float) -> None:
        now = self._clock()
        if self.impairment.rate is not None:
            departure = self._cross_link(len(data), now)
            if departure is None:
                self.stats["overflow"] += 1
                return
            extra += departure - now
        if extra <= 0:
            self._send(data, addr)
            return
        due = now + extra
        heapq.heappush(self._heap, (due, next(self._order), data, addr))
        if due < self._timer_at:
            self._arm(due)

    def _cross_link(self, size: int, now: float) -> float | None:
        """When a datagram of ``size`` bytes has crossed the rate-limited link, or None if
        the link's queue is full (tail drop)."""
        waiting = self._waiting
        while waiting and waiting[0] <= now:
            waiting.popleft()
        if len(waiting) >= self.impairment.limit:
            return None
        start = max(now, self._link_free)
        self._link_free = start + size / self.impairment.rate
        waiting.append(self._link_free)
        return self._link_free

    def _arm(self, due: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = self._loop
        self._timer_at = due
        self._timer = loop.call_at(loop.time() + (due - self._clock()), self._release)

    def _release(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        heap = self._heap
        horizon = self._clock() + _BATCH
        while heap and heap[0][0] <= horizon:
            _, _, data, addr = heapq.heappop(heap)
            self._send(data, addr)
        if heap:
            self._arm(heap[0][0])
        elif self._on_drained is not None:
            self._on_drained()

    def close(self) -> None:
        """Forget everything held back."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = math.inf
        self._heap.clear()
