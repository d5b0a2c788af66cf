"""Receive coalescing: a run of in-order data segments that arrived together, taken as one.

When the asyncio edge drains its socket it often holds several data segments of one
connection, back to back in sequence. Taken one by one they cost the whole per-segment
path each, and with an ACK for every second one (RFC 5681 4.2) half as many ACKs, all
sent in the same instant. Merging such a run first -- what Linux's GRO does with TCP
segments before its stack sees them -- gives the same bytes to the same checks once:

* the same sequence space: each segment starts where the one before it ended;
* the same header otherwise: ports, ACK field, window field, control bits ACK (PSH may be
  anywhere; the run carries it if any segment did), no urgent pointer, no reserved bits;
* timestamps only, or no options: the same TSecr, TSvals that do not go backwards. The
  run keeps the first segment's TSval, the one RFC 7323 4.3 has an ACK for several
  segments echo, and the one PAWS (5.3) judges: the later ones are no older.

The run is then acknowledged by one ACK: an ACK for the whole burst rather than for every
second segment of it. RFC 5681 4.2's "at least every second full-sized segment" is a
SHOULD; the ACKs it would add here would leave back to back, carrying no clocking
information the one ACK lacks, and the sender paces what it sends in reply
(`atcp.core.pacing`). ``Config.receive_coalescing`` turns this off. SYN, FIN, RST,
SACK blocks, empty segments and anything unusual are never merged: they take the
per-segment path unchanged.
"""

from __future__ import annotations

import struct

from ..wire.segment import ACK, NO_OPTIONS, PSH, Options, Segment

__all__ = ["Run", "mergeable_start", "scan_coalesced", "RUN_LIMIT"]

MASK = 0xFFFFFFFF
#: Bytes of data a run may gather: GRO's limit, the largest IP packet. A longer run would
#: thin the ACK clock out further for no saving worth having.
RUN_LIMIT = 65535


def mergeable_start(seg: Segment) -> bool:
    """Whether ``seg`` may begin (or join) a run: data, flags ACK (and PSH), nothing else."""
    if seg.flags & ~PSH != ACK or not seg.payload or seg.urgent or seg.reserved:
        return False
    opts = seg.options
    return opts is NO_OPTIONS or (
        opts.ts_val is not None and not opts.sack and opts.mss is None
        and opts.wscale is None and not opts.sack_permitted and not opts.unknown)


class Run:
    """Segments being merged: the first one, the payloads so far, where the next begins."""

    __slots__ = ("first", "remote", "parts", "next_seq", "flags", "ts_val", "count", "room")

    def __init__(self, seg: Segment, remote) -> None:
        self.first = seg
        self.remote = remote
        self.parts = [seg.payload]
        self.next_seq = (seg.seq + len(seg.payload)) & MASK
        self.flags = seg.flags
        self.ts_val = seg.options.ts_val
        self.count = 1
        self.room = RUN_LIMIT - len(seg.payload)

    def extend(self, seg: Segment, remote) -> bool:
        """Add ``seg`` to the run if it continues it (see the module's rules)."""
        first = self.first
        n = len(seg.payload)
        if (seg.seq != self.next_seq or n > self.room or seg.ack != first.ack or seg.window != first.window
                or seg.src_port != first.src_port or seg.dst_port != first.dst_port
                or remote != self.remote or not mergeable_start(seg)):
            return False
        ts_val = self.ts_val
        if ts_val is not None:
            opts = seg.options
            if opts.ts_val is None or opts.ts_ecr != first.options.ts_ecr \
                    or (opts.ts_val - ts_val) & MASK >= 0x80000000:
                return False
        elif seg.options is not NO_OPTIONS:
            return False
        self.parts.append(seg.payload)
        self.next_seq = (seg.seq + n) & MASK
        self.flags |= seg.flags
        self.count += 1
        self.room -= n
        return True

    def segment(self) -> Segment:
        """The run as one segment (the first one itself when nothing joined it)."""
        first = self.first
        if self.count == 1:
            return first
        return Segment(first.src_port, first.dst_port, first.seq, first.ack, self.flags,
                       first.window, b"".join(self.parts), first.options)


# A header with NOP, NOP, TS as its only options, as nearly every data segment of a
# timestamped flow has: the 20 fixed bytes, the option lead and the two timestamps.
_HDR_TS = struct.Struct("!HHIIBBHHHIII")
_HDR = struct.Struct("!HHIIBBHHH")
_TS_LEAD = 0x0101080A
_NOT_PLAIN = ACK | PSH


def scan_coalesced(data: bytes, size: int):
    """Walk datagrams the kernel coalesced (UDP GRO): ``size`` bytes each, back to back in
    ``data``, the last one maybe shorter. Yields, in order, ``(segment, count)`` for each
    run of two or more data segments merged under the rules above, read straight from the
    headers in the buffer (no `Segment` per datagram, one copy of the payload), and
    ``(datagram, 0)`` for every other datagram, to be parsed on its own.

    These are `Run`'s rules (the module's), applied to the raw headers instead of parsed
    segments, for the bulk receiver's sake; `tests/core/test_coalesce.py` checks that both
    give the stack the same segments. Only the plain layout is read here: flags ACK (PSH
    aside), no urgent pointer or reserved bits, and either no options or exactly NOP,
    NOP, TS. Anything else -- including every malformed header -- is left to the parser,
    which judges it."""
    view = memoryview(data)
    n = len(data)
    run = None           # [first offset, first end, fields..., parts, next_seq, flags, count]
    off = 0
    while off < n:
        end = off + size if off + size < n else n
        length = end - off
        fields = None
        if length > 32:
            (sport, dport, seq, ack, off_res, flags, window, _ck, urgent,
             lead, ts_val, ts_ecr) = _HDR_TS.unpack_from(data, off)
            doff = (off_res >> 4) << 2
            if doff == 32 and lead == _TS_LEAD:
                fields = (sport, dport, ack, window, ts_ecr)
            elif doff == 20:
                ts_val = None
                fields = (sport, dport, ack, window, None)
            if fields is not None and (flags & ~PSH != ACK or urgent or off_res & 0x0F):
                fields = None
        elif length > 20:
            sport, dport, seq, ack, off_res, flags, window, _ck, urgent = \
                _HDR.unpack_from(data, off)
            doff = (off_res >> 4) << 2
            if doff == 20 and flags & ~PSH == ACK and not urgent and not off_res & 0x0F:
                ts_val = None
                fields = (sport, dport, ack, window, None)
        if fields is None:
            if run is not None:
                yield from _finish(view, run)
                run = None
            yield bytes(view[off:end]), 0
            off = end
            continue
        payload = length - doff
        if run is not None and run[2] == fields and seq == run[5] \
                and run[7] + payload <= RUN_LIMIT \
                and (ts_val is None or (ts_val - run[3]) & MASK < 0x80000000):
            run[4].append(view[off + doff:end])
            run[5] = (seq + payload) & MASK
            run[6] |= flags
            run[7] += payload
            run[8] += 1
        else:
            if run is not None:
                yield from _finish(view, run)
            # first offset, end, fields, first TSval, payload views, next seq, flags,
            # payload bytes, count; the first segment's own values are kept in `fields`.
            run = [off, end, fields, ts_val, [view[off + doff:end]], (seq + payload) & MASK,
                   flags, payload, 1, seq]
        off = end
    if run is not None:
        yield from _finish(view, run)


def _finish(view: memoryview, run: list):
    first, end, fields, ts_val, parts, _next, flags, _nbytes, count, seq = run
    if count == 1:
        yield bytes(view[first:end]), 0
        return
    sport, dport, ack, window, ts_ecr = fields
    options = NO_OPTIONS if ts_val is None else Options(ts_val=ts_val, ts_ecr=ts_ecr)
    yield Segment(sport, dport, seq, ack, flags, window, b"".join(parts), options), count
