"""Header prediction (`Connection._predicted`) must not change behaviour: the same
transfers, run once as usual and once with every segment forced through the full RFC 9293
3.10.7.4 path, send the same datagrams at the same times and post the same events."""

import random

import pytest

from atcp.config import Config
from atcp.core.connection import Connection
from atcp.core.stack import Stack
from atcp.core.states import State
from atcp.testing.link import Link

A, B = ("10.0.0.1", 5000), ("10.0.0.2", 5000)


def _transfer(cfg: Config, loss: float, reorder: float, seed: int, size: int,
              slow_reader: bool) -> tuple[list, list, bytes]:
    """Send ``size`` bytes a->b, read them, close both ends; return the link's datagram
    log, the events seen and the bytes received."""
    a = Stack(cfg, rng=random.Random(seed), secret=b"a" * 32)
    b = Stack(cfg, rng=random.Random(seed + 1), secret=b"b" * 32)
    link = Link(a, b, delay=0.002, loss=loss, reorder=reorder, seed=seed, addr_a=A, addr_b=B)
    listener = b.listen(80)
    client = a.connect(B, 80, 0.0)
    data = random.Random(seed).randbytes(size)
    server = None
    sent = 0
    got = bytearray()
    events = []
    for step in range(100_000):
        if server is None:
            server = listener.accept()
        if client.state is State.ESTABLISHED:
            if sent < size:
                sent += client.send(data[sent:sent + 40_000], link.now)
            else:
                client.shutdown(link.now)
        if server is not None and (not slow_reader or step % 5 == 0):
            got += server.read(2_000 if slow_reader else -1, link.now)
            if server.state is State.CLOSE_WAIT:
                server.close(link.now)
        for stack, name in ((a, "a"), (b, "b")):
            while (event := stack.next_event()) is not None:
                events.append((link.now, name, type(event).__name__))
        if not link.step():
            break
    return link.log, events, bytes(got)


CASES = [
    (Config(), 0.0, 0.0, 1, False),
    (Config(), 0.03, 0.05, 2, False),
    (Config(sack=False), 0.03, 0.0, 3, False),
    (Config(timestamps=False, pacing=False), 0.02, 0.05, 4, False),
    (Config(recv_buffer=12_000), 0.01, 0.0, 5, True),
]


@pytest.mark.parametrize("cfg, loss, reorder, seed, slow_reader", CASES)
def test_prediction_changes_nothing(monkeypatch, cfg, loss, reorder, seed, slow_reader):
    taken = {"data": 0, "ack": 0}
    fast_data, fast_ack = Connection._fast_data, Connection._fast_ack

    def counting_data(self, seg, now):
        taken["data"] += 1
        fast_data(self, seg, now)

    def counting_ack(self, seg, now):
        taken["ack"] += 1
        fast_ack(self, seg, now)

    monkeypatch.setattr(Connection, "_fast_data", counting_data)
    monkeypatch.setattr(Connection, "_fast_ack", counting_ack)
    predicted = _transfer(cfg, loss, reorder, seed, 150_000, slow_reader)
    monkeypatch.setattr(Connection, "_predicted", lambda self, seg, now: None)
    full = _transfer(cfg, loss, reorder, seed, 150_000, slow_reader)
    assert taken["data"] > 0 and taken["ack"] > 0   # the fast paths were exercised
    assert predicted[2] == full[2]
    assert predicted[1] == full[1]
    assert predicted[0] == full[0]


def _ping_pong(cfg: Config, loss: float, seed: int, rounds: int) -> tuple[list, list, bytes]:
    """Request/response: a sends a message, b echoes it, a waits for the echo, and so on,
    so that most data segments also acknowledge the previous message."""
    a = Stack(cfg, rng=random.Random(seed), secret=b"a" * 32)
    b = Stack(cfg, rng=random.Random(seed + 1), secret=b"b" * 32)
    link = Link(a, b, delay=0.002, loss=loss, seed=seed, addr_a=A, addr_b=B)
    listener = b.listen(80)
    client = a.connect(B, 80, 0.0)
    rng = random.Random(seed)
    server = None
    pending = b""
    echoed = bytearray()
    events = []
    for _ in range(200_000):
        if server is None:
            server = listener.accept()
        if client.state is State.ESTABLISHED and not pending and rounds:
            rounds -= 1
            pending = rng.randbytes(rng.choice((64, 700, 3000)))
            assert client.send(pending, link.now) == len(pending)
        if server is not None:
            request = server.read(-1, link.now)
            if request:
                assert server.send(request, link.now) == len(request)
        reply = client.read(-1, link.now)
        echoed += reply
        pending = pending[len(reply):]   # the next request once all of this one is back
        for stack, name in ((a, "a"), (b, "b")):
            while (event := stack.next_event()) is not None:
                events.append((link.now, name, type(event).__name__))
        if not link.step():
            break
    return link.log, events, bytes(echoed)


@pytest.mark.parametrize("cfg, loss, seed", [
    (Config(), 0.0, 7), (Config(), 0.05, 8), (Config(timestamps=False, sack=False), 0.03, 9),
    (Config(nodelay=True), 0.0, 10),
])
def test_prediction_of_data_that_acknowledges_changes_nothing(monkeypatch, cfg, loss, seed):
    taken = 0
    fast = Connection._fast_data_ack

    def counting(self, seg, now):
        nonlocal taken
        taken += 1
        fast(self, seg, now)

    monkeypatch.setattr(Connection, "_fast_data_ack", counting)
    predicted = _ping_pong(cfg, loss, seed, 300)
    monkeypatch.setattr(Connection, "_predicted", lambda self, seg, now: None)
    full = _ping_pong(cfg, loss, seed, 300)
    assert taken > 100   # most echoes and most requests after the first took it
    assert len(predicted[2]) > 0
    assert predicted[2] == full[2]
    assert predicted[1] == full[1]
    assert predicted[0] == full[0]
