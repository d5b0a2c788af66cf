"""Soak test: many concurrent connections over a lossy loopback, checked byte for byte.

``clients`` tasks each open connection after connection to one server, over real UDP
sockets on 127.0.0.1, with loss, duplication and reordering injected on every endpoint
(`atcp.Impairment`), until ``duration`` seconds have passed. Each connection (a *session*)
draws a size for each direction and a way to end:

* ``close``: the client sends its data; the server answers with the SHA-256 of what it got
  and its own data, then closes; the client checks both and closes.
* ``half-close``: the same, but the client half-closes after its data and the server reads
  to EOF before answering (write_eof / shutdown).
* ``client-abort``: the client aborts (RST) partway through its data; the server must end
  with a reset (or, should the RST be lost, a keep-alive timeout) having received a
  prefix of the data.
* ``server-abort``: the server aborts partway through its answer; likewise at the client.

Data comes from a seeded generator, so every receiver checks what it got against what the
sender sent (a prefix, for the aborted ones) by SHA-256. A session that has not ended
after ``session_timeout`` seconds is *stuck* and fails the soak. After the last session,
the server closes and every endpoint releases its socket once TIME-WAIT is over; then the
count of live objects (``gc``) and the memory traced since the start (``tracemalloc``)
must be back where they were after a warm-up round.

Run the long version with::

    python -m atcp.testing.soak --minutes 10
    python -m atcp.testing.soak --clients 500 --minutes 30 --loss 0.1 --uvloop

It prints a summary and exits non-zero if anything failed. tests/robustness/test_robust_soak.py
runs a short one.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import hashlib
import random
import struct
import sys
import time
import tracemalloc
from dataclasses import dataclass, field

from ..aio.streams import open_connection, start_server
from ..config import Config
from ..impair import Impairment

__all__ = ["SoakReport", "soak", "main", "STYLES"]

STYLES = ("close", "half-close", "client-abort", "server-abort")
_HEADER = struct.Struct("!BQQQ")   # style, seed, client bytes, server bytes
_CHUNK = 32 * 1024


def _data(seed: int, side: int, size: int) -> bytes:
    """``size`` bytes of a session's stream; a shorter call gives a prefix of a longer."""
    rng = random.Random(seed * 2 + side)
    return b"".join(rng.randbytes(_CHUNK) for _ in range(-(-size // _CHUNK)))[:size]


@dataclass
class SoakReport:
    """What a soak did, and everything that went wrong."""

    sessions: collections.Counter = field(default_factory=collections.Counter)
    bytes_up: int = 0
    bytes_down: int = 0
    failures: list[str] = field(default_factory=list)
    stuck: int = 0
    server_endings: collections.Counter = field(default_factory=collections.Counter)
    objects_before: int = 0
    objects_after: int = 0
    object_growth: list[tuple[str, int]] = field(default_factory=list)
    traced_after: int = 0
    traced_top: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    endpoints_left: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures and not self.stuck

    def summary(self) -> str:
        total = sum(self.sessions.values())
        lines = [
            f"{total} sessions in {self.elapsed:.1f} s: "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.sessions.items())),
            f"{self.bytes_up / 1e6:.1f} MB up, {self.bytes_down / 1e6:.1f} MB down, "
            "every byte SHA-256 checked",
            "server saw: " + ", ".join(f"{k} {v}" for k, v in sorted(
                self.server_endings.items())),
            f"stuck: {self.stuck}, failures: {len(self.failures)}",
            f"objects: {self.objects_before} before, {self.objects_after} after; "
            f"memory traced since the warm-up and still held: {self.traced_after} bytes; "
            f"endpoints left open: {self.endpoints_left}",
        ]
        if self.object_growth:
            lines.append("object growth: " + ", ".join(f"{n} +{d}"
                                                       for n, d in self.object_growth))
        lines += [f"  still traced: {t}" for t in self.traced_top]
        lines += [f"FAIL {f}" for f in self.failures]
        return "\n".join(lines)


class _Soak:
    def __init__(self, *, clients, duration, max_size, impairment, config, seed,
                 session_timeout, report: SoakReport) -> None:
        self.clients = clients
        self.duration = duration
        self.max_size = max_size
        self.impairment = impairment
        self.config = config
        self.rng = random.Random(seed)
        self.session_timeout = session_timeout
        self.report = report
        self.port = 0
        self.server = None
        self.handlers: set[asyncio.Task] = set()
        #: The client side of each session in progress, by its TCP port (diagnostics).
        self.client_side: dict[int, object] = {}

    def _impair(self) -> Impairment | None:
        imp = self.impairment
        if imp is None:
            return None
        return Impairment(loss=imp.loss, duplicate=imp.duplicate, reorder=imp.reorder,
                          delay=imp.delay, jitter=imp.jitter,
                          seed=self.rng.getrandbits(32))

    def _fail(self, what: str) -> None:
        self.report.failures.append(what)

    # ---------------------------------------------------------------- server side
    async def serve(self, reader, writer) -> None:
        self.handlers.add(asyncio.current_task())
        try:
            await asyncio.wait_for(self._serve(reader, writer), self.session_timeout)
        except TimeoutError:
            self.report.stuck += 1
            port = writer.get_extra_info("tcp_ports", (0, 0))[1]
            client = self.client_side.get(port)
            self._fail(f"server session stuck: {_describe(writer)}; its client: "
                       f"{_describe(client) if client is not None else 'gone'}")
            writer.transport.abort()
        finally:
            self.handlers.discard(asyncio.current_task())

    async def _serve(self, reader, writer) -> None:
        try:
            header = await reader.readexactly(_HEADER.size)
        except (asyncio.IncompleteReadError, OSError) as exc:
            self.report.server_endings[type(exc).__name__ + " before header"] += 1
            writer.close()
            return
        style_i, seed, up, down = _HEADER.unpack(header)
        style = STYLES[style_i]
        got = hashlib.sha256()
        n = 0
        ended = "eof"
        try:
            # A half-closed session is read to its EOF, an aborted one to its end (a
            # reset, or a keep-alive timeout should the RST be lost).
            while n < up or style in ("half-close", "client-abort"):
                chunk = await reader.read(min(_CHUNK, max(up - n, 1)))
                if not chunk:
                    break
                got.update(chunk)
                n += len(chunk)
        except OSError as exc:
            ended = type(exc).__name__
        expected = hashlib.sha256(_data(seed, 0, up)[:n]).digest()
        if n > up or got.digest() != expected:
            self._fail(f"server got {n} bytes of a {style} session that differ from the "
                       f"{up} sent")
        if style == "client-abort":
            self.report.server_endings[ended] += 1
            if ended == "eof" and n == up:
                self._fail("server saw a clean end of an aborted session")
            writer.transport.abort()
            return
        if n != up or ended != "eof":
            self._fail(f"server got {n} of {up} bytes ({style}, {ended})")
            writer.transport.abort()
            return
        self.report.server_endings["complete"] += 1
        answer = _data(seed, 1, down)
        try:
            writer.write(got.digest())
            if style == "server-abort":
                writer.write(answer[:down // 2])
                await writer.drain()
                writer.transport.abort()
                return
            for i in range(0, down, _CHUNK):
                writer.write(answer[i:i + _CHUNK])
                await writer.drain()
            writer.close()
            await writer.wait_closed()
        except OSError as exc:
            self._fail(f"server could not answer a {style} session: {exc!r}")

    # ---------------------------------------------------------------- client side
    async def client(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(1_000_000):
            if loop.time() >= deadline:
                return
            style = self.rng.choice(STYLES)
            seed = self.rng.getrandbits(40)
            up = self._size()
            down = self._size()
            try:
                await asyncio.wait_for(self._session(style, seed, up, down),
                                       self.session_timeout)
            except TimeoutError:
                self.report.stuck += 1
                self._fail(f"client session stuck ({style}, {up} up, {down} down)")
            self.report.sessions[style] += 1

    def _size(self) -> int:
        # Log-uniform: many small sessions, some large ones.
        return int(self.max_size ** self.rng.random()) - 1

    async def _session(self, style: str, seed: int, up: int, down: int) -> None:
        try:
            reader, writer = await open_connection("127.0.0.1", self.port, config=self.config,
                                                   impairment=self._impair())
        except OSError as exc:
            self._fail(f"connect failed: {exc!r}")
            return
        data = _data(seed, 0, up)
        port = writer.get_extra_info("tcp_ports")[0]
        self.client_side[port] = writer
        try:
            await self._client_session(reader, writer, style, seed, up, down, data)
        finally:
            self.client_side.pop(port, None)

    async def _client_session(self, reader, writer, style, seed, up, down, data) -> None:
        try:
            writer.write(_HEADER.pack(STYLES.index(style), seed, up, down))
            if style == "client-abort":
                writer.write(data[:up // 2])
                await writer.drain()
                # Mostly mid-transfer; at once, the server may never see the connection
                # (reset before accept() took it, as with BSD kernels).
                await asyncio.sleep(self.rng.random() * 0.3)
                writer.transport.abort()
                self.report.bytes_up += up // 2
                return
            for i in range(0, up, _CHUNK):
                writer.write(data[i:i + _CHUNK])
                await writer.drain()
            if style == "half-close":
                writer.write_eof()
            self.report.bytes_up += up
            await self._check_answer(reader, style, seed, data, down)
        except OSError as exc:
            self._fail(f"client {style} session failed: {exc!r}")
            writer.transport.abort()
            return
        writer.close()
        try:
            await writer.wait_closed()
        except OSError as exc:
            if style != "server-abort":    # there, wait_closed() repeats the reset
                self._fail(f"client {style} close failed: {exc!r}")

    async def _check_answer(self, reader, style, seed, data, down) -> None:
        digest = hashlib.sha256(data).digest()
        got = hashlib.sha256()
        n = 0
        ended = "eof"
        try:
            head = await reader.readexactly(32)
            if head != digest:
                self._fail(f"server's digest of a {style} session is wrong")
            while True:
                chunk = await reader.read(_CHUNK)
                if not chunk:
                    break
                got.update(chunk)
                n += len(chunk)
        except asyncio.IncompleteReadError:
            ended = "incomplete"
        except OSError as exc:
            ended = type(exc).__name__
        if n > down or got.digest() != hashlib.sha256(_data(seed, 1, down)[:n]).digest():
            self._fail(f"client got {n} bytes of a {style} answer that differ from those sent")
        if style == "server-abort":
            if ended == "eof" and n == down and down:
                self._fail("client saw a clean end of an aborted answer")
            return
        if ended != "eof" or n != down:
            self._fail(f"client got {n} of {down} bytes of a {style} answer ({ended})")
        self.report.bytes_down += n

    # ---------------------------------------------------------------- the run
    async def start(self) -> None:
        self.server = await start_server(self.serve, "127.0.0.1", 0, config=self.config,
                                         impairment=self._impair(), backlog=4096)
        self.port = self.server.addresses[0][1]

    async def run(self, duration: float) -> None:
        deadline = asyncio.get_running_loop().time() + duration
        await asyncio.gather(*(self.client(deadline) for _ in range(self.clients)))
        for _ in range(100):          # handlers finishing what their clients left
            if not self.handlers:
                break
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        self.server.close()
        self.server.close_clients()
        await asyncio.wait_for(self.server.wait_closed(), self.session_timeout)


def _describe(writer) -> str:
    """The state of a session's connection, for the report of a stuck one."""
    transport = writer.transport
    conn = getattr(transport, "connection", None)
    if conn is None:
        return repr(transport)
    info = transport.get_extra_info("tcp_info")
    return (f"{transport!r} closing={transport.is_closing()} unread={conn.readable()} "
            f"eof={conn.eof} {info}")


def _counts() -> collections.Counter:
    gc.collect()
    return collections.Counter(type(o).__name__ for o in gc.get_objects())


async def _settle(config: Config) -> None:
    """Wait for client endpoints to leave TIME-WAIT and close their sockets."""
    await asyncio.sleep(2 * config.msl + 0.5)
    for _ in range(20):
        gc.collect()
        await asyncio.sleep(0.05)


async def soak(*, clients: int = 200, duration: float = 20.0, max_size: int = 200_000,
               loss: float = 0.05, duplicate: float = 0.05, reorder: float = 0.05,
               seed: int = 1, session_timeout: float = 60.0, config: Config | None = None,
               trace_memory: bool = True) -> SoakReport:
    """Run a soak on the running loop and return its report (see the module docstring)."""
    # TIME-WAIT (2*MSL) must outlast the server's RTO, which a loaded loop stretches to
    # seconds, twice over: a client whose last ACK was lost must still be there to answer
    # the retransmitted FIN even when that one is lost too. Once its TIME-WAIT ends the
    # client's UDP socket closes, and a FIN retried after that meets silence, not a RST,
    # until the server times out. rto_max and data_retries bound how long a peer that is
    # gone is retried; keep-alive ends a reader whose peer vanished with its RST lost.
    config = config or Config(msl=2.0, rto_min=0.05, rto_max=2.0, data_retries=8,
                              keepalive=True, keepalive_idle=2.0, keepalive_interval=0.5,
                              keepalive_probes=6)
    impairment = Impairment(loss=loss, duplicate=duplicate, reorder=reorder)
    report = SoakReport()
    started = time.monotonic()
    # Warm-up: every code path once, so that caches, interned strings and lazily created
    # machinery (the resolver's threads...) are part of the baseline.
    await _run(_Soak(clients=16, duration=0.0, max_size=2000, impairment=impairment,
                     config=config, seed=seed + 1, session_timeout=session_timeout,
                     report=SoakReport()), 0.0, warm_up=True)
    await _settle(config)
    before = _counts()
    report.objects_before = sum(before.values())
    if trace_memory:
        tracemalloc.start()
    try:
        await _run(_Soak(clients=clients, duration=duration, max_size=max_size,
                         impairment=impairment, config=config, seed=seed,
                         session_timeout=session_timeout, report=report), duration)
        await _settle(config)
        after = _counts()
        if trace_memory:
            report.traced_after = tracemalloc.get_traced_memory()[0]
            stats = tracemalloc.take_snapshot().statistics("lineno")
            report.traced_top = [f"{stat.size} B in {stat.count} blocks at {stat.traceback}"
                                 for stat in stats[:8]]
    finally:
        if trace_memory:
            tracemalloc.stop()
    report.objects_after = sum(after.values())
    report.object_growth = (after - before).most_common(8)
    report.endpoints_left = sum(1 for o in gc.get_objects()
                                if type(o).__name__ == "Endpoint" and not o.closed)
    report.elapsed = time.monotonic() - started
    return report


async def _run(runner: _Soak, duration: float, warm_up: bool = False) -> None:
    """One soak from the server's start to its close; nothing of it outlives the call."""
    await runner.start()
    if warm_up:
        await asyncio.gather(*(runner._session(style, 1, 1500, 1500)
                               for style in STYLES for _ in range(runner.clients)))
    await runner.run(duration)
    await runner.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m atcp.testing.soak",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="concurrent connections")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to open new ones")
    parser.add_argument("--max-size", type=int, default=1_000_000,
                        help="largest transfer in each direction (bytes)")
    parser.add_argument("--loss", type=float, default=0.05)
    parser.add_argument("--duplicate", type=float, default=0.05)
    parser.add_argument("--reorder", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-trace", action="store_true",
                        help="skip tracemalloc (faster; object counts are still checked)")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args(argv)

    async def run() -> SoakReport:
        return await soak(clients=args.clients, duration=args.minutes * 60,
                          max_size=args.max_size, loss=args.loss, duplicate=args.duplicate,
                          reorder=args.reorder, seed=args.seed,
                          trace_memory=not args.no_trace)

    if args.uvloop:
        import uvloop
        report = uvloop.run(run())
    else:
        report = asyncio.run(run())
    print(report.summary())
    leaked = (report.endpoints_left or report.traced_after > 1 << 20
              or report.objects_after > report.objects_before * 1.01 + 1000)
    return 0 if report.ok and not leaked else 1


if __name__ == "__main__":
    sys.exit(main())
