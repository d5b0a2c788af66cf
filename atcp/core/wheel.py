"""A hierarchical timing wheel: which timers are due, without a clock.

Theory of operation
-------------------
Time is cut into ticks of ``tick`` seconds; tick number ``n`` covers
``[n * tick, (n + 1) * tick)``. A deadline belongs to the tick that contains it. Tick
numbers are written in base ``slots``, and each digit position is one *level* of the
wheel: level 0 has one slot per tick, level 1 one slot per ``slots`` ticks, and so on.
With the defaults (1 ms, 256 slots, 4 levels) the levels hold 256 ms, 65.5 s, 4.7 h and
49.7 days.

An item is filed by comparing its tick with the wheel's current tick: it goes to the
highest level whose digit differs, into the slot named by its own digit there. So level
0 holds what is due in the current level-1 block, level 1 what is due in the current
level-2 block, and so on. Items whose ticks differ above the top level (beyond the
wheel's span of ``tick * slots ** levels``) wait in a single overflow slot. Filing is a
few integer divisions and a dict insert, so ``schedule`` is O(levels) whatever the
deadline; re-arming an item is a dict delete plus a filing.

As a consequence, the first occupied slot of the lowest non-empty level always holds
the earliest items, and slots of a level fill only digits after the current one. Each
level keeps a bitmap of occupied slots, so that slot is found with one lowest-set-bit
operation: ``advance`` jumps straight from one occupied slot to the next and a jump
over an idle hour costs nothing per elapsed tick.

Cascading: when ``advance`` reaches the start of an occupied slot at level ``L > 0``,
that slot's items now share digit ``L`` with the current tick, so each is filed again
and lands on a lower level. The overflow slot is cascaded the same way when the wheel
proper is empty and time reaches the block that holds its earliest item (it is scanned
then, which happens at most once per span).

Guarantee: never early, at most one tick late. ``advance(now)`` returns exactly the
items whose deadline is ``<= now``, sorted by deadline. An item in the current tick
whose deadline is still ahead stays in its slot and is looked at again on the next
``advance``. The wheel therefore adds no lateness of its own; the tick is only the
resolution at which items are grouped. Lateness comes from how late the driver calls
``advance``, which with asyncio is about a millisecond.

The asyncio layer: after anything that may schedule, re-arm or cancel a timer, the
driver reads ``next_deadline()``. ``None`` means cancel the armed ``loop.call_at``;
otherwise it (re)arms a single ``loop.call_at`` for that time, which is the earliest
deadline in the wheel, so ``advance`` at that time returns at least one item. When the
callback runs it calls ``advance(max(loop.time(), armed_time))`` -- asyncio may run a
timer callback up to its clock resolution early -- handles the returned items and arms
again. ``next_deadline()`` is cached and recomputed from one slot only after the
earliest item was removed or the wheel advanced.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

__all__ = ["TimingWheel"]


class TimingWheel:
    """Items (any hashable) filed by deadline; time is passed in as float seconds."""

    __slots__ = (
        "_tick_length",
        "_slots",
        "_levels",
        "_spans",
        "_wheel",
        "_occupied",
        "_where",
        "_tick",
        "_now",
        "_earliest",
    )

    def __init__(self, tick: float = 0.001, now: float = 0.0, slots: int = 256, levels: int = 4) -> None:
        if not (math.isfinite(tick) and tick > 0):
            raise ValueError(f"tick must be a positive number of seconds, not {tick!r}")
        if slots < 2 or levels < 1:
            raise ValueError(f"need at least 2 slots and 1 level, not {slots} and {levels}")
        now = _finite(now, "now")
        self._tick_length = float(tick)
        self._slots = slots
        self._levels = levels
        #: _spans[L] is the number of ticks one slot of level L covers; _spans[levels] is
        #: the span of the whole wheel.
        self._spans = [slots**level for level in range(levels + 1)]
        #: One list of slots per level, plus the overflow "level" with a single slot.
        #: A slot maps item -> deadline.
        self._wheel: list[list[dict[Hashable, float]]] = [
            [{} for _ in range(slots)] for _ in range(levels)
        ] + [[{}]]
        #: Per level (overflow included), bit i is set when slot i is non-empty.
        self._occupied = [0] * (levels + 1)
        #: item -> (level, slot index)
        self._where: dict[Hashable, tuple[int, int]] = {}
        self._tick = self._tick_at(now)
        self._now = now
        #: Cached earliest deadline; math.inf when empty, None when it must be recomputed.
        self._earliest: float | None = math.inf

    # -- public interface --------------------------------------------------------------

    @property
    def now(self) -> float:
        """The latest time the wheel has been advanced to (or created at)."""
        return self._now

    def schedule(self, item: Hashable, deadline: float) -> None:
        """Fire ``item`` at ``deadline``; an item already scheduled is moved (re-armed).

        A deadline in the past fires on the next ``advance``.
        """
        deadline = _finite(deadline, "deadline")
        self._remove(item)
        self._place(item, deadline)
        if self._earliest is not None and deadline < self._earliest:
            self._earliest = deadline

    def cancel(self, item: Hashable) -> None:
        """Forget ``item``; nothing happens if it is not scheduled."""
        self._remove(item)

    def deadline_of(self, item: Hashable) -> float | None:
        """The deadline ``item`` was scheduled with, or None if it is not scheduled."""
        where = self._where.get(item)
        if where is None:
            return None
        level, index = where
        return self._wheel[level][index][item]

    def __contains__(self, item: object) -> bool:
        return item in self._where

    def __len__(self) -> int:
        return len(self._where)

    def advance(self, now: float) -> list:
        """Move time to ``now``; remove and return the items due by then, by deadline.

        Time never runs backwards: an earlier ``now`` returns what is due by it and
        leaves the wheel's time where it was.
        """
        now = _finite(now, "now")
        target = max(self._tick_at(now), self._tick)
        due: list[tuple[float, Hashable]] = []
        while (step := self._next_step()) is not None:
            tick, level, index = step
            if tick > target:
                break
            self._tick = tick
            if level > 0:
                self._cascade(level, index)
                continue
            self._fire(index, now, due)
            if tick == target:
                break  # the current tick's slot may keep items that are due later
        self._tick = target
        self._now = max(self._now, now)
        if due:
            self._earliest = None
            due.sort(key=_by_deadline)
        return [item for _, item in due]

    def next_deadline(self) -> float | None:
        """The earliest deadline in the wheel, or None when it is empty.

        ``advance`` at this time returns at least that item. The value is cached.
        """
        if self._earliest is None:
            self._earliest = self._find_earliest()
        return None if self._earliest == math.inf else self._earliest

    # -- filing ------------------------------------------------------------------------

    def _tick_at(self, time: float) -> int:
        """The number of the tick that contains ``time``."""
        return math.floor(time / self._tick_length)

    def _level_for(self, tick: int) -> int:
        """The highest level whose digit differs between ``tick`` and the current tick.

        Returns ``self._levels`` (the overflow slot) when they differ above the top level.
        """
        level = 0
        here, there = self._tick // self._slots, tick // self._slots
        while here != there:
            level += 1
            if level == self._levels:
                break
            here //= self._slots
            there //= self._slots
        return level

    def _place(self, item: Hashable, deadline: float) -> None:
        tick = max(self._tick_at(deadline), self._tick)  # the past is due now
        level = self._level_for(tick)
        index = 0 if level == self._levels else (tick // self._spans[level]) % self._slots
        self._wheel[level][index][item] = deadline
        self._occupied[level] |= 1 << index
        self._where[item] = (level, index)

    def _remove(self, item: Hashable) -> None:
        where = self._where.pop(item, None)
        if where is None:
            return
        level, index = where
        slot = self._wheel[level][index]
        deadline = slot.pop(item)
        if not slot:
            self._occupied[level] &= ~(1 << index)
        if self._earliest is not None and deadline <= self._earliest:
            self._earliest = None  # it was the earliest item

    def _take_slot(self, level: int, index: int) -> dict[Hashable, float]:
        """Empty a slot and return what it held."""
        slot = self._wheel[level][index]
        self._wheel[level][index] = {}
        self._occupied[level] &= ~(1 << index)
        return slot

    # -- advancing ---------------------------------------------------------------------

    def _first_slot(self) -> tuple[int, int] | None:
        """The (level, index) of the slot holding the earliest items, or None if empty."""
        for level, bits in enumerate(self._occupied):
            if bits:
                return level, _lowest_bit(bits)
        return None

    def _next_step(self) -> tuple[int, int, int] | None:
        """(tick, level, index): the next slot to fire or cascade and the tick it starts."""
        first = self._first_slot()
        if first is None:
            return None
        level, index = first
        if level == self._levels:
            span = self._spans[level]
            earliest = min(self._tick_at(deadline) for deadline in self._wheel[level][0].values())
            return earliest - earliest % span, level, index
        outer = self._spans[level + 1]
        return self._tick - self._tick % outer + index * self._spans[level], level, index

    def _cascade(self, level: int, index: int) -> None:
        """File a slot's items again; they land on lower levels (or stay in overflow)."""
        for item, deadline in self._take_slot(level, index).items():
            self._place(item, deadline)

    def _fire(self, index: int, now: float, due: list[tuple[float, Hashable]]) -> None:
        """Move the level-0 slot's items with deadline <= now into ``due``."""
        slot = self._wheel[0][index]
        ready = [(deadline, item) for item, deadline in slot.items() if deadline <= now]
        if len(ready) == len(slot):
            self._take_slot(0, index)
        else:
            for _, item in ready:
                del slot[item]
        for _, item in ready:
            del self._where[item]
        due.extend(ready)

    def _find_earliest(self) -> float:
        first = self._first_slot()
        if first is None:
            return math.inf
        level, index = first
        return min(self._wheel[level][index].values())


def _finite(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, not {value!r}")
    return value


def _lowest_bit(bits: int) -> int:
    """The position of the lowest set bit of a positive integer."""
    return (bits & -bits).bit_length() - 1


def _by_deadline(entry: tuple[float, Hashable]) -> float:
    return entry[0]
