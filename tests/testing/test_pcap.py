"""The pcap writer and its packet builders (atcp/pcap.py): checksums, headers, file format."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given, strategies as st

from atcp.pcap import (LINKTYPE_RAW, PcapWriter, internet_checksum, ip_packet, ipv4_packet,
                       ipv6_packet, read_pcap, tcp_checksum, with_tcp_checksum)
from atcp.wire import ACK, SYN, Options, Segment, build, parse


def reference_checksum(data: bytes) -> int:
    """RFC 1071 word by word, with end-around carry."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ones_sum_is_zero(data: bytes) -> bool:
    """A block that includes a correct checksum sums to "zero" (0xFFFF, RFC 1071)."""
    return reference_checksum(data) == 0


def test_rfc1071_example():
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == ~0xDDF2 & 0xFFFF


@given(st.binary(min_size=1, max_size=600))
def test_checksum_matches_reference(data):
    # 0x0000 and 0xFFFF are the two zeros of one's complement: either verifies.
    ours, ref = internet_checksum(data), reference_checksum(data)
    assert ours == ref or {ours, ref} == {0, 0xFFFF}
    padded = data + (b"\0" if len(data) % 2 else b"")
    assert ones_sum_is_zero(padded + ours.to_bytes(2, "big"))


SEG = build(Segment(40000, 80, 123456, 0, SYN, 65535, b"",
                    Options(mss=1460, wscale=7, sack_permitted=True, ts_val=1, ts_ecr=0)))
DATA = build(Segment(80, 40000, 99, 123457, ACK, 512, b"hello, world!"))


def test_ipv4_packet_header_and_checksums():
    src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    pkt = ipv4_packet(src, dst, DATA, ident=7)
    assert pkt[0] == 0x45 and pkt[9] == 6
    assert struct.unpack_from("!H", pkt, 2)[0] == len(pkt) == 20 + len(DATA)
    assert struct.unpack_from("!H", pkt, 4)[0] == 7
    assert pkt[12:16] == src and pkt[16:20] == dst
    assert ones_sum_is_zero(pkt[:20])
    tcp = pkt[20:]
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    assert ones_sum_is_zero(pseudo + tcp + (b"\0" if len(tcp) % 2 else b""))
    # Only the checksum field differs from what atcp sent; the segment still parses.
    assert tcp[:16] == DATA[:16] and tcp[18:] == DATA[18:]
    assert parse(tcp) == parse(DATA)


def test_ipv6_packet_header_and_checksum():
    src = bytes(15) + b"\x01"
    dst = bytes.fromhex("20010db8000000000000000000000002")
    pkt = ipv6_packet(src, dst, SEG)
    assert pkt[0] >> 4 == 6 and pkt[6] == 6
    assert struct.unpack_from("!H", pkt, 4)[0] == len(SEG)
    tcp = pkt[40:]
    pseudo = src + dst + struct.pack("!I3xB", len(tcp), 6)
    assert ones_sum_is_zero(pseudo + tcp)


def test_checksum_ignores_what_was_in_the_field():
    src, dst = bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])
    garbage = DATA[:16] + b"\xbe\xef" + DATA[18:]
    assert tcp_checksum(src, dst, garbage) == tcp_checksum(src, dst, DATA)
    assert with_tcp_checksum(src, dst, garbage) == with_tcp_checksum(src, dst, DATA)


def test_ip_packet_picks_the_family():
    assert ip_packet("127.0.0.1", "127.0.0.1", DATA)[0] >> 4 == 4
    assert ip_packet("::1", "::1", DATA)[0] >> 4 == 6
    # A dual-stack socket reports IPv4 peers as mapped addresses: written as IPv4.
    assert ip_packet("::ffff:10.1.2.3", "10.1.2.4", DATA)[12:16] == bytes([10, 1, 2, 3])
    assert ip_packet("fe80::1%lo", "fe80::2%lo", DATA)[0] >> 4 == 6
    with pytest.raises(ValueError):
        ip_packet("::1", "127.0.0.1", DATA)


def test_too_short_segment_is_refused():
    with pytest.raises(ValueError):
        with_tcp_checksum(b"\0" * 4, b"\0" * 4, b"\0" * 19)


def test_writer_round_trip():
    buf = io.BytesIO()
    with PcapWriter(buf) as writer:
        writer.write_segment(SEG, ("127.0.0.1", 5000), ("127.0.0.1", 9000), 1700000000.25)
        writer.write_segment(DATA, ("::1", 9000, 0, 0), ("::1", 5000, 0, 0), 1700000000.5)
        writer.write_segment(b"short", ("127.0.0.1", 1), ("127.0.0.1", 2), 1700000001.0)
        assert writer.packets == 2
    linktype, packets = read_pcap(buf.getvalue())
    assert linktype == LINKTYPE_RAW
    assert [ts for ts, _ in packets] == [1700000000.25, 1700000000.5]
    assert packets[0][1] == ip_packet("127.0.0.1", "127.0.0.1", SEG, ident=1)
    assert packets[1][1] == ip_packet("::1", "::1", DATA)


def test_writer_owns_a_path(tmp_path):
    path = tmp_path / "x.pcap"
    writer = PcapWriter(str(path))
    writer.write_segment(DATA, ("10.0.0.1", 1), ("10.0.0.2", 2), 1.0)
    writer.close()
    writer.close()   # idempotent
    assert writer.closed
    _, packets = read_pcap(path.read_bytes())
    assert len(packets) == 1 and packets[0][1][20:] == with_tcp_checksum(
        bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), DATA)


def test_read_pcap_rejects_garbage():
    with pytest.raises(ValueError):
        read_pcap(b"\0" * 24)
    with pytest.raises(ValueError):
        read_pcap(b"short")
    buf = io.BytesIO()
    PcapWriter(buf).write_packet(b"\x45" + bytes(39), 0.0)
    with pytest.raises(ValueError):
        read_pcap(buf.getvalue()[:-1])
