"""Packet captures of atcp traffic that Wireshark and tcpdump read as ordinary TCP.

Theory of operation
-------------------
On the wire an atcp segment is a UDP payload with a zero TCP checksum (see the wire format).
A capture of the UDP datagrams can be decoded as TCP (``-d udp.port==N,tcp``), but the
checksums show as wrong and Wireshark's TCP analysis sees one UDP "conversation" per socket
pair. A capture written here instead holds each segment as the IP packet a kernel TCP would
have sent:

* the link type is ``LINKTYPE_RAW`` (101): every record starts with an IPv4 or IPv6 header,
  chosen per packet from the address family;
* the IP addresses are the IP addresses of the two UDP endpoints (an IPv4-mapped IPv6
  address is written as IPv4); the UDP ports do not appear, the TCP ports do. Two connections
  that differ only in their UDP ports therefore look like one in the capture: record one
  endpoint per file if that matters;
* the TCP checksum is computed over the pseudo-header of those addresses (RFC 9293 3.1,
  RFC 8200 8.1), so Wireshark validates it; the IPv4 header checksum is valid too.

Everything here is a pure function of its arguments except `PcapWriter`, which writes to the
file it is given; timestamps are passed in by the caller. The same helpers build the packets
the kernel-peer gateway (`atcp.testing.kernel_peer`) writes to a TUN device.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import BinaryIO

__all__ = [
    "LINKTYPE_RAW",
    "internet_checksum",
    "tcp_checksum",
    "with_tcp_checksum",
    "ipv4_packet",
    "ipv6_packet",
    "ip_packet",
    "PcapWriter",
    "read_pcap",
]

#: pcap link type for raw IPv4/IPv6 packets (the version nibble tells which).
LINKTYPE_RAW = 101
_PCAP_MAGIC_US = 0xA1B2C3D4  # microsecond timestamps, written in native order
_SNAPLEN = 262144
_GLOBAL = struct.Struct("=IHHiIII")
_RECORD = struct.Struct("=IIII")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_PROTO_TCP = 6
_TCP_CHECKSUM_AT = 16


def internet_checksum(data: bytes, initial: int = 0) -> int:
    """The 16-bit one's complement of the one's complement sum (RFC 1071).

    ``initial`` is a partial sum to continue (e.g. of a pseudo-header). Uses the identity
    that the one's complement sum of 16-bit words is congruent to the whole big-endian number
    modulo 0xFFFF, because 2**16 == 1 (mod 0xFFFF).
    """
    if len(data) & 1:
        data = bytes(data) + b"\0"
    total = (int.from_bytes(data, "big") + initial) % 0xFFFF
    if total == 0 and (initial or any(data)):
        total = 0xFFFF   # a nonzero sum congruent to 0 is 0xFFFF ("negative zero")
    return ~total & 0xFFFF


def _pseudo_sum(src: bytes, dst: bytes, length: int) -> int:
    """The sum of the TCP pseudo-header (RFC 9293 3.1 for IPv4, RFC 8200 8.1 for IPv6)."""
    if len(src) == 4:
        pseudo = src + dst + struct.pack("!BBH", 0, _PROTO_TCP, length)
    else:
        pseudo = src + dst + struct.pack("!IxxxB", length, _PROTO_TCP)
    return int.from_bytes(pseudo, "big") % 0xFFFF


def tcp_checksum(src: bytes, dst: bytes, segment: bytes) -> int:
    """The TCP checksum of ``segment`` (checksum field taken as zero) between the packed
    IP addresses ``src`` and ``dst`` (4 or 16 bytes each)."""
    zeroed = segment[:_TCP_CHECKSUM_AT] + b"\0\0" + segment[_TCP_CHECKSUM_AT + 2:]
    return internet_checksum(zeroed, _pseudo_sum(src, dst, len(segment)))


def with_tcp_checksum(src: bytes, dst: bytes, segment: bytes) -> bytes:
    """``segment`` with its checksum field set for the packed addresses ``src``, ``dst``."""
    if len(segment) < 20:
        raise ValueError(f"a TCP segment has at least 20 bytes, got {len(segment)}")
    csum = tcp_checksum(src, dst, segment)
    return segment[:_TCP_CHECKSUM_AT] + csum.to_bytes(2, "big") + segment[_TCP_CHECKSUM_AT + 2:]


def ipv4_packet(src: bytes, dst: bytes, segment: bytes, ident: int = 0, ttl: int = 64) -> bytes:
    """An IPv4 packet (RFC 791, no options, Don't Fragment) carrying ``segment`` with a
    valid TCP checksum. ``src``/``dst`` are packed 4-byte addresses."""
    total = 20 + len(segment)
    if total > 0xFFFF:
        raise ValueError(f"a {len(segment)}-byte segment does not fit in an IPv4 packet")
    header = _IPV4.pack(0x45, 0, total, ident & 0xFFFF, 0x4000, ttl, _PROTO_TCP, 0, src, dst)
    header = header[:10] + internet_checksum(header).to_bytes(2, "big") + header[12:]
    return header + with_tcp_checksum(src, dst, segment)


def ipv6_packet(src: bytes, dst: bytes, segment: bytes, hop_limit: int = 64) -> bytes:
    """An IPv6 packet (RFC 8200, no extension headers) carrying ``segment`` with a valid
    TCP checksum. ``src``/``dst`` are packed 16-byte addresses."""
    if len(segment) > 0xFFFF:
        raise ValueError(f"a {len(segment)}-byte segment needs a jumbogram")
    header = _IPV6.pack(6 << 28, len(segment), _PROTO_TCP, hop_limit, src, dst)
    return header + with_tcp_checksum(src, dst, segment)


def _packed(host) -> bytes:
    """Packed address of ``host`` (a string or ipaddress object); IPv4-mapped IPv6
    addresses become IPv4, and a scope suffix (``fe80::1%eth0``) is dropped."""
    if isinstance(host, str):
        host = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(host, ipaddress.IPv6Address) and host.ipv4_mapped is not None:
        host = host.ipv4_mapped
    return host.packed


def ip_packet(src_host, dst_host, segment: bytes, ident: int = 0) -> bytes:
    """An IPv4 or IPv6 packet from ``src_host`` to ``dst_host`` (address strings) carrying
    ``segment`` with a valid TCP checksum. Both hosts must be of one family."""
    src, dst = _packed(src_host), _packed(dst_host)
    if len(src) != len(dst):
        raise ValueError(f"address families differ: {src_host!r} and {dst_host!r}")
    if len(src) == 4:
        return ipv4_packet(src, dst, segment, ident)
    return ipv6_packet(src, dst, segment)


class PcapWriter:
    """Writes segments to a pcap file (``LINKTYPE_RAW``) as IP packets.

    ``target`` is a path (opened, truncated, and closed by `close`) or a binary file object
    (left open). Use `write_segment` for atcp segments between two UDP addresses, or
    `write_packet` for a ready IP packet.
    """

    def __init__(self, target: str | BinaryIO, snaplen: int = _SNAPLEN) -> None:
        if isinstance(target, (str, bytes)) or hasattr(target, "__fspath__"):
            self._file = open(target, "wb")
            self._owned = True
        else:
            self._file = target
            self._owned = False
        self._snaplen = snaplen
        self._ident = 0
        self.packets = 0
        self._file.write(_GLOBAL.pack(_PCAP_MAGIC_US, 2, 4, 0, 0, snaplen, LINKTYPE_RAW))

    def write_packet(self, packet: bytes, timestamp: float) -> None:
        """Append one IP packet captured at ``timestamp`` (seconds since the epoch)."""
        micros = int(round(timestamp * 1_000_000))
        secs, usecs = divmod(micros, 1_000_000)
        kept = packet[:self._snaplen]
        self._file.write(_RECORD.pack(secs, usecs, len(kept), len(packet)))
        self._file.write(kept)
        self.packets += 1

    def write_segment(self, segment: bytes, src, dst, timestamp: float) -> None:
        """Append the atcp ``segment`` sent from UDP address ``src`` to ``dst``.

        ``src`` and ``dst`` are socket addresses (``(host, port, ...)`` tuples); only the
        hosts are used. A payload too short to be a TCP header is skipped (it is not a
        segment any TCP would send, and Wireshark would only call it malformed).
        """
        if len(segment) < 20:
            return
        self._ident = (self._ident + 1) & 0xFFFF
        self.write_packet(ip_packet(src[0], dst[0], bytes(segment), self._ident), timestamp)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is None:
            return
        if self._owned:
            self._file.close()
        else:
            self._file.flush()
        self._file = None

    @property
    def closed(self) -> bool:
        return self._file is None

    def __enter__(self) -> "PcapWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_pcap(data: bytes) -> tuple[int, list[tuple[float, bytes]]]:
    """Parse a classic pcap file's bytes: (link type, [(timestamp, packet), ...]).

    Reads either byte order with microsecond or nanosecond timestamps; raises ValueError
    on anything else or on a truncated record.
    """
    if len(data) < _GLOBAL.size:
        raise ValueError("too short for a pcap header")
    for order in ("<", ">"):
        magic = struct.unpack_from(order + "I", data)[0]
        if magic in (_PCAP_MAGIC_US, 0xA1B23C4D):
            break
    else:
        raise ValueError("not a pcap file")
    scale = 1e-6 if magic == _PCAP_MAGIC_US else 1e-9
    linktype = struct.unpack_from(order + "I", data, 20)[0] & 0x0FFFFFFF
    record = struct.Struct(order + "IIII")
    packets = []
    pos = _GLOBAL.size
    while pos < len(data):
        if pos + record.size > len(data):
            raise ValueError(f"truncated record header at byte {pos}")
        secs, frac, incl, _orig = record.unpack_from(data, pos)
        pos += record.size
        if pos + incl > len(data):
            raise ValueError(f"truncated packet at byte {pos}")
        packets.append((secs + frac * scale, data[pos:pos + incl]))
        pos += incl
    return linktype, packets
