"""Endings over real sockets: half-close, abort (RST), TIME-WAIT on the active closer and a
retransmitted FIN answered from TIME-WAIT, EADDRINUSE while TIME-WAIT holds an address."""

from __future__ import annotations

import asyncio
import errno

import pytest

import atcp
from atcp.wire import ACK, FIN, parse

pytestmark = pytest.mark.asyncio


async def test_half_close_then_read_the_reply():
    async def handler(reader, writer):
        request = await reader.read()          # everything, up to the client's FIN
        writer.write(b"got %d bytes" % len(request))
        writer.write_eof()
        await writer.wait_closed()

    async with asyncio.timeout(10):
        server = await atcp.start_server(handler, "127.0.0.1", 0)
        async with server:
            reader, writer = await atcp.open_connection("127.0.0.1", server.addresses[0][1])
            writer.write(b"q" * 5000)
            writer.write_eof()
            assert writer.can_write_eof()
            with pytest.raises(RuntimeError):
                writer.write(b"late")
            assert await reader.read() == b"got 5000 bytes"
            assert reader.at_eof()
            await writer.wait_closed()   # both FINs exchanged: no close() needed
            assert writer.get_extra_info("tcp_info").state == "TIME-WAIT"
            writer.close()


async def test_abort_resets_the_peer():
    aborted = asyncio.Event()

    async def handler(reader, writer):
        await reader.readexactly(1)
        writer.transport.abort()
        aborted.set()

    async with asyncio.timeout(10):
        server = await atcp.start_server(handler, "127.0.0.1", 0)
        async with server:
            reader, writer = await atcp.open_connection("127.0.0.1", server.addresses[0][1])
            pending = asyncio.create_task(reader.read(100))   # a read waiting for data
            await asyncio.sleep(0)
            writer.write(b"!")
            with pytest.raises(ConnectionResetError) as info:
                await pending
            assert info.value.errno == errno.ECONNRESET
            assert info.value.strerror == "Connection reset by peer"
            with pytest.raises(ConnectionResetError):       # later reads too
                await reader.read(100)
            writer.write(b"after the reset")                  # dropped, as asyncio does
            with pytest.raises(ConnectionResetError):
                await writer.drain()
            assert aborted.is_set()
            assert writer.get_extra_info("tcp_info").state == "CLOSED"
            writer.close()
            with pytest.raises(ConnectionResetError):   # as asyncio's streams report it
                await writer.wait_closed()
            stats = server.endpoints[0].stats
            assert stats["rst_sent"] >= 1


async def test_time_wait_on_the_active_closer_then_gone_after_2msl():
    msl = 0.2
    config = atcp.Config(msl=msl)

    async def handler(reader, writer):
        await reader.read()
        writer.close()

    async with asyncio.timeout(10):
        server = await atcp.start_server(handler, "127.0.0.1", 0, config=config)
        async with server:
            reader, writer = await atcp.open_connection("127.0.0.1", server.addresses[0][1],
                                                        config=config)
            endpoint = writer.transport.endpoint
            writer.close()                       # we close first: we get TIME-WAIT
            await writer.wait_closed()
            loop = asyncio.get_running_loop()
            entered = loop.time()
            assert writer.get_extra_info("tcp_info").state == "TIME-WAIT"
            assert len(endpoint.stack.time_wait) == 1 and not endpoint.closed
            while not endpoint.closed:
                await asyncio.sleep(0.02)
            waited = loop.time() - entered
            assert waited >= 2 * msl - 0.05
            assert writer.get_extra_info("tcp_info").state == "CLOSED"
            assert endpoint.stack.time_wait == []
            assert endpoint.stats["time_wait_expired"] == 1


async def test_retransmitted_fin_is_acked_again_in_time_wait():
    """The active closer's last ACK is lost; the peer, in LAST-ACK, sends its FIN again and
    TIME-WAIT answers it, so the peer closes cleanly (RFC 9293 3.10.7.4)."""
    config = atcp.Config(msl=1.0, rto_min=0.05, rto_initial=0.1)
    server_done = asyncio.get_running_loop().create_future()

    async def handler(reader, writer):
        await reader.read()
        writer.close()
        try:
            await writer.wait_closed()
            server_done.set_result(writer.get_extra_info("tcp_info"))
        except Exception as exc:   # pragma: no cover - reported by the assertion below
            server_done.set_result(exc)

    async with asyncio.timeout(10):
        server = await atcp.start_server(handler, "127.0.0.1", 0, config=config)
        async with server:
            reader, writer = await atcp.open_connection("127.0.0.1", server.addresses[0][1],
                                                        config=config)
            conn = writer.transport.connection
            dropped = []

            def drop_first_ack_in_time_wait(data, addr):
                seg = parse(data)
                if (not dropped and conn.state is atcp.State.TIME_WAIT
                        and seg.flags == ACK and not seg.payload):
                    dropped.append(seg)
                    return True
                return False

            writer.transport.endpoint.drop_filter = drop_first_ack_in_time_wait
            writer.close()
            await writer.wait_closed()
            server_info = await server_done
            assert dropped, "the final ACK was never sent"
            assert writer.get_extra_info("tcp_info").state == "TIME-WAIT"
            assert isinstance(server_info, atcp.TcpInfo)
            assert server_info.state == "CLOSED"       # LAST-ACK got its ACK in the end
            assert server_info.retransmits >= 1         # ... for the FIN sent again
            assert writer.transport.endpoint.stats["time_wait_fin_reacked"] >= 1
    assert not FIN & dropped[0].flags


async def test_local_address_busy_while_in_time_wait():
    config = atcp.Config(msl=0.15)

    async def handler(reader, writer):
        await reader.read()
        writer.close()

    async with asyncio.timeout(10):
        server = await atcp.start_server(handler, "127.0.0.1", 0, config=config)
        async with server:
            port = server.addresses[0][1]
            _, writer = await atcp.open_connection("127.0.0.1", port, config=config)
            local = writer.get_extra_info("sockname")
            endpoint = writer.transport.endpoint
            writer.close()
            await writer.wait_closed()
            assert writer.get_extra_info("tcp_info").state == "TIME-WAIT"
            with pytest.raises(OSError) as info:
                await atcp.open_connection("127.0.0.1", port, local_addr=local)
            assert info.value.errno == errno.EADDRINUSE
            while not endpoint.closed:
                await asyncio.sleep(0.02)
            _, writer = await atcp.open_connection("127.0.0.1", port, local_addr=local,
                                                   config=config)
            assert writer.get_extra_info("sockname") == local
            writer.close()
            await writer.wait_closed()
