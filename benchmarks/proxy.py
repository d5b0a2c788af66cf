"""A seeded UDP impairment proxy, run as its own process between client and server.

    python -m benchmarks.proxy --upstream 127.0.0.1:PORT [--loss 0.01] [--delay 0.01] ...

Theory of operation
-------------------
Clients send to the proxy's front socket. For every client address the proxy opens one back
socket connected to the server, so the server sees one distinct UDP peer per client, exactly
as without the proxy. Each direction (client->server "fwd", server->client "rev") has its own
`Impairment`, seeded from ``--seed`` and the direction, which decides for each datagram
whether it is lost and when each copy of it departs.

``--upstream`` may be given several times: the proxy then opens one front socket per
server (their ports, in order, are ``"ports"`` in the ready line) and every flow, whichever
server it goes to, passes through the same two `Impairment` objects, so they compete for one
rate limiter and one queue, like flows through one bottleneck router.

The hot path reads sockets directly: one ``epoll`` wait, then every readable socket is
drained with ``recvfrom`` until it would block (bounded per pass), and a datagram due now is
sent at once with ``sendto``; only delayed datagrams go through a heap. No asyncio, so the
proxy costs a few microseconds of CPU per datagram; its CPU time and counters are printed as
JSON on exit so every run shows how busy the link itself was.

The impairments, in the order a datagram meets them:

* loss: independent (``loss``), or Gilbert-Elliott bursts: a two-state Markov chain, good to
  bad with probability ``ge_p`` and bad to good with ``ge_r`` per datagram, losing with
  ``ge_loss_good`` in the good state and ``ge_loss_bad`` in the bad one. Both may be on.
* duplication: a second copy with probability ``duplicate``.
* rate limit: a FIFO serializer of ``rate`` bytes/s with a tail-drop queue of ``queue``
  bytes (a datagram that would wait longer than ``queue / rate`` is dropped).
* delay and jitter: one-way ``delay`` plus a uniform ``[-jitter, +jitter]``; departures stay
  in order (jitter alone does not reorder).
* reordering: with probability ``reorder`` a datagram is held ``reorder_gap`` longer than its
  departure, so the ones behind it overtake it.

Protocol with the runner: the first line on stdout is ``{"ready": port, "ports": [...]}``
(``ready`` is the first front port); the proxy stops when its stdin closes (or on SIGTERM)
and then prints one JSON line of statistics.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import json
import os
import random
import resource
import select
import signal
import socket
import sys
import time

__all__ = ["Impairment", "Proxy", "main"]

_DRAIN_BATCH = 512       # datagrams read from one socket per wake-up, to stay fair to the other
_SOCKET_BUFFER = 4 << 20  # bytes; SO_*BUFFORCE as root, so bursts are queued, not dropped


@dataclasses.dataclass
class Impairment:
    """What one direction of the link does to datagrams; decisions come from a seeded RNG."""

    loss: float = 0.0
    ge_p: float = 0.0
    ge_r: float = 1.0
    ge_loss_good: float = 0.0
    ge_loss_bad: float = 1.0
    duplicate: float = 0.0
    rate: float = 0.0          # bytes per second; 0 is unlimited
    queue: int = 256 * 1024    # bytes the rate limiter may hold
    delay: float = 0.0         # one-way, seconds
    jitter: float = 0.0
    reorder: float = 0.0
    reorder_gap: float = 0.001
    seed: int = 1

    def __post_init__(self) -> None:
        for name in ("loss", "ge_p", "ge_r", "ge_loss_good", "ge_loss_bad", "duplicate",
                     "reorder"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability, got {getattr(self, name)}")
        for name in ("rate", "delay", "jitter", "reorder_gap"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        self._rng = random.Random(self.seed)
        self._bad = False
        self._busy_until = 0.0     # when the rate limiter's serializer is free again
        self._last_departure = 0.0
        self.passed = self.lost = self.burst_lost = self.queue_dropped = 0
        self.duplicated = self.reordered = 0

    @property
    def is_transparent(self) -> bool:
        """True when every datagram leaves at once, unchanged: the proxy's fast path."""
        return not (self.loss or self.ge_p or self.ge_loss_good or self.duplicate
                    or self.rate or self.delay or self.jitter or self.reorder)

    def departures(self, now: float, size: int) -> list[float]:
        """When each copy of a datagram of ``size`` bytes arriving at ``now`` leaves
        (empty when it is lost)."""
        rng = self._rng
        if self.ge_p:
            self._bad = (rng.random() >= self.ge_r) if self._bad else (rng.random() < self.ge_p)
            if rng.random() < (self.ge_loss_bad if self._bad else self.ge_loss_good):
                self.burst_lost += 1
                return []
        if self.loss and rng.random() < self.loss:
            self.lost += 1
            return []
        copies = 1
        if self.duplicate and rng.random() < self.duplicate:
            copies = 2
            self.duplicated += 1
        out = []
        for _ in range(copies):
            t = now
            if self.rate:
                start = max(now, self._busy_until)
                if (start - now) * self.rate > self.queue + 1e-6:
                    self.queue_dropped += 1
                    continue
                self._busy_until = t = start + size / self.rate
            if self.delay or self.jitter:
                t += max(0.0, self.delay + self.jitter * (2.0 * rng.random() - 1.0))
            if t < self._last_departure:
                t = self._last_departure
            if self.reorder and rng.random() < self.reorder:
                t += self.reorder_gap
                self.reordered += 1
            else:
                self._last_departure = t
            out.append(t)
        if out:
            self.passed += 1
        return out

    def counters(self) -> dict:
        return {"passed": self.passed, "lost": self.lost, "burst_lost": self.burst_lost,
                "queue_dropped": self.queue_dropped, "duplicated": self.duplicated,
                "reordered": self.reordered}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _big_buffers(sock: socket.socket) -> None:
    for force, plain in ((getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF),
                         (getattr(socket, "SO_SNDBUFFORCE", None), socket.SO_SNDBUF)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force if force is not None else plain,
                            _SOCKET_BUFFER)
        except (OSError, TypeError):
            sock.setsockopt(socket.SOL_SOCKET, plain, _SOCKET_BUFFER)


class _Front:
    """One front socket, the server behind it, and a back socket per client address."""

    __slots__ = ("sock", "upstream", "backs")

    def __init__(self, sock: socket.socket, upstream: tuple[str, int]) -> None:
        self.sock = sock
        self.upstream = upstream
        self.backs: dict[object, socket.socket] = {}


class Proxy:
    """The forwarding loop; see the module docstring."""

    def __init__(self, upstream: tuple[str, int] | list[tuple[str, int]], fwd: Impairment,
                 rev: Impairment, listen: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self.upstreams = list(upstream) if isinstance(upstream, list) else [upstream]
        self.fwd, self.rev = fwd, rev
        self._fwd_transparent = fwd.is_transparent
        self._rev_transparent = rev.is_transparent
        family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
        self.family = family
        self._epoll = select.epoll()
        # One front socket per upstream; a later front takes the next free port.
        self.fronts: list[_Front] = []
        for server in self.upstreams:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.bind(listen if not self.fronts else (listen[0], 0))
            sock.setblocking(False)
            _big_buffers(sock)
            self.fronts.append(_Front(sock, server))
            self._epoll.register(sock.fileno(), select.EPOLLIN)
        self.front = self.fronts[0].sock
        self.port = self.front.getsockname()[1]
        self.ports = [f.sock.getsockname()[1] for f in self.fronts]
        self._front_by_fd = {f.sock.fileno(): f for f in self.fronts}
        self._by_fd: dict[int, tuple[socket.socket, object, _Front]] = {}   # back sockets
        self._heap: list = []
        self._order = 0
        self.forwarded = {"fwd": 0, "rev": 0}
        self.bytes = {"fwd": 0, "rev": 0}
        self.send_errors = 0
        self.stopping = False
        self.cpu_base = _cpu()
        self.started = time.monotonic()

    def _back_for(self, front: _Front, client) -> socket.socket:
        back = front.backs.get(client)
        if back is None:
            back = socket.socket(self.family, socket.SOCK_DGRAM)
            back.bind((front.sock.getsockname()[0], 0))
            back.connect(front.upstream)
            back.setblocking(False)
            _big_buffers(back)
            front.backs[client] = back
            self._by_fd[back.fileno()] = (back, client, front)
            self._epoll.register(back.fileno(), select.EPOLLIN)
        return back

    def _send(self, sock: socket.socket, data: bytes, addr, direction: str) -> None:
        try:
            if addr is None:
                sock.send(data)
            else:
                sock.sendto(data, addr)
        except (BlockingIOError, ConnectionRefusedError, OSError):
            # A full socket buffer or a closed peer: the datagram is lost, and counted.
            self.send_errors += 1
            return
        self.forwarded[direction] += 1
        self.bytes[direction] += len(data)

    def _admit(self, imp: Impairment, now: float, sock, data: bytes, addr, direction) -> None:
        if imp.is_transparent:
            imp.passed += 1
            self._send(sock, data, addr, direction)
            return
        for t in imp.departures(now, len(data)):
            if t <= now:
                self._send(sock, data, addr, direction)
            else:
                self._order += 1
                heapq.heappush(self._heap, (t, self._order, sock, data, addr, direction))

    def _drain_front(self, front: _Front, now: float) -> None:
        fwd = self.fwd
        if self._fwd_transparent:
            self._relay_fast(front, front.sock.recvfrom, "fwd")
            return
        for _ in range(_DRAIN_BATCH):
            try:
                data, client = front.sock.recvfrom(65536)
            except BlockingIOError:
                return
            self._admit(fwd, now, self._back_for(front, client), data, None, "fwd")

    def _drain_back(self, back: socket.socket, client, front: _Front, now: float) -> None:
        rev = self.rev
        if self._rev_transparent:
            self._relay_fast(front, back.recv, "rev", client)
            return
        for _ in range(_DRAIN_BATCH):
            try:
                data = back.recv(65536)
            except BlockingIOError:
                return
            except ConnectionRefusedError:
                continue   # ICMP from a server that has gone: nothing to forward
            self._admit(rev, now, front.sock, data, client, "rev")

    def _relay_fast(self, front: _Front, receive, direction: str, client=None) -> None:
        """The unimpaired path: forward at once, with as little Python per datagram as
        possible (this loop bounds the proxy's ceiling)."""
        count = nbytes = errors = 0
        backs, sendto = front.backs, front.sock.sendto
        for _ in range(_DRAIN_BATCH):
            try:
                if client is None:
                    data, source = receive(65536)
                else:
                    data = receive(65536)
            except BlockingIOError:
                break
            except ConnectionRefusedError:
                continue
            try:
                if client is None:
                    back = backs.get(source) or self._back_for(front, source)
                    back.send(data)
                else:
                    sendto(data, client)
            except OSError:
                errors += 1
                continue
            count += 1
            nbytes += len(data)
        self.forwarded[direction] += count
        self.bytes[direction] += nbytes
        self.send_errors += errors
        (self.fwd if direction == "fwd" else self.rev).passed += count

    def _release_due(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, sock, data, addr, direction = heapq.heappop(heap)
            self._send(sock, data, addr, direction)

    def run(self, stop_fd: int | None = None, until: float | None = None) -> None:
        """Forward until ``stop_fd`` reaches EOF, ``until`` (monotonic) passes, or `stop`."""
        if stop_fd is not None:
            self._epoll.register(stop_fd, select.EPOLLIN | select.EPOLLHUP)
        fronts = self._front_by_fd
        clock = time.monotonic
        while not self.stopping:
            now = clock()
            if until is not None and now >= until:
                break
            timeout = 0.2
            if self._heap:
                timeout = min(timeout, max(0.0, self._heap[0][0] - now))
            for fd, _ in self._epoll.poll(timeout):
                now = clock()
                front = fronts.get(fd)
                if front is not None:
                    self._drain_front(front, now)
                elif fd == stop_fd:
                    if not os.read(stop_fd, 4096):
                        self.stopping = True
                else:
                    back, client, front = self._by_fd[fd]
                    self._drain_back(back, client, front, now)
            if self._heap:
                self._release_due(clock())

    def stop(self) -> None:
        self.stopping = True

    def stats(self) -> dict:
        """Counters, and the CPU seconds spent since the proxy was made (start-up and
        imports excluded) over the wall seconds it ran."""
        return {"forwarded": self.forwarded, "bytes": self.bytes,
                "send_errors": self.send_errors,
                "clients": sum(len(f.backs) for f in self.fronts),
                "fwd": self.fwd.counters(), "rev": self.rev.counters(),
                "cpu": _cpu() - self.cpu_base, "wall": time.monotonic() - self.started}

    def close(self) -> None:
        for front in self.fronts:
            for back in front.backs.values():
                back.close()
            front.sock.close()
        self._epoll.close()


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Seeded UDP impairment proxy.")
    p.add_argument("--upstream", type=_hostport, action="append", required=True,
                   help="server HOST:PORT; repeat for one front port per server, all "
                        "sharing the link")
    p.add_argument("--listen", type=_hostport, default=("127.0.0.1", 0))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--loss", type=float, default=0.0, help="independent loss, each way")
    p.add_argument("--ge-p", type=float, default=0.0, help="Gilbert-Elliott good->bad")
    p.add_argument("--ge-r", type=float, default=1.0, help="Gilbert-Elliott bad->good")
    p.add_argument("--ge-loss-good", type=float, default=0.0)
    p.add_argument("--ge-loss-bad", type=float, default=1.0)
    p.add_argument("--duplicate", type=float, default=0.0)
    p.add_argument("--rate", type=float, default=0.0, help="bytes/s each way, 0: unlimited")
    p.add_argument("--queue", type=int, default=256 * 1024, help="rate limiter queue, bytes")
    p.add_argument("--delay", type=float, default=0.0, help="one-way delay, seconds")
    p.add_argument("--jitter", type=float, default=0.0, help="seconds, uniform +-")
    p.add_argument("--reorder", type=float, default=0.0)
    p.add_argument("--reorder-gap", type=float, default=0.001)
    p.add_argument("--one-way", action="store_true",
                   help="impair only client->server (the reverse path stays clean)")
    return p.parse_args(argv)


def impairments(args: argparse.Namespace) -> tuple[Impairment, Impairment]:
    spec = dict(loss=args.loss, ge_p=args.ge_p, ge_r=args.ge_r, ge_loss_good=args.ge_loss_good,
                ge_loss_bad=args.ge_loss_bad, duplicate=args.duplicate, rate=args.rate,
                queue=args.queue, delay=args.delay, jitter=args.jitter, reorder=args.reorder,
                reorder_gap=args.reorder_gap)
    fwd = Impairment(**spec, seed=args.seed * 2)
    if args.one_way:
        rev = Impairment(delay=args.delay, seed=args.seed * 2 + 1)
    else:
        rev = Impairment(**spec, seed=args.seed * 2 + 1)
    return fwd, rev


def main(argv=None) -> int:
    args = parse_args(argv)
    fwd, rev = impairments(args)
    proxy = Proxy(args.upstream, fwd, rev, args.listen)
    signal.signal(signal.SIGTERM, lambda *_: proxy.stop())
    print(json.dumps({"ready": proxy.port, "ports": proxy.ports}), flush=True)
    try:
        proxy.run(stop_fd=sys.stdin.fileno())
    finally:
        print(json.dumps(proxy.stats()), flush=True)
        proxy.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
