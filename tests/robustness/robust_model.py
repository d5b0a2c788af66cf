"""Shared pieces of the robustness tests: a stack under test, a position-determined peer
stream, and the invariants every robustness test checks after each input.

The peer's data is a function of the sequence number only (`peer_bytes`), so whatever
order, overlap or duplication the segments come in, what a connection delivers must be
``peer_bytes(IRS + 1, n)``: a prefix of the peer's stream. The same holds the other way:
every data segment the stack sends must carry exactly the bytes the application wrote at
that offset (`OutputChecker`).
"""

from __future__ import annotations

import random

from atcp.config import Config
from atcp.core.stack import Stack
from atcp.core.states import State
from atcp.wire import RST, SYN, Segment, parse
from atcp.wire.seq import MASK, seq_sub

__all__ = ["peer_bytes", "make_stack", "check_bounds", "OutputChecker", "DeliveryChecker",
           "snapshot"]

_TABLE = bytes(((i * 2654435761) >> 13) & 0xFF for i in range(4096))


def peer_bytes(seq: int, n: int) -> bytes:
    """The ``n`` bytes the peer's stream holds from sequence number ``seq`` on."""
    out = bytearray()
    pos = seq & MASK
    while len(out) < n:
        i = pos % 4093
        take = min(n - len(out), 4093 - i, (1 << 32) - pos)
        out += _TABLE[i:i + take]
        pos = (pos + take) & MASK
    return bytes(out)


def make_stack(seed: int = 1, **changes) -> Stack:
    """A stack with a fixed secret and RNG (so a failing example replays exactly)."""
    return Stack(Config(**changes), mss=changes.get("mss") or 536,
                 secret=bytes(range(32)), rng=random.Random(seed))


def check_bounds(stack: Stack) -> None:
    """Memory is bounded by the configuration, whatever the peer sent."""
    cfg = stack.config
    assert len(stack._conns) <= cfg.max_connections
    assert len(stack._time_wait) <= cfg.max_time_wait
    # Every timer belongs to something alive: closed connections leave the wheel.
    assert len(stack._wheel) <= len(stack._conns) + len(stack._time_wait)
    for listener in stack._listeners.values():
        # The SYN queue holds at most ``backlog``; SYN cookies may fill the accept queue
        # while it is full, so together they hold up to twice that (Config.backlog).
        assert len(listener.syn_queue) <= listener.backlog
        assert len(listener.syn_queue) + len(listener.accept_queue) <= 2 * listener.backlog
    for conn in stack._conns.values():
        c = conn.config
        assert len(conn.sndbuf) <= c.send_buffer
        assert len(conn.reasm) <= c.max_out_of_order
        # What is held for the application: at most the buffer, plus the rounding of a
        # scaled window (RFC 7323 2.3: the edge advertised may not shrink).
        assert len(conn.rcvbuf) + conn.reasm.held <= conn.rcvbuf.limit + (1 << conn.rcv_scale)
        assert conn.state is not State.CLOSED
        assert conn.state is not State.TIME_WAIT


def snapshot(stack: Stack) -> list:
    """Everything about the stack's connections that input may not change unnoticed.
    (Not RCV.ADV: any ACK sent, a challenge ACK too, may advertise a window opened by
    reading.)"""
    rows = []
    for key, conn in sorted(stack._conns.items(), key=lambda kv: repr(kv[0])):
        rows.append((key, conn.state, conn.snd_una, conn.snd_nxt, conn.rcv_nxt, conn.snd_wnd,
                     len(conn.rcvbuf), len(conn.sndbuf), conn.reasm.held, conn.eof,
                     conn.error))
    for tw in sorted(stack.time_wait, key=lambda tw: repr(tw.key)):
        rows.append((tw.key, "TIME-WAIT", tw.snd_nxt, tw.rcv_nxt, tw.expires))
    for port, listener in sorted(stack._listeners.items()):
        rows.append((port, "LISTEN", len(listener.syn_queue), len(listener.accept_queue)))
    return rows


class DeliveryChecker:
    """What each connection delivered is the peer's stream from IRS + 1 on."""

    def __init__(self) -> None:
        self.read: dict[int, int] = {}   # id(conn) -> bytes read so far
        self._alive: list = []           # every conn seen, so that ids are never reused

    def delivered(self, conn, data: bytes) -> None:
        if id(conn) not in self.read:
            self._alive.append(conn)
        done = self.read.get(id(conn), 0)
        start = (conn.irs + 1 + done) & MASK
        assert data == peer_bytes(start, len(data)), (
            f"{conn!r} delivered bytes {done}..{done + len(data)} that the peer never sent")
        self.read[id(conn)] = done + len(data)


class OutputChecker:
    """Every segment the stack sends parses, never answers a RST with a RST, and carries
    exactly the bytes the application wrote at its offset."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.written: dict[int, bytearray] = {}   # id(conn) -> everything conn.send took
        self.conns: dict[tuple, object] = {}      # (remote, local, remote port) -> conn
        self._alive: list = []                    # every writer, so ids are never reused

    def wrote(self, conn, data: bytes) -> None:
        if id(conn) not in self.written:
            self._alive.append(conn)
        self.written.setdefault(id(conn), bytearray()).extend(data)
        self.conns[conn.key] = conn

    def drain(self, answering: Segment | None = None) -> list[tuple[Segment, object]]:
        out = []
        for raw, remote in self.stack.datagrams_to_send():
            seg = parse(raw)
            out.append((seg, remote))
            if answering is not None and answering.flags & RST:
                assert not seg.flags & RST, f"{seg!r} answers the RST {answering!r}"
            if seg.payload and not seg.flags & SYN:
                self._check_payload(seg, remote)
        return out

    def _check_payload(self, seg: Segment, remote) -> None:
        key = (remote, seg.src_port, seg.dst_port)
        conn = self.stack._conns.get(key) or self.conns.get(key)
        assert conn is not None, f"data {seg!r} from no connection"
        off = seq_sub(seg.seq, (conn.iss + 1) & MASK)
        written = self.written.get(id(conn), b"")
        assert off >= 0 and written[off:off + len(seg.payload)] == seg.payload, (
            f"{seg!r} does not carry what the application wrote at offset {off}")
