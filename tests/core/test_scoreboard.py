"""The sender's scoreboard and RACK (atcp.core.recovery), the receiver's SACK report
(atcp.core.sack), the pacer and the PAWS test, each against the RFC rule it implements."""

from __future__ import annotations

import random

import pytest

from atcp.core.acceptance import PAWS_IDLE, paws_rejects
from atcp.core.pacing import QUANTUM, Pacer
from atcp.core.recovery import (ACKED, EVER_RETRANS, LOST, SACKED, Rack, Scoreboard)
from atcp.core.sack import SackReport

MSS = 100


def board(n: int, *, t0: float = 0.0, dt: float = 0.001) -> Scoreboard:
    """``n`` segments of MSS bytes sent ``dt`` apart."""
    sb = Scoreboard()
    for i in range(n):
        sb.add(i * MSS, (i + 1) * MSS, t0 + i * dt)
    return sb


# -- counters and the pipe (RFC 6675) ---------------------------------------------------------

def test_cumulative_ack_removes_records_and_reports_them_delivered() -> None:
    sb = board(5)
    sb.begin_ack()
    sb.ack(2 * MSS)
    assert [r.start for r in sb.delivered] == [0, MSS]
    assert sb.delivered_bytes == 2 * MSS and sb.out == 3 * MSS and len(sb) == 3


def test_sack_marks_whole_segments_and_pipe_excludes_them() -> None:
    sb = board(6)
    sb.begin_ack()
    sb.sack([(2 * MSS, 4 * MSS + 50)])                 # the half segment is not SACKed
    assert sb.sacked == 2 * MSS
    assert sb.in_flight == 4 * MSS
    sb.mark_lost(sb.first())
    assert sb.in_flight == 3 * MSS                      # presumed lost: not in the pipe
    rec = sb.next_lost()
    sb.retransmitted(rec, 1.0)
    assert sb.in_flight == 4 * MSS and rec.flags & EVER_RETRANS and not rec.flags & LOST


def test_cumulative_ack_over_sacked_records_is_not_delivered_twice() -> None:
    sb = board(4)
    sb.begin_ack()
    sb.sack([(MSS, 3 * MSS)])
    sb.begin_ack()
    sb.ack(3 * MSS)
    assert [r.start for r in sb.delivered] == [0]
    assert sb.sacked_acked == 2 * MSS and sb.sacked == 0 and sb.out == MSS


def test_partial_ack_trims_the_record() -> None:
    sb = board(2)
    sb.begin_ack()
    sb.ack(150)
    assert sb.first().start == 150 and sb.out == 50 and sb.delivered_bytes == 150


def test_lost_records_come_back_lowest_first_and_once() -> None:
    sb = board(6)
    for i in (4, 1, 3):
        sb.mark_lost(list(sb)[i])
    sb.mark_lost(list(sb)[1])                           # already lost: no change
    assert sb.lost == 3 * MSS and sb.lost_marked == 3
    order = []
    while (rec := sb.next_lost()) is not None:
        order.append(rec.start)
        sb.retransmitted(rec, 1.0)
    assert order == [MSS, 3 * MSS, 4 * MSS] and sb.lost == 0


def test_acked_lost_record_is_not_resent() -> None:
    sb = board(3)
    sb.mark_lost(sb.first())
    sb.begin_ack()
    sb.ack(MSS)
    assert sb.next_lost() is None and sb.lost == 0


def test_dupthresh_marks_segments_with_three_sacked_above() -> None:
    sb = board(8)
    sb.begin_ack()
    sb.sack([(2 * MSS, 4 * MSS)])                       # two SACKed: not enough (RFC 6675)
    sb.mark_dupthresh(MSS)
    assert sb.lost == 0
    sb.begin_ack()
    sb.sack([(2 * MSS, 4 * MSS), (5 * MSS, 6 * MSS)])
    sb.mark_dupthresh(MSS)
    lost = [r.start // MSS for r in sb if r.flags & LOST]
    assert lost == [0, 1]                               # segment 4 has only 1 SACKed above


def test_coalesce_and_extend() -> None:
    sb = Scoreboard()
    for start in (0, 10, 20, 30):
        sb.add(start, start + 10, 0.0)
    sb.mark_all_lost()
    first = sb.first()
    sb.coalesce(first, 25)
    assert (first.start, first.end) == (0, 20) and len(sb) == 3
    sb.retransmitted(first, 1.0)
    assert sb.next_lost().start == 20                   # the merged record is not lost twice
    last = sb.last()
    sb.extend(last, 5)
    assert last.end == 45 and sb.out == 45


def test_reneging_clears_every_sack() -> None:
    sb = board(4)
    sb.begin_ack()
    sb.sack([(0, 2 * MSS)])
    sb.clear_sacks()
    assert sb.sacked == 0 and not any(r.flags & SACKED for r in sb)
    assert sb.in_flight == 4 * MSS


@pytest.mark.parametrize("seed", range(20))
def test_counters_match_a_recount_after_random_operations(seed: int) -> None:
    """The incremental counters against a recount from the records (a model check)."""
    rng = random.Random(seed)
    sb = Scoreboard()
    nxt = una = 0
    for step in range(400):
        op = rng.random()
        if op < 0.35:
            size = rng.randint(1, 3 * MSS)
            sb.add(nxt, nxt + size, step)
            nxt += size
        elif op < 0.5 and nxt > una:
            una = rng.randint(una, nxt)
            sb.begin_ack()
            sb.ack(una)
        elif op < 0.75 and nxt > una:
            blocks = []
            for _ in range(rng.randint(1, 3)):
                lo = rng.randint(una, nxt)
                blocks.append((lo, rng.randint(lo, nxt)))
            sb.begin_ack()
            sb.sack(sorted(blocks))
        elif op < 0.85 and len(sb):
            sb.mark_lost(rng.choice(list(sb)))
        elif op < 0.95:
            rec = sb.next_lost()
            if rec is not None:
                if rng.random() < 0.3:
                    sb.coalesce(rec, 2 * MSS)
                sb.retransmitted(rec, step)
        else:
            sb.mark_dupthresh(MSS)
        live = list(sb)
        assert sb.out == sum(r.end - r.start for r in live) == nxt - max(una, live[0].start
                                                                         if live else nxt)
        assert sb.sacked == sum(r.end - r.start for r in live if r.flags & SACKED)
        assert sb.lost == sum(r.end - r.start for r in live if r.flags & LOST)
        assert all(not r.flags & ACKED for r in live)
        assert all(a.end == b.start for a, b in zip(live, live[1:]))
        lowest = min((r.start for r in live if r.flags & LOST), default=None)
        got = sb.next_lost()
        assert (got.start if got else None) == lowest


# -- RACK (RFC 8985) ---------------------------------------------------------------------------

def test_rack_marks_lost_what_was_sent_before_a_delivered_segment_after_rtt() -> None:
    sb = board(5, dt=0.001)
    rack = Rack()
    now = 0.1
    sb.begin_ack()
    sb.sack([(3 * MSS, 4 * MSS)])                       # segment 3, sent at 3 ms, arrives
    rtt = rack.update(sb.delivered, now, None, 0, MSS)
    assert rtt == pytest.approx(0.097) and rack.tx == 4
    # reo_wnd: a quarter of min_RTT while fewer than DupThresh segments are SACKed.
    reo = rack.reo_wnd(False, 1, 0.1)
    assert reo == pytest.approx(0.097 / 4)
    timeout = sb.rack_detect(rack.tx, rack.rtt + reo, now)
    assert sb.lost == 0                                 # still inside the reordering window
    # The latest of them (segment 2, sent at 2 ms) is due at 2 ms + RTT + reo_wnd.
    assert timeout == pytest.approx(0.002 + 0.097 + reo - now)
    timeout = sb.rack_detect(rack.tx, rack.rtt + reo, now + 0.03)
    assert [r.start // MSS for r in sb if r.flags & LOST] == [0, 1, 2]
    assert timeout == 0.0                               # segment 4 was sent later: not judged


def test_rack_reordering_window_is_zero_in_recovery_until_reordering_is_seen() -> None:
    rack = Rack()
    rack.min_rtt = 0.04
    assert rack.reo_wnd(True, 0, 0.05) == 0.0
    assert rack.reo_wnd(False, 3, 0.05) == 0.0          # DupThresh segments SACKed
    rack.reordering_seen = True
    assert rack.reo_wnd(True, 3, 0.05) == pytest.approx(0.01)
    rack.on_dsack(0, 1000)                              # step 4: a DSACK'd round widens it
    assert rack.reo_wnd(True, 3, 0.05) == pytest.approx(0.02)
    assert rack.reo_wnd(True, 3, 0.015) == pytest.approx(0.015)   # capped at SRTT
    for _ in range(16):
        rack.recovery_ended()
    assert rack.reo_wnd_mult == 1


def test_rack_detects_reordering_from_a_late_original() -> None:
    sb = board(4)
    rack = Rack()
    sb.begin_ack()
    sb.sack([(2 * MSS, 3 * MSS)])
    rack.update(sb.delivered, 0.1, None, 0, MSS)
    sb.begin_ack()
    sb.ack(MSS)                                          # segment 0, never resent, arrives late
    rack.update(sb.delivered, 0.1, None, 0, MSS)
    assert rack.reordering_seen and rack.reordering == 3


def test_rack_ignores_an_ack_for_the_original_of_a_retransmission() -> None:
    sb = board(2)
    rack = Rack()
    rec = sb.first()
    sb.mark_lost(rec)
    sb.retransmitted(rec, 0.5)                           # TSval 500 with a zero offset
    sb.begin_ack()
    sb.ack(MSS)
    assert rack.update(sb.delivered, 0.52, 100, 0, MSS) is None   # echoes the first TSval
    sb2 = board(1)
    rec = sb2.first()
    sb2.mark_lost(rec)
    sb2.retransmitted(rec, 0.5)
    sb2.begin_ack()
    sb2.ack(MSS)
    assert rack.update(sb2.delivered, 0.52, 500, 0, MSS) == pytest.approx(0.02)


# -- the receiver's SACK blocks (RFC 2018 4, RFC 2883) -----------------------------------------

def test_blocks_most_recent_first_then_the_recently_reported() -> None:
    rep = SackReport()
    rep.held(100, 200)
    assert rep.blocks(3) == [(100, 200)]
    rep.held(300, 400)
    rep.held(500, 600)
    assert rep.blocks(3) == [(500, 600), (300, 400), (100, 200)]
    rep.held(200, 250)                                   # grows the first range
    assert rep.blocks(3) == [(100, 250), (500, 600), (300, 400)]
    rep.held(700, 800)
    assert rep.blocks(3) == [(700, 800), (100, 250), (500, 600)]
    assert len(rep.blocks(4)) == 4


def test_delivered_ranges_are_no_longer_reported() -> None:
    rep = SackReport()
    rep.held(100, 200)
    rep.held(300, 400)
    rep.delivered(200)
    assert rep.blocks(4) == [(300, 400)]
    rep.delivered(400)
    assert not rep and rep.blocks(4) == []


def test_dsack_is_first_and_only_once() -> None:
    rep = SackReport()
    rep.held(300, 400)
    rep.duplicate(0, 100)
    assert rep.blocks(3) == [(0, 100), (300, 400)]
    assert rep.blocks(3) == [(300, 400)]


# -- pacing -------------------------------------------------------------------------------------

def test_pacer_lets_bursts_of_a_few_milliseconds_through() -> None:
    pacer = Pacer(initial=3000)
    pacer.refill(0.0, 1_000_000.0, 1000)                 # 1 MB/s: 2 ms = 2000 bytes
    sent = 0
    while pacer.ready():
        pacer.spend(1000)
        sent += 1
    assert sent == 3                                     # the initial allowance
    assert pacer.wait() == pytest.approx(QUANTUM)        # never less than one tick
    pacer.refill(0.010, 1_000_000.0, 1000)               # 10 ms later: capped at 2 ms
    assert pacer.tokens == pytest.approx(2000)


def test_pacer_without_a_rate_never_holds_back() -> None:
    pacer = Pacer(initial=0)
    pacer.refill(0.0, None, 1000)
    pacer.spend(10_000)
    assert pacer.ready() and pacer.wait() == 0.0


# -- PAWS (RFC 7323 5) ----------------------------------------------------------------------

def test_paws_rejects_older_timestamps_modulo_2_32() -> None:
    assert paws_rejects(99, 100, 1.0)
    assert not paws_rejects(100, 100, 1.0)
    assert not paws_rejects(5, 2**32 - 5, 1.0)           # newer across the wrap
    assert paws_rejects(2**32 - 5, 5, 1.0)


def test_paws_forgets_ts_recent_after_24_days_idle() -> None:
    assert PAWS_IDLE == 24 * 86400
    assert not paws_rejects(99, 100, PAWS_IDLE + 1)
