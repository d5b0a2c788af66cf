"""Batched UDP I/O on Linux: generic segmentation offload (GSO) and UDP GRO.

Theory of operation
-------------------
A bulk sender emits many full-sized segments to one peer back to back. With GSO
(``UDP_SEGMENT``, Linux 4.18) one ``sendmsg`` hands the kernel a run of such datagrams,
and the kernel cuts it into datagrams of the size given in a ``(SOL_UDP, UDP_SEGMENT)``
control message: every datagram of the run but the last must be exactly that size, the
last may be shorter, and one call carries at most `GSO_MAX_SEGMENTS` datagrams and
`GSO_MAX_BYTES` of payload. The datagrams are passed as the call's buffer list
(scatter/gather), so the payloads are not joined in Python first.

With UDP GRO (``UDP_GRO``, Linux 5.0) the kernel may hand one ``recvmsg`` several
datagrams of one sender concatenated, with a ``(SOL_UDP, UDP_GRO)`` control message
giving the datagram size: the datagrams sit at multiples of it (the last may be shorter).
The endpoint hands such a buffer to the core whole (`Stack.receive_coalesced`, which
reads the headers in place); `split_coalesced` cuts it for the capture file. On loopback,
a GSO run reaches a GRO socket as one unit, never cut up.

Support is probed when the endpoint opens its socket (`enable_offload`); a kernel that
accepts the options but refuses a GSO send (EIO from a device without checksum offload,
EINVAL...) is detected at the first such send (`GSO_FALLBACK_ERRORS`), and the endpoint
then sends datagram by datagram for the rest of the socket's life.

This module holds the pure parts -- constants, the probe, run grouping and GRO
splitting -- so they can be tested without a loop; `atcp.aio.endpoint` does the I/O.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys

__all__ = ["GSO_MAX_SEGMENTS", "GSO_MAX_BYTES", "GSO_FALLBACK_ERRORS", "SOL_UDP",
           "UDP_SEGMENT", "UDP_GRO", "GRO_CMSG_SPACE", "enable_offload", "io_path",
           "run_end", "segment_cmsg", "gro_segment_size", "split_coalesced"]

#: Linux's constants (include/uapi/linux/udp.h); older ``socket`` modules lack them.
SOL_UDP = getattr(socket, "SOL_UDP", 17)
UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
UDP_GRO = getattr(socket, "UDP_GRO", 104)

#: Datagrams one GSO send may carry (the kernel's UDP_MAX_SEGMENTS).
GSO_MAX_SEGMENTS = 64
#: Payload bytes one GSO send may carry: an IPv4 datagram's 65535 less the IP and UDP
#: headers (IPv6 allows a little more; one bound serves both).
GSO_MAX_BYTES = 65535 - 20 - 8
#: Errors of a GSO send that mean "not here" rather than "this datagram failed": the
#: run is sent again datagram by datagram and GSO is not tried again on the socket.
GSO_FALLBACK_ERRORS = frozenset((errno.EIO, errno.EINVAL, errno.EOPNOTSUPP,
                                 errno.ENOPROTOOPT, errno.EMSGSIZE))
#: Room for the ``UDP_GRO`` control message (an int) on receive.
GRO_CMSG_SPACE = socket.CMSG_SPACE(4) if hasattr(socket, "CMSG_SPACE") else 0

_U16 = struct.Struct("=H")
_I32 = struct.Struct("=i")
_segment_cmsgs: dict[int, list] = {}


def enable_offload(sock: socket.socket) -> tuple[bool, bool]:
    """Turn on what the kernel supports for ``sock``; return (gso, gro).

    GSO is probed by setting ``UDP_SEGMENT`` to 0 (no segmentation unless a send asks for
    it); GRO by enabling ``UDP_GRO``. Anything but Linux, or a kernel without the option,
    gets False.
    """
    if not sys.platform.startswith("linux") or not hasattr(sock, "sendmsg"):
        return False, False
    gso = gro = True
    try:
        sock.setsockopt(SOL_UDP, UDP_SEGMENT, 0)
    except OSError:
        gso = False
    if GRO_CMSG_SPACE and hasattr(sock, "recvmsg_into"):
        try:
            sock.setsockopt(SOL_UDP, UDP_GRO, 1)
        except OSError:
            gro = False
    else:
        gro = False
    return gso, gro


def io_path(gso: bool, gro: bool) -> str:
    """The name of the I/O path reported in ``tcp_info`` and the endpoint's stats."""
    if gso and gro:
        return "gso+gro"
    if gso:
        return "gso"
    if gro:
        return "gro"
    return "per-datagram"


def run_end(out: list, start: int, max_segments: int = GSO_MAX_SEGMENTS,
            max_bytes: int = GSO_MAX_BYTES) -> int:
    """The end (exclusive) of the GSO run of ``out`` (``(data, addr)`` pairs) that
    begins at ``start``: consecutive datagrams to the same address, all the size of the
    first except possibly a shorter last one, within the per-call limits. A run of one
    is sent as a plain datagram."""
    data, addr = out[start]
    size = len(data)
    total = size
    end = start + 1
    stop = min(len(out), start + max_segments)
    while end < stop:
        data2, addr2 = out[end]
        n = len(data2)
        if n > size or (addr2 is not addr and addr2 != addr):
            break
        total += n
        if total > max_bytes:
            break
        end += 1
        if n != size:
            break          # a shorter datagram can only close a run
    return end


def segment_cmsg(size: int) -> list:
    """The ancillary data of a GSO send cutting the buffers into ``size``-byte datagrams
    (a shared list: callers must not change it)."""
    cmsg = _segment_cmsgs.get(size)
    if cmsg is None:
        cmsg = _segment_cmsgs[size] = [(SOL_UDP, UDP_SEGMENT, _U16.pack(size))]
    return cmsg


def gro_segment_size(ancdata: list) -> int:
    """The datagram size of a coalesced receive, from ``recvmsg``'s ancillary data; 0
    when the kernel delivered a single datagram."""
    for level, kind, data in ancdata:
        if level == SOL_UDP and kind == UDP_GRO and len(data) >= 4:
            return _I32.unpack_from(data)[0]
    return 0


def split_coalesced(data: bytes, size: int) -> list[bytes]:
    """The datagrams in ``data``, cut every ``size`` bytes (the last may be shorter); one
    datagram when ``size`` is 0 or not smaller than ``data``.

    They are copies (bytes slices), not memoryviews: the segment parser takes bytes by
    its fast path, which costs less than the copy saved."""
    n = len(data)
    if size <= 0 or size >= n:
        return [data]
    return [data[off:off + size] for off in range(0, n, size)]
