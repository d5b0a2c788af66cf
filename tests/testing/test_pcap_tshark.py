"""Wireshark reads atcp captures as ordinary TCP (checked with tshark).

The capture here is taken on one side of a deterministic lossy transfer between two sans-I/O
stacks (`atcp.testing.link`), written with `atcp.pcap.PcapWriter` at the same point where an
endpoint records it: every datagram that side sends and receives.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess

import pytest

from atcp.config import Config
from atcp.core.stack import Stack
from atcp.core.states import State
from atcp.pcap import PcapWriter
from atcp.testing.link import Link

EPOCH = 1_700_000_000.0   # pcap timestamps: the fake clock, placed in 2023
ADDR_A = ("10.0.0.1", 5000)
ADDR_B = ("10.0.0.2", 6000)
PORT = 47000              # not a well-known port, so no application dissector guesses


@pytest.fixture(scope="module")
def tshark() -> str:
    path = shutil.which("tshark")
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


def fields(tshark: str, path, display_filter: str, *names: str) -> list[list[str]]:
    cmd = [tshark, "-n", "-r", str(path), "-o", "tcp.check_checksum:TRUE",
           "-o", "tcp.analyze_sequence_numbers:TRUE", "-Y", display_filter, "-T", "fields"]
    for name in names:
        cmd += ["-e", name]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def test_lossy_capture_decodes_as_tcp_and_flags_atcps_retransmissions(tshark, tmp_path):
    path = tmp_path / "lossy.pcap"
    client = lossy_transfer(path, 300_000, loss=0.05, seed=1)
    assert client.retransmits > 5      # the seed makes losses; otherwise nothing is tested

    everything = fields(tshark, path, "frame", "frame.number", "ip.proto", "tcp.srcport")
    assert len(everything) > 300
    assert all(row[1] == "6" for row in everything)            # all decode as IPv4 + TCP
    assert fields(tshark, path, "_ws.malformed || _ws.expert.severity >= error",
                  "frame.number") == []
    assert fields(tshark, path, "tcp.checksum.status != 1 || ip.checksum.status == 0",
                  "frame.number") == []                         # checksums verify
    # The handshake and the FIN exchange appear as Wireshark expects them.
    syns = fields(tshark, path, "tcp.flags.syn == 1", "tcp.flags.ack")
    assert [row[0] for row in syns] == ["0", "1"]
    assert len(fields(tshark, path, "tcp.flags.fin == 1", "frame.number")) == 2

    # What Wireshark flags as resent by A: retransmissions (fast ones included) and the
    # partial-ACK retransmissions it calls "out-of-order" because they follow new data
    # within one RTT. A sender emits nothing else out of order.
    flagged = fields(tshark, path,
                     f"tcp.srcport != {PORT} && (tcp.analysis.retransmission"
                     " || tcp.analysis.out_of_order)", "tcp.seq")
    assert len(flagged) == client.retransmits
    # and B, which never retransmits here, has nothing flagged.
    assert fields(tshark, path, f"tcp.srcport == {PORT} && (tcp.analysis.retransmission"
                  " || tcp.analysis.out_of_order)", "frame.number") == []


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
    resets = fields(tshark, path, "tcp.flags.reset == 1", "tcp.srcport", "tcp.flags.ack")
    assert [row[0] for row in resets] == [str(client.local_port), str(PORT + 1)]
    assert resets[1][1] == "1"
    assert fields(tshark, path, "_ws.malformed || tcp.checksum.status != 1",
                  "frame.number") == []
