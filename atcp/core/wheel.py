"""A hierarchical timing wheel: which timers are due, without a clock.

Theory of operation
-------------------
Time is cut into ticks of ``tick`` seconds; tick number ``n`` covers
``[n * tick, (n + 1) * tick)``. A deadline belongs to the tick that contains it,
``floor(deadline * (1 / tick))`` (any monotonic rounding would do, as long as every
deadline and every ``now`` go through the same one). Tick numbers are written in base
``slots``, and each digit position is one *level* of the wheel: level 0 has one slot per
tick, level 1 one slot per ``slots`` ticks, and so on. With the defaults (1 ms, 256
slots, 4 levels) the levels hold 256 ms, 65.5 s, 4.7 h and 49.7 days.

Filing. An item goes to the highest level whose digit differs between its tick and the
wheel's current tick, into the slot named by its own digit there. So level 0 holds what
is due in the current level-1 block, level 1 what is due in the current level-2 block,
and so on; items whose ticks differ above the top level (beyond the wheel's span of
``tick * slots ** levels``) wait in a single overflow slot. The wheel keeps the ends of
the current level-1 and level-2 blocks (``_end0``, ``_end1``), so a deadline less than
a level-2 block ahead (65 s by default) finds its level with one or two comparisons; a
later one compares digits level by level.

Storage. A slot exists only while it holds something. ``_slot_at`` maps a slot's
position (``level * slots + digit``; the overflow slot is ``levels * slots``) to a
`_Slot`, a dict item -> deadline; an emptied slot is dropped, so an empty wheel is a few
hundred bytes whatever its geometry. ``_where`` maps each item to its slot. A re-arm is
a multiplication and a floor for the tick, a comparison or two for the level, then
either an overwrite of the stored deadline when the item stays in its slot (an RTO
pushed back by less than the slot's width) or a dict delete and a dict insert.
``schedule`` validates nothing on its own: the floor of an infinite or NaN deadline
raises, and that is turned into ValueError.

Earliest. The first occupied slot of the lowest non-empty level always holds the
earliest items, and slots of a level fill only digits after the current one. One bitmap
over all positions (bit ``p`` set while slot ``p`` exists, so level 0 in the lowest
bits) finds that slot with one lowest-set-bit operation: ``advance`` jumps straight from
one occupied slot to the next, and a jump over an idle hour costs nothing per elapsed
tick. Each slot keeps its earliest deadline (``low``) and how many of its items have it
(``count``), updated with a comparison on every insert and removal; only when the last
item holding the low leaves does the slot forget it (``low`` becomes -inf, which is
still a true lower bound) until the next look rescans it. So ``next_deadline`` is a bit
operation and a lookup, and a crowd of equal deadlines (100,000 TIME-WAIT records
entered in one instant) can lose members, or see earlier items come and go, without
being rescanned.

Cascading: when ``advance`` reaches the start of an occupied slot at level ``L > 0``,
that slot's items now share digit ``L`` with the current tick, so each is filed again
and lands on a lower level. The overflow slot is cascaded the same way when the wheel
proper is empty and time reaches the block that holds its earliest item.

Guarantee: never early, at most one tick late. ``advance(now)`` returns exactly the
items whose deadline is ``<= now``, sorted by deadline. A level-0 slot whose tick is
before ``now``'s is due whole. In ``now``'s own tick, items whose deadline is still
ahead stay in their slot and are looked at again on the next ``advance``, which passes
the slot by while ``now`` is below its low and otherwise scans it. A crowded slot (more
than ``_scan_at_most`` items) that is left partly due is sorted once, so a driver that
advances to each of many distinct deadlines inside one tick (the fake-clock ``Link``
does) pops them off that order instead of rescanning the slot every time. The wheel
therefore adds no lateness of its own; the tick is only the resolution at which items
are grouped. Lateness comes from how late the driver calls ``advance``, which with
asyncio is about a millisecond.

The asyncio layer: after anything that may schedule, re-arm or cancel a timer, the
driver reads ``next_deadline()``. ``None`` means cancel the armed ``loop.call_at``;
otherwise it (re)arms a single ``loop.call_at`` for that time, which is the earliest
deadline in the wheel, so ``advance`` at that time returns at least one item. When the
callback runs it calls ``advance(max(loop.time(), armed_time))`` -- asyncio may run a
timer callback up to its clock resolution early -- handles the returned items and arms
again.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Hashable
from math import floor

__all__ = ["TimingWheel"]

#: The ``low`` of a slot that must be rescanned: below every deadline, so it is still a
#: true lower bound, and no deadline inserted or removed is equal to it or below it.
_UNKNOWN = -math.inf


class _Slot(dict):
    """One slot: item -> deadline, with its position and its earliest deadline."""

    __slots__ = ("pos", "low", "count")

    def __init__(self, pos: int) -> None:
        super().__init__()
        self.pos = pos
        #: The earliest deadline here (inf while empty), or _UNKNOWN.
        self.low = math.inf
        #: How many items have the deadline ``low`` (when it is known).
        self.count = 0


class TimingWheel:
    """Items (any hashable) filed by deadline; time is passed in as float seconds."""

    #: A current tick's slot with more items than this is sorted once when it is partly
    #: due, rather than scanned on every advance in that tick.
    _scan_at_most = 64

    __slots__ = (
        "_per_tick",
        "_slots",
        "_levels",
        "_spans",
        "_end0",
        "_end1",
        "_slot_at",
        "_occupied",
        "_where",
        "_tick",
        "_now",
        "_order",
        "_order_of",
    )

    def __init__(
        self, tick: float = 0.001, now: float = 0.0, slots: int = 256, levels: int = 4
    ) -> None:
        if not (math.isfinite(tick) and tick > 0):
            raise ValueError(f"tick must be a positive number of seconds, not {tick!r}")
        if slots < 2 or levels < 1:
            raise ValueError(f"need at least 2 slots and 1 level, not {slots} and {levels}")
        now = _finite(now, "now")
        self._per_tick = 1.0 / tick
        self._slots = slots
        self._levels = levels
        self._spans = _spans(slots, levels)
        #: Position -> slot, for the slots that hold items.
        self._slot_at: dict[int, _Slot] = {}
        #: Bit p is set while slot p exists.
        self._occupied = 0
        self._where: dict[Hashable, _Slot] = {}
        #: The current tick's slot, when it was crowded and partly due, sorted latest
        #: first: (deadline, item) pairs, some stale (cancelled or moved since).
        self._order: list[tuple[float, Hashable]] | None = None
        self._order_of: _Slot | None = None
        self._set_tick(self._tick_at(now))
        self._now = now

    # -- public interface --------------------------------------------------------------

    @property
    def now(self) -> float:
        """The latest time the wheel has been advanced to (or created at)."""
        return self._now

    def schedule(self, item: Hashable, deadline: float) -> None:
        """Fire ``item`` at ``deadline``; an item already scheduled is moved (re-armed).

        A deadline in the past fires on the next ``advance``. A non-finite deadline
        raises ValueError.
        """
        # This is the hot path (every re-arm), so it is written out in one function.
        try:
            tick = floor(deadline * self._per_tick)
        except (OverflowError, ValueError):
            raise ValueError(f"deadline must be finite, not {deadline!r}") from None
        slots = self._slots
        if tick < self._end0:
            if tick > self._tick:
                pos = tick % slots
            else:
                # The current tick, or the past: due at the next advance. This is the only
                # way into the current tick's slot, whose order (if any) is now stale.
                pos = self._tick % slots
                self._order = self._order_of = None
        elif tick < self._end1:
            pos = slots + tick // slots % slots
        else:
            pos = self._position(tick)
        where = self._where
        slot = where.get(item)
        if slot is not None:
            if slot.pos == pos:
                # It stays in its slot (an RTO pushed back by less than the slot's width).
                old = slot[item]
                slot[item] = deadline
                low = slot.low
                if deadline < low:
                    slot.low = deadline
                    slot.count = 1
                elif deadline == low:
                    if old != low:
                        slot.count += 1
                elif old == low:
                    slot.count -= 1
                    if not slot.count:
                        slot.low = _UNKNOWN
                return
            # It leaves its slot: `_unfile`, written out.
            old = slot.pop(item)
            if not slot:
                self._drop(slot)
            elif old == slot.low:
                slot.count -= 1
                if not slot.count:
                    slot.low = _UNKNOWN
        slot = self._slot_at.get(pos)
        if slot is None:
            slot = self._slot_at[pos] = _Slot(pos)
            self._occupied |= 1 << pos
        slot[item] = deadline
        where[item] = slot
        low = slot.low
        if deadline < low:
            slot.low = deadline
            slot.count = 1
        elif deadline == low:
            slot.count += 1

    def cancel(self, item: Hashable) -> None:
        """Forget ``item``; nothing happens if it is not scheduled."""
        slot = self._where.pop(item, None)
        if slot is not None:
            self._unfile(item, slot)

    def deadline_of(self, item: Hashable) -> float | None:
        """The deadline ``item`` was scheduled with, or None if it is not scheduled."""
        slot = self._where.get(item)
        return None if slot is None else slot[item]

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
        now_tick = self._tick_at(now)
        target = max(now_tick, self._tick)
        due: list[tuple[float, Hashable]] = []
        while (step := self._next_step()) is not None:
            tick, slot = step
            if tick > target:
                break
            self._set_tick(tick)
            if slot.pos >= self._slots:
                self._cascade(slot)
                continue
            self._fire(slot, tick < now_tick, now, due)
            if tick == target:
                break  # the current tick's slot may keep items that are due later
        self._set_tick(target)
        self._now = max(self._now, now)
        if len(due) > 1:
            due.sort(key=_by_deadline)
        return [item for _, item in due]

    def next_deadline(self) -> float | None:
        """The earliest deadline in the wheel, or None when it is empty.

        ``advance`` at this time returns at least that item.
        """
        occupied = self._occupied
        if not occupied:
            return None
        slot = self._slot_at[(occupied & -occupied).bit_length() - 1]
        return slot.low if slot.low != _UNKNOWN else self._low_of(slot)

    # -- filing ------------------------------------------------------------------------

    def _tick_at(self, time: float) -> int:
        """The number of the tick that contains ``time``."""
        return floor(time * self._per_tick)

    def _set_tick(self, tick: int) -> None:
        self._tick = tick
        slots = self._slots
        self._end0 = tick - tick % slots + slots
        if self._levels > 1:
            span = self._spans[2]
            self._end1 = tick - tick % span + span
        else:
            self._end1 = self._end0  # beyond level 0 is the overflow slot

    def _position(self, tick: int) -> int:
        """The position of the slot for ``tick``, which is not before the current tick."""
        here, slots, spans = self._tick, self._slots, self._spans
        for level in range(self._levels):
            if tick // spans[level + 1] == here // spans[level + 1]:
                return level * slots + tick // spans[level] % slots
        return self._levels * slots

    def _unfile(self, item: Hashable, slot: _Slot) -> None:
        """Take ``item`` out of ``slot`` (its entry in ``_where`` is the caller's)."""
        deadline = slot.pop(item)
        if not slot:
            self._drop(slot)
        elif deadline == slot.low:
            slot.count -= 1
            if not slot.count:
                slot.low = _UNKNOWN

    def _drop(self, slot: _Slot) -> None:
        """Forget an empty (or emptied) slot."""
        del self._slot_at[slot.pos]
        self._occupied ^= 1 << slot.pos
        if slot is self._order_of:
            self._order = self._order_of = None

    def _low_of(self, slot: _Slot) -> float:
        """The slot's earliest deadline, rescanning it if it was forgotten."""
        if slot.low == _UNKNOWN:
            deadlines = list(slot.values())
            slot.low = min(deadlines)
            slot.count = deadlines.count(slot.low)
        return slot.low

    # -- advancing ---------------------------------------------------------------------

    def _next_step(self) -> tuple[int, _Slot] | None:
        """(tick, slot): the next slot to fire or cascade and the tick it starts."""
        if not self._occupied:
            return None
        pos = _lowest_bit(self._occupied)
        slot = self._slot_at[pos]
        if pos == self._levels * self._slots:
            span = self._spans[self._levels]
            earliest = self._tick_at(self._low_of(slot))
            return earliest - earliest % span, slot
        level, index = divmod(pos, self._slots)
        outer = self._spans[level + 1]
        return self._tick - self._tick % outer + index * self._spans[level], slot

    def _cascade(self, slot: _Slot) -> None:
        """File a slot's items again; they land on lower levels (or stay in overflow)."""
        self._drop(slot)
        where = self._where
        for item in slot:
            del where[item]
        for item, deadline in slot.items():
            self.schedule(item, deadline)

    def _fire(
        self, slot: _Slot, whole: bool, now: float, due: list[tuple[float, Hashable]]
    ) -> None:
        """Move a level-0 slot's items with deadline <= now into ``due``.

        ``whole`` says the slot's tick is before ``now``'s, so every item in it is due.
        """
        if whole:
            ready = list(zip(slot.values(), slot))
        elif now < slot.low:  # a true lower bound, even when forgotten
            return
        elif slot is self._order_of:
            ready = self._pop_order(slot, now)
        else:
            ready = [(deadline, item) for item, deadline in slot.items() if deadline <= now]
        if len(ready) == len(slot):
            self._drop(slot)
        else:
            for _, item in ready:
                del slot[item]
            if slot is self._order_of or len(slot) > self._scan_at_most:
                self._low_from_order(slot)
            else:
                slot.low = _UNKNOWN
        where = self._where
        for _, item in ready:
            del where[item]
        due += ready

    # A crowded slot in the current tick that is only partly due (many distinct deadlines
    # within one tick, and a driver advancing to each in turn) is sorted once, latest
    # first; each later advance in that tick pops what it fires off the end instead of
    # scanning the slot. The order goes stale, and is dropped, once anything is filed
    # into the current tick again; items cancelled or moved out meanwhile are skipped.

    def _pop_order(self, slot: _Slot, now: float) -> list[tuple[float, Hashable]]:
        order = self._order
        ready = []
        while order and order[-1][0] <= now:
            deadline, item = order.pop()
            if item in slot:
                ready.append((deadline, item))
        return ready

    def _low_from_order(self, slot: _Slot) -> None:
        if slot is not self._order_of:
            self._order = sorted(zip(slot.values(), slot), key=_by_deadline, reverse=True)
            self._order_of = slot
        order = self._order
        while order[-1][1] not in slot:
            order.pop()
        slot.low, slot.count = order[-1][0], 0
        for deadline, item in reversed(order):
            if deadline != slot.low:
                break
            slot.count += item in slot


@functools.cache
def _spans(slots: int, levels: int) -> tuple[int, ...]:
    """[L] is the number of ticks one slot of level L covers; [levels] is the span of the
    whole wheel. Shared by the wheels of one geometry (one per Stack)."""
    return tuple(slots**level for level in range(levels + 1))


def _finite(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, not {value!r}")
    return value


def _lowest_bit(bits: int) -> int:
    """The position of the lowest set bit of a positive integer."""
    return (bits & -bits).bit_length() - 1


#: The key of a (deadline, item) pair.
_by_deadline = operator.itemgetter(0)
