"""Echo over real UDP sockets on 127.0.0.1 and ::1: the streams API, the protocol API,
the server object, and a bulk transfer through a lossy, duplicating, reordering link."""

from __future__ import annotations

import asyncio
import hashlib
import random
import socket

import pytest

import atcp

pytestmark = pytest.mark.asyncio

HOSTS = ["127.0.0.1", "::1"]


async def echo_handler(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize("host", HOSTS)
async def test_echo_streams(host):
    async with asyncio.timeout(10):
        server = await atcp.start_server(echo_handler, host, 0)
        async with server:
            (address,) = server.addresses
            assert address[0] == host and server.tcp_ports == [address[1]]
            reader, writer = await atcp.open_connection(host, address[1])
            assert writer.get_extra_info("peername")[:2] == (host, address[1])
            assert writer.get_extra_info("sockname")[0] == host
            assert writer.get_extra_info("socket") is None
            writer.write(b"hello\nworld\n")
            assert await reader.readline() == b"hello\n"
            assert await reader.readexactly(6) == b"world\n"
            writer.writelines([b"a", b"b", b"c"])
            assert await reader.readexactly(3) == b"abc"
            info = writer.get_extra_info("tcp_info")
            assert info.state == "ESTABLISHED" and info.bytes_acked >= 15
            assert info.srtt is not None
            # Once the delayed ACKs are out, an idle connection arms no timer at all.
            endpoint = writer.transport.endpoint
            async with asyncio.timeout(2):
                while endpoint.timer_deadline is not None:
                    await asyncio.sleep(0.01)
            assert endpoint.stack.next_deadline() is None
            writer.write_eof()
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()


async def test_echo_many_sizes_keeps_order():
    rng = random.Random(7)
    chunks = [rng.randbytes(rng.choice([1, 17, 1452, 1453, 5000, 70000])) for _ in range(40)]
    async with asyncio.timeout(15):
        server = await atcp.start_server(echo_handler, "127.0.0.1", 0)
        async with server:
            reader, writer = await atcp.open_connection("127.0.0.1", server.addresses[0][1])

            async def send():
                for chunk in chunks:
                    writer.write(chunk)
                    await writer.drain()
                writer.write_eof()

            sender = asyncio.create_task(send())
            received = await reader.read(-1)
            await sender
            assert received == b"".join(chunks)
            writer.close()
            await writer.wait_closed()


class Recorder(asyncio.Protocol):
    """A protocol that records the callbacks asyncio promises, in order."""

    def __init__(self):
        self.calls = []
        self.data = bytearray()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.calls.append("made")

    def data_received(self, data):
        self.data += data
        self.calls.append("data")

    def eof_received(self):
        self.calls.append("eof")
        return True   # keep the transport open: we still write

    def pause_writing(self):
        self.calls.append("pause")

    def resume_writing(self):
        self.calls.append("resume")

    def connection_lost(self, exc):
        self.calls.append("lost")
        self.lost.set_result(exc)


class Upper(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data.upper())

    def eof_received(self):
        return False   # asyncio semantics: the transport closes itself


@pytest.mark.parametrize("host", HOSTS)
async def test_protocol_api(host):
    async with asyncio.timeout(10):
        server = await atcp.create_server(Upper, host, 0)
        assert isinstance(server, asyncio.AbstractServer) and server.is_serving()
        port = server.sockets[0].getsockname()[1]
        # A small send buffer, so that a big write overflows it into the transport.
        config = atcp.Config(send_buffer=16 * 1024)
        transport, protocol = await atcp.create_connection(Recorder, host, port,
                                                           config=config)
        assert isinstance(transport, asyncio.Transport)
        assert protocol.calls == ["made"] and protocol.transport is transport
        assert transport.can_write_eof() and transport.is_reading()
        assert not transport.is_closing()
        transport.set_write_buffer_limits(high=4096)
        assert transport.get_write_buffer_limits() == (1024, 4096)
        transport.write(b"x" * 100_000)
        assert protocol.calls == ["made", "pause"]
        assert transport.get_write_buffer_size() == 100_000 - 16 * 1024
        assert transport.get_extra_info("tcp_info").send_queued == 16 * 1024
        transport.write_eof()
        exc = await protocol.lost
        assert exc is None
        assert bytes(protocol.data) == b"X" * 100_000
        # Writing resumed once the send buffer had taken the data, before the end.
        assert protocol.calls.count("resume") == 1 and protocol.calls.count("eof") == 1
        assert protocol.calls.index("resume") < protocol.calls.index("lost")
        assert protocol.calls[-1] == "lost"
        assert transport.is_closing()
        with pytest.raises(RuntimeError):
            transport.write(b"more")   # after write_eof, as asyncio says
        server.close()
        await server.wait_closed()
        assert server.sockets == () and not server.is_serving()


async def test_write_buffer_limits_are_checked():
    async with asyncio.timeout(10):
        server = await atcp.create_server(Upper, "127.0.0.1", 0)
        async with server:
            transport, _ = await atcp.create_connection(Recorder, "127.0.0.1",
                                                        server.addresses[0][1])
            with pytest.raises(ValueError):
                transport.set_write_buffer_limits(high=10, low=20)
            with pytest.raises(ValueError):
                transport.set_write_buffer_limits(high=-1)
            with pytest.raises(TypeError):
                transport.set_write_buffer_limits(high="big")
            with pytest.raises(TypeError):
                transport.write("text")
            transport.abort()


async def test_server_start_serving_later_and_serve_forever():
    async with asyncio.timeout(10):
        accepted = []

        async def handler(reader, writer):
            accepted.append(writer)
            writer.write(await reader.readexactly(4))
            await writer.drain()
            writer.close()

        server = await atcp.start_server(handler, "127.0.0.1", 0, start_serving=False)
        assert not server.is_serving()
        port = server.addresses[0][1]
        # The handshake completes into the accept queue, as with a kernel's listen().
        reader, writer = await atcp.open_connection("127.0.0.1", port)
        writer.write(b"ping")
        await asyncio.sleep(0.05)
        assert accepted == []
        forever = asyncio.create_task(server.serve_forever())
        assert await reader.readexactly(4) == b"ping"
        assert server.is_serving() and len(accepted) == 1
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        forever.cancel()
        with pytest.raises(asyncio.CancelledError):
            await forever
        assert not server.is_serving()
        await server.wait_closed()
        assert all(ep.closed for ep in server.endpoints)


async def test_bulk_transfer_through_loss_duplication_and_reordering():
    """8 MiB each way at once, under 5% loss, 2% duplication and 2% reordering on both
    ends' outgoing datagrams; SHA-256 of what arrives equals what was sent.

    rto_min is lowered to 20 ms, which suits loopback's sub-millisecond RTT (RFC 6298's
    1 s floor is for the Internet); with the 200 ms default it takes ~35 s per loop.
    """
    size = 8 << 20
    config = atcp.Config(rto_min=0.02, rto_initial=0.2)
    lossy = dict(loss=0.05, duplicate=0.02, reorder=0.02)
    client_data = random.Random(1).randbytes(size)
    server_data = random.Random(2).randbytes(size)
    server_got = {}

    async def pump(writer, data):
        view = memoryview(data)
        for i in range(0, len(data), 256 * 1024):
            writer.write(view[i:i + 256 * 1024])
            await writer.drain()
        writer.write_eof()

    async def drain_all(reader):
        digest = hashlib.sha256()
        total = 0
        while chunk := await reader.read(1 << 20):
            digest.update(chunk)
            total += len(chunk)
        return total, digest.hexdigest()

    async def handler(reader, writer):
        sender = asyncio.create_task(pump(writer, server_data))
        server_got["result"] = await drain_all(reader)
        await sender
        server_got["info"] = writer.get_extra_info("tcp_info")
        writer.close()
        await writer.wait_closed()

    async with asyncio.timeout(50):
        server = await atcp.start_server(handler, "127.0.0.1", 0, config=config,
                                         impairment=atcp.Impairment(seed=11, **lossy))
        async with server:
            reader, writer = await atcp.open_connection(
                "127.0.0.1", server.addresses[0][1], config=config,
                impairment=atcp.Impairment(seed=12, **lossy))
            sender = asyncio.create_task(pump(writer, client_data))
            client_got = await drain_all(reader)
            await sender
            client_info = writer.get_extra_info("tcp_info")
            writer.close()
            await writer.wait_closed()
    assert client_got == (size, hashlib.sha256(server_data).hexdigest())
    assert server_got["result"] == (size, hashlib.sha256(client_data).hexdigest())
    # The link really was lossy in both directions: both sides had to retransmit.
    assert client_info.retransmits > 0 and server_got["info"].retransmits > 0
    impairer = writer.transport.endpoint._impairer
    assert impairer.stats["lost"] > 0 and impairer.stats["duplicated"] > 0
    assert impairer.stats["reordered"] > 0


async def test_listen_on_every_interface_by_default():
    async with asyncio.timeout(10):
        server = await atcp.start_server(echo_handler, None, 0)
        async with server:
            families = {sock.family for sock in server.sockets}
            assert socket.AF_INET in families
            port = next(a[1] for a in server.addresses if "." in a[0])
            reader, writer = await atcp.open_connection("127.0.0.1", port)
            writer.write(b"any")
            assert await reader.readexactly(3) == b"any"
            writer.close()
            await writer.wait_closed()
