"""What an idle stack and an idle connection keep: per-connection structures are slots, and
structures only some stacks need are made on first use (memory figures are in benchmarks/)."""

from __future__ import annotations

from atcp.core.connection import Connection
from atcp.core.reset import ChallengeAckLimiter
from atcp.core.stack import Stack
from atcp.core.states import State
from atcp.testing.link import Link
from atcp.testing.peer import new_stack


def _transfer_and_close() -> tuple[Connection, Connection]:
    a, b = new_stack(100), new_stack(200)
    link = Link(a, b, loss=0.05, seed=3)
    listener = b.listen(80)
    client = a.connect(link.addr_b, 80, 0.0)
    link.run(until=1.0)
    server = listener.accept()
    data = bytes(range(256)) * 400
    sent = 0
    for _ in range(10_000):
        if sent < len(data):
            sent += client.send(memoryview(data)[sent:], link.now)
        server.read(-1, link.now)
        if not link.step() and sent == len(data):
            break
    client.close(link.now)
    link.run(until=link.now + 5.0)
    server.close(link.now)
    link.run(until=link.now + 5.0)
    assert client.state is State.TIME_WAIT and server.state is State.CLOSED
    return client, server


def test_connection_fields_are_all_slots() -> None:
    # A field set outside __slots__ would give every connection a dict of its own again:
    # add it to Connection.__slots__.
    for conn in _transfer_and_close():
        assert vars(conn) == {}, sorted(vars(conn))


def test_fresh_stack_makes_nothing_it_may_never_use() -> None:
    stack, other = Stack(), Stack()
    assert stack._events is None and stack._tw_queue is None and len(stack._wheel) == 0
    # Stacks made without a config or an RNG share the default ones.
    assert stack.config is other.config and stack._rng is other._rng
    stack.connect(("192.0.2.9", 9), 80, 0.0)
    assert stack.next_event() is None and stack._events is None


def test_challenge_ack_limiter_keeps_its_times_from_the_first_challenge() -> None:
    limiter = ChallengeAckLimiter(2, 1.0)
    assert limiter._sent is None
    assert limiter.allow(0.0) and limiter.allow(0.1) and not limiter.allow(0.2)
    assert limiter.allow(1.05)
