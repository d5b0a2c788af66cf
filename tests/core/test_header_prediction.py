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
