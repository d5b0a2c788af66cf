"""Malformed and odd segments fed to a live `Stack` holding a connection in every state.

tests/wire/test_malformed.py proves that ``parse`` classifies each malformed datagram; here
the same kinds of damage reach a stack with live connections, aimed at each connection's
ports with the most acceptable numbers there are (SEQ = RCV.NXT, ACK = SND.NXT), RST and
SYN bits included. Nothing may change, nothing may be sent, and each one is counted in
``stack.stats``. Then well-formed segments no TCP sends (SYN+RST, all flags, SYN+FIN, no
flags at all, window scale over 14): the same, except the answers RFC 9293 prescribes.
Last, arbitrary bytes (hypothesis) never raise and never break a bound.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atcp.core.states import State
from atcp.testing.peer import Peer, new_stack
from atcp.wire import ACK, FIN, PSH, RST, SYN, Options, Segment, build, parse
from atcp.wire.errors import REASONS
from atcp.wire.seq import seq_add

from robust_model import check_bounds, snapshot

S = State
STATES = [S.LISTEN, S.SYN_SENT, S.SYN_RECEIVED, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2,
          S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK, S.TIME_WAIT]


def live_stack():
    """One stack, one peer per state (its own ports), each connection in that state."""
    stack = new_stack(mss=1000)
    peers = {}
    for i, state in enumerate(STATES):
        stack_port = {S.LISTEN: 80, S.SYN_RECEIVED: 81}.get(state, 1000 + i)
        peer = Peer(stack, isn=10_000 * (i + 1), port=4000 + i, stack_port=stack_port)
        peer.drive_to(state)
        peer.take()
        peers[state] = peer
    peer.events()
    return stack, peers


def numbers(stack, peer):
    """(SEQ, ACK) a segment from ``peer`` would best have: RCV.NXT and SND.NXT."""
    key = (peer.remote, peer.stack_port, peer.port)
    conn = stack._conns.get(key)
    tw = stack.time_wait_record(key)
    if conn is not None:
        return conn.rcv_nxt, conn.snd_nxt
    if tw is not None:
        return tw.rcv_nxt, tw.snd_nxt
    return peer.seq(0), 0


def header(peer, seq, ack, flags, doff=5, window=65535):
    return struct.pack("!HHIIBBHHH", peer.port, peer.stack_port, seq, ack, doff << 4, flags,
                       window, 0, 0)


def options(peer, seq, ack, flags, opt: bytes, payload=b""):
    padded = opt + bytes(-len(opt) & 3)
    return header(peer, seq, ack, flags, 5 + len(padded) // 4) + padded + payload


def malformed_corpus(peer, seq, ack):
    """(reason, datagram) pairs: every kind of damage parse() refuses."""
    out = []
    for flags in (ACK, RST, RST | ACK, SYN, ACK | FIN):
        good = build(Segment(peer.port, peer.stack_port, seq, ack, flags, 65535, b"data",
                             Options(ts_val=1, ts_ecr=2)))
        out += [("short-header", good[:n]) for n in (0, 1, 12, 19)]
        out += [("bad-data-offset", header(peer, seq, ack, flags, doff) + b"x" * 40)
                for doff in (0, 4)]
        out += [("data-offset-overrun", header(peer, seq, ack, flags, doff) + b"\x01" * 8)
                for doff in (8, 15)]
        for opt, reason in [
            (b"\x1e\x00", "option-length"), (b"\x02\x01", "option-length"),
            (b"\x05\x00", "option-length"), (b"\x08\x01", "option-length"),
            (b"\x01\x01\x01\x02", "option-overrun"),            # kind without length byte
            (b"\x1e\x28\x00\x00", "option-overrun"),            # unknown kind running past
            (b"\x01" * 5 + b"\x02\x04\x05", "option-overrun"),  # MSS cut off
            (b"\x02\x03\x05\x00", "option-fixed-length"),       # MSS length 3
            (b"\x02\x05\x05\xb4\x00", "option-fixed-length"),   # MSS length 5
            (b"\x03\x02\x00\x00", "option-fixed-length"),       # window scale length 2
            (b"\x03\x04\x07\x00", "option-fixed-length"),       # window scale length 4
            (b"\x04\x03\x00\x00", "option-fixed-length"),       # SACK-permitted length 3
            (b"\x08\x09" + bytes(8), "option-fixed-length"),    # timestamps length 9
            (b"\x08\x0b" + bytes(9), "option-fixed-length"),    # timestamps length 11
            (b"\x05\x0b" + bytes(9), "sack-length"),            # 2 + 8 + 1
            (b"\x05\x2a" + bytes(38), "sack-length"),           # five blocks
        ]:
            out.append((reason, options(peer, seq, ack, flags, opt, b"payload")))
    return out


def test_malformed_segments_change_nothing_send_nothing_and_are_counted() -> None:
    stack, peers = live_stack()
    before = snapshot(stack)
    total = 0
    per_reason: dict[str, int] = {}
    for state, peer in peers.items():
        seq, ack = numbers(stack, peer)
        for reason, datagram in malformed_corpus(peer, seq, ack):
            stack.receive(datagram, peer.remote, peer.now)
            per_reason[reason] = per_reason.get(reason, 0) + 1
            total += 1
        assert stack.datagrams_to_send() == [], f"an answer to garbage in {state}"
    assert snapshot(stack) == before
    assert stack.next_event() is None
    assert stack.stats["malformed"] == total
    assert set(per_reason) == REASONS
    for reason, count in per_reason.items():
        assert stack.stats["malformed_" + reason] == count


ODD = [
    ("SYN+RST", SYN | RST, "dropped_syn_rst"),
    ("SYN+RST+ACK", SYN | RST | ACK, "dropped_syn_rst"),
    ("all flags", 0xFF, "dropped_syn_rst"),
    ("SYN+FIN", SYN | FIN, "synfin_dropped"),
    ("SYN+FIN+ACK", SYN | FIN | ACK, "synfin_dropped"),
    ("no flags", 0, "segments_without_flags"),
    ("PSH only", PSH, "segments_without_flags"),
]


@pytest.mark.parametrize("name,flags,counter", ODD, ids=[o[0] for o in ODD])
def test_odd_flags_change_nothing_in_any_state(name: str, flags: int, counter: str) -> None:
    stack, peers = live_stack()
    before = snapshot(stack)
    for state, peer in peers.items():
        seq, ack = numbers(stack, peer)
        for dseq in (0, 1, -1):
            peer.send(Segment(peer.port, peer.stack_port, seq_add(seq, dseq), ack, flags,
                              65535, b"payload", Options(mss=1000)))
        # Without ACK (and without SYN or RST) a segment is dropped in every state
        # (3.10.7: "if the ACK bit is off drop the segment"); the rest never get this far.
        assert peer.take() == [], f"{name} answered in {state}"
    assert snapshot(stack) == before
    assert stack.stats[counter] == 3 * len(peers)


@pytest.mark.parametrize("flags", [SYN | RST, 0xFF, SYN | RST | ACK])
def test_syn_rst_to_a_closed_port_is_not_answered(flags: int) -> None:
    stack = new_stack()
    peer = Peer(stack, isn=1)
    peer.send(Segment(peer.port, 9, 1, 1, flags, 0))
    peer.expect_nothing()


def test_no_flags_to_a_closed_port_gets_the_rfc_rst() -> None:
    """3.10.7.1: any segment but a RST, to no connection, is answered -- SYN+FIN too."""
    stack = new_stack()
    peer = Peer(stack, isn=1, stack_port=9)
    peer.send(Segment(peer.port, 9, 100, 0, 0, 0, b"abc"))
    peer.expect("R.", abs_seq=0, abs_ack=103)
    peer.send(Segment(peer.port, 9, 100, 0, SYN | FIN, 0, b""))
    peer.expect("R.", abs_seq=0, abs_ack=102)


def test_window_scale_over_14_is_used_as_14_and_counted() -> None:
    stack = new_stack(mss=1000)
    peer = Peer(stack, isn=1)
    conn = peer.peer_connects(syn_options=Options(mss=1000, wscale=200))
    assert conn.snd_scale == 14 and stack.stats["wscale_over_14"] == 1
    # The same option on a SYN to the established connection: only a challenge ACK.
    before = snapshot(stack)
    peer.send("S", seq=5, options=Options(wscale=15))
    peer.expect(".", seq=1, ack=1)
    assert snapshot(stack) == before and stack.stats["wscale_over_14"] == 2


def test_mss_zero_counts_as_absent() -> None:
    stack = new_stack(mss=1000)
    conn = Peer(stack, isn=1).peer_connects(syn_options=Options(mss=0))
    assert conn.snd_mss == 536


# -- arbitrary bytes at a live stack ------------------------------------------------------

_LIVE = {}


def _live():
    if not _LIVE:
        _LIVE["stack"], _LIVE["peers"] = live_stack()
    return _LIVE["stack"], _LIVE["peers"]


@settings(max_examples=400, deadline=None)
@given(state=st.sampled_from(STATES), flags=st.integers(0, 255), tail=st.binary(max_size=90),
       doff=st.integers(0, 15), dseq=st.integers(-3, 3))
def test_arbitrary_bytes_behind_a_live_header(state, flags, tail, doff, dseq) -> None:
    """Any bytes after a header aimed at a live connection: nothing raises, every reply
    parses, a RST is never answered with a RST, and every bound holds. (The state may
    change: some of these are valid segments, RSTs at RCV.NXT among them.)"""
    stack, peers = _live()
    peer = peers[state]
    seq, ack = numbers(stack, peer)
    datagram = header(peer, seq_add(seq, dseq), ack, flags, doff) + tail
    stack.receive(datagram, peer.remote, peer.now)
    for raw, _ in stack.datagrams_to_send():
        reply = parse(raw)
        if flags & RST:
            try:
                incoming = parse(datagram)
            except ValueError:
                incoming = None
            if incoming is not None:
                assert not reply.flags & RST
    check_bounds(stack)
    while stack.next_event() is not None:
        pass


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=120), port=st.sampled_from([4000, 4003, 4009]))
def test_arbitrary_datagrams(data, port) -> None:
    stack, peers = _live()
    stack.receive(data, ("192.0.2.1", port), 0.0)
    for raw, _ in stack.datagrams_to_send():
        parse(raw)
    check_bounds(stack)
