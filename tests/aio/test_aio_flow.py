"""Flow control end to end: a reader that stops reading closes the TCP window, the writer's
``drain()`` blocks with bounded buffers on both sides, the sender probes the zero window,
and everything resumes when the reader reads again."""

from __future__ import annotations

import asyncio
import hashlib
import random

import pytest

import atcp

pytestmark = pytest.mark.asyncio

KIB = 1024


async def wait_until(predicate, timeout=5.0, step=0.01):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(step)


async def test_drain_blocks_on_a_closed_window_and_resumes():
    config = atcp.Config(rto_min=0.05, rto_initial=0.2)
    chunk = 64 * KIB
    total = 8 << 20
    data = random.Random(5).randbytes(total)
    go = asyncio.Event()
    received = {}

    async def handler(reader, writer):
        received["reader"] = reader
        received["transport"] = writer.transport
        await go.wait()
        digest = hashlib.sha256()
        count = 0
        while piece := await reader.read(1 << 20):
            digest.update(piece)
            count += len(piece)
        received["result"] = (count, digest.hexdigest())
        writer.close()

    async with asyncio.timeout(30):
        server = await atcp.start_server(handler, "127.0.0.1", 0, config=config)
        async with server:
            reader, writer = await atcp.open_connection("127.0.0.1", server.addresses[0][1],
                                                        config=config)
            written = 0

            async def produce():
                nonlocal written
                view = memoryview(data)
                for i in range(0, total, chunk):
                    writer.write(view[i:i + chunk])
                    await writer.drain()
                    written += chunk
                writer.write_eof()

            producer = asyncio.create_task(produce())
            # Wait for the writer to stall: nothing written for half a second.
            last, quiet = -1, 0
            while quiet < 5:
                await asyncio.sleep(0.1)
                quiet = quiet + 1 if written == last else 0
                last = written
            assert not producer.done()
            client = writer.get_extra_info("tcp_info")
            peer = received["transport"].get_extra_info("tcp_info")
            # The peer's window is closed, and every buffer on the way is bounded.
            assert client.snd_wnd == 0 and peer.rcv_wnd == 0
            assert peer.recv_queued <= config.recv_buffer
            # The transport hands over at most 256 KiB at a time and stops when the
            # StreamReader pauses it (past twice its 64 KiB limit): the rest waits in the
            # connection's receive buffer, whose window is what closes.
            assert len(received["reader"]._buffer) <= 2 * 64 * KIB + 256 * KIB
            assert client.send_queued <= config.send_buffer
            assert writer.transport.get_write_buffer_size() <= 64 * KIB + chunk
            assert written <= 2 * (config.send_buffer + config.recv_buffer) + 4 * chunk
            # The sender keeps probing the zero window (RFC 9293 3.8.6.1).
            probes = client.zero_window_probes
            await wait_until(lambda: writer.get_extra_info("tcp_info").zero_window_probes
                             >= probes + 1)
            assert written == last                 # probing did not let the writer run
            go.set()
            await producer
            assert await reader.read() == b""       # the server closes after reading all
            writer.close()
            await writer.wait_closed()
        assert received["result"] == (total, hashlib.sha256(data).hexdigest())


class Collector(asyncio.Protocol):
    def __init__(self):
        self.data = bytearray()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.data += data


async def test_pause_reading_closes_the_window_and_resume_delivers():
    config = atcp.Config(recv_buffer=32 * KIB, rto_min=0.05)
    async with asyncio.timeout(10):
        server_side = []

        def factory():
            protocol = Collector()
            server_side.append(protocol)
            return protocol

        server = await atcp.create_server(factory, "127.0.0.1", 0, config=config)
        async with server:
            transport, _ = await atcp.create_connection(Collector, "127.0.0.1",
                                                        server.addresses[0][1], config=config)
            await wait_until(lambda: server_side)
            peer = server_side[0]
            peer.transport.pause_reading()
            assert not peer.transport.is_reading()
            payload = bytes(range(256)) * 400          # 100 KiB: more than the window
            transport.write(payload)
            await wait_until(lambda: peer.transport.get_extra_info("tcp_info").rcv_wnd == 0
                             and transport.get_extra_info("tcp_info").snd_wnd == 0)
            await asyncio.sleep(0.05)   # (and any ACK in flight has landed)
            assert peer.data == b""                    # nothing delivered while paused
            assert peer.transport.get_extra_info("tcp_info").recv_queued == 32 * KIB
            assert transport.get_extra_info("tcp_info").send_queued == len(payload) - 32 * KIB
            assert transport.get_write_buffer_size() == 0      # all in the send buffer
            peer.transport.resume_reading()
            await wait_until(lambda: len(peer.data) == len(payload))
            assert peer.data == payload
            transport.close()
            peer.transport.close()


class Pausing(asyncio.Protocol):
    """Starts paused; records the size of each delivery; pauses again after one if told."""

    def __init__(self):
        self.sizes = []
        self.data = bytearray()
        self.pause_after_one = False

    def connection_made(self, transport):
        self.transport = transport
        transport.pause_reading()

    def data_received(self, data):
        self.sizes.append(len(data))
        self.data += data
        if self.pause_after_one:
            self.transport.pause_reading()


async def test_delivery_comes_in_bounded_pieces_and_stops_when_paused():
    async with asyncio.timeout(10):
        server_side = []

        def factory():
            protocol = Pausing()
            server_side.append(protocol)
            return protocol

        server = await atcp.create_server(factory, "127.0.0.1", 0)
        async with server:
            transport, _ = await atcp.create_connection(Collector, "127.0.0.1",
                                                        server.addresses[0][1])
            await wait_until(lambda: server_side)
            peer = server_side[0]
            payload = random.Random(9).randbytes(768 * KIB)   # held whole by a 1 MiB buffer
            transport.write(payload)
            await wait_until(lambda: peer.transport.get_extra_info("tcp_info").recv_queued
                             == len(payload))
            # A protocol that pauses inside data_received gets one piece, not the buffer.
            peer.pause_after_one = True
            peer.transport.resume_reading()
            await wait_until(lambda: peer.sizes)
            await asyncio.sleep(0.05)
            assert peer.sizes == [256 * KIB]
            peer.pause_after_one = False
            peer.transport.resume_reading()
            await wait_until(lambda: len(peer.data) == len(payload))
            assert peer.sizes == [256 * KIB] * 3 and peer.data == payload
            transport.close()
            peer.transport.close()
