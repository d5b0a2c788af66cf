"""Blind in-window attacks (RFC 5961) against live connections over a simulated link.

An off-path attacker knows a connection's addresses and ports but not its sequence
numbers. It injects RSTs, SYNs and data with guessed numbers -- random ones, and ones
placed right at the edges of the windows, which is as well as a lucky attacker can do --
while the real peers keep transferring. Nothing may change: no reset, no state change, not
one foreign byte delivered, every real byte delivered; and challenge ACKs stay within
``challenge_ack_limit`` per ``challenge_ack_interval`` in every interval (RFC 5961 7).

A guess that is exactly right (a RST at RCV.NXT, or data whose ACK falls in the RFC 5961
5.2 range) is not blind: the generator leaves those out, and says so.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from atcp.core.states import State
from atcp.testing.link import Link
from atcp.testing.peer import new_stack
from atcp.wire import ACK, PSH, RST, SYN, Segment, build
from atcp.wire.seq import MASK, seq_add, seq_in_window, seq_le, seq_sub

LIMIT, INTERVAL = 10, 5.0


def _pair(seed: int, **config):
    a = new_stack(1000 + seed, seed=seed, **config)
    b = new_stack(2_000_000_000 + seed, seed=seed + 1, **config)
    link = Link(a, b, delay=0.01, loss=0.02, seed=seed)
    listener = b.listen(80)
    ca = a.connect(link.addr_b, 80, 0.0)
    link.run(until=10.0, stop=lambda: bool(listener.accept_queue))
    cb = listener.accept()
    assert cb is not None and ca.state is State.ESTABLISHED
    return a, b, link, ca, cb


def _challenge_times(stack) -> list[float]:
    times: list[float] = []
    clock = {"now": 0.0}

    def observer(what, subject, fields):
        if what == "challenge_ack" and fields.get("sent"):
            times.append(clock["now"])
    stack.observer = observer
    return times, clock


def _guess(rng: random.Random, conn, kind: str) -> Segment | None:
    """One attacker segment, or None when the guess would be right (not blind)."""
    wnd = max(conn._rcv_wnd(), 1)
    edges = [conn.rcv_nxt, seq_add(conn.rcv_nxt, 1), seq_add(conn.rcv_nxt, wnd - 1),
             seq_add(conn.rcv_nxt, wnd), seq_add(conn.rcv_nxt, -1),
             seq_add(conn.rcv_nxt, rng.randrange(wnd))]
    seq = rng.choice(edges) if rng.random() < 0.5 else rng.getrandbits(32)
    ack = rng.getrandbits(32)
    if rng.random() < 0.5:   # just outside the range RFC 5961 5.2 accepts
        low = (conn.snd_una - conn.max_snd_wnd) & MASK
        ack = rng.choice([seq_add(low, -1), seq_add(conn.snd_nxt, 1),
                          seq_add(conn.snd_nxt, 1 << 20), seq_add(low, -(1 << 20))])
    src, dst = conn.remote_port, conn.local_port
    if kind == "rst":
        if seq == conn.rcv_nxt:
            return None
        flags = RST | (ACK if rng.random() < 0.5 else 0)
        return Segment(src, dst, seq, ack if flags & ACK else 0, flags, 0)
    if kind == "syn":
        return Segment(src, dst, seq, 0, SYN, 65535)
    low = (conn.snd_una - conn.max_snd_wnd) & MASK
    if seq_le(low, ack) and seq_le(ack, conn.snd_nxt):
        return None
    payload = b"\xee" * rng.choice([1, 100, 1000])
    return Segment(src, dst, seq, ack, ACK | PSH, 65535, payload)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_blind_rst_syn_and_data_change_nothing(seed: int) -> None:
    a, b, link, ca, cb = _pair(seed, challenge_ack_limit=LIMIT,
                               challenge_ack_interval=INTERVAL)
    times, clock = _challenge_times(b)
    rng = random.Random(seed)
    payload_a = rng.randbytes(300_000)
    payload_b = rng.randbytes(200_000)
    got_a, got_b = bytearray(), bytearray()
    pending = {"a": memoryview(payload_a), "b": memoryview(payload_b)}
    injected = skipped = 0
    for step in range(4000):
        for side, conn in (("a", ca), ("b", cb)):
            if pending[side]:
                taken = conn.send(pending[side], link.now)
                pending[side] = pending[side][taken:]
        got_b.extend(cb.read(-1, link.now))
        got_a.extend(ca.read(-1, link.now))
        if len(got_b) == len(payload_a) and len(got_a) == len(payload_b) and step >= 1000:
            break
        # A burst of attacker segments, then the link runs on a little.
        for _ in range(rng.randrange(1, 6)):
            seg = _guess(rng, cb, rng.choice(["rst", "syn", "data"]))
            if seg is None:
                skipped += 1
                continue
            clock["now"] = link.now
            b.receive(build(seg), link.addr_a, link.now)
            injected += 1
        link.run(until=link.now + 0.02)
        clock["now"] = link.now
        assert cb.state is State.ESTABLISHED and ca.state is State.ESTABLISHED
        assert cb.error is None and ca.error is None
    assert bytes(got_b) == payload_a, "foreign or missing bytes at b"
    assert bytes(got_a) == payload_b
    assert hashlib.sha256(got_b).digest() == hashlib.sha256(payload_a).digest()
    assert injected > 2000 and skipped < injected // 10
    assert b.stats["challenge_acks_suppressed"] > 0, "the limit was never reached"
    _assert_rate_limited(times)


def _assert_rate_limited(times: list[float]) -> None:
    """No ``INTERVAL``-long stretch holds more than ``LIMIT`` challenge ACKs."""
    assert times, "no challenge ACK at all"
    for i, start in enumerate(times):
        j = i
        while j < len(times) and times[j] < start + INTERVAL:
            j += 1
        assert j - i <= LIMIT, (
            f"{j - i} challenge ACKs between {start:.3f} s and {start + INTERVAL:.3f} s")


def test_blind_attack_on_half_closed_connection() -> None:
    """CLOSE-WAIT on one side, FIN-WAIT-2 on the other: the same guesses change nothing
    there either, and the orderly close still completes afterwards."""
    a, b, link, ca, cb = _pair(9)
    ca.shutdown(link.now)
    link.run(until=link.now + 1.0)
    assert (ca.state, cb.state) == (State.FIN_WAIT_2, State.CLOSE_WAIT)
    rng = random.Random(9)
    for target, stack, addr in ((cb, b, link.addr_a), (ca, a, link.addr_b)):
        for _ in range(500):
            seg = _guess(rng, target, rng.choice(["rst", "syn", "data"]))
            if seg is not None:
                stack.receive(build(seg), addr, link.now)
        link.run(until=link.now + 0.5)
    assert (ca.state, cb.state) == (State.FIN_WAIT_2, State.CLOSE_WAIT)
    assert cb.read(-1, link.now) == b"" and ca.read(-1, link.now) == b""
    cb.send(b"last words", link.now)
    cb.shutdown(link.now)
    link.run(until=link.now + 2.0)
    assert ca.read(-1, link.now) == b"last words"
    assert a.state_of(ca) is State.TIME_WAIT and b.connections == []
    assert ca.error is None and cb.error is None


def test_guessed_numbers_far_from_any_window_cost_nothing() -> None:
    """Segments whose numbers are nowhere near the window are answered by at most one ACK
    each (never a RST, never delivered) and leave no state behind."""
    a, b, link, ca, cb = _pair(4)
    rng = random.Random(4)
    before = (cb.rcv_nxt, cb.snd_nxt, cb.snd_una, len(b.connections))
    for _ in range(1000):
        seq = rng.getrandbits(32)
        if seq_in_window(seq, cb.rcv_nxt, 1 << 20) or seq_in_window(cb.rcv_nxt, seq, 1 << 20):
            continue
        b.receive(build(Segment(cb.remote_port, cb.local_port, seq, rng.getrandbits(32),
                                ACK | PSH, 65535, b"x" * 50)), link.addr_a, link.now)
        replies = b.datagrams_to_send()
        assert len(replies) <= 1
    assert (cb.rcv_nxt, cb.snd_nxt, cb.snd_una, len(b.connections)) == before
    assert cb.read(-1, link.now) == b"" and seq_sub(cb.rcv_nxt, before[0]) == 0
