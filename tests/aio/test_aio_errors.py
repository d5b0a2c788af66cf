"""Errors as users know them from kernel TCP: refused, timed out, bad arguments."""

from __future__ import annotations

import asyncio
import errno
import os
import socket

import pytest

import atcp

pytestmark = pytest.mark.asyncio


async def nothing(reader, writer):
    writer.close()


async def test_no_listener_on_that_tcp_port_is_refused_quickly():
    async with asyncio.timeout(10):
        server = await atcp.start_server(nothing, "127.0.0.1", 0)
        async with server:
            port = server.addresses[0][1]
            loop = asyncio.get_running_loop()
            start = loop.time()
            with pytest.raises(ConnectionRefusedError) as info:
                await atcp.open_connection("127.0.0.1", port, tcp_port=port + 1 if port < 65535
                                           else port - 1)
            assert loop.time() - start < 1.0
            assert info.value.errno == errno.ECONNREFUSED
            # The listener's stack answered our SYN with a RST (RFC 9293 3.10.7.1).
            assert server.endpoints[0].stats["rst_sent"] == 1


def unused_udp_port(family=socket.AF_INET, host="127.0.0.1") -> int:
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("host,family", [("127.0.0.1", socket.AF_INET),
                                         ("::1", socket.AF_INET6)])
async def test_closed_udp_port_is_refused(host, family):
    """Nothing bound: the host answers with ICMP port unreachable, which the connected
    client socket reports as ECONNREFUSED; an opening connection is refused at once."""
    port = unused_udp_port(family, host)
    async with asyncio.timeout(5):
        with pytest.raises(ConnectionRefusedError):
            await atcp.open_connection(host, port)


async def test_silent_udp_port_times_out():
    """A bound UDP socket that never answers: the SYN is retried, then TimeoutError."""
    config = atcp.Config(syn_retries=2, rto_initial=0.05, rto_min=0.05)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        async with asyncio.timeout(5):
            with pytest.raises(TimeoutError) as info:
                await atcp.open_connection("127.0.0.1", port, config=config)
        assert info.value.errno == errno.ETIMEDOUT
        # The initial SYN and two retransmissions reached the socket.
        silent.setblocking(False)
        syns = 0
        for _ in range(10):
            try:
                silent.recv(100)
            except BlockingIOError:
                break
            syns += 1
        assert syns == 3


async def test_cancelled_connect_releases_its_socket():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        before = open_fds()
        task = asyncio.create_task(atcp.open_connection("127.0.0.1", port))
        await asyncio.sleep(0.05)
        assert open_fds() == before + 1          # the attempt's UDP socket
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert open_fds() == before


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(host=1, port=80), TypeError, "host must be a str"),
    (dict(host="", port=80), ValueError, "host must not be empty"),
    (dict(host="127.0.0.1", port="80"), TypeError, "port must be an int"),
    (dict(host="127.0.0.1", port=0), ValueError, r"port must be in 1\.\.65535"),
    (dict(host="127.0.0.1", port=70000), ValueError, r"port must be in 1\.\.65535"),
    (dict(host="127.0.0.1", port=80, tcp_port=-1), ValueError, "tcp_port"),
    (dict(host="127.0.0.1", port=80, config={"msl": 1}), TypeError, "atcp.Config"),
    (dict(host="127.0.0.1", port=80, impairment=0.1), TypeError, "atcp.Impairment"),
    (dict(host="127.0.0.1", port=80, limit=-5), ValueError, "limit must be positive"),
    (dict(host="127.0.0.1", port=80, local_addr="127.0.0.1"), TypeError, "local_addr"),
])
async def test_bad_connect_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        await atcp.open_connection(**kwargs)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(port=-1), ValueError, r"port must be in 0\.\.65535"),
    (dict(port=1.5), TypeError, "port must be an int"),
    (dict(port=0, backlog=0), ValueError, "backlog"),
    (dict(port=0, config=object()), TypeError, "atcp.Config"),
    (dict(port=0, host=[1]), TypeError, "host must be a str"),
])
async def test_bad_server_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        await atcp.start_server(nothing, **kwargs)


async def test_udp_port_in_use_is_eaddrinuse():
    async with asyncio.timeout(5):
        server = await atcp.start_server(nothing, "127.0.0.1", 0)
        async with server:
            with pytest.raises(OSError) as info:
                await atcp.start_server(nothing, "127.0.0.1", server.addresses[0][1])
            assert info.value.errno == errno.EADDRINUSE


async def test_backlog_bounds_connections_waiting_to_be_accepted():
    """With the server not serving yet, a listener holds at most ``backlog`` connections;
    a SYN beyond that is dropped, so that client times out. Closing the server resets the
    connections it never accepted."""
    config = atcp.Config(syn_retries=1, rto_initial=0.05, rto_min=0.05)
    async with asyncio.timeout(10):
        server = await atcp.start_server(nothing, "127.0.0.1", 0, backlog=2,
                                         start_serving=False)
        port = server.addresses[0][1]
        waiting = [await atcp.open_connection("127.0.0.1", port) for _ in range(2)]
        with pytest.raises(TimeoutError):
            await atcp.open_connection("127.0.0.1", port, config=config)
        assert server.endpoints[0].stack.stats["listen_overflow"] == 2   # SYN, then again
        server.close()
        for reader, writer in waiting:
            with pytest.raises(ConnectionResetError):
                await reader.read()
            writer.close()
        await server.wait_closed()


async def test_port_unreachable_after_the_handshake_is_left_to_retransmission():
    """The server's socket vanishes; the client's datagrams now draw ICMP port
    unreachable (ECONNREFUSED on its socket). That does not break the endpoint: the
    connection retransmits and, its retries exhausted, ends with TimeoutError."""
    config = atcp.Config(data_retries=2, rto_min=0.02, rto_initial=0.05)
    accepted = asyncio.Event()

    async def handler(reader, writer):
        accepted.set()
        await reader.read()

    async with asyncio.timeout(10):
        server = await atcp.start_server(handler, "127.0.0.1", 0, config=config)
        reader, writer = await atcp.open_connection("127.0.0.1", server.addresses[0][1],
                                                    config=config)
        await accepted.wait()
        server.endpoints[0].close()            # gone without a word, like a crashed host
        writer.write(b"anyone there?")
        with pytest.raises(TimeoutError) as info:
            await reader.read()
        assert info.value.errno == errno.ETIMEDOUT
        endpoint = writer.transport.endpoint
        assert endpoint.stats["socket_errors"] >= 1
        assert writer.get_extra_info("tcp_info").retransmits >= 2
        assert endpoint.closed                  # nothing left to serve: socket released
        writer.close()


class Exploding(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        raise RuntimeError("bug in the application")


async def test_protocol_callback_error_is_reported_and_the_connection_reset():
    loop = asyncio.get_running_loop()
    reported = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        async with asyncio.timeout(10):
            server = await atcp.create_server(Exploding, "127.0.0.1", 0)
            async with server:
                reader, writer = await atcp.open_connection("127.0.0.1",
                                                            server.addresses[0][1])
                writer.write(b"boom")
                with pytest.raises(ConnectionResetError):
                    await reader.read()
                writer.close()
    finally:
        loop.set_exception_handler(None)
    assert len(reported) == 1
    assert isinstance(reported[0]["exception"], RuntimeError)
    assert "data_received" in reported[0]["message"]
