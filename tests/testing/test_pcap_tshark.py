"""Wireshark reads atcp captures as ordinary TCP (checked with tshark).

Two kinds of capture: one side of a deterministic lossy transfer between two sans-I/O stacks
(`atcp.testing.link`), written with `atcp.pcap.PcapWriter` where an endpoint records, that
is every datagram the side sends and receives; and a real endpoint's own capture
(``Config(pcap_path=...)``) of a transfer whose datagrams its `Impairment` drops.
"""

from __future__ import annotations

import os
import random

import pytest

from atcp.config import Config
from atcp.core.stack import Stack
from atcp.core.states import State
from atcp.pcap import PcapWriter
from atcp.testing.link import Link
from atcp.testing.tshark import find_tshark, frames, problems, resent

EPOCH = 1_700_000_000.0   # pcap timestamps: the fake clock, placed in 2023
ADDR_A = ("10.0.0.1", 5000)
ADDR_B = ("10.0.0.2", 6000)
PORT = 47000              # not a well-known port, so no application dissector guesses


@pytest.fixture(scope="module")
def tshark() -> str:
    path = find_tshark()
    if path is None:
        reason = "tshark is not installed (Debian: apt-get install tshark)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; .ci/run installs it, so CI must have it")
        pytest.skip(reason)
    return path


def tap(stack: Stack, local, writer: PcapWriter, link: Link) -> None:
    """Record everything ``stack`` sends and receives, as an endpoint does."""
    send, receive = stack.datagrams_to_send, stack.receive

    def datagrams_to_send():
        out = send()
        for raw, remote in out:
            writer.write_segment(raw, local, remote, EPOCH + link.now)
        return out

    def tapped_receive(raw, remote, now):
        writer.write_segment(raw, remote, local, EPOCH + now)
        receive(raw, remote, now)

    stack.datagrams_to_send = datagrams_to_send
    stack.receive = tapped_receive


def lossy_transfer(path, size: int, loss: float, seed: int):
    """Send ``size`` bytes from A to B over a lossy link, both close; capture at A."""
    a = Stack(Config(), mss=1000, rng=random.Random(seed))
    b = Stack(Config(), mss=1000, rng=random.Random(seed + 1))
    link = Link(a, b, delay=0.02, loss=loss, seed=seed, addr_a=ADDR_A, addr_b=ADDR_B)
    writer = PcapWriter(str(path))
    tap(a, ADDR_A, writer, link)
    listener = b.listen(PORT)
    client = a.connect(ADDR_B, PORT, 0.0)
    data = random.Random(seed).randbytes(size)
    got = bytearray()
    sent = 0
    server = None

    def step() -> bool:
        nonlocal sent, server
        server = server or listener.accept()
        if client.state is State.ESTABLISHED and sent < size:
            sent += client.send(data[sent:sent + 65536], link.now)
            if sent == size:
                client.close(link.now)
        if server is not None:
            got.extend(server.read(-1, link.now))
            if server.eof and server.state is State.CLOSE_WAIT:
                server.close(link.now)
        return False

    link.run(until=120.0, stop=step)
    writer.close()
    assert bytes(got) == data
    assert client.state is State.TIME_WAIT and server.state is State.CLOSED
    return client


def test_lossy_capture_decodes_as_tcp_and_flags_atcps_retransmissions(tshark, tmp_path):
    path = tmp_path / "lossy.pcap"
    client = lossy_transfer(path, 300_000, loss=0.05, seed=1)
    assert client.retransmits > 5      # the seed makes losses; otherwise nothing is tested

    rows = frames(tshark, path)
    assert len(rows) > 300
    assert rows and problems(rows) == []
    assert {r["ip.src"] for r in rows} == {ADDR_A[0], ADDR_B[0]}
    # The handshake and the FIN exchange appear as Wireshark expects them.
    assert [r["tcp.flags.ack"] for r in rows if r["tcp.flags.syn"] == "1"] == ["0", "1"]
    assert len([r for r in rows if r["tcp.flags.fin"] == "1"]) == 2
    # What Wireshark flags as resent by A is what A counted; B resent nothing.
    assert len(resent(rows, client.local_port)) == client.retransmits
    assert resent(rows, client.local_port, sent_from=False) == []


def test_reset_shows_as_reset(tshark, tmp_path):
    a = Stack(Config(), mss=1000, rng=random.Random(5))
    b = Stack(Config(), mss=1000, rng=random.Random(6))
    link = Link(a, b, addr_a=ADDR_A, addr_b=ADDR_B)
    path = tmp_path / "rst.pcap"
    with PcapWriter(str(path)) as writer:
        tap(a, ADDR_A, writer, link)
        b.listen(PORT)
        client = a.connect(ADDR_B, PORT, 0.0)
        link.run(until=1.0)
        client.send(b"x" * 100, link.now)
        client.abort(link.now)
        link.run(until=2.0)
        a.connect(ADDR_B, PORT + 1, link.now)      # nobody listens there: RST,ACK
        link.run(until=3.0)
    rows = frames(tshark, path)
    assert rows and problems(rows) == []
    resets = [(r["tcp.srcport"], r["tcp.flags.ack"]) for r in rows
              if r["tcp.flags.reset"] == "1"]
    # atcp's abort (<SEQ=SND.NXT><CTL=RST>), then B's RST,ACK for a SYN to a closed port.
    assert resets == [(str(client.local_port), "0"), (str(PORT + 1), "1")]


# ---------------------------------------------------------------------------- Config(pcap_path)
@pytest.mark.asyncio
async def test_endpoint_capture_of_a_lossy_transfer(tshark, tmp_path):
    """``Config(pcap_path=...)`` on a real endpoint whose datagrams are 5% lost: the file
    decodes as TCP, and Wireshark flags exactly the retransmissions atcp counted."""
    import asyncio
    import hashlib

    import atcp

    path = tmp_path / "client.pcap"
    data = random.Random(9).randbytes(1 << 20)

    async def sink(reader, writer):
        got = await reader.read()
        writer.write(hashlib.sha256(got).digest())
        writer.close()

    server = await atcp.start_server(sink, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await atcp.open_connection(
            "127.0.0.1", port, config=atcp.Config(pcap_path=str(path)),
            impairment=atcp.Impairment(loss=0.05, seed=4))
        writer.write(data)
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 30) == hashlib.sha256(data).digest()
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 30)     # FIN exchange done
        conn = writer.transport.connection
        writer.transport.endpoint.pcap.flush()
    finally:
        server.close()
        await server.wait_closed()
    assert conn.retransmits > 5

    rows = frames(tshark, path)
    assert rows and problems(rows) == []
    assert all((r["ip.src"], r["ip.dst"]) == ("127.0.0.1", "127.0.0.1") for r in rows)
    assert {(r["tcp.srcport"], r["tcp.dstport"]) for r in rows} == {
        (str(conn.local_port), str(port)), (str(port), str(conn.local_port))}
    assert len([r for r in rows if r["tcp.flags.syn"] == "1"]) >= 2
    assert len(resent(rows, conn.local_port)) == conn.retransmits
