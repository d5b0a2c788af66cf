"""`Connection._send_run` (runs of whole segments built at once) must send exactly what
`_send_new` would, one segment at a time: the same transfers, with and without it, send
the same datagrams at the same times and post the same events."""

import random

import pytest

from atcp.config import Config
from atcp.core.connection import Connection
from atcp.core.stack import Stack
from atcp.core.states import State
from atcp.testing.link import Link

A, B = ("10.0.0.1", 5000), ("10.0.0.2", 5000)


def _transfer(cfg: Config, loss: float, seed: int, size: int, both_ways: bool):
    a = Stack(cfg, rng=random.Random(seed), secret=b"a" * 32)
    b = Stack(cfg, rng=random.Random(seed + 1), secret=b"b" * 32)
    link = Link(a, b, delay=0.003, loss=loss, seed=seed, addr_a=A, addr_b=B)
    listener = b.listen(80)
    client = a.connect(B, 80, 0.0)
    up = random.Random(seed).randbytes(size)
    down = random.Random(seed + 7).randbytes(size // 2 if both_ways else 0)
    server = None
    sent_up = sent_down = 0
    got_up, got_down = bytearray(), bytearray()
    events = []
    for _ in range(200_000):
        if server is None:
            server = listener.accept()
        if client.state is State.ESTABLISHED:
            if sent_up < len(up):
                sent_up += client.send(up[sent_up:sent_up + 30_000], link.now)
            else:
                client.shutdown(link.now)
        if server is not None:
            if sent_down < len(down):
                sent_down += server.send(down[sent_down:sent_down + 20_000], link.now)
            got_up += server.read(-1, link.now)
            if server.state is State.CLOSE_WAIT:
                server.close(link.now)
        got_down += client.read(-1, link.now)
        for stack, name in ((a, "a"), (b, "b")):
            while (event := stack.next_event()) is not None:
                events.append((link.now, name, type(event).__name__))
        if not link.step():
            break
    assert bytes(got_up) == up and bytes(got_down) == down
    return link.log, events


def _one_at_a_time(self, off, count, mss, now):
    for _ in range(count):
        self._send_new(off, mss, now)
        off += mss


CASES = [
    (Config(), 0.0, 1, False),
    (Config(), 0.03, 2, True),
    (Config(timestamps=False, sack=False), 0.02, 3, False),
    (Config(pacing=False), 0.01, 4, True),
    (Config(congestion="newreno", pacing=False), 0.05, 5, False),
]


@pytest.mark.parametrize("cfg, loss, seed, both_ways", CASES)
def test_runs_send_what_single_segments_would(monkeypatch, cfg, loss, seed, both_ways):
    runs = 0
    send_run = Connection._send_run

    def counting(self, off, count, mss, now):
        nonlocal runs
        runs += 1
        send_run(self, off, count, mss, now)

    monkeypatch.setattr(Connection, "_send_run", counting)
    batched = _transfer(cfg, loss, seed, 200_000, both_ways)
    monkeypatch.setattr(Connection, "_send_run", _one_at_a_time)
    single = _transfer(cfg, loss, seed, 200_000, both_ways)
    assert runs > 5
    assert batched[1] == single[1]
    assert batched[0] == single[0]
