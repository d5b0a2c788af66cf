"""Property tests of the core: reassembly against a byte-set model, and two stacks over a
lossy link driven by random application calls (hypothesis, seeded, bounded)."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from atcp.core.buffers import Reassembly
from atcp.core.states import State
from atcp.testing.link import Link
from atcp.testing.peer import new_stack

STREAM = bytes((i * 7 + 3) % 251 for i in range(2000))

# -- Reassembly ------------------------------------------------------------------------------

segments = st.lists(st.tuples(st.integers(0, 400), st.integers(0, 80)), max_size=60)


def _merged(offsets: set[int]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for o in sorted(offsets):
        if out and out[-1][1] == o:
            out[-1][1] += 1
        else:
            out.append([o, o + 1])
    return [(a, b) for a, b in out]


@settings(max_examples=300, deadline=None)
@given(segments)
def test_reassembly_delivers_each_byte_once_in_order(ops) -> None:
    """Segments (consistent slices of one stream) arrive in any order and overlap: the bytes
    delivered are exactly the stream's prefix, each once; what is held is what the model
    holds, and never more than was inserted."""
    reasm = Reassembly()
    delivered = bytearray()
    held: set[int] = set()         # the model: offsets held beyond the delivery point
    inserted = 0
    for start, length in ops:
        cursor = len(delivered)
        end = start + length
        data = STREAM[start:end]
        if start <= cursor:
            # In order (what Connection appends directly), then whatever it unblocks.
            if end > cursor:
                delivered += STREAM[cursor:end]
            for piece in reasm.pop_ready(len(delivered)):
                assert piece == STREAM[len(delivered):len(delivered) + len(piece)]
                delivered += piece
            # Nothing held may sit right at the new cursor: it would have been delivered.
            assert len(delivered) not in held
            held = {o for o in held if o >= len(delivered)}
        else:
            kept = reasm.add(start, data)
            new = set(range(start, end)) - held
            assert kept == len(new)
            held |= new
            inserted += length
        assert reasm.held == len(held)
        assert reasm.held <= inserted
        assert reasm.blocks(limit=1000) == _merged(held)
    assert bytes(delivered) == STREAM[:len(delivered)]


@given(st.lists(st.tuples(st.integers(1, 300), st.integers(1, 50)), max_size=40),
       st.randoms(use_true_random=False))
@settings(max_examples=200, deadline=None)
def test_reassembly_any_order_fills_completely(ops, rnd) -> None:
    """Whatever out-of-order pieces were held, the in-order segment covering the whole
    range releases exactly the held bytes that follow it contiguously."""
    reasm = Reassembly()
    for start, length in ops:
        reasm.add(start, STREAM[start:start + length])
    rnd.shuffle(ops)
    covered = set()
    for start, length in ops:
        covered |= set(range(start, start + length))
    pieces = reasm.pop_ready(1)
    got = b"".join(pieces)
    n = 0
    while 1 + n in covered:
        n += 1
    assert got == STREAM[1:1 + n]


def test_reassembly_clear_and_blocks_limit() -> None:
    reasm = Reassembly()
    for i in range(6):
        reasm.add(10 * i + 1, b"xx")
    assert reasm.blocks() == [(1, 3), (11, 13), (21, 23), (31, 33)]
    assert len(reasm) == 6
    reasm.clear()
    assert reasm.held == 0 and reasm.blocks() == [] and reasm.pop_ready(100) == []


# -- two stacks, random application calls ---------------------------------------------------


class TwoStacks(RuleBasedStateMachine):
    """Random sends, reads, half-closes and waits on both ends of a lossy, duplicating,
    reordering link. Delivered data is always a prefix of what was sent; nothing raises;
    at the end everything arrives and both ends close."""

    @initialize(seed=st.integers(0, 2**16))
    def setup(self, seed: int) -> None:
        self.a, self.b = new_stack(1000 + seed, seed=seed), new_stack(2**32 - 1 - seed,
                                                                      seed=seed + 1)
        self.link = Link(self.a, self.b, loss=0.08, duplicate=0.05, reorder=0.2, seed=seed)
        listener = self.b.listen(80)
        self.ca = self.a.connect(self.link.addr_b, 80, 0.0)
        self.link.run(until=60.0, stop=lambda: bool(listener.accept_queue))
        self.cb = listener.accept()
        assert self.cb is not None
        self.rng = random.Random(seed)
        self.sent = {"a": bytearray(), "b": bytearray()}       # written by each end
        self.got = {"a": bytearray(), "b": bytearray()}        # read by each end
        self.queued = {"a": b"", "b": b""}                      # not yet taken by send()
        self.shut = {"a": False, "b": False}

    def _conn(self, side: str):
        return self.ca if side == "a" else self.cb

    def _flush(self, side: str) -> None:
        conn = self._conn(side)
        if self.queued[side] and conn.error is None:
            n = conn.send(self.queued[side], self.link.now)
            self.sent[side] += self.queued[side][:n]
            self.queued[side] = self.queued[side][n:]

    @rule(side=st.sampled_from("ab"), size=st.integers(1, 6000))
    def write(self, side: str, size: int) -> None:
        if self.shut[side] or self.queued[side]:
            return
        self.queued[side] = self.rng.randbytes(size)
        self._flush(side)

    @rule(side=st.sampled_from("ab"), n=st.integers(-1, 5000))
    def read(self, side: str, n: int) -> None:
        other = "b" if side == "a" else "a"
        self.got[other] += self._conn(side).read(n, self.link.now)

    @precondition(lambda self: not (self.shut["a"] and self.shut["b"]))
    @rule(side=st.sampled_from("ab"))
    def shutdown(self, side: str) -> None:
        if self.shut[side] or self.queued[side]:
            return
        self.shut[side] = True
        self._conn(side).shutdown(self.link.now)

    @rule(dt=st.sampled_from([0.001, 0.01, 0.1, 1.0]))
    def wait(self, dt: float) -> None:
        self.link.run(until=self.link.now + dt)
        self._flush("a")
        self._flush("b")

    @invariant()
    def delivered_is_prefix_of_sent(self) -> None:
        for side in "ab":
            got, sent = self.got[side], self.sent[side]
            assert len(got) <= len(sent) and got == sent[:len(got)]

    @invariant()
    def no_errors(self) -> None:
        assert self.ca.error is None and self.cb.error is None

    def teardown(self) -> None:
        if not hasattr(self, "link"):
            return
        for _ in range(3000):
            self._flush("a")
            self._flush("b")
            for side in "ab":
                if not self.shut[side] and not self.queued[side]:
                    self.shut[side] = True
                    self._conn(side).shutdown(self.link.now)
            self.got["b"] += self.ca.read(-1, self.link.now)
            self.got["a"] += self.cb.read(-1, self.link.now)
            if self.shut["a"] and self.shut["b"] and self.ca.eof and self.cb.eof \
                    and self.a.connections == [] and self.b.connections == []:
                break
            self.link.run(until=self.link.now + 0.5)
        assert self.got == self.sent
        assert self.ca.error is None and self.cb.error is None
        states = {self.a.state_of(self.ca), self.b.state_of(self.cb)}
        assert states <= {State.TIME_WAIT, State.CLOSED}


TwoStacks.TestCase.settings = settings(
    max_examples=100, stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
test_two_stacks_random_calls = TwoStacks.TestCase
