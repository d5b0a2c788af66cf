"""The impairment layer on a fake clock and a fake loop: deterministic, no sockets."""

from __future__ import annotations

import heapq
import itertools

import pytest

import atcp
from atcp.impair import Impairer, Impairment


class FakeLoop:
    """Just enough of a loop for `Impairer`: ``time``, ``call_at`` and a way to run."""

    def __init__(self):
        self.now = 0.0
        self._timers = []
        self._order = itertools.count()

    def time(self):
        return self.now

    def call_at(self, when, callback):
        handle = FakeHandle(when, callback)
        heapq.heappush(self._timers, (when, next(self._order), handle))
        return handle

    def run_until(self, until):
        while self._timers and self._timers[0][0] <= until:
            when, _, handle = heapq.heappop(self._timers)
            if not handle.cancelled:
                self.now = max(self.now, when)
                handle.callback()
        self.now = until


class FakeHandle:
    def __init__(self, when, callback):
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self):
        self.cancelled = True


def run(impairment, datagrams, spacing=0.0001, horizon=5.0):
    """Submit ``datagrams`` ``spacing`` seconds apart; return (arrivals, impairer)."""
    loop = FakeLoop()
    out = []
    impairer = Impairer(impairment, loop, lambda d, a: out.append((loop.now, d)),
                        clock=loop.time)
    for data in datagrams:
        loop.run_until(loop.now + spacing)
        impairer.submit(data, ("127.0.0.1", 9))
    loop.run_until(loop.now + horizon)
    return out, impairer


DATAGRAMS = [i.to_bytes(4, "big") * 10 for i in range(2000)]


def test_no_impairment_passes_everything_in_order_at_once():
    out, _ = run(Impairment(), DATAGRAMS)
    assert [d for _, d in out] == DATAGRAMS


def test_same_seed_same_decisions_other_seed_other_decisions():
    imp = Impairment(loss=0.1, duplicate=0.05, reorder=0.05, jitter=0.002, seed=42)
    first, _ = run(imp, DATAGRAMS)
    again, _ = run(imp, DATAGRAMS)
    other, _ = run(imp.__class__(loss=0.1, duplicate=0.05, reorder=0.05, jitter=0.002,
                                 seed=43), DATAGRAMS)
    assert first == again
    assert [d for _, d in first] != [d for _, d in other]


def test_loss_duplication_and_reordering_rates():
    out, impairer = run(Impairment(loss=0.05, duplicate=0.02, reorder=0.02, seed=1),
                        DATAGRAMS)
    stats = impairer.stats
    assert 60 <= stats["lost"] <= 140              # 5% of 2000, loosely
    assert 15 <= stats["duplicated"] <= 65
    assert 15 <= stats["reordered"] <= 65
    delivered = [d for _, d in out]
    assert len(delivered) == 2000 - stats["lost"] + stats["duplicated"]
    positions = [DATAGRAMS.index(d) for d in delivered]
    overtaken = sum(1 for a, b in zip(positions, positions[1:]) if b < a)
    assert overtaken > 0
    assert set(delivered) <= set(DATAGRAMS)


def test_delay_and_jitter_bound_the_arrival_time():
    sent_at = {}
    loop = FakeLoop()
    out = []
    impairer = Impairer(Impairment(delay=0.01, jitter=0.005, seed=3), loop,
                        lambda d, a: out.append((loop.now, d)), clock=loop.time)
    for data in DATAGRAMS[:200]:
        loop.run_until(loop.now + 0.001)
        sent_at[data] = loop.now
        impairer.submit(data, None)
    loop.run_until(loop.now + 1)
    assert len(out) == 200
    for arrived, data in out:
        # Datagrams due within 0.5 ms of each other leave together (one timer), so one
        # may leave up to 0.5 ms early; otherwise delay + 0..jitter.
        assert 0.0095 - 1e-9 <= arrived - sent_at[data] <= 0.015 + 1e-9


def test_rate_limit_spaces_datagrams_and_drops_beyond_the_queue():
    size = 1000
    imp = Impairment(rate=100_000, limit=10, seed=0)   # 100 datagrams per second
    out, impairer = run(imp, [bytes([i % 256]) * size for i in range(50)], spacing=0)
    assert len(out) == 10 and impairer.stats["overflow"] == 40
    times = [t for t, _ in out]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(0.0095 <= g <= 0.0105 for g in gaps)


def test_close_forgets_held_datagrams():
    loop = FakeLoop()
    out = []
    impairer = Impairer(Impairment(delay=0.1), loop, lambda d, a: out.append(d),
                        clock=loop.time)
    impairer.submit(b"x", None)
    assert impairer.pending == 1
    impairer.close()
    loop.run_until(1.0)
    assert out == [] and impairer.pending == 0


def test_impairment_is_validated():
    with pytest.raises(ValueError, match="probability"):
        atcp.Impairment(loss=1.5)
    with pytest.raises(TypeError):
        atcp.Impairment(delay="1")
    with pytest.raises(ValueError):
        atcp.Impairment(jitter=float("inf"))
    with pytest.raises(ValueError):
        atcp.Impairment(rate=0)
    with pytest.raises(TypeError):
        atcp.Impairment(seed=1.5)
    with pytest.raises(ValueError):
        atcp.Impairment(limit=0)
    assert not atcp.Impairment().active and atcp.Impairment(loss=0.1).active
