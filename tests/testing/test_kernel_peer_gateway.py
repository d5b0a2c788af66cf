"""The kernel-peer gateway's packet conversion, routing, drops and impairment, without root.

A datagram socket pair stands in for the TUN device (both carry one packet per read and
write), so what the gateway writes "to the kernel" can be read back and checked.
"""

from __future__ import annotations

import random
import socket
import struct
import time

import pytest

from atcp.pcap import internet_checksum, ipv4_packet
from atcp.testing.kernel_peer import (ATCP_IP, KERNEL_IP, TO_ATCP, TO_KERNEL, Gateway,
                                      GatewayImpairment)
from atcp.wire import ACK, FIN, PSH, SYN, Segment, build, parse

KERNEL = socket.inet_aton(KERNEL_IP)
ATCP = socket.inet_aton(ATCP_IP)
KPORT = 40000


@pytest.fixture
def rig():
    tun, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    kernel.settimeout(2)
    atcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    atcp.bind(("127.0.0.1", 0))
    atcp.settimeout(2)
    gateway = Gateway(tun.fileno())
    yield gateway, kernel, atcp
    gateway.close()
    assert gateway.error is None
    for s in (tun, kernel, atcp):
        s.close()


def atcp_port(atcp) -> int:
    return atcp.getsockname()[1]


def from_kernel(kernel, seg: Segment, dst=ATCP) -> bytes:
    """The kernel sends ``seg`` (as an IPv4 packet on the TUN)."""
    raw = build(seg)
    kernel.send(ipv4_packet(KERNEL, dst, raw))
    return raw


def pseudo_sum_ok(packet: bytes) -> bool:
    tcp = packet[20:]
    pseudo = packet[12:20] + struct.pack("!BBH", 0, 6, len(tcp))
    return internet_checksum(pseudo + tcp) == 0


def test_kernel_packet_reaches_atcp_as_a_bare_segment(rig):
    gateway, kernel, atcp = rig
    seg = Segment(KPORT, atcp_port(atcp), 1000, 0, SYN, 64240)
    raw = from_kernel(kernel, seg)
    data, addr = atcp.recvfrom(2000)
    assert addr == gateway.address
    assert data[:16] == raw[:16] and data[16:18] == b"\0\0" and data[18:] == raw[18:]
    assert parse(data) == seg


def test_atcp_segment_reaches_the_kernel_as_ipv4_with_checksums(rig):
    gateway, kernel, atcp = rig
    seg = Segment(atcp_port(atcp), KPORT, 7, 1001, ACK | PSH, 512, b"hello")
    atcp.sendto(build(seg), gateway.address)
    packet = kernel.recv(2000)
    assert packet[0] == 0x45 and packet[9] == 6 and packet[6] & 0x40    # IPv4, TCP, DF
    assert packet[12:16] == ATCP and packet[16:20] == KERNEL
    assert struct.unpack_from("!H", packet, 2)[0] == len(packet)
    assert internet_checksum(packet[:20]) == 0
    assert pseudo_sum_ok(packet)
    assert parse(packet[20:]) == seg
    for _ in range(200):          # counted just after the write the kernel read
        if gateway.stats[f"{TO_KERNEL}_forwarded"]:
            break
        time.sleep(0.005)
    assert gateway.stats[f"{TO_KERNEL}_forwarded"] == 1


def test_replies_follow_the_udp_address_atcp_used(rig):
    gateway, kernel, atcp = rig
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    other.settimeout(2)
    try:
        # atcp's TCP port 5555 speaks from UDP port `other`, not from UDP port 5555.
        other.sendto(build(Segment(5555, KPORT, 1, 0, SYN, 100)), gateway.address)
        kernel.recv(2000)
        from_kernel(kernel, Segment(KPORT, 5555, 9, 2, SYN | ACK, 100))
        assert parse(other.recv(2000)).flags == SYN | ACK
    finally:
        other.close()


def test_packets_not_for_atcp_are_ignored(rig):
    gateway, kernel, atcp = rig
    from_kernel(kernel, Segment(KPORT, atcp_port(atcp), 1, 0, SYN, 1), dst=KERNEL)
    kernel.send(b"\x60" + bytes(59))                     # IPv6
    from_kernel(kernel, Segment(KPORT, atcp_port(atcp), 2, 0, SYN, 1))
    assert parse(atcp.recv(2000)).seq == 2
    assert gateway.stats["tun_ignored"] == 2


def test_drop_final_ack_once(rig):
    gateway, kernel, atcp = rig
    rule = gateway.drop_final_ack_once()
    port = atcp_port(atcp)
    from_kernel(kernel, Segment(KPORT, port, 500, 80, FIN | ACK, 100))
    atcp.recv(2000)
    final_ack = build(Segment(port, KPORT, 80, 501, ACK, 100))
    atcp.sendto(build(Segment(port, KPORT, 80, 500, ACK, 100)), gateway.address)  # not it
    atcp.sendto(final_ack, gateway.address)                                       # dropped
    atcp.sendto(final_ack, gateway.address)                                       # passes
    assert parse(kernel.recv(2000)[20:]).ack == 500
    assert parse(kernel.recv(2000)[20:]).ack == 501
    assert len(rule.dropped) == 1 and rule.dropped[0].ack == 501
    assert gateway.stats[f"{TO_KERNEL}_dropped_by_rule"] == 1
    assert [r.direction for r in gateway.records()] == [TO_ATCP] + [TO_KERNEL] * 3


def test_seeded_impairment_is_repeatable_and_one_way(rig):
    gateway, kernel, atcp = rig
    gateway.set_impairment(GatewayImpairment(loss=0.5, seed=3, directions=(TO_KERNEL,)))
    port = atcp_port(atcp)
    for i in range(40):
        atcp.sendto(build(Segment(port, KPORT, i, 0, ACK, 1)), gateway.address)
    for i in range(5):
        from_kernel(kernel, Segment(KPORT, port, i, 0, ACK, 1))
    assert sorted(parse(atcp.recv(2000)).seq for _ in range(5)) == list(range(5))
    kernel.settimeout(0.3)
    passed = []
    for _ in range(40):
        try:
            passed.append(parse(kernel.recv(2000)[20:]).seq)
        except TimeoutError:
            break
    assert 0 < len(passed) < 40
    assert gateway.stats[f"{TO_KERNEL}_lost"] == 40 - len(passed)
    rng = random.Random(3)
    assert passed == [i for i in range(40) if not rng.random() < 0.5]


def test_reordered_packets_are_overtaken(rig):
    gateway, kernel, atcp = rig
    # A seed whose first draw holds a packet back and whose second does not.
    seed = next(s for s in range(1000)
                if (lambda r: r.random() < 0.5 <= r.random())(random.Random(s)))
    gateway.set_impairment(GatewayImpairment(reorder=0.5, reorder_delay=0.2, seed=seed,
                                             directions=(TO_KERNEL,)))
    port = atcp_port(atcp)
    atcp.sendto(build(Segment(port, KPORT, 1, 0, ACK, 1)), gateway.address)
    atcp.sendto(build(Segment(port, KPORT, 2, 0, ACK, 1)), gateway.address)
    assert [parse(kernel.recv(2000)[20:]).seq for _ in range(2)] == [2, 1]


def test_oversize_packets_are_counted(rig):
    gateway, kernel, atcp = rig
    port = atcp_port(atcp)
    atcp.sendto(build(Segment(port, KPORT, 1, 0, ACK, 1, b"x" * 1460)), gateway.address)
    atcp.sendto(build(Segment(port, KPORT, 1, 0, ACK, 1, b"x" * 1461)), gateway.address)
    assert len(kernel.recv(4000)) == 1500 and len(kernel.recv(4000)) == 1501
    assert gateway.stats[f"{TO_KERNEL}_oversize"] == 1


def test_impairment_is_checked():
    with pytest.raises(ValueError):
        GatewayImpairment(loss=1.5)
    with pytest.raises(ValueError):
        GatewayImpairment(delay=-1)
    with pytest.raises(ValueError):
        GatewayImpairment(directions=("sideways",))
