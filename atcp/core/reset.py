"""Every rule about RST segments: when to send one, with which numbers, and when to believe one.

Generation (RFC 9293 3.10.7.1) falls into three groups:

1. The segment references no connection (CLOSED, or a port nobody listens on): answer any
   non-RST segment; with ACK set, ``<SEQ=SEG.ACK><CTL=RST>``, otherwise
   ``<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`` (`reset_for_no_connection`).
2. A non-synchronized state (LISTEN, SYN-SENT, SYN-RECEIVED) gets an ACK for something never
   sent: ``<SEQ=SEG.ACK><CTL=RST>`` (`reset_for_bad_ack`).
3. A synchronized state gets an unacceptable segment: an empty ACK, never a RST (the caller
   sends `Connection`'s plain ACK; nothing here).

A RST is never answered, by any rule: every function here returns None for one.

Acceptance (RFC 9293 3.10.7.4 second check, hardened by RFC 5961 section 3): outside SYN-SENT
a RST resets only if SEG.SEQ == RCV.NXT exactly; inside the window it earns a challenge ACK;
outside it is dropped. With ``rfc5961=False``, any RST inside the window resets (RFC 793).
SYN-SENT accepts a RST only if it acknowledges our SYN (3.10.7.3). `ChallengeAckLimiter`
bounds the challenge ACKs (RFC 5961 7).

The user's ABORT (3.10.5) sends ``<SEQ=SND.NXT><CTL=RST>`` from SYN-RECEIVED through
CLOSE-WAIT (`reset_for_abort`); `Connection.abort` decides the state.
"""

from __future__ import annotations

import collections
import enum

from ..wire import ACK, RST, Segment
from ..wire.seq import seq_add, seq_in_window

__all__ = [
    "reset_for_no_connection", "reset_for_bad_ack", "reset_for_abort",
    "reset_for_syn_in_window", "RstVerdict",
    "rst_verdict", "syn_sent_accepts_rst", "ChallengeAckLimiter",
]


def reset_for_no_connection(seg: Segment) -> Segment | None:
    """Group 1: the reply to a segment for which no connection exists."""
    if seg.flags & RST:
        return None
    if seg.flags & ACK:
        return Segment(seg.dst_port, seg.src_port, seg.ack, 0, RST, 0)
    return Segment(seg.dst_port, seg.src_port, 0, seq_add(seg.seq, seg.seg_len), RST | ACK, 0)


def reset_for_bad_ack(seg: Segment) -> Segment | None:
    """Group 2: an unacceptable ACK in LISTEN, SYN-SENT or SYN-RECEIVED."""
    if seg.flags & RST:
        return None
    return Segment(seg.dst_port, seg.src_port, seg.ack, 0, RST, 0)


def reset_for_abort(local_port: int, remote_port: int, snd_nxt: int) -> Segment:
    """The user's ABORT in a state that has told the peer about itself (3.10.5)."""
    return Segment(local_port, remote_port, snd_nxt, 0, RST, 0)


def reset_for_syn_in_window(local_port: int, remote_port: int, snd_nxt: int,
                            rcv_nxt: int) -> Segment:
    """RFC 793's answer to a SYN in the window (the RFC 5961 checks off): the RFC leaves
    the form open; ``<SEQ=SND.NXT><ACK=RCV.NXT><CTL=RST,ACK>``, as FreeBSD sends."""
    return Segment(local_port, remote_port, snd_nxt, rcv_nxt, RST | ACK, 0)


class RstVerdict(enum.Enum):
    RESET = "reset"          # believe it: tear the connection down
    CHALLENGE = "challenge"  # in the window but not exact: send a challenge ACK, drop it
    DROP = "drop"            # outside the window: drop it silently


def rst_verdict(seq: int, rcv_nxt: int, rcv_wnd: int, rfc5961: bool) -> RstVerdict:
    """Judge a RST in a state other than SYN-SENT (RFC 9293 3.10.7.4, RFC 5961 3.2).

    A zero window accepts only SEG.SEQ == RCV.NXT; a RST is judged even then.
    """
    if seq == rcv_nxt:
        return RstVerdict.RESET
    if seq_in_window(seq, rcv_nxt, rcv_wnd):
        return RstVerdict.CHALLENGE if rfc5961 else RstVerdict.RESET
    return RstVerdict.DROP


def syn_sent_accepts_rst(seg: Segment, snd_una: int, snd_nxt: int) -> bool:
    """In SYN-SENT a RST counts only if its ACK acknowledges our SYN (3.10.7.3, RFC 5961 3)."""
    if not seg.flags & ACK:
        return False
    # SND.UNA < SEG.ACK =< SND.NXT
    return seq_in_window(seg.ack, seq_add(snd_una, 1), (snd_nxt - snd_una) & 0xFFFFFFFF)


class ChallengeAckLimiter:
    """At most ``limit`` challenge ACKs in any ``interval`` seconds (RFC 5961 7).

    Kept per connection, so one connection's budget tells an attacker nothing about
    another's (the global counter of CVE-2016-5696 did). The times of the last ``limit``
    challenges are kept, so the bound holds in every interval, also one that straddles
    where a counter reset every ``interval`` would start afresh.
    """

    __slots__ = ("limit", "interval", "_sent")

    def __init__(self, limit: int, interval: float) -> None:
        self.limit = limit
        self.interval = interval
        # Made by the first challenge: most connections never send one, and an empty
        # deque is over 600 bytes.
        self._sent: collections.deque[float] | None = None

    def allow(self, now: float) -> bool:
        sent = self._sent
        if sent is None:
            sent = self._sent = collections.deque(maxlen=self.limit)
        if len(sent) == self.limit and now - sent[0] < self.interval:
            return False
        sent.append(now)
        return True
