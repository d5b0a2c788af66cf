"""Client connections to one peer share a UDP socket and stack (`atcp.aio.api`): one file
descriptor for many connections, TIME-WAIT kept by the shared stack, and a socket of its
own for a connection that asks for ``local_addr`` or an impairment, has another config,
or finds the shared stack full."""

from __future__ import annotations

import asyncio
import socket

import pytest

import atcp
from atcp.aio import api

pytestmark = pytest.mark.asyncio


async def _echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
    writer.close()


def _udp(writer) -> tuple:
    return writer.get_extra_info("sockname")


async def test_connections_to_one_peer_share_a_socket():
    async with asyncio.timeout(10):
        server = await atcp.start_server(_echo, "127.0.0.1", 0)
        async with server:
            port = server.addresses[0][1]
            pairs = [await atcp.open_connection("127.0.0.1", port) for _ in range(5)]
            assert len({_udp(w) for _, w in pairs}) == 1
            tcp_ports = {w.get_extra_info("tcp_ports")[0] for _, w in pairs}
            assert len(tcp_ports) == 5                     # one stack, five TCP ports
            for i, (r, w) in enumerate(pairs):
                w.write(b"%d" % i * 3000)
            for i, (r, w) in enumerate(pairs):
                assert await r.readexactly(len(b"%d" % i) * 3000) == b"%d" % i * 3000
            endpoint = pairs[0][1].transport._endpoint
            assert all(w.transport._endpoint is endpoint for _, w in pairs)
            for _, w in pairs:
                w.close()
                await w.wait_closed()


async def test_the_shared_socket_closes_after_the_last_time_wait():
    config = atcp.Config(msl=0.1)
    async with asyncio.timeout(10):
        server = await atcp.start_server(_echo, "127.0.0.1", 0, config=config)
        async with server:
            port = server.addresses[0][1]
            (r1, w1), (r2, w2) = [await atcp.open_connection("127.0.0.1", port, config=config)
                                  for _ in range(2)]
            endpoint = w1.transport._endpoint
            assert w2.transport._endpoint is endpoint
            for w in (w1, w2):
                w.close()          # we close first: TIME-WAIT is ours
                await w.wait_closed()
            assert not endpoint.closed and endpoint.stack.time_wait_count == 2
            for _ in range(100):
                if endpoint.closed:
                    break
                await asyncio.sleep(0.05)
            assert endpoint.closed                      # 2*MSL later, nothing left
            loop = asyncio.get_running_loop()
            table = api._SHARED.get(loop, {})
            assert all(ref() is not endpoint for refs in table.values() for ref in refs)
            r3, w3 = await atcp.open_connection("127.0.0.1", port, config=config)
            assert w3.transport._endpoint is not endpoint   # a new socket
            w3.close()
            await w3.wait_closed()


async def test_who_gets_a_socket_of_its_own():
    async with asyncio.timeout(10):
        server = await atcp.start_server(_echo, "127.0.0.1", 0)
        async with server:
            port = server.addresses[0][1]
            _, shared = await atcp.open_connection("127.0.0.1", port)
            _, other_config = await atcp.open_connection(
                "127.0.0.1", port, config=atcp.Config(nodelay=True))
            _, impaired = await atcp.open_connection(
                "127.0.0.1", port, impairment=atcp.Impairment(delay=0.001))
            _, bound = await atcp.open_connection("127.0.0.1", port,
                                                  local_addr=("127.0.0.1", 0))
            sockets = {_udp(w) for w in (shared, other_config, impaired, bound)}
            assert len(sockets) == 4
            _, again = await atcp.open_connection("127.0.0.1", port)
            assert _udp(again) == _udp(shared)
            for w in (shared, other_config, impaired, bound, again):
                w.close()
                await w.wait_closed()


async def test_a_full_shared_stack_opens_another_socket():
    config = atcp.Config(max_connections=2)
    async with asyncio.timeout(10):
        server = await atcp.start_server(_echo, "127.0.0.1", 0)
        async with server:
            port = server.addresses[0][1]
            writers = [(await atcp.open_connection("127.0.0.1", port, config=config))[1]
                       for _ in range(5)]
            per_socket: dict = {}
            for w in writers:
                per_socket.setdefault(_udp(w), []).append(w)
            assert sorted(len(ws) for ws in per_socket.values()) == [1, 2, 2]
            for w in writers:
                w.close()
                await w.wait_closed()


async def test_an_unreachable_peer_refuses_every_connection_opening_to_it():
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()                                     # nothing listens there now
    async with asyncio.timeout(10):
        results = await asyncio.gather(
            *(atcp.open_connection("127.0.0.1", port) for _ in range(3)),
            return_exceptions=True)
    assert all(isinstance(r, ConnectionRefusedError) for r in results), results
