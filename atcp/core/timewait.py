"""TIME-WAIT: the rules, and the compact record that replaces a connection while it waits.

A connection that closes first enters TIME-WAIT (RFC 9293 3.6.1) from FIN-WAIT-2 on the peer's
FIN, from FIN-WAIT-1 on a FIN that also acknowledges ours, or from CLOSING on the ACK of our
FIN. It then waits 2*MSL so that (a) a retransmission of the peer's FIN, sent because our last
ACK was lost, is acknowledged again, and (b) old duplicates of this connection die out before
a new incarnation of the same identity can receive them (3.4.2).

The whole connection object is not kept for that. A stack may hold many thousands of these
records (`Config.max_time_wait`), so each is one Python int packing the fields the rules
below need (`TimeWait.pack`, layout in ``_FIELDS``), filed in the stack's table under the
remote address alone while no other record has that address (a server's usual case: every
client has its own UDP socket), else under the whole connection key; the table key holds
what the record would otherwise repeat. `TimeWait` is the unpacked record: made when a
segment reaches it or the table is listed, and packed again when the rules change it.

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
import struct

from ..wire import ACK, FIN, RST, SYN, NO_OPTIONS, Options, Segment
from ..wire.seq import seq_add, seq_gt
from .acceptance import ack_acceptable_5961, segment_acceptable
from .reset import RstVerdict, rst_verdict
from .tsclock import ts_clock

__all__ = ["TimeWait", "TimeWaitAction", "expires_of", "filed_under_full_key", "ports_of"]


class TimeWaitAction(enum.Enum):
    KEEP = "keep"        # nothing changes
    RESTART = "restart"  # the peer's FIN came again: restart the 2*MSL timer
    CLOSE = "close"      # delete the record now
    REOPEN = "reopen"    # delete the record and let the listener take this SYN


#: The packed record, from the lowest bits up: (name, width in bits). ``expires`` is the bit
#: pattern of the float (exact, so a record expires when its connection would have);
#: ``full_key`` says the record is filed under the whole connection key rather than the
#: remote address alone. The widths are those of the fields on the wire; MAX.SND.WND is at
#: most 65535 << 14 (RFC 7323 2.3). The timestamp fields come last: without timestamps
#: they are zero and the int is shorter.
_FIELDS = (("expires", 64), ("remote_port", 16), ("local_port", 16), ("snd_nxt", 32),
           ("rcv_nxt", 32), ("window", 16), ("max_snd_wnd", 30), ("full_key", 1),
           ("ts_enabled", 1), ("ts_recent", 32), ("ts_offset", 32))


def _shifts(fields) -> dict[str, int]:
    shifts, at = {}, 0
    for name, width in fields:
        shifts[name] = at
        at += width
    return shifts


_SHIFT = _shifts(_FIELDS)
_MASK = {name: (1 << width) - 1 for name, width in _FIELDS}
_PORTS_SHIFT = _SHIFT["remote_port"]
_FULL_KEY_BIT = 1 << _SHIFT["full_key"]
_DOUBLE = struct.Struct("<d")
_U64 = struct.Struct("<Q")


def expires_of(packed: int) -> float:
    """When a packed record's 2*MSL ends."""
    return _DOUBLE.unpack(_U64.pack(packed & 0xFFFFFFFFFFFFFFFF))[0]


def ports_of(packed: int) -> int:
    """A packed record's TCP ports, as ``local_port << 16 | remote_port``."""
    return packed >> _PORTS_SHIFT & 0xFFFFFFFF


def filed_under_full_key(packed: int) -> bool:
    return bool(packed & _FULL_KEY_BIT)


class TimeWait:
    """What remains of a connection in TIME-WAIT, unpacked."""

    __slots__ = ("remote", "local_port", "remote_port", "snd_nxt", "rcv_nxt", "window",
                 "max_snd_wnd", "full_key", "ts_enabled", "ts_recent", "ts_offset", "expires")

    def __init__(self, conn, expires: float) -> None:
        self.remote = conn.remote
        self.local_port = conn.local_port
        self.remote_port = conn.remote_port
        self.snd_nxt = conn.snd_nxt
        self.rcv_nxt = conn.rcv_nxt
        self.max_snd_wnd = conn.max_snd_wnd
        self.window = conn._window_field()
        self.full_key = False
        self.ts_enabled = conn.ts_enabled
        # Without timestamps the peer never sees them: zero keeps the packed int short.
        self.ts_recent = conn.ts_recent if conn.ts_enabled else 0
        self.ts_offset = conn.ts_offset if conn.ts_enabled else 0
        self.expires = expires

    @property
    def key(self) -> tuple:
        """The connection's identity (remote, local TCP port, remote TCP port)."""
        return (self.remote, self.local_port, self.remote_port)

    def pack(self) -> int:
        """The record as the stack keeps it."""
        packed = _U64.unpack(_DOUBLE.pack(self.expires))[0]
        for name, _ in _FIELDS[1:]:
            packed |= (int(getattr(self, name)) & _MASK[name]) << _SHIFT[name]
        return packed

    @classmethod
    def unpack(cls, remote, packed: int) -> "TimeWait":
        """The record ``packed``, of a connection with ``remote``."""
        tw = cls.__new__(cls)
        tw.remote = remote
        tw.expires = expires_of(packed)
        for name, _ in _FIELDS[1:]:
            setattr(tw, name, packed >> _SHIFT[name] & _MASK[name])
        tw.full_key = bool(tw.full_key)
        tw.ts_enabled = bool(tw.ts_enabled)
        return tw

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
