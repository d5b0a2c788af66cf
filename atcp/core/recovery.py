"""Loss recovery's memory and judgement: the segments in flight, SACK, and RACK.

Theory of operation
-------------------
Every segment of data (or FIN) the sender transmits for the first time becomes a `Sent`
record in the `Scoreboard`, keyed by stream offsets (unwrapped, so no modular arithmetic):
``[start, end)``, the time and serial number of its latest transmission and a few flag
bits. The serial number orders transmissions exactly where their times tie (one clock
reading for a whole batch of ACKs), so RACK never takes a retransmission for older than
the new data sent just before it. Records live in two orders at once:

* by sequence, in a list (a head index skips what the cumulative ACK removed), for the
  cumulative ACK, SACK blocks (found by bisection) and "lowest lost segment first";
* by transmission time, in an ``OrderedDict`` holding only records neither acknowledged
  nor SACKed; a retransmission moves its record to the end. RACK (RFC 8985 6.2) walks it
  from the oldest and stops at the first record sent after the one most recently
  delivered, so a check costs the holes (and the records already waiting to be resent),
  not the window.

The counters ``out``, ``sacked`` and ``lost`` are kept up to date as records change, so
``in_flight`` (RFC 6675's pipe: what is neither SACKed nor presumed lost; a retransmission
in flight counts once) is a subtraction. Presumed-lost records wait in a heap by offset
until retransmitted, so the next one to resend is found without a scan.

Each ACK's newly delivered records (cumulatively acknowledged and not SACKed before, or
newly SACKed) are collected in ``delivered`` for the RTT, RACK and congestion control
updates that follow; the list is reused from ACK to ACK.

Loss is judged in one of two ways: `Rack` (RFC 8985, time-based, when SACK is in use) or
the DupThresh rule of RFC 6675 (``mark_dupthresh``: a record with more than
(DupThresh - 1) * SMSS bytes SACKed above it is lost), which needs no timer. Without SACK
the connection marks the first record lost itself after three duplicate ACKs (RFC 5681).
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import OrderedDict

from ..wire.seq import seq_lt
from .tsclock import ts_clock

__all__ = ["Sent", "Scoreboard", "Rack", "SACKED", "LOST", "RETRANS", "EVER_RETRANS",
           "ACKED", "DUPTHRESH"]

SACKED = 1          # the peer holds it (RFC 2018)
LOST = 2            # presumed lost and not retransmitted since
RETRANS = 4         # the latest transmission was a retransmission
EVER_RETRANS = 8    # retransmitted at least once (Karn; RACK's reordering test)
ACKED = 16          # cumulatively acknowledged: gone from the scoreboard

DUPTHRESH = 3       # RFC 5681 3.2, RFC 6675 2
_EPSILON = 1e-6     # float noise, when comparing a time difference with the minimum RTT


def _start(rec: "Sent") -> int:
    return rec.start


class Sent:
    """One transmitted segment: stream offsets ``[start, end)`` (a FIN counts one)."""

    # The d_* slots are the delivery-rate snapshot (`delivery.DeliveryRate.on_send`), set
    # only when the controller samples rates; left unset otherwise, they cost nothing.
    __slots__ = ("start", "end", "time", "tx", "flags", "d_delivered", "d_time", "d_first",
                 "d_app")

    def __init__(self, start: int, end: int, time: float, tx: int) -> None:
        self.start = start
        self.end = end
        self.time = time
        self.tx = tx            # serial number of the latest transmission
        self.flags = 0

    def __repr__(self) -> str:
        bits = "".join(ch for bit, ch in ((SACKED, "S"), (LOST, "L"), (RETRANS, "R"),
                                          (EVER_RETRANS, "E"), (ACKED, "A"))
                       if self.flags & bit)
        return f"<Sent {self.start}:{self.end} t={self.time:.6f} {bits or '-'}>"


class Scoreboard:
    """The records of everything in flight; see the module docstring."""

    __slots__ = ("_recs", "_head", "_order", "_lost_heap", "_pushes", "_tx", "out", "sacked",
                 "lost", "delivered", "delivered_bytes", "sacked_acked", "lost_marked",
                 "_prev_blocks", "_scan", "_sacked_below", "rate")

    def __init__(self) -> None:
        self._recs: list[Sent] = []
        self._head = 0
        self._order: OrderedDict[Sent, None] = OrderedDict()
        self._lost_heap: list = []
        self._pushes = 0
        self._tx = 0
        self.out = 0              # bytes in every record
        self.sacked = 0           # ... of them SACKed
        self.lost = 0             # ... presumed lost, not yet retransmitted
        self.delivered: list[Sent] = []   # newly delivered by the ACK being processed
        self.delivered_bytes = 0
        self.sacked_acked = 0     # bytes of SACKed records the cumulative ACK just covered
        self.lost_marked = 0      # records ever marked lost (for tcp_info)
        self._prev_blocks: list[tuple[int, int]] = []
        self._scan = 0            # DupThresh walk: records below are judged already
        self._sacked_below = 0    # SACKed bytes between the cumulative ACK and _scan
        self.rate = None          # a `delivery.DeliveryRate` when the controller samples

    def __len__(self) -> int:
        return len(self._recs) - self._head

    def __iter__(self):
        return iter(self._recs[self._head:])

    @property
    def in_flight(self) -> int:
        """RFC 6675 pipe, in bytes."""
        return self.out - self.sacked - self.lost

    def first(self) -> Sent | None:
        return self._recs[self._head] if self._head < len(self._recs) else None

    def last(self) -> Sent | None:
        return self._recs[-1] if self._head < len(self._recs) else None

    # -- transmissions --------------------------------------------------------------------
    def add(self, start: int, end: int, now: float) -> Sent:
        """A first transmission of ``[start, end)``."""
        self._tx += 1
        rec = Sent(start, end, now, self._tx)
        if self.rate is not None:
            self.rate.on_send(rec, not self.out, now)
        self._recs.append(rec)
        self._order[rec] = None
        self.out += end - start
        return rec

    def retransmitted(self, rec: Sent, now: float) -> None:
        """``rec`` was sent again: it is in flight once more, the newest transmission."""
        flags = rec.flags
        if flags & LOST:
            self.lost -= rec.end - rec.start
        rec.flags = (flags & ~LOST) | RETRANS | EVER_RETRANS
        rec.time = now
        self._tx += 1
        rec.tx = self._tx
        self._order.move_to_end(rec)
        if self.rate is not None:
            self.rate.on_send(rec, False, now)

    # -- acknowledgments ------------------------------------------------------------------
    def begin_ack(self) -> None:
        """Start collecting what one ACK delivers."""
        self.delivered.clear()
        self.delivered_bytes = 0
        self.sacked_acked = 0

    def ack(self, una: int) -> None:
        """Everything below stream offset ``una`` is cumulatively acknowledged."""
        recs = self._recs
        i = self._head
        n = len(recs)
        order = self._order
        delivered = self.delivered
        while i < n:
            rec = recs[i]
            flags = rec.flags
            if rec.end > una:
                if rec.start < una:
                    self._trim(rec, una)
                break
            size = rec.end - rec.start
            self.out -= size
            if flags & SACKED:
                self.sacked -= size
                self.sacked_acked += size
            else:
                del order[rec]
                if flags & LOST:
                    self.lost -= size
                delivered.append(rec)
                self.delivered_bytes += size
            rec.flags = (flags & ~LOST) | ACKED
            i += 1
        self._head = i
        if i > 256 and 2 * i > n:
            del recs[:i]
            self._head = 0
        if una >= self._scan:
            self._scan = una
            self._sacked_below = 0
        else:
            self._sacked_below -= self.sacked_acked

    def _trim(self, rec: Sent, una: int) -> None:
        """The cumulative ACK ends inside ``rec``: keep only its unacknowledged tail."""
        cut = una - rec.start
        rec.start = una
        self.out -= cut
        if rec.flags & SACKED:
            self.sacked -= cut
        else:
            self.delivered_bytes += cut
            if rec.flags & LOST:
                self.lost -= cut

    def sack(self, blocks: list[tuple[int, int]]) -> None:
        """Mark the records wholly inside each ``(left, right)`` block SACKed. Blocks must
        be clipped to what is in flight and sorted by left edge. Parts already covered
        by the previous ACK's blocks are skipped, so a block that grows by one segment
        per ACK costs one segment per ACK, not its whole length (RFC 2018 4: receivers
        repeat their blocks)."""
        prev = self._prev_blocks
        for left, right in blocks:
            lo, hi = left, right
            for pl, pr in prev:
                if pl <= lo < pr:
                    lo = pr
                if pl < hi <= pr:
                    hi = pl
            if lo < hi:
                self._sack_range(left, lo, hi)
        self._prev_blocks = blocks

    def _sack_range(self, left: int, lo: int, hi: int) -> None:
        recs = self._recs
        i = bisect_left(recs, lo, lo=self._head, key=_start)
        if i > self._head and recs[i - 1].start >= left and recs[i - 1].end > lo:
            i -= 1   # a record straddling the skipped part may lie inside the block
        n = len(recs)
        order = self._order
        delivered = self.delivered
        while i < n:
            rec = recs[i]
            if rec.end > hi:
                break
            flags = rec.flags
            if not flags & SACKED:
                size = rec.end - rec.start
                self.sacked += size
                if flags & LOST:
                    self.lost -= size
                rec.flags = (flags & ~LOST) | SACKED
                del order[rec]
                delivered.append(rec)
                self.delivered_bytes += size
                if rec.start < self._scan:
                    self._sacked_below += size
            i += 1

    def clear_sacks(self) -> None:
        """Forget every SACK (RFC 2018 8: the receiver may have discarded SACKed data)."""
        order = self._order
        for rec in self._recs[self._head:]:
            if rec.flags & SACKED:
                rec.flags &= ~SACKED
                order[rec] = None
        self.sacked = 0
        self._prev_blocks = []
        self._scan = self.first().start if self.first() else 0
        self._sacked_below = 0

    # -- loss -------------------------------------------------------------------------------
    def mark_lost(self, rec: Sent) -> None:
        flags = rec.flags
        if flags & (SACKED | LOST | ACKED):
            return
        rec.flags = (flags | LOST) & ~RETRANS
        self.lost += rec.end - rec.start
        self.lost_marked += 1
        self._pushes += 1
        heapq.heappush(self._lost_heap, (rec.start, self._pushes, rec))

    def mark_all_lost(self) -> None:
        """After a retransmission timeout everything not SACKed is presumed lost
        (RFC 6675 5.1, RFC 8985 "RTO recovery")."""
        for rec in self._recs[self._head:]:
            self.mark_lost(rec)

    def unmark_lost(self) -> None:
        """A spurious timeout (RFC 4015): the records waiting to be resent were not lost."""
        for rec in self._recs[self._head:]:
            if rec.flags & LOST:
                rec.flags &= ~LOST
                self.lost -= rec.end - rec.start
        self._lost_heap.clear()

    def coalesce(self, rec: Sent, limit: int) -> None:
        """Merge the lost records contiguous with lost ``rec`` into it, up to ``limit``
        bytes, so that one retransmission carries them (a timeout's go-back-N resends
        full segments even where the originals were small)."""
        recs = self._recs
        i = bisect_left(recs, rec.start, lo=self._head, key=_start)
        j = i + 1
        n = len(recs)
        while j < n:
            nxt = recs[j]
            if nxt.start != rec.end or nxt.flags & (SACKED | LOST | ACKED) != LOST \
                    or nxt.end - rec.start > limit:
                break
            rec.end = nxt.end
            nxt.flags = ACKED   # gone: its heap entry is skipped
            del self._order[nxt]
            j += 1
        if j > i + 1:
            del recs[i + 1:j]

    def extend(self, rec: Sent, nbytes: int) -> None:
        """Grow the last record by ``nbytes`` never sent before (they go out with it)."""
        rec.end += nbytes
        self.out += nbytes
        if rec.flags & LOST:
            self.lost += nbytes

    def next_lost(self) -> Sent | None:
        """The lowest record presumed lost and not yet resent (RFC 6675 NextSeg rule 1)."""
        heap = self._lost_heap
        while heap:
            rec = heap[0][2]
            if rec.flags & LOST:
                return rec
            heapq.heappop(heap)
        return None

    def mark_dupthresh(self, mss: int) -> None:
        """RFC 6675 IsLost: a record not yet resent with more than (DupThresh - 1) * SMSS
        bytes SACKed above it is lost. Those records form a prefix of the unSACKed ones,
        so the walk resumes where the last one stopped."""
        limit = (DUPTHRESH - 1) * mss
        if self.sacked - self._sacked_below <= limit:
            return
        recs = self._recs
        i = bisect_left(recs, self._scan, lo=self._head, key=_start)
        n = len(recs)
        while i < n and self.sacked - self._sacked_below > limit:
            rec = recs[i]
            if rec.flags & SACKED:
                self._sacked_below += rec.end - rec.start
            elif not rec.flags & EVER_RETRANS:
                self.mark_lost(rec)
            self._scan = rec.end
            i += 1

    def rack_detect(self, rack_tx: int, wait: float, now: float) -> float:
        """RFC 8985 6.2 step 5: every record sent before the most recently delivered one
        (transmission ``rack_tx``) and outstanding for longer than ``wait`` (RACK.rtt +
        RACK.reo_wnd) is lost. Returns how long until the latest of the others would be
        (0 when there is none), for the reordering timer."""
        timeout = 0.0
        for rec in self._order:   # marking changes flags only, never this order
            if rec.flags & LOST:
                continue
            if rec.tx > rack_tx:
                break   # sent after it (RACK_sent_after): nothing to conclude yet
            remaining = rec.time + wait - now
            if remaining <= _EPSILON:
                self.mark_lost(rec)
            elif remaining > timeout:
                timeout = remaining
        return timeout


class Rack:
    """RACK's state (RFC 8985 6.1) and its per-ACK steps 1-4; step 5 is
    `Scoreboard.rack_detect`. Offsets are stream offsets, times seconds."""

    __slots__ = ("time", "tx", "rtt", "min_rtt", "fack", "reordering_seen", "reordering",
                 "reo_wnd_mult", "reo_wnd_persist", "dsack_round")

    def __init__(self) -> None:
        self.time = -1.0          # RACK.xmit_ts of the most recently sent delivered record
        self.tx = 0               # ... and its transmission's serial number (for ties)
        self.rtt = 0.0            # RACK.rtt
        self.min_rtt: float | None = None
        self.fack = 0             # highest end delivered
        self.reordering_seen = False
        self.reordering = DUPTHRESH   # the largest reordering degree seen, in segments
        self.reo_wnd_mult = 1
        self.reo_wnd_persist = 0
        self.dsack_round: int | None = None

    def update(self, delivered: list[Sent], now: float, tsecr: int | None,
               ts_offset: int, mss: int) -> float | None:
        """Steps 1-3 for one ACK's newly delivered records; returns the RTT of the most
        recently sent of them (None if none qualifies), the ACK's RTT sample."""
        sample = None
        for rec in delivered:
            end = rec.end
            if end > self.fack:
                self.fack = end
            elif not rec.flags & EVER_RETRANS:
                # Step 3: delivered below a later delivery without being resent.
                self.reordering_seen = True
                degree = (self.fack - end + mss - 1) // mss + 1
                if degree > self.reordering:
                    self.reordering = degree
            t = rec.time
            rtt = now - t
            if rec.flags & RETRANS:
                # Step 2: an ACK for an earlier transmission tells nothing about this one.
                # TSecr says which transmission only for a cumulative ACK: out-of-order
                # data never updates TS.Recent (RFC 7323 4.3), so a SACK echoes an older
                # TSval whatever it reports; there, only an RTT below the minimum gives
                # the original away (as Linux judges it).
                if tsecr is not None and rec.flags & ACKED \
                        and seq_lt(tsecr, ts_clock(t, ts_offset)):
                    continue
                if self.min_rtt is not None and rtt < self.min_rtt - _EPSILON:
                    continue
            if rec.tx > self.tx:
                self.time = t
                self.tx = rec.tx
                self.rtt = rtt
                sample = rtt
        if sample is not None and (self.min_rtt is None or sample < self.min_rtt):
            self.min_rtt = sample
        return sample

    def on_dsack(self, una: int, snd_nxt: int) -> None:
        """Step 4: one DSACK per round widens the reordering window by a quarter min RTT."""
        if self.dsack_round is not None and una >= self.dsack_round:
            self.dsack_round = None
        if self.dsack_round is None:
            self.dsack_round = snd_nxt
            self.reo_wnd_mult += 1
            self.reo_wnd_persist = 16

    def recovery_ended(self) -> None:
        """Step 4: sixteen recoveries without a DSACK bring the window back to one."""
        self.reo_wnd_persist -= 1
        if self.reo_wnd_persist <= 0:
            self.reo_wnd_mult = 1

    def reo_wnd(self, in_recovery: bool, sacked_segments: int, srtt: float | None) -> float:
        """RACK.reo_wnd: none until reordering is seen while recovering or once DupThresh
        segments are SACKed; otherwise a quarter of the min RTT per DSACK'd round, at most
        SRTT."""
        if not self.reordering_seen and (in_recovery or sacked_segments >= DUPTHRESH):
            return 0.0
        wnd = self.reo_wnd_mult * (self.min_rtt or 0.0) / 4
        if srtt is not None and wnd > srtt:
            wnd = srtt
        return wnd
