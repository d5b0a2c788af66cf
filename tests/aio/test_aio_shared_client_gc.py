"""The registry of shared client endpoints (`atcp.aio.api`) holds them weakly."""

from __future__ import annotations

import asyncio
import gc
import weakref

import atcp
from atcp.aio import api


async def _echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
    writer.close()


def test_the_registry_does_not_keep_an_endpoint_alive():
    # A loop closed while a client endpoint still waits in TIME-WAIT, and kept referenced
    # (as test runners do): the endpoint must still be collectable.
    loop = asyncio.new_event_loop()

    async def main():
        server = await atcp.start_server(_echo, "127.0.0.1", 0)
        _, writer = await atcp.open_connection("127.0.0.1", server.addresses[0][1])
        writer.close()                       # we close first: a 60 s TIME-WAIT
        await writer.wait_closed()
        endpoint = writer.transport._endpoint
        assert not endpoint.closed and endpoint.stack.time_wait_count == 1
        server.close()
        return weakref.ref(endpoint)

    try:
        endpoint = loop.run_until_complete(asyncio.wait_for(main(), 10))
    finally:
        loop.close()
    gc.collect()
    assert endpoint() is None
    assert loop in api._SHARED        # the loop is alive, its table too, but holds no one
