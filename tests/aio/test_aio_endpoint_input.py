"""White box: how `Endpoint` reads its socket.

* A wake-up that finds one datagram reads it and asks FIONREAD whether another waits,
  instead of reading again until the call fails; with more queued, it drains them all.
* IPv6 flow info in a source address is not part of a connection's identity: replies go
  to the address without it, on both receive paths (per datagram and GRO).
"""

from __future__ import annotations

import asyncio
import select
import socket

import pytest

import atcp
from atcp.aio.endpoint import Endpoint, open_udp_socket
from atcp.wire import SYN, Segment, build

pytestmark = pytest.mark.asyncio

SYN_TO_80 = build(Segment(40000, 80, 1000, 0, SYN, 65535))


class Counting:
    """The endpoint's socket, with its reads counted."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.reads = 0

    def recvfrom(self, size):
        self.reads += 1
        return self._sock.recvfrom(size)

    def recvmsg(self, size, ancsize):
        self.reads += 1
        return self._sock.recvmsg(size, ancsize)

    def __getattr__(self, name):
        return getattr(self._sock, name)


@pytest.mark.parametrize("offload", [False, True], ids=["per-datagram", "gro"])
async def test_one_datagram_is_read_without_a_failing_read(offload):
    loop = asyncio.get_running_loop()
    sock = open_udp_socket(socket.AF_INET, ("127.0.0.1", 0))
    endpoint = Endpoint(loop, sock, config=atcp.Config(udp_offload=offload))
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        counting = endpoint.sock = Counting(sock)
        target = sock.getsockname()
        peer.sendto(b"not a segment", target)
        _wait_readable(sock)
        endpoint._on_readable_gro() if offload else endpoint._on_readable()
        assert (counting.reads, endpoint.datagrams_in) == (1, 1)
        for _ in range(3):
            peer.sendto(b"not a segment", target)
        _wait_readable(sock)
        counting.reads = 0
        endpoint._on_readable_gro() if offload else endpoint._on_readable()
        # All three, then the read that finds the socket empty.
        assert (counting.reads, endpoint.datagrams_in) == (4, 4)
        assert endpoint.stack.stats["malformed"] == 4
    finally:
        peer.close()
        endpoint.close()


class FlowLabelled:
    """A socket that delivers one SYN from an IPv6 source carrying flow info, and records
    where replies go."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.pending = [(SYN_TO_80, ("::1", 40000, 0xBEEF, 0))]
        self.sent_to = []

    def recvfrom(self, size):
        if not self.pending:
            raise BlockingIOError
        return self.pending.pop()

    def recvmsg(self, size, ancsize):
        data, addr = self.recvfrom(size)
        return data, [], 0, addr

    def sendto(self, data, addr):
        self.sent_to.append(addr)
        return len(data)

    def __getattr__(self, name):
        return getattr(self._sock, name)


@pytest.mark.parametrize("offload", [False, True], ids=["per-datagram", "gro"])
async def test_ipv6_flow_info_is_not_part_of_the_address(offload):
    loop = asyncio.get_running_loop()
    sock = open_udp_socket(socket.AF_INET6, ("::1", 0))
    endpoint = Endpoint(loop, sock, config=atcp.Config(udp_offload=offload))
    try:
        endpoint.stack.listen(80)
        fake = endpoint.sock = FlowLabelled(sock)
        endpoint._on_readable_gro() if offload else endpoint._on_readable()
        assert fake.sent_to == [("::1", 40000, 0, 0)]   # the SYN,ACK
    finally:
        endpoint.close()


def _wait_readable(sock: socket.socket) -> None:
    """Block (bounded) until loopback has delivered; the loop does not run meanwhile, so
    the endpoint's own reader cannot take the datagrams first."""
    readable, _, _ = select.select([sock], [], [], 2.0)
    assert readable, "nothing arrived over loopback"
