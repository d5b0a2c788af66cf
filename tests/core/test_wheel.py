"""Tests for atcp.core.wheel: unit cases, then a stateful comparison with a dict model."""

from __future__ import annotations

import ast
import math
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from atcp.core import wheel as wheel_module
from atcp.core.wheel import TimingWheel

TICK = 0.001


def small_wheel(now: float = 0.0) -> TimingWheel:
    """1 s ticks, 4 slots, 2 levels: a span of 16 s, so overflow is easy to reach."""
    return TimingWheel(tick=1.0, now=now, slots=4, levels=2)


# -- firing time ---------------------------------------------------------------------------


def test_fires_exactly_at_deadline() -> None:
    wheel = TimingWheel()
    wheel.schedule("a", 0.0105)
    assert wheel.advance(0.0104999) == []
    assert wheel.advance(0.0105) == ["a"]
    assert len(wheel) == 0


def test_never_before_deadline() -> None:
    wheel = TimingWheel()
    wheel.schedule("a", 0.5)
    for step in range(1, 500):
        assert wheel.advance(step * TICK - 1e-7) == []
    assert wheel.advance(0.5 - 1e-12) == []
    assert "a" in wheel


def test_fires_within_one_tick_after_deadline() -> None:
    wheel = TimingWheel()
    wheel.schedule("a", 0.0123)
    assert wheel.advance(0.0123 + TICK) == ["a"]


def test_deadline_on_a_tick_boundary() -> None:
    wheel = TimingWheel(tick=0.5)
    wheel.schedule("a", 2.0)
    assert wheel.advance(1.999) == []
    assert wheel.advance(2.0) == ["a"]


def test_item_later_in_the_current_tick_waits() -> None:
    wheel = TimingWheel(tick=1.0)
    wheel.schedule("early", 3.2)
    wheel.schedule("late", 3.8)
    assert wheel.advance(3.5) == ["early"]
    assert wheel.next_deadline() == 3.8
    assert wheel.advance(3.6) == []
    assert wheel.advance(3.8) == ["late"]


# -- cancel and re-arm ---------------------------------------------------------------------


def test_cancel() -> None:
    wheel = TimingWheel()
    wheel.schedule("a", 0.010)
    wheel.schedule("b", 0.010)
    wheel.cancel("a")
    assert "a" not in wheel
    assert wheel.deadline_of("a") is None
    assert wheel.advance(1.0) == ["b"]


def test_cancel_unscheduled_is_a_noop() -> None:
    wheel = TimingWheel()
    wheel.cancel("nothing")
    wheel.schedule("a", 1.0)
    wheel.cancel("a")
    wheel.cancel("a")
    assert len(wheel) == 0
    assert wheel.next_deadline() is None
    assert wheel.advance(2.0) == []


def test_rearm_later() -> None:
    wheel = TimingWheel()
    wheel.schedule("rto", 0.200)
    wheel.schedule("rto", 0.450)
    assert len(wheel) == 1
    assert wheel.deadline_of("rto") == 0.450
    assert wheel.advance(0.300) == []
    assert wheel.advance(0.450) == ["rto"]


def test_rearm_earlier() -> None:
    wheel = TimingWheel()
    wheel.schedule("rto", 70.0)  # a higher level
    wheel.schedule("rto", 0.005)
    assert wheel.next_deadline() == 0.005
    assert wheel.advance(0.005) == ["rto"]
    assert wheel.advance(100.0) == []


def test_rearm_on_every_ack_keeps_one_entry() -> None:
    wheel = TimingWheel()
    now = 0.0
    for _ in range(1000):
        now += 0.0007
        wheel.schedule("rto", now + 0.2)
        assert wheel.advance(now) == []
    assert len(wheel) == 1
    assert wheel.advance(now + 0.2) == ["rto"]


def test_rearm_within_the_same_slot() -> None:
    wheel = TimingWheel(tick=1.0)
    wheel.schedule("a", 5.1)
    wheel.schedule("a", 5.7)
    assert wheel.advance(5.5) == []
    assert wheel.advance(5.7) == ["a"]


# -- many items, levels, overflow ----------------------------------------------------------


def test_many_items_in_one_slot_come_out_in_deadline_order() -> None:
    wheel = TimingWheel(tick=1.0)
    deadlines = {n: 7.0 + ((n * 37) % 1000) / 1000 for n in range(1000)}
    for item, deadline in deadlines.items():
        wheel.schedule(item, deadline)
    first = wheel.advance(7.5)
    assert first == sorted((n for n in deadlines if deadlines[n] <= 7.5), key=deadlines.get)
    rest = wheel.advance(8.0)
    assert sorted(first + rest) == list(range(1000))
    assert all(deadlines[n] > 7.5 for n in rest)
    assert [deadlines[n] for n in rest] == sorted(deadlines[n] for n in rest)


def test_items_across_levels_come_out_in_order() -> None:
    wheel = TimingWheel()
    deadlines = {
        "ms": 0.003, "s": 1.5, "min": 90.0, "h": 7200.0, "month": 40 * 86400.0, "year": 3e7
    }
    for item, deadline in reversed(deadlines.items()):
        wheel.schedule(item, deadline)
    assert wheel.advance(1e8) == list(deadlines)


def test_deadlines_far_beyond_span() -> None:
    wheel = small_wheel()
    for deadline in (15.5, 16.0, 40.0, 100.25, 1000.0, 1e6):
        wheel.schedule(deadline, deadline)
    fired: list[float] = []
    while (deadline := wheel.next_deadline()) is not None:
        assert wheel.advance(deadline - 1e-9) == []
        got = wheel.advance(deadline)
        assert got == [deadline]
        fired += got
    assert fired == [15.5, 16.0, 40.0, 100.25, 1000.0, 1e6]


def test_a_deadline_at_the_far_end_of_the_floats() -> None:
    wheel = TimingWheel()
    wheel.schedule("far", 1e300)
    wheel.schedule("near", 2.0)
    assert wheel.advance(1e299) == ["near"]
    assert wheel.next_deadline() == 1e300
    assert wheel.advance(1e300) == ["far"]


def test_beyond_span_with_default_wheel() -> None:
    wheel = TimingWheel()
    far = 60 * 86400.0  # the default span is about 49.7 days
    wheel.schedule("far", far)
    wheel.schedule("near", 1.0)
    assert wheel.next_deadline() == 1.0
    assert wheel.advance(far - 0.0005) == ["near"]
    assert wheel.next_deadline() == far
    assert wheel.advance(far) == ["far"]


def test_overflow_items_in_different_blocks() -> None:
    wheel = small_wheel()
    wheel.schedule("b", 50.0)  # block 3 (48..63)
    wheel.schedule("a", 20.0)  # block 1 (16..31)
    wheel.schedule("c", 100.0)  # block 6
    assert wheel.advance(19.0) == []
    assert wheel.advance(49.0) == ["a"]
    assert wheel.next_deadline() == 50.0
    assert wheel.advance(200.0) == ["b", "c"]


def test_overflow_cascades_when_time_enters_its_block() -> None:
    """Entering the overflow item's block, even short of the item, brings it into the wheel."""
    wheel = small_wheel()
    wheel.schedule("overflow", 20.0)  # block 16..31
    assert wheel.advance(17.0) == []
    wheel.schedule("later", 25.0)  # filed relative to tick 17
    assert wheel.next_deadline() == 20.0
    assert wheel.advance(20.0) == ["overflow"]
    assert wheel.advance(25.0) == ["later"]


def test_overflow_item_waits_while_lower_levels_fire() -> None:
    wheel = small_wheel()
    wheel.schedule("later", 30.0)
    wheel.schedule("soon", 2.0)
    wheel.schedule("mid", 9.0)
    assert wheel.advance(10.0) == ["soon", "mid"]
    assert wheel.next_deadline() == 30.0
    assert wheel.advance(30.0) == ["later"]


# -- time jumps and the past ---------------------------------------------------------------


def test_huge_time_jump_returns_everything_due() -> None:
    wheel = TimingWheel()
    wheel.schedule("a", 0.5)
    wheel.schedule("b", 100.0)
    wheel.schedule("c", 3000.0)
    wheel.schedule("d", 7200.0)
    assert wheel.advance(3600.0) == ["a", "b", "c"]
    assert wheel.now == 3600.0
    assert wheel.next_deadline() == 7200.0


def test_time_jump_does_not_walk_the_elapsed_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle hour is 3.6 million ticks; advancing over it visits only occupied slots."""
    wheel = TimingWheel()
    wheel.schedule("x", 1800.0)
    steps = 0
    original = TimingWheel._next_step

    def counting(self: TimingWheel) -> tuple[int, int, int] | None:
        nonlocal steps
        steps += 1
        return original(self)

    monkeypatch.setattr(TimingWheel, "_next_step", counting)
    assert wheel.advance(3600.0) == ["x"]
    assert steps <= 2 * 4 + 2  # a cascade per level, the firing, the final look
    steps = 0
    assert wheel.advance(7200.0) == []
    assert steps == 1


def test_past_deadline_fires_on_next_advance() -> None:
    wheel = TimingWheel(now=10.0)
    wheel.schedule("late", 4.0)
    assert wheel.deadline_of("late") == 4.0
    assert wheel.next_deadline() == 4.0
    assert wheel.advance(10.0) == ["late"]


def test_past_deadline_after_advancing() -> None:
    wheel = TimingWheel()
    wheel.advance(50.0)
    wheel.schedule("b", 49.0)
    wheel.schedule("a", 20.0)
    wheel.schedule("c", 50.0005)
    assert wheel.advance(50.0001) == ["a", "b"]
    assert wheel.advance(50.001) == ["c"]


def test_time_does_not_run_backwards() -> None:
    wheel = TimingWheel(tick=1.0)
    wheel.schedule("a", 5.0)
    wheel.schedule("b", 9.5)
    assert wheel.advance(9.0) == ["a"]
    assert wheel.advance(3.0) == []
    assert wheel.now == 9.0
    assert wheel.advance(9.5) == ["b"]


def test_negative_times() -> None:
    wheel = TimingWheel(tick=0.25, now=-100.0, slots=4, levels=2)
    wheel.schedule("a", -99.9)
    wheel.schedule("b", -50.0)
    wheel.schedule("c", 3.0)
    assert wheel.advance(-60.0) == ["a"]
    assert wheel.advance(0.0) == ["b"]
    assert wheel.advance(3.0) == ["c"]


# -- next_deadline -------------------------------------------------------------------------


def test_next_deadline_empty() -> None:
    wheel = TimingWheel()
    assert wheel.next_deadline() is None
    wheel.schedule("a", 1.0)
    wheel.advance(1.0)
    assert wheel.next_deadline() is None


def test_next_deadline_tracks_changes() -> None:
    wheel = TimingWheel()
    wheel.schedule("a", 2.0)
    assert wheel.next_deadline() == 2.0
    wheel.schedule("b", 1.0)
    assert wheel.next_deadline() == 1.0
    wheel.schedule("c", 3.0)
    assert wheel.next_deadline() == 1.0
    wheel.schedule("b", 4.0)  # re-armed later: "a" is now first
    assert wheel.next_deadline() == 2.0
    wheel.cancel("a")
    assert wheel.next_deadline() == 3.0
    wheel.cancel("b")
    wheel.cancel("c")
    assert wheel.next_deadline() is None


@pytest.mark.parametrize("deadline", [0.0004, 0.0123, 0.9, 42.0, 3000.0, 20000.0, 5e6, 1e9])
def test_advance_to_next_deadline_fires(deadline: float) -> None:
    wheel = TimingWheel()
    wheel.schedule("a", deadline)
    wheel.schedule("b", deadline * 2)
    t = wheel.next_deadline()
    assert t is not None
    assert deadline <= t <= deadline + TICK
    assert wheel.advance(t) == ["a"]


def test_next_deadline_in_a_higher_level_slot_is_the_exact_minimum() -> None:
    wheel = TimingWheel()
    wheel.schedule("x", 100.7)
    wheel.schedule("y", 100.3)
    wheel.schedule("z", 100.9)
    assert wheel.next_deadline() == 100.3


def count_rescans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the times a slot's earliest deadline is recomputed by scanning it."""
    rescans = [0]
    original = TimingWheel._low_of

    def counting(self: TimingWheel, slot: dict) -> float:
        if slot.low == wheel_module._UNKNOWN:  # type: ignore[attr-defined]
            rescans[0] += 1
        return original(self, slot)

    monkeypatch.setattr(TimingWheel, "_low_of", counting)
    return rescans


def test_rearming_the_earliest_within_its_slot() -> None:
    wheel = TimingWheel(tick=1.0)
    for item, deadline in (("a", 5.1), ("b", 5.4), ("c", 5.4), ("d", 5.8)):
        wheel.schedule(item, deadline)
    wheel.schedule("a", 5.6)  # later, same slot: the 5.4 pair is first now
    assert wheel.next_deadline() == 5.4
    wheel.schedule("b", 5.9)
    assert wheel.next_deadline() == 5.4
    wheel.schedule("c", 5.7)
    assert wheel.next_deadline() == 5.6
    wheel.schedule("d", 5.05)  # earlier, same slot
    assert wheel.next_deadline() == 5.05
    wheel.schedule("d", 5.05)
    wheel.cancel("d")
    assert wheel.next_deadline() == 5.6
    assert wheel.advance(6.0) == ["a", "c", "b"]


def test_joining_the_earliest_within_a_slot_needs_no_rescan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rescans = count_rescans(monkeypatch)
    wheel = TimingWheel(tick=1.0)
    wheel.schedule("a", 5.1)
    wheel.schedule("b", 5.4)
    wheel.schedule("b", 5.1)  # joins "a" at the slot's earliest
    wheel.cancel("a")
    assert wheel.next_deadline() == 5.1
    wheel.schedule("c", 5.1)
    wheel.schedule("b", 5.1)  # re-armed to the same time: still two at 5.1
    wheel.schedule("c", 5.3)
    assert wheel.next_deadline() == 5.1
    assert rescans[0] == 0
    wheel.schedule("b", 5.2)  # the last at 5.1 leaves: the slot is looked at again
    assert wheel.next_deadline() == 5.2
    assert rescans[0] == 1


def test_crowd_at_one_instant_is_not_rescanned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of TIME-WAIT records that entered in one instant: connections come and
    go before them, and some of them leave, without the crowd being scanned again."""
    rescans = count_rescans(monkeypatch)
    wheel = TimingWheel()
    for n in range(5000):
        wheel.schedule(("tw", n), 60.0)
    assert wheel.next_deadline() == 60.0
    for n in range(100):
        wheel.schedule("conn", 1.0 + n / 1000)
        assert wheel.next_deadline() == 1.0 + n / 1000
        wheel.cancel("conn")
        assert wheel.next_deadline() == 60.0
        wheel.cancel(("tw", n))
        assert wheel.next_deadline() == 60.0
    assert rescans[0] == 0
    wheel.schedule(("tw", 4999), 60.1)  # a member moves on
    for n in range(100, 4999):
        wheel.cancel(("tw", n))
    assert rescans[0] == 0
    assert wheel.next_deadline() == 60.1  # the last of the crowd went: scanned once
    assert rescans[0] == 1
    assert wheel.advance(61.0) == [("tw", 4999)]


def test_crowded_tick_fired_deadline_by_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many deadlines inside one tick, in pairs, and a driver advancing to each in turn (as
    the fake-clock Link does), while timers are cancelled, moved away and filed into the
    current tick."""
    rescans = count_rescans(monkeypatch)
    wheel = TimingWheel(tick=1.0)
    deadlines = {n: 3.0 + ((n * 7919) % 500) / 500 for n in range(1000)}
    for item, deadline in deadlines.items():
        wheel.schedule(item, deadline)
    cancelled: set[int] = set()
    fired: list[int] = []
    for step in range(2000):
        t = wheel.next_deadline()
        if t is None:
            break
        assert t == min(deadlines[n] for n in deadlines if n in wheel)
        got = wheel.advance(t)
        assert got and all(deadlines[n] == t for n in got)
        fired += got
        waiting = sorted((n for n in deadlines if n in wheel), key=deadlines.__getitem__)
        if step == 10:  # cancel half of the next pair due, and the whole pair after it
            cancelled |= {waiting[0], waiting[2], waiting[3]}
            for n in (waiting[0], waiting[2], waiting[3]):
                wheel.cancel(n)
        if step == 15:  # move the next one due to a later tick
            deadlines[waiting[0]] = 9.5
            wheel.schedule(waiting[0], 9.5)
        if step == 20:  # move one earlier, still within the current tick
            deadlines[waiting[-1]] = t + 0.0005
            wheel.schedule(waiting[-1], t + 0.0005)
        if step == 30:  # add one due at once: it is filed into the current tick
            deadlines[1000] = t
            wheel.schedule(1000, t)
    assert len(wheel) == 0
    assert [deadlines[n] for n in fired] == sorted(deadlines[n] for n in fired)
    assert sorted(fired) == sorted(set(deadlines) - cancelled)
    assert rescans[0] == 0
    assert wheel._order is None  # type: ignore[attr-defined]


def test_emptied_slots_are_dropped() -> None:
    wheel = TimingWheel()
    for n in range(1000):
        wheel.schedule(n, n * 7.3)
    for n in range(0, 1000, 2):
        wheel.cancel(n)
    wheel.advance(3650.0)
    for n in range(1, 1000, 2):
        wheel.cancel(n)
    assert len(wheel) == 0
    assert not wheel._slot_at and not wheel._occupied  # type: ignore[attr-defined]


def test_an_empty_wheel_is_small() -> None:
    """Every client connection has its own Stack, so its own wheel."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        wheels = [TimingWheel(now=1e6 + n) for n in range(100)]
        size = (tracemalloc.get_traced_memory()[0] - before) / len(wheels)
    finally:
        tracemalloc.stop()
    assert size < 1024


# -- bookkeeping and validation ------------------------------------------------------------


def test_len_contains_deadline_of() -> None:
    wheel = TimingWheel()
    assert len(wheel) == 0
    assert "a" not in wheel
    wheel.schedule("a", 1.5)
    wheel.schedule(("conn", 7), 2)
    assert len(wheel) == 2
    assert "a" in wheel and ("conn", 7) in wheel
    assert wheel.deadline_of("a") == 1.5
    assert wheel.deadline_of(("conn", 7)) == 2.0
    assert wheel.deadline_of("missing") is None
    wheel.advance(1.5)
    assert len(wheel) == 1
    assert "a" not in wheel


def test_items_are_hashable_objects() -> None:
    class Conn:
        pass

    wheel = TimingWheel()
    conns = [Conn() for _ in range(3)]
    for n, conn in enumerate(conns):
        wheel.schedule(conn, 1.0 + n)
    assert wheel.advance(10.0) == conns
    with pytest.raises(TypeError):
        wheel.schedule([], 1.0)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_rejects_non_finite_times(bad: float) -> None:
    wheel = TimingWheel()
    with pytest.raises(ValueError):
        wheel.schedule("a", bad)
    with pytest.raises(ValueError):
        wheel.advance(bad)
    with pytest.raises(ValueError):
        TimingWheel(now=bad)
    assert len(wheel) == 0


@pytest.mark.parametrize(
    "kwargs", [{"tick": 0.0}, {"tick": -1.0}, {"tick": math.inf}, {"slots": 1}, {"levels": 0}]
)
def test_rejects_bad_geometry(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        TimingWheel(**kwargs)


def test_module_is_sans_io() -> None:
    tree = ast.parse(Path(wheel_module.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"asyncio", "socket", "time", "selectors", "threading"}


# -- stateful comparison with a dict model -------------------------------------------------

ITEMS = st.integers(0, 11)
#: Offsets in ticks: fractions of a tick, a few ticks, several levels and past the span
#: of the small geometries, and the past.
TICK_OFFSETS = st.one_of(
    st.floats(0, 1),
    st.floats(-3, 3),
    st.integers(-5, 40),
    st.floats(0, 300),
    st.floats(0, 5000),
    st.integers(0, 100_000),
)
JUMPS = st.one_of(st.floats(0, 1), st.floats(0, 20), st.floats(0, 500), st.integers(0, 200_000))


class WheelMachine(RuleBasedStateMachine):
    """The wheel must agree with a dict of deadlines that is scanned on every advance."""

    wheel_class = TimingWheel

    @initialize(
        tick=st.sampled_from([0.001, 0.25, 1.0, 0.1]),
        slots=st.sampled_from([2, 3, 4, 8, 256]),
        levels=st.integers(1, 4),
        start=st.one_of(st.just(0.0), st.floats(-1000, 1000)),
    )
    def create(self, tick: float, slots: int, levels: int, start: float) -> None:
        self.tick = tick
        self.now = start
        self.wheel = self.wheel_class(tick=tick, now=start, slots=slots, levels=levels)
        self.model: dict[int, float] = {}

    @rule(item=ITEMS, offset=TICK_OFFSETS)
    def schedule(self, item: int, offset: float) -> None:
        deadline = self.now + offset * self.tick
        self.wheel.schedule(item, deadline)
        self.model[item] = deadline

    @rule(item=ITEMS)
    def cancel(self, item: int) -> None:
        self.wheel.cancel(item)
        self.model.pop(item, None)

    @rule(jump=JUMPS)
    def advance(self, jump: float) -> None:
        self.check_advance(self.now + jump * self.tick)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def advance_to_a_deadline(self, data: st.DataObject) -> None:
        """Land exactly on (or just before) a scheduled deadline."""
        deadline = data.draw(st.sampled_from(sorted(self.model.values())))
        nudge = data.draw(st.sampled_from([0.0, -1e-9, 1e-9, -0.5, -3.0, -20.0]))
        if abs(nudge) >= 0.5:
            nudge *= self.tick  # stop a few ticks short, e.g. inside a block but before it
        self.check_advance(max(self.now, deadline + nudge))

    @precondition(lambda self: self.model)
    @rule(item=ITEMS, data=st.data(), offset=st.floats(-2, 40))
    def schedule_near_another(self, item: int, data: st.DataObject, offset: float) -> None:
        """Crowd deadlines together so that slots and blocks are shared."""
        other = data.draw(st.sampled_from(sorted(self.model.values())))
        deadline = other + offset * self.tick
        self.wheel.schedule(item, deadline)
        self.model[item] = deadline

    @precondition(lambda self: self.model)
    @rule()
    def advance_to_next_deadline(self) -> None:
        t = self.wheel.next_deadline()
        assert t is not None
        fired = self.check_advance(max(self.now, t))
        assert fired

    def check_advance(self, now: float) -> list[int]:
        fired = self.wheel.advance(now)
        due = {item for item, deadline in self.model.items() if deadline <= now}
        # The interface contract: nothing early, nothing more than a tick late ...
        assert all(self.model[item] <= now for item in fired)
        assert {item for item, d in self.model.items() if d <= now - self.tick} <= set(fired)
        # ... and this wheel's stronger promise: exactly what is due, once, in order.
        assert len(fired) == len(set(fired))
        assert set(fired) == due
        deadlines = [self.model[item] for item in fired]
        assert deadlines == sorted(deadlines)
        for item in fired:
            del self.model[item]
        self.now = max(self.now, now)
        return fired

    @invariant()
    def same_contents(self) -> None:
        assert len(self.wheel) == len(self.model)
        for item in range(12):
            assert (item in self.wheel) == (item in self.model)
            assert self.wheel.deadline_of(item) == self.model.get(item)

    @invariant()
    def next_deadline_bounds(self) -> None:
        t = self.wheel.next_deadline()
        if not self.model:
            assert t is None
            return
        earliest = min(self.model.values())
        assert t is not None
        assert earliest - 1e-9 <= t <= earliest + self.tick + 1e-9
        assert t == earliest  # this wheel reports the exact earliest deadline


WheelMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
test_wheel_matches_model = WheelMachine.TestCase


class SortingWheel(TimingWheel):
    """Sorts the current tick's slot whenever it is partly due, however few items it holds,
    so that the model below exercises that path too (with 12 items it would never)."""

    __slots__ = ()
    _scan_at_most = 0


class SortingWheelMachine(WheelMachine):
    wheel_class = SortingWheel


SortingWheelMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=40, deadline=None
)
test_sorting_wheel_matches_model = SortingWheelMachine.TestCase
