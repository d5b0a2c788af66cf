"""Faults: a peer process killed mid-transfer, a peer that restarts and forgot everything.

A killed peer sends nothing more, not even a RST; its UDP socket is gone, so what we send
draws ICMP port unreachable, which an unconnected (server) socket does not even see. The
connection must still end, with a timeout or a reset, never hang:

* if we have data in flight, retransmission gives up after ``data_retries`` (R2 of RFC
  9293 3.8.3);
* if we only wait to receive, only keep-alive (RFC 9293 3.8.4) can notice; without it a
  reader waits forever, as with kernel TCP, so these tests turn it on;
* a peer that restarts answers segments of connections it forgot with a RST (RFC 9293
  3.5.1), and the half-open connection on our side ends with ConnectionResetError.

The peer runs as a separate process (fault_peer.py) so that it can really be killed.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest

import atcp
from atcp.core.states import State
from atcp.testing.link import Link
from atcp.testing.peer import new_stack

FAULT_PEER = str(Path(__file__).resolve().with_name("fault_peer.py"))
SHORT = dict(rto_initial=0.1, rto_min=0.05, rto_max=0.4, data_retries=3, msl=0.5)


async def spawn(*args: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(sys.executable, FAULT_PEER, *args,
                                                stdout=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    assert line.strip() in (b"connected", b"listening"), line
    return proc


async def kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
    await asyncio.wait_for(proc.wait(), 10)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.asyncio
async def test_killed_sender_ends_our_reader_by_keepalive():
    """The peer was sending; killed, it goes silent. Our reader has nothing in flight, so
    keep-alive notices: TimeoutError after idle + probes * interval."""
    config = atcp.Config(keepalive=True, keepalive_idle=0.5, keepalive_interval=0.2,
                         keepalive_probes=3, **SHORT)
    received = asyncio.Event()
    outcome: asyncio.Future = asyncio.get_running_loop().create_future()

    async def handler(reader, writer):
        total = 0
        try:
            while data := await reader.read(65536):
                total += len(data)
                if total > 200_000:
                    received.set()
            outcome.set_result(("eof", total))
        except OSError as exc:
            outcome.set_result((exc, total))
        writer.close()

    async with asyncio.timeout(30):
        server = await atcp.start_server(handler, "127.0.0.1", 0, config=config)
        proc = await spawn("client", "127.0.0.1", str(server.addresses[0][1]), "send")
        try:
            await received.wait()
        finally:
            await kill(proc)
        error, total = await outcome
        assert isinstance(error, (TimeoutError, ConnectionResetError)), error
        assert total > 200_000
        server.close()
        await server.wait_closed()


@pytest.mark.asyncio
async def test_killed_receiver_ends_our_writer_and_others_go_on():
    """The peer was receiving; killed, it stops acknowledging. Our writer's data goes
    unacknowledged until retransmission gives up; another client of the same server,
    on the same UDP socket, keeps being served all the while."""
    config = atcp.Config(**SHORT)
    sent_enough = asyncio.Event()
    outcome: asyncio.Future = asyncio.get_running_loop().create_future()

    async def handler(reader, writer):
        hello = await reader.readexactly(5)
        if hello == b"hello":        # the process: flood it
            total = 0
            try:
                for _ in range(100_000):
                    writer.write(bytes(16384))
                    await writer.drain()
                    total += 16384
                    if total > 300_000:
                        sent_enough.set()
                outcome.set_result("never stopped")
            except OSError as exc:
                outcome.set_result(exc)
        else:                        # the local client: echo
            writer.write(hello)
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async with asyncio.timeout(30):
        server = await atcp.start_server(handler, "127.0.0.1", 0, config=config)
        port = server.addresses[0][1]
        proc = await spawn("client", "127.0.0.1", str(port), "sink")
        reader, writer = await atcp.open_connection("127.0.0.1", port, config=config)
        writer.write(b"local")
        assert await reader.readexactly(5) == b"local"
        try:
            await sent_enough.wait()
        finally:
            await kill(proc)
        for i in range(20):           # echo goes on while the dead one is retried
            writer.write(b"%05d" % i)
            assert await reader.readexactly(5) == b"%05d" % i
        error = await outcome
        assert isinstance(error, (TimeoutError, ConnectionResetError)), error
        writer.write(b"after")
        assert await reader.readexactly(5) == b"after"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()


@pytest.mark.asyncio
async def test_restarted_server_resets_the_half_open_client():
    """RFC 9293 3.5.1: the server process dies and a new one takes its port. It knows
    nothing of our connection, so our next segment draws a RST, which resets us."""
    port = free_udp_port()
    async with asyncio.timeout(30):
        proc = await spawn("server", str(port))
        try:
            reader, writer = await atcp.open_connection("127.0.0.1", port,
                                                        config=atcp.Config(**SHORT))
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
        finally:
            await kill(proc)
        proc = await spawn("server", str(port))
        try:
            writer.write(b"still there?")
            with pytest.raises(ConnectionResetError):
                await reader.read(100)
            endpoint = writer.transport.endpoint
            assert endpoint.stats["rst_received"] >= 1
            writer.close()
            # And a new connection to the restarted server just works.
            reader2, writer2 = await atcp.open_connection("127.0.0.1", port,
                                                          config=atcp.Config(**SHORT))
            writer2.write(b"again")
            assert await reader2.readexactly(5) == b"again"
            writer2.close()
            await writer2.wait_closed()
        finally:
            await kill(proc)


# -- the same, deterministically, on the core ---------------------------------------------


def _linked(seed: int):
    a, b = new_stack(1000, seed=seed), new_stack(900_000, seed=seed + 1)
    link = Link(a, b, delay=0.01, seed=seed)
    listener = b.listen(80)
    ca = a.connect(link.addr_b, 80, 0.0)
    link.run(until=1.0, stop=lambda: bool(listener.accept_queue))
    cb = listener.accept()
    return a, b, link, ca, cb


def test_core_restarted_server_answers_forgotten_segments_with_rst():
    a, b, link, ca, cb = _linked(1)
    ca.send(b"x" * 5000, link.now)
    link.run(until=link.now + 1.0)
    assert cb.read(-1, link.now) == b"x" * 5000
    # b restarts: a new stack on the same address, with a new secret and no memory.
    fresh = new_stack(7_000_000, seed=3)
    fresh.listen(80)
    link.b = fresh
    link.sent[id(fresh)] = 0
    ca.send(b"after the restart", link.now)
    link.run(until=link.now + 2.0)
    assert ca.state is State.CLOSED and isinstance(ca.error, ConnectionResetError)
    assert fresh.stats["rst_sent"] >= 1 and fresh.connections == []


def test_core_restarted_client_clears_the_old_connection_with_its_new_syn():
    """The client restarts and opens the same identity again: the server's old connection
    answers the SYN with a challenge ACK (RFC 5961 4), the client's RST for that ACK
    resets it, and the client's next SYN opens a new connection (RFC 9293 3.5.1)."""
    a, b, link, ca, cb = _linked(2)
    fresh = new_stack(123_456_789, seed=4)
    link.a = fresh
    link.sent[id(fresh)] = 0
    again = fresh.connect(link.addr_b, 80, link.now, local_port=ca.local_port)
    listener = b._listeners[80]
    link.run(until=link.now + 10.0, stop=lambda: bool(listener.accept_queue))
    assert again.state is State.ESTABLISHED
    assert cb.state is State.CLOSED and isinstance(cb.error, ConnectionResetError)
    new = listener.accept()
    assert new is not None and new is not cb and new.irs == again.iss
