"""Batched UDP I/O end to end over 127.0.0.1 and ::1: bulk data arrives intact with GSO/GRO
on and off, this kernel really takes the batched path, and an endpoint whose kernel lacks
or refuses the offloads falls back to one datagram per call without losing any."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import random
import socket
import struct
import sys

import pytest

import atcp
from atcp.aio.udp_batch import SOL_UDP, UDP_SEGMENT

pytestmark = pytest.mark.asyncio

HOSTS = ["127.0.0.1", "::1"]
TOTAL = 4 << 20
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux GSO/GRO")


async def bulk(host: str, config: atcp.Config, total: int = TOTAL, server_config=None):
    """Send ``total`` random bytes client -> server; return (sent digest, (count, digest)
    the server read, client transport, server transport)."""
    data = random.Random(total).randbytes(total)
    seen = {}

    async def handler(reader, writer):
        seen["transport"] = writer.transport
        digest = hashlib.sha256()
        count = 0
        while piece := await reader.read(1 << 20):
            digest.update(piece)
            count += len(piece)
        writer.write(f"{count} {digest.hexdigest()}\n".encode())
        await writer.drain()
        writer.close()

    async with asyncio.timeout(30):
        server = await atcp.start_server(handler, host, 0, config=server_config or config)
        async with server:
            reader, writer = await atcp.open_connection(host, server.addresses[0][1],
                                                        config=config)
            view = memoryview(data)
            for i in range(0, total, 256 * 1024):
                writer.write(view[i:i + 256 * 1024])
                await writer.drain()
            writer.write_eof()
            count, digest = (await reader.readline()).decode().split()
            client = writer.transport
            writer.close()
            await writer.wait_closed()
    return hashlib.sha256(data).hexdigest(), (int(count), digest), client, seen["transport"]


@pytest.mark.parametrize("offload", [True, False], ids=["offload", "per-datagram"])
@pytest.mark.parametrize("host", HOSTS)
async def test_bulk_arrives_intact(host, offload):
    sent, (count, digest), client, server = await bulk(host, atcp.Config(udp_offload=offload))
    assert (count, digest) == (TOTAL, sent)
    expected = "gso+gro" if offload and sys.platform.startswith("linux") else "per-datagram"
    for transport in (client, server):
        assert transport.endpoint.io_path == expected
        assert transport.get_extra_info("tcp_info").io_path == expected
    if not offload:
        assert client.endpoint.stats["gso_sends"] == 0
        assert server.endpoint.stats["gro_batches"] == 0


@linux_only
@pytest.mark.parametrize("host", HOSTS)
async def test_this_kernel_takes_the_batched_path(host):
    """CI runs this kernel: runs of data leave in GSO sends and arrive as GRO batches,
    and the datagram counters count datagrams, not calls."""
    sent, (count, digest), client, server = await bulk(host, atcp.Config())
    assert (count, digest) == (TOTAL, sent)
    sender, receiver = client.endpoint, server.endpoint
    assert sender.stats["gso_sends"] > 0
    assert receiver.stats["gro_batches"] > 0
    assert sender.stats["gso_fallback"] == 0 and sender.stats["send_dropped"] == 0
    segments = TOTAL // client.get_extra_info("tcp_info").snd_mss
    assert sender.datagrams_out >= segments > sender.stats["gso_sends"]
    assert receiver.datagrams_in >= segments


def pcap_records(path) -> int:
    with open(path, "rb") as f:
        data = f.read()
    count, off = 0, 24                       # global header, then 16-byte record headers
    while off < len(data):
        (incl_len,) = struct.unpack_from("<I", data, off + 8)
        off += 16 + incl_len
        count += 1
    return count


@linux_only
async def test_pcap_records_every_datagram_of_a_batch(tmp_path):
    """A GSO send and a GRO receive still put each datagram in the capture."""
    sent, (count, digest), client, server = await bulk(
        "127.0.0.1", atcp.Config(pcap_path=str(tmp_path / "client.pcap")), total=1 << 20,
        server_config=atcp.Config(pcap_path=str(tmp_path / "server.pcap")))
    assert (count, digest) == (1 << 20, sent)
    assert client.endpoint.stats["gso_sends"] > 0 and server.endpoint.stats["gro_batches"] > 0
    for side, transport in (("client", client), ("server", server)):
        endpoint = transport.endpoint
        endpoint.pcap.flush()
        records = pcap_records(tmp_path / f"{side}.pcap")
        assert records == endpoint.datagrams_in + endpoint.datagrams_out


async def test_kernel_without_the_options_gets_the_per_datagram_path(monkeypatch):
    original = socket.socket.setsockopt

    def setsockopt(self, level, option, *value):
        if level == SOL_UDP:
            raise OSError(errno.ENOPROTOOPT, "Protocol not available")
        return original(self, level, option, *value)

    monkeypatch.setattr(socket.socket, "setsockopt", setsockopt)
    sent, (count, digest), client, server = await bulk("127.0.0.1", atcp.Config())
    assert (count, digest) == (TOTAL, sent)
    for transport in (client, server):
        assert transport.endpoint.io_path == "per-datagram"
        assert transport.get_extra_info("tcp_info").io_path == "per-datagram"
    assert client.endpoint.stats["gso_sends"] == 0


@linux_only
@pytest.mark.parametrize("host", HOSTS)
async def test_a_refused_gso_send_falls_back_and_loses_nothing(host, monkeypatch):
    """The options are accepted but the first GSO send fails with EIO (a device without
    checksum offload): that run is sent again datagram by datagram, and GSO is not tried
    again on that socket."""
    original = socket.socket.sendmsg
    refused: dict[int, int] = {}

    def sendmsg(self, buffers, ancdata=(), *rest):
        if any(level == SOL_UDP and kind == UDP_SEGMENT for level, kind, _ in ancdata):
            refused[self.fileno()] = refused.get(self.fileno(), 0) + 1
            raise OSError(errno.EIO, "Input/output error")
        return original(self, buffers, ancdata, *rest)

    monkeypatch.setattr(socket.socket, "sendmsg", sendmsg)
    sent, (count, digest), client, server = await bulk(host, atcp.Config())
    assert (count, digest) == (TOTAL, sent)
    sender = client.endpoint
    assert sender.io_path == "gro" == client.get_extra_info("tcp_info").io_path
    assert sender.stats["gso_fallback"] == 1 and sender.stats["gso_sends"] == 0
    assert sender.stats["send_dropped"] == 0
    assert set(refused.values()) == {1}          # once per socket that tried, then never
    info = client.get_extra_info("tcp_info")
    assert sender.datagrams_out >= info.segs_out >= TOTAL // info.snd_mss


@linux_only
async def test_send_runs_hold_what_would_block_and_count_what_is_refused():
    """White box: `Endpoint._send_runs` on a socket that takes the first run, would block
    on the second (everything from it waits in the backlog, in order), or refuses a run
    with ENOBUFS (the whole run is counted as dropped)."""
    loop = asyncio.get_running_loop()
    sock = atcp.aio.endpoint.open_udp_socket(socket.AF_INET, ("127.0.0.1", 0))
    endpoint = atcp.aio.endpoint.Endpoint(loop, sock)
    try:
        assert endpoint.io_path == "gso+gro"
        a, b = ("127.0.0.1", 9), ("127.0.0.1", 10)
        out = [(b"1" * 100, a)] * 3 + [(b"2" * 50, b)] * 2 + [(b"3" * 10, a)]
        calls = []

        class Sock:
            def sendmsg(self, buffers, ancdata, flags, addr):
                calls.append(("sendmsg", len(buffers), addr))
                if len(calls) == 2:
                    raise BlockingIOError

            def sendto(self, data, addr):
                calls.append(("sendto", 1, addr))

        endpoint.sock = Sock()
        endpoint._send_runs(out)
        assert calls == [("sendmsg", 3, a), ("sendmsg", 2, b)]
        assert list(endpoint._backlog) == out[3:]
        assert endpoint.datagrams_out == 3

        class Full(Sock):
            def sendmsg(self, buffers, ancdata, flags, addr):
                raise OSError(errno.ENOBUFS, "No buffer space available")

        endpoint._backlog.clear()
        loop.remove_writer(endpoint._fd)
        endpoint.sock = Full()
        calls.clear()
        endpoint._send_runs(out)
        assert calls == [("sendto", 1, a)]
        assert endpoint.stats["send_dropped"] == 5 and endpoint.datagrams_out == 4
        assert endpoint.io_path == "gso+gro"     # ENOBUFS is loss, not a missing feature
    finally:
        endpoint.sock = sock
        endpoint.close()
