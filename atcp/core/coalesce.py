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

from ..wire.segment import ACK, NO_OPTIONS, PSH, Segment

__all__ = ["Run", "mergeable_start", "RUN_LIMIT"]

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
