"""Many connections on one server endpoint (one UDP socket) at once."""

from __future__ import annotations

import asyncio

import pytest

import atcp

pytestmark = pytest.mark.asyncio

CONNECTIONS = 1000


async def test_thousand_concurrent_connections_on_one_endpoint():
    config = atcp.Config(msl=0.1)
    peak = 0
    live = 0

    async def handler(reader, writer):
        nonlocal peak, live
        live += 1
        peak = max(peak, live)
        request = await reader.readexactly(64)
        if live == CONNECTIONS:
            all_open.set()
        await all_open.wait()              # hold every connection open at the same time
        writer.write(request[::-1] * 8)
        await writer.drain()
        writer.close()                     # the server closes first: TIME-WAIT is its own
        await writer.wait_closed()
        live -= 1

    async def client(i: int) -> bool:
        reader, writer = await atcp.open_connection("127.0.0.1", port, config=config)
        request = i.to_bytes(4, "big") * 16
        writer.write(request)
        reply = await reader.readexactly(512)
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        return reply == request[::-1] * 8

    all_open = asyncio.Event()
    async with asyncio.timeout(40):
        server = await atcp.start_server(handler, "127.0.0.1", 0, config=config,
                                         backlog=CONNECTIONS)
        async with server:
            (endpoint,) = server.endpoints
            port = server.addresses[0][1]
            results = await asyncio.gather(*(client(i) for i in range(CONNECTIONS)))
    assert results == [True] * CONNECTIONS
    assert peak == CONNECTIONS
    assert endpoint.stack.stats["listen_overflow"] == 0
    assert endpoint.closed                 # the server was closed and its last conn is over
