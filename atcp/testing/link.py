"""Two sans-I/O stacks joined by a simulated link, for deterministic tests.

`Link` carries datagrams between two `Stack` objects on a fake clock, with seeded loss,
duplication, reordering and a fixed one-way delay. Nothing here sleeps or opens a socket:
`run` jumps the clock from one event (a datagram's arrival or a timer) to the next.
"""

from __future__ import annotations

import heapq
import itertools
import random

from ..core.stack import Stack
from ..core.states import State

__all__ = ["Link"]


class Link:
    def __init__(self, a: Stack, b: Stack, *, delay: float = 0.005, loss: float = 0.0,
                 duplicate: float = 0.0, reorder: float = 0.0, seed: int = 1,
                 addr_a=("10.0.0.1", 5000), addr_b=("10.0.0.2", 5000), now: float = 0.0,
                 batch: bool = False):
        self.a, self.b = a, b
        # batch: hand each stack what arrives in the same instant in one `receive_batch`,
        # as the asyncio endpoint does with one drain of its socket.
        self.batch = batch
        self.addr_a, self.addr_b = addr_a, addr_b
        self.delay = delay
        self.loss, self.duplicate, self.reorder = loss, duplicate, reorder
        self.rng = random.Random(seed)
        self.now = now
        self._queue: list = []
        self._order = itertools.count()
        self.sent = {id(a): 0, id(b): 0}
        self.dropped = 0
        self.log: list[tuple[float, str, bytes]] = []
        self.drop_next: list = []   # predicates: lambda raw: bool, consumed on match

    def _collect(self) -> None:
        for src, dst, dst_addr, src_addr, name in (
                (self.a, self.b, self.addr_b, self.addr_a, "a>b"),
                (self.b, self.a, self.addr_a, self.addr_b, "b>a")):
            for raw, remote in src.datagrams_to_send():
                self.log.append((self.now, name, raw))
                self.sent[id(src)] += 1
                if remote != dst_addr:
                    continue   # addressed elsewhere: nobody there
                hit = next((p for p in self.drop_next if p(raw)), None)
                if hit is not None:
                    self.drop_next.remove(hit)
                    self.dropped += 1
                    continue
                if self.loss and self.rng.random() < self.loss:
                    self.dropped += 1
                    continue
                copies = 2 if self.duplicate and self.rng.random() < self.duplicate else 1
                for _ in range(copies):
                    delay = self.delay
                    if self.reorder and self.rng.random() < self.reorder:
                        delay += self.delay * 2 * self.rng.random()
                    heapq.heappush(self._queue, (self.now + delay, next(self._order), dst,
                                                 raw, src_addr))

    def step(self) -> bool:
        """Advance to the next arrival or timer; False when nothing is left to happen."""
        self._collect()
        candidates = [t for t in (self.a.next_deadline(), self.b.next_deadline())
                      if t is not None]
        if self._queue:
            candidates.append(self._queue[0][0])
        if not candidates:
            return False
        self.now = max(self.now, min(candidates))
        if self.batch:
            arrived: dict = {}
            while self._queue and self._queue[0][0] <= self.now:
                _, _, dst, raw, src_addr = heapq.heappop(self._queue)
                arrived.setdefault(dst, []).append((raw, src_addr))
            for dst, datagrams in arrived.items():
                dst.receive_batch(datagrams, self.now)
            self._collect()
        while self._queue and self._queue[0][0] <= self.now:
            _, _, dst, raw, src_addr = heapq.heappop(self._queue)
            dst.receive(raw, src_addr, self.now)
            self._collect()
        self.a.poll(self.now)
        self.b.poll(self.now)
        self._collect()
        return True

    def open(self, port: int = 80, *, timeout: float = 60.0):
        """Open a connection from ``a`` to a new listener on ``b``'s ``port`` and run the
        link until ``b`` has accepted it: returns (client, server), both ESTABLISHED.
        Raises RuntimeError if that takes more than ``timeout`` seconds of link time."""
        listener = self.b.listen(port)
        client = self.a.connect(self.addr_b, port, self.now)
        self.run(until=self.now + timeout,
                 stop=lambda: listener.accept_queue and client.state is State.ESTABLISHED)
        server = listener.accept()
        if server is None or client.state is not State.ESTABLISHED:
            raise RuntimeError(f"the connection did not open within {timeout} s")
        return client, server

    def run(self, until: float | None = None, max_steps: int = 1_000_000, stop=None) -> None:
        """Step until ``stop()`` is true, time passes ``until``, or nothing is left."""
        for _ in range(max_steps):
            if stop is not None and stop():
                return
            self._collect()
            nxt = [t for t in (self.a.next_deadline(), self.b.next_deadline()) if t is not None]
            if self._queue:
                nxt.append(self._queue[0][0])
            if not nxt:
                return
            if until is not None and min(nxt) > until:
                self.now = until
                return
            self.step()
        raise RuntimeError("Link.run did not settle within max_steps")
