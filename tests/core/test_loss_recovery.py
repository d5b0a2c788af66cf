"""Transfers over the simulated link under seeded loss and reordering: integrity by SHA-256,
and the loss recovery that makes them cheap (SACK, RACK-TLP, NewReno, spurious undo).
Deterministic: a fake clock and seeded randomness (atcp.testing.link)."""

from __future__ import annotations

import hashlib
import random

import pytest

from atcp.config import Config
from atcp.core.info import tcp_info
from atcp.core.stack import Stack
from atcp.core.states import State
from atcp.testing.link import Link
from atcp.wire import parse

SIZE = 300_000


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pair(link_cls=Link, *, seed: int = 1, delay: float = 0.01, **config):
    cfg = Config(**config)
    a = Stack(cfg, rng=random.Random(seed), secret=b"a" * 32)
    b = Stack(cfg, rng=random.Random(seed + 1), secret=b"b" * 32)
    link = link_cls(a, b, delay=delay, seed=seed)
    return (link, *link.open())


def transfer(link, sender, receiver, data: bytes, max_steps: int = 500_000) -> bytes:
    sent, got = 0, bytearray()
    for _ in range(max_steps):
        if sent < len(data):
            sent += sender.send(data[sent:sent + 65536], link.now)
        got += receiver.read(-1, link.now)
        if len(got) >= len(data) or not link.step():
            break
    return bytes(got)


class BurstyLink(Link):
    """Gilbert-Elliott loss: a good state without loss and a bad one that loses 70%."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.bad = False

    def _collect(self) -> None:
        rng = self.rng
        for src in (self.a, self.b):
            out = src.datagrams_to_send()
            kept = []
            for item in out:
                self.bad = rng.random() < (0.7 if self.bad else 0.03)
                if self.bad and rng.random() < 0.7:
                    self.dropped += 1
                else:
                    kept.append(item)
            src._out[:0] = kept
        super()._collect()


class ReorderingLink(Link):
    """Every ``every``-th data segment from a to b arrives after the ``depth`` that follow."""

    every = 25
    depth = 3

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.count = 0
        self.held = None
        self.behind = 0
        self.reordered = 0

    def _collect(self) -> None:
        out = self.a.datagrams_to_send()
        kept = []
        for raw, remote in out:
            if parse(raw).payload:
                self.count += 1
                if self.held is None and self.count % self.every == 0:
                    self.held = (raw, remote)
                    self.reordered += 1
                    continue
                if self.held is not None:
                    self.behind += 1
            kept.append((raw, remote))
            if self.held is not None and self.behind >= self.depth:
                kept.append(self.held)
                self.held, self.behind = None, 0
        self.a._out[:0] = kept
        super()._collect()


@pytest.mark.parametrize("loss", [0.01, 0.05, 0.10])
def test_random_loss_keeps_the_data_intact(loss: float) -> None:
    link, ca, cb = pair(seed=11)
    link.loss = loss
    data = random.Random(7).randbytes(SIZE)
    assert sha(transfer(link, ca, cb, data)) == sha(data)
    link.run(until=link.now + 30, stop=lambda: ca.snd_una == ca.snd_nxt)
    info = tcp_info(ca)
    assert link.dropped > 0
    assert info.retransmits > 0 and info.lost > 0
    assert info.sacked == 0 and info.unacked == 0 and not info.in_recovery
    assert ca.state is State.ESTABLISHED


@pytest.mark.parametrize("config", [dict(sack=False), dict(timestamps=False),
                                    dict(rack_tlp=False), dict(congestion="newreno"),
                                    dict(pacing=False), dict(window_scaling=False)])
def test_five_percent_loss_with_features_off(config: dict) -> None:
    link, ca, cb = pair(seed=5, **config)
    link.loss = 0.05
    data = random.Random(8).randbytes(SIZE)
    assert sha(transfer(link, ca, cb, data)) == sha(data)


def test_bursty_loss() -> None:
    link, ca, cb = pair(BurstyLink, seed=3)
    data = random.Random(9).randbytes(SIZE)
    assert sha(transfer(link, ca, cb, data)) == sha(data)
    assert link.dropped > 20


def test_reordering_by_three_segments_is_not_taken_for_loss() -> None:
    link, ca, cb = pair(ReorderingLink, seed=4)
    data = random.Random(10).randbytes(SIZE)
    assert sha(transfer(link, ca, cb, data)) == sha(data)
    assert link.reordered >= 5 and link.dropped == 0
    info = tcp_info(ca)
    # At most the first reordering looks like a loss; its D-SACK undoes the reduction and
    # RACK's reordering window absorbs the rest (RFC 8985 6.2, RFC 2883).
    assert info.retransmits <= 2
    assert info.reordering >= 3
    assert info.spurious_retransmits == info.retransmits
    assert info.ssthresh == ca.cc.ssthresh and ca.cc.ssthresh > 20 * ca.snd_mss


def test_tail_loss_is_repaired_by_a_probe_not_a_timeout() -> None:
    link, ca, cb = pair(seed=6)
    mss = ca.snd_mss
    data = bytes(10 * mss)
    tail = {ca._send_off_to_seq(8 * mss), ca._send_off_to_seq(9 * mss)}
    for _ in tail:
        link.drop_next.append(lambda raw: parse(raw).seq in tail and parse(raw).payload)
    ca.send(data, link.now)
    start = link.now
    link.run(until=start + 5, stop=lambda: cb.readable() == len(data))
    assert cb.read(-1, link.now) == data
    # The probe (RFC 8985 7.3) resends the last segment two RTTs after the last ACK; its
    # SACK lets RACK find the other: both repaired in ~4 RTTs, where the RTO alone would
    # have taken 200 ms and then another round trip per segment.
    assert ca.loss_probes == 1 and ca.retransmits == 2
    assert ca.rto.backoff == 0 and ca.rexmt_count == 0
    assert link.now - start < 5 * ca.rto.srtt < ca.rto.rto


def test_lost_retransmission_is_found_by_rack_not_rto() -> None:
    link, ca, cb = pair(seed=7)
    data = bytes(40 * ca.snd_mss)
    seq = ca._send_off_to_seq(5 * ca.snd_mss)
    hits = []

    def drop_twice(raw: bytes) -> bool:
        seg = parse(raw)
        if seg.seq == seq and seg.payload:
            hits.append(link.now)
            return True
        return False
    link.drop_next += [drop_twice, drop_twice]
    ca.send(data, link.now)
    link.run(until=link.now + 5, stop=lambda: cb.readable() == len(data))
    assert cb.read(-1, link.now) == data
    assert len(hits) == 2 and ca.retransmits == 2
    assert ca.rexmt_count == 0 and ca.rto.backoff == 0   # no timeout was needed


def test_sack_blocks_never_make_a_segment_outgrow_the_mss() -> None:
    """RFC 6691: options count against the MSS. Data flowing both ways under loss means
    data segments that also acknowledge out-of-order data: the payload shrinks to leave
    room for the SACK blocks, so no datagram exceeds 20 + MSS bytes."""
    link, ca, cb = pair(seed=12)
    link.loss = 0.05
    up, down = random.Random(1).randbytes(200_000), random.Random(2).randbytes(200_000)
    sent_up = sent_down = 0
    got_up, got_down = bytearray(), bytearray()
    for _ in range(200_000):
        sent_up += ca.send(up[sent_up:sent_up + 65536], link.now)
        sent_down += cb.send(down[sent_down:sent_down + 65536], link.now)
        got_up += cb.read(-1, link.now)
        got_down += ca.read(-1, link.now)
        if (len(got_up), len(got_down)) == (len(up), len(down)) or not link.step():
            break
    assert bytes(got_up) == up and bytes(got_down) == down
    with_both = [raw for _, _, raw in link.log if parse(raw).payload and parse(raw).options.sack]
    assert with_both   # data segments did carry SACK blocks
    assert max(len(raw) for _, _, raw in link.log) <= 20 + ca.rcv_mss
