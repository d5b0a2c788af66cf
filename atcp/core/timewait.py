"""TIME-WAIT: the rules, and the compact record that replaces a connection while it waits.

A connection that closes first enters TIME-WAIT (RFC 9293 3.6.1) from FIN-WAIT-2 on the peer's
FIN, from FIN-WAIT-1 on a FIN that also acknowledges ours, or from CLOSING on the ACK of our
FIN. It then waits 2*MSL so that (a) a retransmission of the peer's FIN, sent because our last
ACK was lost, is acknowledged again, and (b) old duplicates of this connection die out before
a new incarnation of the same identity can receive them (3.4.2).

The whole connection object is not kept for that: the stack swaps it for a `TimeWait`
record holding only what the rules below need (about ten small fields).

Arriving segments (`TimeWait.segment_arrives`), in order:

* RST: ignored when ``rfc1337`` is on (RFC 1337, TIME-WAIT assassination, the default, as
  FreeBSD does); otherwise judged like any RST (RFC 5961 3) and an exact one closes.
* SYN without ACK: may open a new incarnation only if it is provably newer (RFC 9293 MAY-2,
  RFC 6191): with timestamps, a TSval above TS.Recent (or equal, with SEG.SEQ above
  RCV.NXT); without, SEG.SEQ above RCV.NXT. The new connection then starts with an ISS above
  the old SND.NXT. Any other SYN is an old duplicate and is dropped silently (a challenge
  ACK could only draw a RST that RFC 1337 makes us ignore).
* no ACK bit: dropped.
* an unacceptable ACK (RFC 5961 5.2, or SEG.ACK > SND.NXT): an ACK, and nothing else.
* the peer's FIN again (it ends at RCV.NXT): ACKed again, and 2*MSL starts over (3.10.7.4).
* an empty ACK at RCV.NXT: nothing to do.
* anything else (data, out-of-window): an ACK, and no data is ever delivered.
"""

from __future__ import annotations

import enum

from ..wire import ACK, FIN, RST, SYN, NO_OPTIONS, Options, Segment
from ..wire.seq import seq_add, seq_gt
from .acceptance import ack_acceptable_5961, segment_acceptable
from .reset import RstVerdict, rst_verdict
from .tsclock import ts_clock

__all__ = ["TimeWait", "TimeWaitAction"]


class TimeWaitAction(enum.Enum):
    KEEP = "keep"        # nothing changes
    RESTART = "restart"  # the peer's FIN came again: restart the 2*MSL timer
    CLOSE = "close"      # delete the record now
    REOPEN = "reopen"    # delete the record and let the listener take this SYN


class TimeWait:
    """What remains of a connection in TIME-WAIT."""

    __slots__ = ("key", "remote", "local_port", "remote_port", "snd_nxt", "rcv_nxt",
                 "window", "ts_recent", "ts_offset", "ts_enabled", "expires", "max_snd_wnd")

    def __init__(self, conn, expires: float) -> None:
        self.key = conn.key
        self.remote = conn.remote
        self.local_port = conn.local_port
        self.remote_port = conn.remote_port
        self.snd_nxt = conn.snd_nxt
        self.rcv_nxt = conn.rcv_nxt
        self.max_snd_wnd = conn.max_snd_wnd
        self.window = conn._window_field()
        self.ts_enabled = conn.ts_enabled
        self.ts_recent = conn.ts_recent
        self.ts_offset = conn.ts_offset
        self.expires = expires

    def __repr__(self) -> str:
        return f"<TimeWait {self.local_port}->{self.remote!r}:{self.remote_port}>"

    def segment_arrives(self, seg: Segment, now: float, rfc1337: bool, rfc5961: bool,
                        reuse: bool) -> tuple[TimeWaitAction, Segment | None]:
        """Apply the TIME-WAIT rules; return what to do and the segment to answer with."""
        flags = seg.flags
        if flags & RST:
            if rfc1337:
                return TimeWaitAction.KEEP, None
            verdict = rst_verdict(seg.seq, self.rcv_nxt, self.window, rfc5961)
            if verdict is RstVerdict.RESET:
                return TimeWaitAction.CLOSE, None
            if verdict is RstVerdict.CHALLENGE:
                return TimeWaitAction.KEEP, self.ack(now)
            return TimeWaitAction.KEEP, None
        if flags & SYN and not flags & ACK:
            if reuse and self.syn_is_newer(seg):
                return TimeWaitAction.REOPEN, None
            return TimeWaitAction.KEEP, None
        if not flags & ACK:
            return TimeWaitAction.KEEP, None
        # RFC 5961 5.2 holds here too (SND.UNA = SND.NXT: our FIN is acknowledged); without
        # it, 3.10.7.4 still answers an ACK of something never sent. Drop, and ACK.
        if (seq_gt(seg.ack, self.snd_nxt) or rfc5961
                and not ack_acceptable_5961(seg.ack, self.snd_nxt, self.snd_nxt, self.max_snd_wnd)):
            return TimeWaitAction.KEEP, self.ack(now)
        seg_len = seg.seg_len
        if flags & FIN and seq_add(seg.seq, seg_len) == self.rcv_nxt:
            return TimeWaitAction.RESTART, self.ack(now)
        if seg_len == 0 and segment_acceptable(seg.seq, 0, self.rcv_nxt, self.window):
            return TimeWaitAction.KEEP, None
        return TimeWaitAction.KEEP, self.ack(now)

    def syn_is_newer(self, seg: Segment) -> bool:
        """RFC 6191 section 2 (and RFC 9293 MAY-2)."""
        ts_val = seg.options.ts_val
        if self.ts_enabled and ts_val is not None:
            if ts_val == self.ts_recent:
                return seq_gt(seg.seq, self.rcv_nxt)
            return seq_gt(ts_val, self.ts_recent)
        return seq_gt(seg.seq, self.rcv_nxt)

    def ack(self, now: float) -> Segment:
        """<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, as the connection would have sent it."""
        opts = NO_OPTIONS
        if self.ts_enabled:
            opts = Options(ts_val=ts_clock(now, self.ts_offset), ts_ecr=self.ts_recent)
        return Segment(self.local_port, self.remote_port, self.snd_nxt, self.rcv_nxt, ACK,
                       self.window, b"", opts)

    def next_iss(self, isn: int) -> int:
        """An ISS for the next incarnation: above everything the old one sent (MAY-2)."""
        if seq_gt(isn, self.snd_nxt):
            return isn
        return seq_add(self.snd_nxt, 1 << 17)
