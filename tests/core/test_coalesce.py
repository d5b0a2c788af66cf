"""Receive coalescing (`atcp.core.coalesce`, `Stack.receive_batch`): which segments merge,
that a merged run changes nothing but the number of ACKs, and that whole transfers over a
lossy, duplicating, reordering link deliver the same bytes with it on."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atcp.core.coalesce import Run, mergeable_start
from atcp.testing.link import Link
from atcp.testing.peer import new_stack
from atcp.wire import ACK, FIN, PSH, SYN, Options, Segment, build, parse

REMOTE = ("10.0.0.1", 5000)


def data_seg(seq: int, n: int = 100, *, ack: int = 7, window: int = 500, flags: int = ACK,
             ts: tuple[int, int] | None = (1000, 55), **opts) -> Segment:
    options = Options(ts_val=ts[0], ts_ecr=ts[1], **opts) if ts else Options(**opts)
    if not ts and not opts:
        from atcp.wire import NO_OPTIONS
        options = NO_OPTIONS
    return Segment(40000, 80, seq, ack, flags, window, bytes([seq & 0xFF]) * n, options)


# -- the merge rules ---------------------------------------------------------------------------


def test_contiguous_segments_merge_into_one() -> None:
    run = Run(data_seg(1000), REMOTE)
    assert run.extend(data_seg(1100), REMOTE)
    assert run.extend(data_seg(1200, flags=ACK | PSH, ts=(1001, 55)), REMOTE)
    seg = run.segment()
    assert (seg.seq, len(seg.payload), run.count) == (1000, 300, 3)
    assert seg.payload == bytes([1000 & 0xFF]) * 100 + bytes([1100 & 0xFF]) * 100 \
        + bytes([1200 & 0xFF]) * 100
    assert seg.flags == ACK | PSH            # PSH anywhere in the run is kept
    assert seg.options.ts_val == 1000        # the first TSval (RFC 7323 4.3)


def test_a_run_of_one_is_the_segment_itself() -> None:
    first = data_seg(1000)
    assert Run(first, REMOTE).segment() is first


def test_sequence_wraps_inside_a_run() -> None:
    run = Run(data_seg(0xFFFFFFF0, 16), REMOTE)
    assert run.extend(data_seg(0, 100), REMOTE)
    assert run.segment().seq == 0xFFFFFFF0 and len(run.segment().payload) == 116


@pytest.mark.parametrize("other, why", [
    (data_seg(1101), "gap in sequence"),
    (data_seg(1000), "repeat of the first"),
    (data_seg(1100, ack=8), "different ACK field"),
    (data_seg(1100, window=501), "different window"),
    (data_seg(1100, flags=ACK | FIN), "FIN"),
    (data_seg(1100, n=0), "no data"),
    (data_seg(1100, ts=(999, 55)), "TSval going backwards"),
    (data_seg(1100, ts=(1000, 56)), "different TSecr"),
    (data_seg(1100, ts=None), "timestamps missing"),
    (data_seg(1100, sack=((5000, 6000),)), "SACK blocks"),
])
def test_what_does_not_join_a_run(other: Segment, why: str) -> None:
    run = Run(data_seg(1000), REMOTE)
    assert not run.extend(other, REMOTE), why
    assert run.count == 1


def test_other_ports_or_remote_do_not_join() -> None:
    run = Run(data_seg(1000), REMOTE)
    assert not run.extend(data_seg(1100), ("10.0.0.9", 5000))
    other = data_seg(1100)
    other.src_port = 40001
    assert not run.extend(other, REMOTE)


def test_tsval_wrapping_forward_still_joins() -> None:
    run = Run(data_seg(1000, ts=(0xFFFFFFFF, 3)), REMOTE)
    assert run.extend(data_seg(1100, ts=(0, 3)), REMOTE)


@pytest.mark.parametrize("seg, ok", [
    (data_seg(1), True),
    (data_seg(1, ts=None), True),
    (data_seg(1, flags=ACK | PSH), True),
    (data_seg(1, flags=SYN | ACK), False),
    (data_seg(1, flags=PSH), False),            # no ACK bit: the full path's business
    (data_seg(1, n=0), False),
    (data_seg(1, mss=1400), False),
])
def test_what_may_start_a_run(seg: Segment, ok: bool) -> None:
    assert mergeable_start(seg) is ok


# -- through the stack -------------------------------------------------------------------------


def established(**config):
    a, b = new_stack(1_000, seed=1, **config), new_stack(2_000, seed=2, **config)
    link = Link(a, b, seed=1)
    ca, cb = link.open()
    link.run(until=link.now + 1.0)
    return link, a, b, ca, cb


def burst(link: Link, ca, nbytes: int) -> list[bytes]:
    """``nbytes`` written by ``ca``: the data segments it sends at once (window allowing)."""
    assert ca.send(bytes(range(256)) * (nbytes // 256), link.now) == nbytes
    return [raw for raw, _ in link.a.datagrams_to_send()]


@pytest.mark.parametrize("coalescing", [True, False])
def test_a_burst_is_acked_once_when_coalesced(coalescing: bool) -> None:
    link, a, b, ca, cb = established(receive_coalescing=coalescing)
    sent = burst(link, ca, 10 * 1024)
    segments = [parse(raw) for raw in sent]
    assert len(segments) >= 8 and all(s.payload for s in segments)
    b.receive_batch([(raw, link.addr_a) for raw in sent], link.now)
    replies = [parse(raw) for raw, _ in b.datagrams_to_send()]
    assert len(replies) == (1 if coalescing else len(segments) // 2)
    last = segments[-1]
    assert replies[-1].ack == (last.seq + len(last.payload)) & 0xFFFFFFFF
    assert cb.read(-1, link.now) == b"".join(s.payload for s in segments)
    assert cb.segs_in - 1 >= len(segments)   # tcp_info still counts every segment
    assert b.stats["segments_coalesced"] == (len(segments) - 1 if coalescing else 0)


def test_runs_of_two_connections_stay_apart() -> None:
    a, b = new_stack(1_000, seed=1), new_stack(2_000, seed=2)
    link = Link(a, b, seed=1)
    listener = b.listen(80)
    c1 = a.connect(link.addr_b, 80, 0.0)
    c2 = a.connect(link.addr_b, 80, 0.0)
    link.run(until=5.0, stop=lambda: len(listener.accept_queue) == 2)
    s1, s2 = listener.accept(), listener.accept()
    link.run(until=link.now + 1.0)
    c1.send(b"a" * 4000, link.now)
    c2.send(b"b" * 4000, link.now)
    sent = [parse(raw) for raw, _ in a.datagrams_to_send()]
    one = [seg for seg in sent if seg.src_port == c1.local_port]
    two = [seg for seg in sent if seg.src_port == c2.local_port]
    assert len(one) == len(two) >= 2
    order = [seg for pair in zip(one, two) for seg in pair]   # no run longer than one
    b.receive_batch([(build(seg), link.addr_a) for seg in order], link.now)
    expected = {c1.local_port: one, c2.local_port: two}
    for conn in (s1, s2):
        segs = expected[conn.remote_port]
        assert conn.read(-1, link.now) == b"".join(seg.payload for seg in segs)
    assert b.stats["segments_coalesced"] == 0


def test_an_out_of_order_burst_is_reassembled() -> None:
    link, a, b, ca, cb = established()
    sent = burst(link, ca, 8 * 1024)
    shuffled = sent[3:] + sent[:3]   # two runs, the later one first
    b.receive_batch([(raw, link.addr_a) for raw in shuffled], link.now)
    assert cb.read(-1, link.now) == b"".join(parse(raw).payload for raw in sent)
    assert b.stats["segments_coalesced"] == len(sent) - 2


def test_malformed_datagrams_in_a_batch_are_counted_and_skipped() -> None:
    link, a, b, ca, cb = established()
    sent = burst(link, ca, 4 * 1024)
    batch = [(b"\x00" * 7, link.addr_a)] + [(raw, link.addr_a) for raw in sent]
    b.receive_batch(batch, link.now)
    assert b.stats["malformed"] == 1
    assert cb.read(-1, link.now) == b"".join(parse(raw).payload for raw in sent)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), loss=st.sampled_from([0.0, 0.02, 0.08]),
       reorder=st.sampled_from([0.0, 0.2]), duplicate=st.sampled_from([0.0, 0.05]))
def test_transfers_with_batches_deliver_every_byte_once(seed, loss, reorder, duplicate) -> None:
    a, b = new_stack(1_000, seed=seed), new_stack(2_000, seed=seed + 1)
    link = Link(a, b, loss=loss, reorder=reorder, duplicate=duplicate, seed=seed, batch=True)
    _transfer_intact(link, seed, 120_000)


def _transfer_intact(link: Link, seed: int, size: int) -> None:
    """Open a connection a -> b over ``link`` and move ``size`` seeded bytes; every byte
    must arrive once, in order."""
    ca, cb = link.open()
    data = random.Random(seed).randbytes(size)
    sent, got = 0, bytearray()
    for _ in range(200_000):
        if sent < len(data):
            sent += ca.send(data[sent:sent + 40_000], link.now)
        got += cb.read(-1, link.now)
        if len(got) >= len(data) or not link.step():
            break
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_a_run_stops_at_the_gro_limit() -> None:
    from atcp.core.coalesce import RUN_LIMIT
    run = Run(data_seg(0, 1400), REMOTE)
    joined = 1
    for i in range(1, 100):
        if not run.extend(data_seg(1400 * i, 1400), REMOTE):
            break
        joined += 1
    assert joined == RUN_LIMIT // 1400
    assert len(run.segment().payload) <= RUN_LIMIT


# -- straight from a GRO buffer (`scan_coalesced`, `Stack.receive_coalesced`) ------------------


def gro_buffer(segments: list[Segment]) -> tuple[bytes, int]:
    raws = [build(seg) for seg in segments]
    size = len(raws[0])
    assert all(len(r) == size for r in raws[:-1]) and len(raws[-1]) <= size
    return b"".join(raws), size


def test_scan_merges_a_plain_run_in_place() -> None:
    from atcp.core.coalesce import scan_coalesced
    data, size = gro_buffer([data_seg(1000 + 100 * i, ts=(1000 + i, 55)) for i in range(5)]
                            + [data_seg(1500, 40, flags=ACK | PSH, ts=(1005, 55))])
    items = list(scan_coalesced(data, size))
    assert len(items) == 1
    seg, count = items[0]
    assert count == 6 and seg.seq == 1000 and len(seg.payload) == 540
    assert seg.flags == ACK | PSH and seg.options.ts_val == 1000 and seg.options.ts_ecr == 55
    expected = Run(data_seg(1000, ts=(1000, 55)), REMOTE)
    for i in range(1, 5):
        assert expected.extend(data_seg(1000 + 100 * i, ts=(1000 + i, 55)), REMOTE)
    assert expected.extend(data_seg(1500, 40, flags=ACK | PSH, ts=(1005, 55)), REMOTE)
    assert seg.payload == expected.segment().payload


def test_scan_leaves_anything_unusual_to_the_parser() -> None:
    from atcp.core.coalesce import scan_coalesced
    segs = [data_seg(1000), data_seg(1100), data_seg(1200, sack=((9000, 9100),)),
            data_seg(1300), data_seg(1400), data_seg(1600), data_seg(1700, ts=(999, 55))]
    # SACK blocks make that one longer; pad the others' payload so all sizes match.
    raws = [build(s) for s in segs]
    size = max(len(r) for r in raws)
    padded = [Segment(s.src_port, s.dst_port, s.seq, s.ack, s.flags, s.window,
                      s.payload + b"\0" * (size - len(r)), s.options)
              for s, r in zip(segs, raws)]
    for i in range(1, len(padded)):
        # Keep sequence numbers contiguous after the padding.
        prev = padded[i - 1]
        seg = padded[i]
        padded[i] = Segment(seg.src_port, seg.dst_port, prev.seq + len(prev.payload),
                            seg.ack, seg.flags, seg.window, seg.payload, seg.options)
    padded[5] = Segment(40000, 80, padded[5].seq + 1, 7, ACK, 500, padded[5].payload,
                        padded[5].options)                        # a gap before it
    data, size = gro_buffer(padded)
    kinds = [(count, type(item).__name__) for item, count in scan_coalesced(data, size)]
    assert kinds == [(2, "Segment"), (0, "bytes"), (2, "Segment"), (0, "bytes"), (0, "bytes")]


def test_scan_hands_malformed_datagrams_to_the_parser() -> None:
    from atcp.core.coalesce import scan_coalesced
    good = build(data_seg(1000))
    bad = bytearray(good)
    bad[12] = 0xF0                      # data offset 60 bytes: past this datagram's end
    data = good + bytes(bad) + build(data_seg(1200))
    items = list(scan_coalesced(data, len(good)))
    assert [c for _, c in items] == [0, 0, 0]
    assert items[1][0] == bytes(bad)


def test_receive_coalesced_is_receive_batch_with_fewer_objects() -> None:
    results = []
    for gro in (True, False):
        link, a, b, ca, cb = established()
        sent = burst(link, ca, 12 * 1024)
        sizes = {len(r) for r in sent[:-1]}
        assert len(sizes) == 1 and len(sent[-1]) <= sizes.pop()
        if gro:
            b.receive_coalesced(b"".join(sent), len(sent[0]), link.addr_a, link.now)
        else:
            b.receive_batch([(raw, link.addr_a) for raw in sent], link.now)
        replies = [raw for raw, _ in b.datagrams_to_send()]
        results.append((replies, cb.read(-1, link.now), cb.segs_in,
                        b.stats["segments_in"], b.stats["segments_coalesced"]))
    assert results[0] == results[1]
    assert len(results[0][0]) == 1 and results[0][4] == len(sent) - 1


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), loss=st.sampled_from([0.0, 0.03]),
       reorder=st.sampled_from([0.0, 0.2]))
def test_transfers_through_gro_buffers_deliver_every_byte_once(seed, loss, reorder) -> None:
    """A link that hands each stack what arrives in one instant as GRO would: runs of
    equal-size datagrams from one sender as one buffer."""
    a, b = new_stack(1_000, seed=seed), new_stack(2_000, seed=seed + 1)
    link = Link(a, b, loss=loss, reorder=reorder, seed=seed, batch=True)
    for stack in (a, b):
        stack.receive_batch = _as_gro(stack)
    _transfer_intact(link, seed, 150_000)
    assert b.stats["segments_coalesced"] > 0


def _as_gro(stack):
    """`receive_batch` as the endpoint's GRO path feeds the stack: each run of datagrams
    of one size from one sender as one coalesced buffer."""
    def receive_batch(datagrams, now):
        i = 0
        while i < len(datagrams):
            raw, remote = datagrams[i]
            j = i + 1
            while j < len(datagrams) and datagrams[j][1] == remote \
                    and len(datagrams[j - 1][0]) == len(raw) and len(datagrams[j][0]) <= len(raw):
                j += 1
                if len(datagrams[j - 1][0]) < len(raw):
                    break
            if j - i > 1:
                stack.receive_coalesced(b"".join(d for d, _ in datagrams[i:j]), len(raw),
                                        remote, now)
            else:
                stack.receive(raw, remote, now)
            i = j
    return receive_batch
