"""A SYN flood over real UDP sockets: spoofed SYNs from many UDP ports at an atcp server.

The flood fills the listener's SYN queue at once; from then on every SYN is answered with a
cookie and nothing is kept. An established connection keeps echoing through the flood, a
new client gets in (by cookie), and the server holds no more connections than its backlog
allows, however many SYNs came.
"""

from __future__ import annotations

import asyncio
import gc
import random
import socket

import pytest

import atcp
from atcp.core.connection import Connection
from atcp.wire import SYN, Options, Segment, build

BACKLOG = 8
FLOOD = 20_000


async def echo(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    writer.close()


def live_connections() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, Connection) and o.state.value
               not in ("CLOSED", "TIME-WAIT"))


async def flood(port: int, n: int, rng: random.Random) -> None:
    socks = []
    try:
        for _ in range(16):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setblocking(False)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        opts = Options(mss=1460, wscale=7, sack_permitted=True, ts_val=1, ts_ecr=0)
        for i in range(n):
            seg = Segment(rng.randrange(1024, 65536), port, rng.getrandbits(32), 0, SYN,
                          65535, b"", opts)
            try:
                socks[i % len(socks)].sendto(build(seg), ("127.0.0.1", port))
            except BlockingIOError:
                pass
            if i % 200 == 199:
                await asyncio.sleep(0.005)
    finally:
        for s in socks:
            s.close()


@pytest.mark.asyncio
async def test_spoofed_syn_flood_leaves_service_and_memory_intact():
    rng = random.Random(1)
    async with asyncio.timeout(60):
        server = await atcp.start_server(echo, "127.0.0.1", 0, backlog=BACKLOG)
        port = server.addresses[0][1]
        stack = server.endpoints[0].stack
        reader, writer = await atcp.open_connection("127.0.0.1", port)
        writer.write(b"before")
        assert await reader.readexactly(6) == b"before"
        baseline = live_connections()

        flooding = asyncio.create_task(flood(port, FLOOD, rng))
        echoes = 0
        newcomer = None
        peak = 0
        while not flooding.done():
            message = b"%08d" % echoes
            writer.write(message)
            assert await reader.readexactly(8) == message
            echoes += 1
            peak = max(peak, len(stack.connections))
            if newcomer is None and stack.stats["syncookies_sent"] > 1000:
                newcomer = await atcp.open_connection("127.0.0.1", port)
            await asyncio.sleep(0.01)
        await flooding
        assert stack.stats["syncookies_sent"] > FLOOD // 2
        assert echoes > 10
        assert newcomer is not None, "the flood never got going"
        r2, w2 = newcomer
        w2.write(b"through the flood")
        assert await r2.readexactly(17) == b"through the flood"
        assert stack.stats["syncookies_accepted"] == 1
        # Memory: the SYN queue (spoofed SYN-RECEIVED entries) and the real connections,
        # nothing for the other SYNs.
        assert peak <= BACKLOG + 2
        assert live_connections() <= baseline + BACKLOG + 2   # + the newcomer, both ends
        w2.close()
        writer.close()
        await w2.wait_closed()
        await writer.wait_closed()
        server.close()
        server.abort_clients()
        await server.wait_closed()
