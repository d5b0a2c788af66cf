"""Is this segment acceptable? The sequence and acknowledgment tests, in one place.

RFC 9293 3.10.7.4 (first check) accepts a segment when any of it falls in the receive window:

    SEG.LEN  RCV.WND  test
    0        0        SEG.SEQ = RCV.NXT
    0        >0       RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND
    >0       0        not acceptable
    >0       >0       RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND
                      or RCV.NXT =< SEG.SEQ+SEG.LEN-1 < RCV.NXT+RCV.WND

RFC 5961 section 5 narrows the ACK field test: SND.UNA - MAX.SND.WND =< SEG.ACK =< SND.NXT.
PAWS (RFC 7323 5) rejects a segment whose timestamp is older than TS.Recent before the
window test runs.

The RST-specific rules live in `reset`; TIME-WAIT's in `timewait`.
"""

from __future__ import annotations

from ..wire.seq import seq_add, seq_in_window, seq_le, seq_lt

__all__ = ["segment_acceptable", "ack_acceptable_5961", "ack_in_flight", "paws_rejects",
           "PAWS_IDLE"]

#: RFC 7323 5.5: after 24 days without a new TS.Recent, the timestamp clock may have
#: wrapped past half its range, so TS.Recent no longer says what is old.
PAWS_IDLE = 24 * 86400.0


def segment_acceptable(seq: int, seg_len: int, rcv_nxt: int, rcv_wnd: int) -> bool:
    if seg_len == 0:
        if rcv_wnd == 0:
            return seq == rcv_nxt
        return seq_in_window(seq, rcv_nxt, rcv_wnd)
    if rcv_wnd == 0:
        return False
    return (seq_in_window(seq, rcv_nxt, rcv_wnd)
            or seq_in_window(seq_add(seq, seg_len - 1), rcv_nxt, rcv_wnd))


def ack_acceptable_5961(ack: int, snd_una: int, snd_nxt: int, max_snd_wnd: int) -> bool:
    """RFC 5961 5.2: SND.UNA - MAX.SND.WND =< SEG.ACK =< SND.NXT."""
    low = (snd_una - max_snd_wnd) & 0xFFFFFFFF
    return seq_le(low, ack) and seq_le(ack, snd_nxt)


def ack_in_flight(ack: int, snd_una: int, snd_nxt: int) -> bool:
    """SND.UNA < SEG.ACK =< SND.NXT: the ACK acknowledges something we sent."""
    return seq_in_window(ack, seq_add(snd_una, 1), (snd_nxt - snd_una) & 0xFFFFFFFF)


def paws_rejects(ts_val: int, ts_recent: int, idle: float) -> bool:
    """RFC 7323 5.3 R1: SEG.TSval < TS.Recent (modulo 2**32) while TS.Recent is valid,
    that is, was set less than 24 days (``idle`` seconds) ago. RSTs are never tested
    (the caller's business): RFC 7323 5.3 exempts them."""
    return seq_lt(ts_val, ts_recent) and idle <= PAWS_IDLE
