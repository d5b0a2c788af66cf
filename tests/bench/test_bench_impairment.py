"""The impairment proxy's model: seeded, and each impairment does what it says.

Pure functions of a seeded RNG and the arrival times passed in: no sockets, no clock.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.proxy import Impairment  # noqa: E402


def _feed(imp: Impairment, count: int, size: int = 1400, gap: float = 0.0001):
    return [imp.departures(i * gap, size) for i in range(count)]


def test_same_seed_same_decisions_other_seed_others():
    spec = dict(loss=0.05, duplicate=0.02, delay=0.01, jitter=0.002, reorder=0.01)
    a = _feed(Impairment(**spec, seed=7), 5000)
    b = _feed(Impairment(**spec, seed=7), 5000)
    c = _feed(Impairment(**spec, seed=8), 5000)
    assert a == b
    assert a != c


def test_independent_loss_rate_is_close_to_the_setting():
    imp = Impairment(loss=0.02, seed=3)
    out = _feed(imp, 50_000)
    lost = sum(1 for d in out if not d)
    assert lost == imp.lost
    assert 0.017 < lost / 50_000 < 0.023


def test_no_impairment_is_transparent_and_immediate():
    imp = Impairment()
    assert imp.is_transparent
    assert _feed(imp, 3, gap=1.0) == [[0.0], [1.0], [2.0]]


def test_gilbert_elliott_losses_come_in_bursts():
    # Mean time in the bad state 1/r = 5 datagrams, all lost there; good state loses none.
    imp = Impairment(ge_p=0.01, ge_r=0.2, ge_loss_bad=1.0, ge_loss_good=0.0, seed=5)
    lost = [not d for d in _feed(imp, 100_000)]
    bursts, run = [], 0
    for flag in lost:
        if flag:
            run += 1
        elif run:
            bursts.append(run)
            run = 0
    assert imp.burst_lost == sum(lost)
    mean_burst = sum(bursts) / len(bursts)
    assert 3.5 < mean_burst < 6.5          # independent loss would give bursts of ~1
    assert 0.03 < sum(lost) / len(lost) < 0.07   # stationary share p/(p+r) = 4.8%


def test_delay_and_jitter_keep_order_without_reordering():
    imp = Impairment(delay=0.01, jitter=0.005, seed=2)
    times = [d[0] for d in _feed(imp, 2000)]
    assert times == sorted(times)
    assert all(t >= i * 0.0001 + 0.005 - 1e-12 for i, t in enumerate(times))


def test_reordering_lets_later_datagrams_overtake():
    imp = Impairment(delay=0.001, reorder=0.1, reorder_gap=0.003, seed=4)
    times = [d[0] for d in _feed(imp, 2000)]
    inversions = sum(1 for i in range(len(times) - 1) if times[i] > times[i + 1])
    assert imp.reordered > 100
    assert inversions > 100


def test_duplication_sends_two_copies():
    imp = Impairment(duplicate=0.5, seed=9)
    out = _feed(imp, 1000)
    twos = sum(1 for d in out if len(d) == 2)
    assert twos == imp.duplicated
    assert 400 < twos < 600


def test_rate_limit_spaces_departures_and_drops_at_a_full_queue():
    # 1.4 MB/s: one 1400-byte datagram per millisecond; the queue holds 10 of them.
    imp = Impairment(rate=1_400_000, queue=14_000, seed=1)
    out = _feed(imp, 100, gap=0.0)     # a burst of 100 at t=0
    sent = [d[0] for d in out if d]
    assert len(sent) == 11              # the one on the wire plus a full queue
    assert imp.queue_dropped == 89
    gaps = [b - a for a, b in zip(sent, sent[1:])]
    assert all(g == pytest.approx(0.001) for g in gaps)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        Impairment(loss=1.5)
    with pytest.raises(ValueError):
        Impairment(delay=-1)
