"""atcp against the Linux kernel's TCP, through the TUN gateway (see conftest.py).

The kernel's sockets live in the test's namespace and are used from the same event loop as
atcp (asyncio's own streams over them); the gateway thread converts between the kernel's
IPv4 packets on tun0 and atcp's UDP-carried segments.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import random
import socket
import struct

import pytest

import atcp
from atcp.core.states import State
from atcp.testing.kernel_peer import (ATCP_IP, TO_ATCP, TO_KERNEL, GatewayImpairment, tcp_state,
                                      tcp_info_retransmits)
from atcp.testing.tshark import frames, problems, resent
from atcp.wire import ACK, FIN, RST, SYN

pytestmark = pytest.mark.asyncio

MIB = 1 << 20
TRANSFER = 4 * MIB
CHUNK = 256 * 1024
TIMEOUT = 30.0
#: A lossy 4 MiB exchange takes ~10 s here, ~15 s under coverage; room for a busy machine.
LOSSY_TIMEOUT = 90.0

# tcpi_options bits (include/uapi/linux/tcp.h).
_TCPI_OPT_TIMESTAMPS, _TCPI_OPT_SACK, _TCPI_OPT_WSCALE = 1, 2, 4

OPTION_SETS = {
    "all-on": {"tcp_timestamps": 1, "tcp_sack": 1, "tcp_window_scaling": 1},
    "all-off": {"tcp_timestamps": 0, "tcp_sack": 0, "tcp_window_scaling": 0},
    "ts-only": {"tcp_timestamps": 1, "tcp_sack": 0, "tcp_window_scaling": 0},
    "sack-wscale": {"tcp_timestamps": 0, "tcp_sack": 1, "tcp_window_scaling": 1},
}


# ---------------------------------------------------------------------------- helpers
class Pair:
    """One connection: atcp's streams at one end, the kernel's socket at the other."""

    def __init__(self, reader, writer, ksock: socket.socket, server=None) -> None:
        self.reader, self.writer, self.ksock, self.server = reader, writer, ksock, server

    @property
    def conn(self):
        return self.writer.transport.connection

    async def kernel_streams(self):
        return await asyncio.open_connection(sock=self.ksock)

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 10)
        except (ConnectionError, TimeoutError):
            pass
        self.ksock.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def atcp_client(kp, config: atcp.Config | None = None) -> Pair:
    """atcp connects to a kernel listener on TCP port == the gateway's UDP port."""
    loop = asyncio.get_running_loop()
    listener = kp.socket()
    listener.setblocking(False)
    listener.bind(("0.0.0.0", kp.address[1]))
    listener.listen(8)
    try:
        accepting = asyncio.ensure_future(loop.sock_accept(listener))
        reader, writer = await asyncio.wait_for(
            atcp.open_connection(*kp.address, config=config), 10)
        ksock, _ = await asyncio.wait_for(accepting, 10)
    finally:
        listener.close()
    ksock.setblocking(False)
    return Pair(reader, writer, ksock)


async def kernel_client(kp, config: atcp.Config | None = None) -> Pair:
    """A kernel socket connects to ATCP_IP:P; the gateway delivers to an atcp server on
    127.0.0.1:P (UDP and TCP port P)."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future = loop.create_future()

    def on_connect(reader, writer):
        if not accepted.done():
            accepted.set_result((reader, writer))

    server = await atcp.start_server(on_connect, "127.0.0.1", 0, config=config)
    port = server.sockets[0].getsockname()[1]
    ksock = kp.socket()
    ksock.setblocking(False)
    await asyncio.wait_for(loop.sock_connect(ksock, (ATCP_IP, port)), 10)
    reader, writer = await asyncio.wait_for(accepted, 10)
    return Pair(reader, writer, ksock, server)


OPENERS = {"atcp-client": atcp_client, "kernel-client": kernel_client}


async def send_then_eof(writer, data: bytes) -> None:
    view = memoryview(data)
    for start in range(0, len(data), CHUNK):
        writer.write(view[start:start + CHUNK])
        await writer.drain()
    writer.write_eof()


async def read_to_eof(reader) -> bytes:
    parts = []
    for _ in range(TRANSFER):     # bounded: at least one byte per pass until EOF
        chunk = await reader.read(CHUNK)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
    raise AssertionError("no EOF")


async def exchange(pair: Pair, size: int, seed: int, timeout: float = TIMEOUT) -> None:
    """Both ends send ``size`` bytes, half-close, and read the other's to EOF at once."""
    rng = random.Random(seed)
    to_kernel, to_atcp = rng.randbytes(size), rng.randbytes(size)
    kreader, kwriter = await pair.kernel_streams()
    results = await asyncio.wait_for(asyncio.gather(
        send_then_eof(pair.writer, to_kernel), read_to_eof(kreader),
        send_then_eof(kwriter, to_atcp), read_to_eof(pair.reader)), timeout)
    got_by_kernel, got_by_atcp = results[1], results[3]
    assert len(got_by_kernel) == size and len(got_by_atcp) == size
    assert hashlib.sha256(got_by_kernel).digest() == hashlib.sha256(to_kernel).digest()
    assert hashlib.sha256(got_by_atcp).digest() == hashlib.sha256(to_atcp).digest()
    kwriter.close()


def kernel_options(ksock: socket.socket) -> int:
    return ksock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[5]


async def until(predicate, timeout: float = 5.0, step: float = 0.01) -> bool:
    for _ in range(int(timeout / step)):
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


def assert_clean_path(kp) -> None:
    """Nothing atcp sent was larger than the 1500-byte path the TUN stands for."""
    assert kp.gateway.stats[f"{TO_KERNEL}_oversize"] == 0, kp.gateway.stats


# ---------------------------------------------------------------------------- transfers
@pytest.mark.parametrize("options", list(OPTION_SETS))
@pytest.mark.parametrize("opener", list(OPENERS))
async def test_four_mib_each_way(kernel_peer, opener, options):
    kp = kernel_peer
    wanted = OPTION_SETS[options]
    kp.sysctl(**wanted)
    pair = await OPENERS[opener](kp)
    try:
        conn = pair.conn
        # Both ends agree on what was negotiated, and it is what the kernel was told.
        ts, sack, ws = (bool(wanted[k]) for k in ("tcp_timestamps", "tcp_sack",
                                                  "tcp_window_scaling"))
        assert (conn.ts_enabled, conn.sack_permitted, conn.snd_scale > 0) == (ts, sack, ws)
        bits = kernel_options(pair.ksock)
        assert (bool(bits & _TCPI_OPT_TIMESTAMPS), bool(bits & _TCPI_OPT_SACK),
                bool(bits & _TCPI_OPT_WSCALE)) == (ts, sack, ws)
        await exchange(pair, TRANSFER, seed=len(options) * 7 + len(opener))
    finally:
        await pair.close()
    assert_clean_path(kp)


@pytest.mark.parametrize("congestion", ["bbr", "newreno"])
@pytest.mark.parametrize("opener", list(OPENERS))
async def test_four_mib_each_way_with_each_controller(kernel_peer, opener, congestion):
    """CUBIC (the default) runs in every other test here; BBR and NewReno move the same
    data with the kernel, under loss and reordering, and both TCPs repair it."""
    kp = kernel_peer
    kp.gateway.set_impairment(GatewayImpairment(loss=0.02, reorder=0.02, seed=13))
    pair = await OPENERS[opener](kp, atcp.Config(congestion=congestion))
    try:
        assert pair.writer.get_extra_info("tcp_info").congestion == congestion
        await exchange(pair, TRANSFER, seed=9, timeout=LOSSY_TIMEOUT)
    finally:
        await pair.close()
    assert pair.conn.retransmits > 0
    assert_clean_path(kp)


@pytest.mark.parametrize("opener", list(OPENERS))
async def test_four_mib_each_way_with_loss_and_reordering(kernel_peer, opener, tshark,
                                                          tmp_path):
    kp = kernel_peer
    kp.gateway.set_impairment(GatewayImpairment(loss=0.02, reorder=0.02, seed=11))
    capture = tmp_path / "atcp.pcap"
    pair = await OPENERS[opener](kp, atcp.Config(pcap_path=str(capture)))
    try:
        await exchange(pair, TRANSFER, seed=5, timeout=LOSSY_TIMEOUT)
        kernel_rexmits = tcp_info_retransmits(pair.ksock)
    finally:
        await pair.close()
    conn = pair.conn
    pair.writer.transport.endpoint.pcap.flush()
    stats = kp.gateway.stats
    # The impairment really happened both ways, and both TCPs repaired it.
    for direction in (TO_ATCP, TO_KERNEL):
        assert stats[f"{direction}_lost"] > 10 and stats[f"{direction}_reordered"] > 10
    assert conn.retransmits > 0 and kernel_rexmits > 0
    assert_clean_path(kp)
    # atcp's own capture reads as clean TCP, and Wireshark flags as resent by atcp exactly
    # the segments atcp counted as retransmissions.
    rows = frames(tshark, capture)
    assert rows and problems(rows) == []
    assert len(resent(rows, conn.local_port)) == conn.retransmits


# ---------------------------------------------------------------------------- resets
async def test_atcp_abort_resets_the_kernel(kernel_peer):
    kp = kernel_peer
    pair = await atcp_client(kp)
    loop = asyncio.get_running_loop()
    try:
        pair.writer.write(b"hello")
        assert await asyncio.wait_for(loop.sock_recv(pair.ksock, 100), 5) == b"hello"
        pair.writer.transport.abort()
        with pytest.raises(ConnectionResetError) as caught:
            await asyncio.wait_for(loop.sock_recv(pair.ksock, 100), 5)
        assert caught.value.errno == errno.ECONNRESET
        assert tcp_state(pair.ksock) == "CLOSE"
    finally:
        await pair.close()
    # <SEQ=SND.NXT><CTL=RST> (3.10.5). A segment of the kernel still on its way meets no
    # connection and is answered <SEQ=SEG.ACK><CTL=RST>: the same number, so all agree.
    rsts = kp.gateway.records(TO_KERNEL, RST)
    assert rsts and all(r.segment.seq == pair.conn.snd_nxt for r in rsts)


async def test_kernel_linger_zero_close_resets_atcp(kernel_peer):
    kp = kernel_peer
    pair = await kernel_client(kp)
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_sendall(pair.ksock, b"ping")
        assert await asyncio.wait_for(pair.reader.readexactly(4), 5) == b"ping"
        pair.ksock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        pair.ksock.close()
        with pytest.raises(ConnectionResetError) as caught:
            await asyncio.wait_for(pair.reader.read(100), 5)
        assert caught.value.errno == errno.ECONNRESET
        with pytest.raises(ConnectionResetError):
            pair.writer.write(b"more")
            await pair.writer.drain()
        conn = pair.conn
        assert conn.state is State.CLOSED
    finally:
        await pair.close()
    # The kernel's RST sat exactly at RCV.NXT, the only place RFC 5961 believes one (later
    # ones answer atcp segments that crossed it).
    rsts = kp.gateway.records(TO_ATCP, RST)
    assert rsts and rsts[0].segment.seq == conn.rcv_nxt


# ---------------------------------------------------------------------------- closing
async def test_time_wait_reacks_a_retransmitted_fin(kernel_peer):
    """atcp closes first; its final ACK is lost; the kernel, in LAST-ACK, retransmits its
    FIN; atcp answers again from TIME-WAIT and the kernel's socket closes."""
    kp = kernel_peer
    dropped = kp.gateway.drop_final_ack_once()
    pair = await atcp_client(kp)
    loop = asyncio.get_running_loop()
    try:
        pair.writer.write(b"bye")
        pair.writer.write_eof()                              # atcp: FIN-WAIT-1
        data = b""
        for _ in range(10):
            chunk = await asyncio.wait_for(loop.sock_recv(pair.ksock, 100), 5)
            data += chunk
            if not chunk:
                break
        assert data == b"bye"                                # the kernel read the EOF
        pair.ksock.shutdown(socket.SHUT_WR)                  # kernel: LAST-ACK
        assert await until(lambda: dropped.dropped, 5)       # atcp's ACK of it: lost
        conn = pair.conn
        assert conn.stack.state_of(conn) is State.TIME_WAIT
        assert tcp_state(pair.ksock) == "LAST_ACK"
        assert await until(lambda: tcp_state(pair.ksock) == "CLOSE", 10)
        assert conn.stack.state_of(conn) is State.TIME_WAIT  # still waiting its 2*MSL
    finally:
        await pair.close()
    fins = kp.gateway.records(TO_ATCP, FIN)
    assert len(fins) == 2 and fins[0].segment.seq == fins[1].segment.seq   # retransmitted
    fin_end = (fins[0].segment.seq + 1) & 0xFFFFFFFF
    final_acks = [r for r in kp.gateway.records(TO_KERNEL, ACK)
                  if r.segment.ack == fin_end and not r.flags & (FIN | SYN | RST)]
    assert len(final_acks) == 2 and final_acks[1].time > fins[1].time
    assert not [line for line in kp.tcp_sockets() if line.startswith("LAST-ACK")]


async def test_kernel_closes_first_and_atcp_last_ack_completes(kernel_peer):
    kp = kernel_peer
    pair = await atcp_client(kp)
    try:
        kreader, kwriter = await pair.kernel_streams()
        kwriter.write(b"done")
        kwriter.write_eof()                                  # kernel: FIN-WAIT-1
        assert await asyncio.wait_for(pair.reader.read(), 5) == b"done"   # EOF seen
        conn = pair.conn
        assert conn.state is State.CLOSE_WAIT
        pair.writer.close()                                  # atcp: FIN, LAST-ACK
        assert conn.state is State.LAST_ACK
        await asyncio.wait_for(pair.writer.wait_closed(), 5)     # no error: FIN ACKed
        assert conn.state is State.CLOSED and conn.retransmits == 0
        assert await asyncio.wait_for(kreader.read(), 5) == b""
        # The kernel, which closed first, holds the connection in TIME-WAIT.
        waiting = [line for line in kp.tcp_sockets() if line.startswith("TIME-WAIT")]
        assert len(waiting) == 1 and f":{conn.local_port}" in waiting[0]
    finally:
        await pair.close()
    fins = kp.gateway.records(TO_KERNEL, FIN)
    assert len(fins) == 1
    acks = [r for r in kp.gateway.records(TO_ATCP, ACK)
            if r.segment.ack == (fins[0].segment.seq + fins[0].length + 1) & 0xFFFFFFFF]
    assert acks


# ---------------------------------------------------------------------------- half-close
@pytest.mark.parametrize("opener", list(OPENERS))
async def test_atcp_half_closes_then_reads_the_reply(kernel_peer, opener):
    pair = await OPENERS[opener](kernel_peer)
    try:
        kreader, kwriter = await pair.kernel_streams()
        request = random.Random(1).randbytes(300_000)
        await send_then_eof(pair.writer, request)            # atcp: write_eof
        got = await asyncio.wait_for(read_to_eof(kreader), TIMEOUT)
        assert got == request
        reply = hashlib.sha256(got).digest() * 10_000        # 320 KB after the EOF
        kwriter.write(reply)
        await kwriter.drain()
        kwriter.close()
        assert await asyncio.wait_for(read_to_eof(pair.reader), TIMEOUT) == reply
    finally:
        await pair.close()


@pytest.mark.parametrize("opener", list(OPENERS))
async def test_kernel_half_closes_then_reads_the_reply(kernel_peer, opener):
    pair = await OPENERS[opener](kernel_peer)
    try:
        kreader, kwriter = await pair.kernel_streams()
        request = random.Random(2).randbytes(300_000)
        await send_then_eof(kwriter, request)                # kernel: shutdown(SHUT_WR)
        got = await asyncio.wait_for(read_to_eof(pair.reader), TIMEOUT)
        assert got == request
        assert pair.conn.state is State.CLOSE_WAIT
        reply = hashlib.sha256(got).digest() * 10_000
        await send_then_eof(pair.writer, reply)
        assert await asyncio.wait_for(read_to_eof(kreader), TIMEOUT) == reply
        kwriter.close()
    finally:
        await pair.close()
