"""Peers with an asyncio streams API: atcp, the kernel's TCP, aioquic (one stream), and
asyncio's UDP under the same streams with no protocol at all (echo only).

Every transport is reduced to two calls, ``open(host, port)`` returning ``(reader, writer,
closer)`` and ``serve(handler, host, port)`` returning ``(port, closer)``, so the workloads
below are the same code for all three and differ only in the transport underneath.

Workloads (client side / server side):

* bulk: the client writes ``size`` bytes in 64 KiB writes, half-closes, and waits for the
  server's one-line reply; the server reads until it has ``size`` bytes (or EOF, or the
  deadline), notes the time of the last byte, then replies with its count.
* echo: the client writes 64 bytes and reads the 64 echoed back, in a loop, for ``duration``
  seconds; the server echoes whatever it reads.
* conns: the client opens ``count`` connections, ``parallel`` at a time, and holds them idle;
  both sides report the memory they grew by (RSS, and tracemalloc when asked).
* churn: the client opens and closes connections one after the other for ``duration``
  seconds; the server closes its side on EOF.
* flow: one of several flows started together (`harness.run_flows`): the client connects,
  prints ``{"connected": t}``, waits for a line on stdin (the runner's "go", sent to every
  flow at once), writes for ``duration`` seconds and half-closes; the server counts what
  arrives and notes (time, bytes so far) every 0.1 s, so that the report can take every
  flow's bytes over one common interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import ssl
import tempfile
import tracemalloc

from .common import cpu_seconds, emit, now, rss_bytes, stop_on_stdin_eof, wait_stdin_line

__all__ = ["TRANSPORTS", "client_workload", "server_workload"]

_CHUNK = 64 * 1024
_GRACE = 5.0      # seconds past the deadline a side waits for the other before giving up
_SAMPLE = 0.1     # seconds between a flow server's (time, bytes) samples


# ------------------------------------------------------------------ transports
class _Transport:
    name = ""

    async def open(self, host: str, port: int):
        raise NotImplementedError

    async def serve(self, handler, host: str, port: int):
        raise NotImplementedError


class KernelTcp(_Transport):
    """The kernel's TCP through asyncio streams (TCP_NODELAY is asyncio's default)."""

    name = "tcp"

    async def open(self, host, port):
        reader, writer = await asyncio.open_connection(host, port)
        return reader, writer, _closer(writer)

    async def serve(self, handler, host, port):
        server = await asyncio.start_server(handler, host, port, backlog=4096)
        return server.sockets[0].getsockname()[1], server


class Atcp(_Transport):
    """atcp with its default Config (MSS 1452, 1 MiB buffers).

    The server listens on a fixed TCP port whatever its UDP port, so that a client sending
    to the proxy's UDP port still names the server's TCP port.
    """

    name = "atcp"
    TCP_PORT = 5001

    def __init__(self, config_overrides: dict | None = None) -> None:
        import atcp
        self.atcp = atcp
        self.config = atcp.Config(**(config_overrides or {}))

    async def open(self, host, port):
        reader, writer = await self.atcp.open_connection(host, port, tcp_port=self.TCP_PORT,
                                                         config=self.config)
        return reader, writer, _closer(writer)

    async def serve(self, handler, host, port):
        server = await self.atcp.start_server(handler, host, port, tcp_port=self.TCP_PORT,
                                              config=self.config, backlog=1024)
        return _server_port(server), server


class Quic(_Transport):
    """aioquic's asyncio API, one bidirectional stream per connection, TLS 1.3 with a
    self-signed certificate made at start-up."""

    name = "quic"

    def __init__(self, datagram_size: int) -> None:
        self.datagram_size = datagram_size

    def _configuration(self, is_client: bool):
        from aioquic.quic.configuration import QuicConfiguration
        cfg = QuicConfiguration(is_client=is_client, alpn_protocols=["atcp-bench"],
                                max_datagram_size=self.datagram_size)
        if is_client:
            cfg.verify_mode = ssl.CERT_NONE
        else:
            certfile, keyfile = _self_signed_certificate()
            cfg.load_cert_chain(certfile, keyfile)
        return cfg

    async def open(self, host, port):
        from aioquic.asyncio import connect
        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(
            connect(host, port, configuration=self._configuration(True)))
        reader, writer = await client.create_stream()

        async def close():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stack.aclose(), _GRACE)
        return reader, writer, close

    async def serve(self, handler, host, port):
        from aioquic.asyncio import serve
        tasks = set()

        def on_stream(reader, writer):
            task = asyncio.ensure_future(handler(reader, writer))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        server = await serve(host, port, configuration=self._configuration(False),
                             stream_handler=on_stream)
        return server._transport.get_extra_info("sockname")[1], server


class UdpStreams(_Transport):
    """No protocol at all: asyncio's own datagram transport under asyncio's StreamReader
    and StreamWriter, each write one datagram and each datagram delivered as stream data
    (an empty datagram is the end of the stream). Nothing is ordered, acknowledged or
    resent, so it only runs the echo over loopback: the floor from which any protocol
    that offers asyncio streams over asyncio UDP starts, atcp and aioquic alike."""

    name = "udpstreams"

    async def open(self, host, port):
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        _, protocol = await loop.create_datagram_endpoint(
            lambda: _DatagramStreamProtocol(reader), remote_addr=(host, port))
        writer = asyncio.StreamWriter(protocol.stream, protocol.streams, reader, loop)
        return reader, writer, _closer(writer)

    async def serve(self, handler, host, port):
        loop = asyncio.get_running_loop()
        tasks = set()

        def on_first_datagram(protocol: _DatagramStreamProtocol) -> None:
            writer = asyncio.StreamWriter(protocol.stream, protocol.streams, protocol.reader,
                                          loop)
            task = asyncio.ensure_future(handler(protocol.reader, writer))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        dgram, _ = await loop.create_datagram_endpoint(
            lambda: _DatagramStreamProtocol(asyncio.StreamReader(), on_first_datagram),
            local_addr=(host, port))
        return dgram.get_extra_info("sockname")[1], _DatagramServer(dgram)


class _DatagramStreamProtocol(asyncio.DatagramProtocol):
    """Datagrams fed to a StreamReaderProtocol. A client's socket is connected to its
    peer; a server (``on_first`` given) takes the sender of its first datagram as its
    peer, calls ``on_first``, and ignores every other sender."""

    def __init__(self, reader, on_first=None) -> None:
        self.reader = reader
        self.on_first = on_first
        self.peer = None   # where a server's writes go; None: the connected peer
        self.streams = asyncio.StreamReaderProtocol(reader)
        self.stream: _DatagramStream | None = None

    def connection_made(self, transport) -> None:
        self.stream = _DatagramStream(transport, self)
        self.streams.connection_made(self.stream)

    def datagram_received(self, data, addr) -> None:
        if self.on_first is not None:
            if self.peer is None:
                self.peer = addr
                self.on_first(self)
            elif addr != self.peer:
                return
        if data:
            self.streams.data_received(data)
        else:
            self.streams.eof_received()

    def connection_lost(self, exc) -> None:
        self.streams.connection_lost(exc)


class _DatagramStream(asyncio.Transport):
    """The write side of `_DatagramStreamProtocol`, for asyncio.StreamWriter."""

    def __init__(self, dgram, protocol: _DatagramStreamProtocol) -> None:
        super().__init__()
        self._dgram = dgram
        self._protocol = protocol

    def write(self, data) -> None:
        self._dgram.sendto(bytes(data), self._protocol.peer)

    def close(self) -> None:
        protocol = self._protocol
        if not self._dgram.is_closing() and (protocol.peer or protocol.on_first is None):
            self._dgram.sendto(b"", protocol.peer)   # the end of the stream
        self._dgram.close()

    def is_closing(self) -> bool:
        return self._dgram.is_closing()

    def get_extra_info(self, name, default=None):
        return self._dgram.get_extra_info(name, default)


class _DatagramServer:
    """What ``serve`` returns: the server workload calls close() and wait_closed()."""

    def __init__(self, dgram) -> None:
        self._dgram = dgram

    def close(self) -> None:
        self._dgram.close()

    async def wait_closed(self) -> None:
        return None


def _self_signed_certificate() -> tuple[str, str]:
    """A throw-away EC certificate for "localhost", written to a temporary directory."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256()))
    folder = tempfile.mkdtemp(prefix="atcp-bench-cert-")
    certfile, keyfile = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    with open(certfile, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(keyfile, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return certfile, keyfile


def _server_port(server) -> int:
    sockets = getattr(server, "sockets", None)
    if sockets:
        return sockets[0].getsockname()[1]
    return server.addresses[0][1]


def _closer(writer):
    async def close():
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), _GRACE)
    return close


def make_transport(name: str, *, datagram_size: int = 1484,
                   atcp_config: str | None = None) -> _Transport:
    """``atcp_config``: a JSON object of `atcp.Config` overrides for the atcp peer."""
    if name == "tcp":
        return KernelTcp()
    if name == "atcp":
        return Atcp(json.loads(atcp_config) if atcp_config else None)
    if name == "quic":
        return Quic(datagram_size)
    if name == "udpstreams":
        return UdpStreams()
    raise ValueError(f"unknown stream transport {name!r}")


TRANSPORTS = ("atcp", "tcp", "quic", "udpstreams")


# ------------------------------------------------------------------ client workloads
async def client_workload(transport: _Transport, args) -> dict:
    if args.scenario == "bulk":
        return await _bulk_client(transport, args)
    if args.scenario == "echo":
        return await _echo_client(transport, args)
    if args.scenario == "conns":
        return await _conns_client(transport, args)
    if args.scenario == "churn":
        return await _churn_client(transport, args)
    if args.scenario == "flow":
        return await _flow_client(transport, args)
    raise ValueError(args.scenario)


async def _bulk_client(transport, args) -> dict:
    chunk = os.urandom(_CHUNK)
    started = now()
    reader, writer, close = await transport.open(args.host, args.port)
    t0 = now()
    cpu0 = cpu_seconds()
    sent = 0
    while sent < args.size and now() < args.deadline:
        n = min(_CHUNK, args.size - sent)
        writer.write(chunk if n == _CHUNK else chunk[:n])
        sent += n
        await writer.drain()
    return {"t_connect": t0 - started, "t0": t0, "sent": sent,
            **await _finish_client(reader, writer, close, args, cpu0)}


async def _flow_client(transport, args) -> dict:
    chunk = os.urandom(_CHUNK)
    reader, writer, close = await transport.open(args.host, args.port)
    emit({"connected": now()})
    # The runner says "go" to every flow at once, once all of them are connected.
    await wait_stdin_line(max(0.1, args.deadline - now()))
    t0 = now()
    cpu0 = cpu_seconds()
    end = min(t0 + args.duration, args.deadline)
    sent = 0
    while now() < end:
        writer.write(chunk)
        sent += _CHUNK
        await writer.drain()
    return {"t0": t0, "sent": sent, **await _finish_client(reader, writer, close, args, cpu0)}


async def _finish_client(reader, writer, close, args, cpu0: float) -> dict:
    """Half-close, wait for the server's count line, and report the end of a sending
    client: when it finished, the reply, its CPU time since ``cpu0`` and tcp_info."""
    if writer.can_write_eof():
        writer.write_eof()
    reply = b""
    with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
        reply = await asyncio.wait_for(reader.readline(),
                                       max(0.1, args.deadline + _GRACE - now()))
    t1 = now()
    cpu1 = cpu_seconds()
    info = _tcp_info(writer)
    await close()
    return {"t1": t1, "reply": reply.decode(errors="replace").strip(), "cpu": cpu1 - cpu0,
            "tcp_info": info}


async def _echo_client(transport, args) -> dict:
    reader, writer, close = await transport.open(args.host, args.port)
    msg = b"e" * args.msg
    n = args.msg
    # Warm up (first round trips pay for lazy set-up on both sides).
    for _ in range(50):
        writer.write(msg)
        await reader.readexactly(n)
    count = 0
    cpu0 = cpu_seconds()
    t0 = now()
    end = t0 + args.duration
    while True:
        writer.write(msg)
        await reader.readexactly(n)
        count += 1
        if not count & 63 and now() >= end:
            break
    t1 = now()
    cpu1 = cpu_seconds()
    await close()
    return {"round_trips": count, "t0": t0, "t1": t1, "cpu": cpu1 - cpu0,
            "rate": count / (t1 - t0)}


async def _conns_client(transport, args) -> dict:
    gc.collect()
    if args.trace:
        tracemalloc.start()
    traced0 = tracemalloc.get_traced_memory()[0] if args.trace else 0
    rss0 = rss_bytes()
    held = []
    failures = 0
    sem = asyncio.Semaphore(args.parallel)

    async def one():
        nonlocal failures
        async with sem:
            try:
                reader, writer, close = await asyncio.wait_for(
                    transport.open(args.host, args.port), 30)
            except (OSError, asyncio.TimeoutError):
                failures += 1
                return
            held.append((reader, writer, close))

    t0 = now()
    cpu0 = cpu_seconds()
    await asyncio.gather(*(one() for _ in range(args.count)))
    t1 = now()
    cpu1 = cpu_seconds()
    await asyncio.sleep(0.5)   # let delayed ACKs and the server's side settle
    gc.collect()
    rss1 = rss_bytes()
    traced1 = tracemalloc.get_traced_memory()[0] if args.trace else 0
    if args.trace:
        tracemalloc.stop()
    opened = len(held)
    result = {"opened": opened, "failures": failures, "t0": t0, "t1": t1,
              "setup_rate": opened / (t1 - t0) if t1 > t0 else 0.0, "cpu": cpu1 - cpu0,
              "rss_delta": rss1 - rss0,
              "rss_per_conn": (rss1 - rss0) / opened if opened else None,
              "traced_per_conn": (traced1 - traced0) / opened if opened and args.trace
              else None}
    t2 = now()
    await asyncio.gather(*(close() for _, _, close in held))
    result["close_rate"] = opened / (now() - t2) if opened else 0.0
    return result


async def _churn_client(transport, args) -> dict:
    count = failures = 0
    fds0, rss0 = _open_fds(), rss_bytes()
    t0 = now()
    end = t0 + args.duration
    cpu0 = cpu_seconds()
    while now() < end:
        try:
            reader, writer, close = await asyncio.wait_for(
                transport.open(args.host, args.port), 10)
        except (OSError, asyncio.TimeoutError):
            failures += 1
            continue
        await close()
        count += 1
    t1 = now()
    # What closed connections still hold on this side (TIME-WAIT lives here).
    return {"cycles": count, "failures": failures, "rate": count / (t1 - t0),
            "cpu": cpu_seconds() - cpu0, "t0": t0, "t1": t1,
            "fds_held": _open_fds() - fds0, "rss_delta": rss_bytes() - rss0}


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def _tcp_info(writer) -> dict | None:
    """atcp's per-connection counters, when the transport offers them."""
    with contextlib.suppress(Exception):
        info = writer.get_extra_info("tcp_info")
        if info is None:
            return None
        if isinstance(info, dict):
            return {k: v for k, v in info.items() if isinstance(v, (int, float, str))}
        return {k: getattr(info, k) for k in dir(info) if not k.startswith("_")
                and isinstance(getattr(info, k), (int, float, str))}
    return None


# ------------------------------------------------------------------ server workloads
async def server_workload(transport: _Transport, args, ready) -> dict:
    """Serve one bulk/echo connection (or ``count`` idle ones); ``ready(port)`` announces
    the port. Returns the server's report once the work is over."""
    done = asyncio.get_running_loop().create_future()
    state: dict = {"accepted": 0}
    handler = {"bulk": _bulk_handler, "echo": _echo_handler, "conns": _conns_handler,
               "churn": _churn_handler, "flow": _flow_handler}[args.scenario]

    idle = asyncio.Event()
    active = [0]

    async def on_connection(reader, writer):
        state["accepted"] += 1
        active[0] += 1
        idle.clear()
        try:
            await handler(reader, writer, args, state, done)
        except Exception as exc:   # a benchmark reports failures instead of hanging
            if not done.done():
                done.set_result({"error": f"{type(exc).__name__}: {exc}"})
        finally:
            active[0] -= 1
            if not active[0]:
                idle.set()

    if args.scenario == "conns":
        gc.collect()
        if args.trace:
            tracemalloc.start()
        state["rss0"] = rss_bytes()
        state["traced0"] = tracemalloc.get_traced_memory()[0] if args.trace else 0
        state["held"] = []
    port, server = await transport.serve(on_connection, args.host, args.port)
    stop_on_stdin_eof(asyncio.get_running_loop(), done, lambda: _public(state))
    cpu0 = cpu_seconds()
    ready(port)
    try:
        result = await asyncio.wait_for(done, max(0.1, args.deadline + _GRACE - now()))
    except asyncio.TimeoutError:
        result = {"error": "server deadline passed", **_public(state)}
    result["cpu"] = cpu_seconds() - cpu0
    result["accepted"] = state["accepted"]
    if args.scenario in ("bulk", "echo", "flow") and not result.get("stopped"):
        # Let the handler finish its goodbye (the reply, the client's close) before exiting.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(idle.wait(), _GRACE)
    server.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), 1.0)
    return result


def _public(state: dict) -> dict:
    return {k: v for k, v in state.items() if isinstance(v, (int, float, str))}


async def _bulk_handler(reader, writer, args, state, done) -> None:
    got = 0
    state["t_first"] = now()
    try:
        async with asyncio.timeout(max(0.1, args.deadline + 1.0 - now())):
            while got < args.size:
                data = await reader.read(1 << 18)
                if not data:
                    break
                got += len(data)
                state["bytes"] = got
                state["t_last"] = now()
    except TimeoutError:
        pass
    t_last = state.get("t_last", now())
    # The report is final before the reply goes: once the client has the reply, the runner
    # may stop this process at any moment.
    if not done.done():
        done.set_result({"bytes": got, "t_first": state["t_first"], "t_last": t_last,
                         "complete": got >= args.size})
    await _reply_count(reader, writer, got)


async def _reply_count(reader, writer, got: int) -> None:
    """Tell the sending client how many bytes arrived, then wait for its close so the
    reply is not cut short by this process's own exit."""
    writer.write(b"%d\n" % got)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.drain(), _GRACE)
        await asyncio.wait_for(reader.read(), _GRACE)
    writer.close()


async def _flow_handler(reader, writer, args, state, done) -> None:
    got = 0
    samples = []
    next_sample = 0.0
    state["t_first"] = t = now()
    try:
        async with asyncio.timeout(max(0.1, args.deadline + 1.0 - now())):
            while data := await reader.read(1 << 18):
                got += len(data)
                t = now()
                if t >= next_sample:
                    samples.append((t, got))
                    next_sample = t + _SAMPLE
                state["bytes"] = got
    except TimeoutError:
        pass
    if not samples or samples[-1][1] != got:
        samples.append((t, got))
    if not done.done():
        done.set_result({"bytes": got, "t_first": state["t_first"], "t_last": t,
                         "samples": samples})
    await _reply_count(reader, writer, got)


async def _echo_handler(reader, writer, args, state, done) -> None:
    count = 0
    while data := await reader.read(65536):
        writer.write(data)
        count += len(data)
    writer.close()
    if not done.done():
        done.set_result({"bytes": count})


async def _conns_handler(reader, writer, args, state, done) -> None:
    state["held"].append((reader, writer))
    if len(state["held"]) == args.count and not done.done():
        await asyncio.sleep(0.5)
        gc.collect()
        rss1 = rss_bytes()
        traced = tracemalloc.get_traced_memory()[0] if args.trace else 0
        if args.trace:
            tracemalloc.stop()
        n = len(state["held"])
        done.set_result({"held": n, "rss_per_conn": (rss1 - state["rss0"]) / n,
                         "traced_per_conn": (traced - state["traced0"]) / n if args.trace
                         else None})
    await reader.read()
    writer.close()


async def _churn_handler(reader, writer, args, state, done) -> None:
    await reader.read()
    writer.close()
    state["closed"] = state.get("closed", 0) + 1
