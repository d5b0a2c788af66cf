"""A scripted remote end for unit tests of one sans-I/O `Stack`.

`Peer` plays the other TCP by hand: the test says which segment it sends and which reply it
expects, with sequence numbers written relative to the two initial sequence numbers, as
packetdrill does. Outgoing numbers (``seq`` of what the peer sends, ``ack`` of what it
expects back) count from the peer's ISN; incoming ones (``ack`` of what the peer sends,
``seq`` of what it expects) count from the stack's ISS, which the peer learns from the first
SYN or SYN,ACK the stack sends (or is told). ``abs_seq``/``abs_ack`` give raw 32-bit values.

Flags are written as tcpdump/packetdrill letters: ``"S"``, ``"S."``, ``"."``, ``"P."``,
``"F."``, ``"R"``, ``"R."``. The clock is ``peer.now``; `advance` moves it and polls the
stack, so every timer fires exactly when the core asked for it and never reads a real clock.
"""

from __future__ import annotations

import random
import weakref

from ..config import Config
from ..core.stack import Stack
from ..core.states import State
from ..wire import (ACK, CWR, ECE, FIN, NO_OPTIONS, PSH, RST, SYN, URG, Options, Segment, build,
                    parse)
from ..wire.seq import MASK

__all__ = ["Peer", "flags_of", "fixed_isn", "new_stack", "STACK_ISS"]

#: Datagrams a stack sent that no peer has taken yet (several peers may share a stack).
_mailboxes: "weakref.WeakKeyDictionary[Stack, list]" = weakref.WeakKeyDictionary()

#: The ISS `new_stack` pins by default: far from the wrap, easy to read in a failure.
STACK_ISS = 5_000_000

_LETTERS = {"F": FIN, "S": SYN, "R": RST, "P": PSH, ".": ACK, "U": URG, "E": ECE, "W": CWR}


def flags_of(text: str) -> int:
    """``"S."`` -> SYN|ACK; ``""`` or ``"none"`` -> 0."""
    if text == "none":
        return 0
    bits = 0
    for ch in text:
        bits |= _LETTERS[ch]
    return bits


class _Fixed:
    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value & MASK

    def __call__(self, identity: tuple, now: float) -> int:
        return self.value


def fixed_isn(value: int) -> _Fixed:
    """An ISN function for `Stack(isn=...)` that always answers ``value``."""
    return _Fixed(value)


def new_stack(iss: int = STACK_ISS, *, seed: int = 7, mss: int = 1000, **config) -> Stack:
    """A Stack with a fixed ISS, a seeded RNG and ``Config(**config)``."""
    return Stack(Config(**config), mss=mss, isn=fixed_isn(iss), rng=random.Random(seed))


class Peer:
    """The remote TCP of one connection, driven step by step by a test."""

    def __init__(self, stack: Stack, *, isn: int = 1000, port: int = 4000,
                 stack_port: int = 80, remote=("192.0.2.1", 4000), now: float = 0.0,
                 window: int = 65535, stack_iss: int | None = None) -> None:
        self.stack = stack
        self.isn = isn & MASK
        self.port = port
        self.stack_port = stack_port
        self.remote = remote
        self.now = now
        self.window = window
        self.stack_iss = stack_iss
        if stack_iss is None and isinstance(getattr(stack, "_isn", None), _Fixed):
            self.stack_iss = stack._isn.value
        self.received: list[Segment] = []   # everything the stack sent, in order

    # ---------------------------------------------------------------- numbering
    def seq(self, rel: int) -> int:
        """Absolute sequence number ``rel`` past the peer's ISN."""
        return (self.isn + rel) & MASK

    def iss_rel(self, rel: int) -> int:
        """Absolute sequence number ``rel`` past the stack's ISS."""
        if self.stack_iss is None:
            raise AssertionError("the stack's ISS is not known yet (no SYN seen)")
        return (self.stack_iss + rel) & MASK

    # ---------------------------------------------------------------- sending
    def segment(self, flags: str, seq: int = 1, ack: int = 1, *, win: int | None = None,
                payload: bytes = b"", options: Options = NO_OPTIONS,
                abs_seq: int | None = None, abs_ack: int | None = None) -> Segment:
        """A segment from the peer. ``ack`` is ignored (0) unless the ACK bit is set or
        ``abs_ack`` is given."""
        bits = flags_of(flags)
        s = abs_seq if abs_seq is not None else self.seq(seq)
        if abs_ack is not None:
            a = abs_ack
        elif bits & ACK:
            a = self.iss_rel(ack)
        else:
            a = 0
        return Segment(self.port, self.stack_port, s, a, bits,
                       self.window if win is None else win, payload, options)

    def send(self, flags: str | Segment, seq: int = 1, ack: int = 1, **kw) -> None:
        """Deliver one segment to the stack at ``self.now``."""
        seg = flags if isinstance(flags, Segment) else self.segment(flags, seq, ack, **kw)
        self.stack.receive(build(seg), self.remote, self.now)

    def send_raw(self, data: bytes) -> None:
        self.stack.receive(data, self.remote, self.now)

    # ---------------------------------------------------------------- time
    def advance(self, dt: float) -> None:
        """Move the clock ``dt`` seconds on and run the stack's due timers."""
        self.at(self.now + dt)

    def at(self, t: float) -> None:
        if t < self.now:
            raise ValueError("time runs forward only")
        self.now = t
        self.stack.poll(t)

    def run_timers_until(self, t: float, max_steps: int = 10_000) -> None:
        """Poll at every deadline the stack reports up to ``t`` (inclusive), then at ``t``."""
        for _ in range(max_steps):
            d = self.stack.next_deadline()
            if d is None or d > t:
                break
            self.at(max(d, self.now))
        else:
            raise AssertionError("timers did not settle")
        self.at(max(t, self.now))

    # ---------------------------------------------------------------- receiving
    def take(self) -> list[Segment]:
        """Every segment the stack has sent to this peer since the last call, parsed.

        Several peers may share one stack: datagrams for the others (another UDP address or
        TCP port) wait in the stack's mailbox for them.
        """
        box = _mailboxes.setdefault(self.stack, [])
        for raw, remote in self.stack.datagrams_to_send():
            box.append((parse(raw), remote))
        out, rest = [], []
        for seg, remote in box:
            mine = remote == self.remote and seg.dst_port == self.port
            (out if mine else rest).append((seg, remote))
        box[:] = rest
        segs = [seg for seg, _ in out]
        for seg in segs:
            if seg.flags & SYN and self.stack_iss is None:
                self.stack_iss = seg.seq
        self.received.extend(segs)
        return segs

    def expect(self, flags: str, seq: int | None = None, ack: int | None = None, *,
               win: int | None = None, payload: bytes | None = None,
               length: int | None = None, abs_seq: int | None = None,
               abs_ack: int | None = None, options: Options | None = None) -> Segment:
        """Assert the stack sent exactly one segment, matching every field given."""
        got = self.take()
        if len(got) != 1:
            raise AssertionError(f"expected one {flags!r} segment, got {got!r}")
        return self.check(got[0], flags, seq, ack, win=win, payload=payload, length=length,
                          abs_seq=abs_seq, abs_ack=abs_ack, options=options)

    def check(self, seg: Segment, flags: str, seq: int | None = None, ack: int | None = None,
              *, win: int | None = None, payload: bytes | None = None,
              length: int | None = None, abs_seq: int | None = None,
              abs_ack: int | None = None, options: Options | None = None) -> Segment:
        """Assert that ``seg`` (from the stack) has these fields; unchecked if None."""
        problems = []
        if seg.flags != flags_of(flags):
            problems.append(f"flags {seg!r} != {flags!r}")
        if seg.src_port != self.stack_port or seg.dst_port != self.port:
            problems.append(f"ports {seg.src_port}>{seg.dst_port}")
        want_seq = abs_seq if abs_seq is not None else (
            None if seq is None else self.iss_rel(seq))
        if want_seq is not None and seg.seq != want_seq:
            problems.append(f"seq {seg.seq} != {want_seq}")
        want_ack = abs_ack if abs_ack is not None else (None if ack is None else self.seq(ack))
        if want_ack is not None and seg.ack != want_ack:
            problems.append(f"ack {seg.ack} != {want_ack}")
        if win is not None and seg.window != win:
            problems.append(f"win {seg.window} != {win}")
        if payload is not None and seg.payload != payload:
            problems.append(f"payload {seg.payload[:20]!r}... ({len(seg.payload)} bytes)")
        if length is not None and len(seg.payload) != length:
            problems.append(f"length {len(seg.payload)} != {length}")
        if options is not None and seg.options != options:
            problems.append(f"options {seg.options!r} != {options!r}")
        if problems:
            raise AssertionError(f"{seg!r}: " + "; ".join(problems))
        return seg

    def expect_nothing(self) -> None:
        got = self.take()
        if got:
            raise AssertionError(f"expected silence, got {got!r}")

    def events(self) -> list:
        """Drain the stack's events."""
        out = []
        for _ in range(100_000):
            event = self.stack.next_event()
            if event is None:
                return out
            out.append(event)
        raise AssertionError("event queue does not drain")

    # ---------------------------------------------------------------- openings
    def stack_connects(self, *, syn_ack_options: Options = NO_OPTIONS,
                       win: int | None = None):
        """Active open by the stack, completed by the peer. Returns the Connection."""
        conn = self.stack.connect(self.remote, self.port, self.now, local_port=self.stack_port)
        syn = self.expect("S", ack=None, abs_ack=0)
        self.stack_iss = syn.seq
        self.send("S.", seq=0, ack=1, win=win, options=syn_ack_options)
        self.expect(".", seq=1, ack=1)
        return conn

    def peer_connects(self, *, syn_options: Options = NO_OPTIONS, win: int | None = None,
                      backlog: int | None = None):
        """Passive open by the stack (listening on ``stack_port``), the peer's handshake.
        Returns the accepted Connection."""
        listener = self.stack._listeners.get(self.stack_port)
        if listener is None:
            listener = self.stack.listen(self.stack_port, backlog)
        self.send("S", seq=0, win=win, options=syn_options)
        syn_ack = self.expect("S.", ack=1)
        self.stack_iss = syn_ack.seq
        self.send(".", seq=1, ack=1, win=win)
        self.expect_nothing()
        conn = listener.accept()
        if conn is None:
            raise AssertionError("handshake did not complete")
        return conn

    # ---------------------------------------------------------------- any state
    def drive_to(self, state) -> tuple:
        """Bring a connection with this peer to ``state`` (a `State`) by the shortest
        exchange, asserting each reply. Returns ``(conn, snd_nxt, rcv_nxt)``, the last two
        relative to the stack's ISS and the peer's ISN; ``conn`` is None for LISTEN.

        ESTABLISHED and later come from an active open by the stack; SYN-RECEIVED from a
        SYN to a listener.
        """
        S = State
        if state is S.LISTEN:
            self.stack.listen(self.stack_port)
            return None, 0, 0
        if state is S.SYN_SENT:
            conn = self.stack.connect(self.remote, self.port, self.now,
                                      local_port=self.stack_port)
            self.expect("S", abs_ack=0)
            return conn, 1, 0
        if state is S.SYN_RECEIVED:
            self.stack.listen(self.stack_port)
            self.send("S", seq=0)
            self.expect("S.", ack=1)
            return self.stack._conns[(self.remote, self.stack_port, self.port)], 1, 1
        conn = self.stack_connects()
        if state is S.ESTABLISHED:
            return conn, 1, 1
        if state in (S.CLOSE_WAIT, S.LAST_ACK):
            self.send("F.", seq=1, ack=1)
            self.expect(".", seq=1, ack=2)
            if state is S.LAST_ACK:
                conn.shutdown(self.now)
                self.expect("F.", seq=1, ack=2)
                return conn, 2, 2
            return conn, 1, 2
        conn.shutdown(self.now)
        self.expect("F.", seq=1, ack=1)
        if state is S.FIN_WAIT_1:
            return conn, 2, 1
        if state is S.CLOSING:
            self.send("F.", seq=1, ack=1)
            self.expect(".", seq=2, ack=2)
            return conn, 2, 2
        self.send(".", seq=1, ack=2)
        if state is S.FIN_WAIT_2:
            return conn, 2, 1
        if state is S.TIME_WAIT:
            self.send("F.", seq=1, ack=2)
            self.expect(".", seq=2, ack=2)
            return conn, 2, 2
        raise ValueError(f"cannot drive to {state}")
