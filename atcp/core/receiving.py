"""The receiver's half of a connection: what an arriving segment does.

`Receiving` holds the methods of `Connection` that process an arriving segment; it is a
mixin with no state of its own (the fields are the connection's, named after RFC 9293's
RCV.* and SND.* variables), so a newcomer finds SEGMENT ARRIVES here, the sender's rules in
`sending`, and opening, the application's calls, the timers and the endings in
`connection`.

* `segment_arrives` is RFC 9293 3.10.7 (SEGMENT ARRIVES), checked in the RFC's order:
  sequence number (PAWS, RFC 7323 5.3; the test itself in `acceptance`), RST
  (`_rst_arrives`, RFC 5961 3.2, its rules in `reset`), SYN (RFC 5961 4), ACK
  (`_ack_arrives`, with the send window update; what an ACK does for the sender is
  `sending`'s), text and FIN (`_receive_text`, `_fin_arrives`). SYN-SENT has its own
  path, `_syn_sent` (3.10.7.3).
* Header prediction: in ESTABLISHED, `_predicted` recognises the segments a bulk transfer
  is made of -- the next in-order data, a pure ACK that advances SND.UNA, or both at once
  -- and `_fast_data`, `_fast_ack` and `_fast_data_ack` give them the full path's effects
  without its checks (RFC 9293 allows any processing with the same outcome); the comment
  above `_predicted` says when it applies.
* Text: in-order data goes to the `buffers.ReceiveBuffer`, out-of-order data to
  `buffers.Reassembly` with an immediate duplicate ACK (RFC 5681 4.2); `sack.SackReport`
  keeps the SACK and D-SACK blocks to report (RFC 2018, RFC 2883); ACKs are delayed as
  RFC 9293 3.8.6.3 allows (`_delayed_ack`).
* Windows: RCV.WND, and the window field we advertise, which never shrinks the right edge
  already offered (3.8.6.2.2) and opens in steps of at least min(buffer/2, MSS) (receiver
  SWS avoidance).
"""

from __future__ import annotations

from ..wire import ACK, FIN, RST, SYN, URG, Segment
from ..wire.seq import MASK, seq_add, seq_gt, seq_le, seq_lt, seq_sub
from . import events as ev
from .acceptance import ack_acceptable_5961, ack_in_flight, paws_rejects, segment_acceptable
from .errors import refused_error, reset_error
from .reset import (RstVerdict, reset_for_bad_ack, reset_for_syn_in_window, rst_verdict,
                    syn_sent_accepts_rst)
from .sending import _OUTPUT_STATES
from .states import State

__all__ = ["Receiving"]

S = State
_RECEIVES_TEXT = (S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2)
_PREDICTED_DATA = "data"   # what `Connection._predicted` found
_PREDICTED_ACK = "ack"
_PREDICTED_DATA_ACK = "data+ack"


class Receiving:
    """The receive side of `Connection` (a mixin: every field is the connection's)."""

    __slots__ = ()

    # ------------------------------------------------------------------ segment arrival
    def segment_arrives(self, seg: Segment, now: float) -> None:
        self.segs_in += 1
        self.last_recv = now
        st = self.state
        if st is S.SYN_SENT:
            self._syn_sent(seg, now)
            return
        if st is S.ESTABLISHED:
            predicted = self._predicted(seg, now)
            if predicted is _PREDICTED_DATA:
                self._fast_data(seg, now)
                return
            if predicted is _PREDICTED_ACK:
                self._fast_ack(seg, now)
                return
            if predicted is _PREDICTED_DATA_ACK:
                self._fast_data_ack(seg, now)
                return
        flags = seg.flags
        seg_len = seg.seg_len
        rcv_wnd = self._rcv_wnd()

        # First: sequence number (3.10.7.4). SYN-RECEIVED answers a copy of the peer's SYN
        # with its SYN,ACK again rather than a bare ACK, so a lost SYN,ACK costs one
        # round trip instead of a timeout.
        if st is S.SYN_RECEIVED and flags & SYN and not flags & RST and seg.seq == self.irs:
            if not flags & ACK:
                self._send_syn(now)
                return
            # Simultaneous open (3.5, figure 8): the peer's SYN,ACK; its SYN is old news.
            seg = Segment(seg.src_port, seg.dst_port, seq_add(seg.seq, 1), seg.ack,
                          flags & ~SYN, seg.window, seg.payload, seg.options)
            flags = seg.flags
            seg_len = seg.seg_len
        if self.ts_enabled and not flags & RST and seg.options.ts_val is not None \
                and paws_rejects(seg.options.ts_val, self.ts_recent, now - self.ts_recent_age):
            # RFC 7323 5.3 R1: an old duplicate by its timestamp. ACK it and drop it.
            self.paws_rejected += 1
            self.stack.stats["paws_rejected"] += 1
            self._send_ack(now)
            return
        if not segment_acceptable(seg.seq, seg_len, self.rcv_nxt, rcv_wnd):
            zero_window_ack = (rcv_wnd == 0 and seg.seq == self.rcv_nxt
                               and not flags & (RST | SYN))
            if not zero_window_ack:
                if not flags & RST:
                    self.dup_segments_in += 1
                    if seg.payload and seq_le(seq_add(seg.seq, len(seg.payload)), self.rcv_nxt):
                        self._report_duplicate(seg.seq, len(seg.payload))
                    self._send_ack(now)
                return
            # RFC 9293 3.10.7.4: with a zero window, still process the ACK of a segment
            # whose data must be dropped; the ACK we send tells the peer the window.
            seg = Segment(seg.src_port, seg.dst_port, seg.seq, seg.ack, flags & ~FIN,
                          seg.window, b"", seg.options)
            self._ack_owed_now = True

        # Second: RST (RFC 5961 3.2).
        if flags & RST:
            self._rst_arrives(seg, rcv_wnd, now)
            return

        # Fourth: SYN in a synchronized state or SYN-RECEIVED (RFC 5961 4; RFC 9293 3.10.7.4).
        if flags & SYN:
            if st is S.SYN_RECEIVED and self.passive:
                self.stack._syn_received_aborted(self)   # back to LISTEN, silently
                self._drop(None, send_rst=False)
                return
            if self.config.rfc5961:
                self._challenge_ack(now)
            else:
                self.stack._emit_raw(reset_for_syn_in_window(
                    self.local_port, self.remote_port, self.snd_nxt, self.rcv_nxt), self.remote)
                self.stack.stats["rst_sent"] += 1
                self._drop(reset_error(), send_rst=False, now=now)
            return

        # Fifth: ACK.
        if not flags & ACK:
            return
        if not self._ack_arrives(seg, now):
            return
        st = self.state
        if st is S.CLOSED:
            return

        # Timestamps (RFC 7323 4.3, 5.3 R3): remember the newest TSval from an in-window
        # segment; PAWS let only newer ones through, unless TS.Recent had gone stale.
        if self.ts_enabled and seg.options.ts_val is not None \
                and seq_le(seg.seq, self.last_ack_sent):
            self.ts_recent = seg.options.ts_val
            self.ts_recent_age = now

        # Seventh: segment text. Eighth: FIN.
        payload = seg.payload
        fin = flags & FIN
        if payload or fin:
            self._receive_text(seg, payload, fin, rcv_wnd, now)
        if self._ack_owed_now:
            self._ack_owed_now = False
            if self.state is not S.CLOSED:
                self._send_ack(now)
        if self.state in _OUTPUT_STATES:
            self._output(now)

    # Header prediction (after BSD's tcp_input; RFC 9293 allows any processing with the
    # same outcome), in ESTABLISHED, for the two segments a bulk transfer is made of:
    #
    # * DATA: the next in-order data segment at a receiver, whose ACK field repeats
    #   SND.UNA with nothing of ours outstanding. The sender's ACK processing
    #   (`_sender_ack`) has nothing to do, so `_fast_data` runs only the seventh check.
    # * ACK: a pure ACK at a sender, at RCV.NXT, that advances SND.UNA within SND.NXT.
    #   `_fast_ack` runs all the sender's ACK processing (scoreboard, SACK, RACK, RTT,
    #   congestion control) exactly as `_ack_arrives` would, skipping only its checks.
    # * DATA+ACK: both at once, as in a request/response exchange: the next in-order data
    #   segment whose ACK field advances SND.UNA within SND.NXT (`_fast_data_ack`).
    #
    # Both need: flags exactly ACK (PSH aside), SEG.SEQ = RCV.NXT, no ACK owed from before,
    # and a timestamp that PAWS (RFC 7323 5.3 R1) lets through. Then the first (sequence),
    # second (RST), fourth (SYN) and RFC 5961 checks are known to pass; the send window
    # update runs as usual. Anything else takes the full path.
    def _predicted(self, seg: Segment, now: float):
        if (seg.flags & (SYN | FIN | RST | URG | ACK) != ACK or seg.seq != self.rcv_nxt
                or self._ack_owed_now):
            return None
        if self.ts_enabled:
            ts_val = seg.options.ts_val
            if ts_val is None or paws_rejects(ts_val, self.ts_recent, now - self.ts_recent_age):
                return None
        payload = seg.payload
        ack = seg.ack
        snd_una = self.snd_una
        advances = ack != snd_una and seq_gt(ack, snd_una) and seq_le(ack, self.snd_nxt)
        if payload:
            if (len(payload) > self._rcv_wnd() or self.reasm.held
                    or self.peer_fin_off is not None or self.read_closed):
                return None
            if advances:
                return _PREDICTED_DATA_ACK
            if ack != snd_una or snd_una != self.snd_nxt or self.sb.out:
                return None
            return _PREDICTED_DATA
        return _PREDICTED_ACK if advances else None

    def _fast_ack(self, seg: Segment, now: float) -> None:
        """The full path's effects for a pure ACK `_predicted` accepted (3.10.7.4 fifth
        check, then TS.Recent, then output)."""
        ack = seg.ack
        self._snd_una_advances(ack, now)
        self._sender_ack(seg, True, now)
        self._update_send_window(seg, ack)
        if self.state is S.CLOSED:
            return
        if self.ts_enabled and seq_le(seg.seq, self.last_ack_sent):
            self.ts_recent = seg.options.ts_val
            self.ts_recent_age = now
        if self.state in _OUTPUT_STATES:
            self._output(now)

    def _fast_data_ack(self, seg: Segment, now: float) -> None:
        """The full path's effects for data whose ACK advances SND.UNA: the fifth check's
        ACK processing as in `_fast_ack`, then the in-order text as in `_fast_data`."""
        self._snd_una_advances(seg.ack, now)
        self._sender_ack(seg, True, now)
        if self.state is S.CLOSED:
            return
        self._fast_data(seg, now)

    def _fast_data(self, seg: Segment, now: float) -> None:
        """The effects of the full path for a segment `_predicted` accepted: the
        send window update of the fifth check, TS.Recent (RFC 7323 4.3), then the
        seventh check for in-order text."""
        seq = seg.seq
        self._update_send_window(seg, seg.ack)
        if self.ts_enabled and seq_le(seq, self.last_ack_sent):
            self.ts_recent = seg.options.ts_val
            self.ts_recent_age = now
        payload = seg.payload
        n = len(payload)
        self.rcvbuf.append(payload)
        self.rcv_off += n
        if self.sack_permitted and self.sack_report:
            self.sack_report.delivered(self.rcv_off)
        self.rcv_nxt = (self.rcv_nxt + n) & MASK
        self.bytes_received += n
        self.stack._post(ev.DataReceived(self))
        self._delayed_ack(n, now)
        self._output(now)

    def _syn_sent(self, seg: Segment, now: float) -> None:
        """SEGMENT ARRIVES in SYN-SENT (3.10.7.3)."""
        flags = seg.flags
        # First: the ACK bit.
        if flags & ACK and not ack_in_flight(seg.ack, self.snd_una, self.snd_nxt):
            rst = reset_for_bad_ack(seg)
            if rst is not None:
                self.stack._note("rst_sent", self, rule="bad ACK in SYN-SENT (RFC 9293 3.10.7.3)")
                self.stack._emit_raw(rst, self.remote)
            return
        # Second: RST, believed only when it acknowledges our SYN.
        if flags & RST:
            accepted = syn_sent_accepts_rst(seg, self.snd_una, self.snd_nxt)
            self.stack._note("rst_received", self, verdict="refused" if accepted else "drop")
            if accepted:
                self._drop(refused_error(), send_rst=False)
            return
        # Fourth: SYN.
        if not flags & SYN:
            return
        if flags & FIN and self.config.drop_synfin:
            return
        self._take_syn(seg)
        if flags & ACK:
            self._snd_una_advances(seg.ack, now)
            self.snd_wnd = seg.window   # unscaled in a SYN (RFC 7323 2.2)
            self._established(now)
            self._send_ack(now)
            if self.state in _OUTPUT_STATES:
                self._output(now)
        else:
            # Simultaneous open (3.5, figure 8): answer SYN,ACK with our ISS.
            self._set_state(S.SYN_RECEIVED)
            self.t_rexmt = None
            self._send_syn(now)

    def _rst_arrives(self, seg: Segment, rcv_wnd: int, now: float) -> None:
        verdict = rst_verdict(seg.seq, self.rcv_nxt, rcv_wnd, self.config.rfc5961)
        self.stack._note("rst_received", self, verdict=verdict.value)
        if verdict is RstVerdict.DROP:
            return
        if verdict is RstVerdict.CHALLENGE:
            self._challenge_ack(now)
            return
        st = self.state
        if st is S.SYN_RECEIVED:
            if self.passive:
                # From a passive OPEN: back to LISTEN, nothing told to anyone (3.10.7.4).
                self.stack._syn_received_aborted(self)
                self._drop(None, send_rst=False)
            else:
                self._drop(refused_error(), send_rst=False)
        elif st in (S.CLOSING, S.LAST_ACK):
            self._drop(None, send_rst=False)
        else:
            self._drop(reset_error(), send_rst=False)

    def _ack_arrives(self, seg: Segment, now: float) -> bool:
        """The fifth check (3.10.7.4). Returns False when the segment is to be dropped."""
        ack = seg.ack
        st = self.state
        if st is S.SYN_RECEIVED:
            if not ack_in_flight(ack, self.snd_una, self.snd_nxt):
                rst = reset_for_bad_ack(seg)
                if rst is not None:
                    self.stack._note("rst_sent", self,
                                     rule="bad ACK in SYN-RECEIVED (RFC 9293 3.10.7.4)")
                    self.stack._emit_raw(rst, self.remote)
                return False
            self._established(now)
            self.snd_wnd = seg.window << self.snd_scale
            self.snd_wl1 = seg.seq
            self.snd_wl2 = ack
            self.max_snd_wnd = max(self.max_snd_wnd, self.snd_wnd)
        if self.config.rfc5961 and not ack_acceptable_5961(ack, self.snd_una, self.snd_nxt,
                                                            self.max_snd_wnd):
            # RFC 5961 5.2: an ACK outside the range is dropped and answered with an ACK.
            self._challenge_ack(now)
            return False
        if seq_gt(ack, self.snd_nxt):
            # An ACK for something not yet sent (3.10.7.4): ACK, drop.
            self._send_ack(now)
            return False
        advanced = seq_gt(ack, self.snd_una)
        if advanced:
            self._snd_una_advances(ack, now)
        if advanced or ack == self.snd_una:
            self._sender_ack(seg, advanced, now)
        self._update_send_window(seg, ack)

        fin_acked = self.fin_off is not None and self.snd_una == self._fin_seq_end()
        if st is S.FIN_WAIT_1 and fin_acked:
            self._set_state(S.FIN_WAIT_2)
            if self.read_closed:
                self._set_timer_finwait2(now)
        elif st in (S.CLOSING, S.LAST_ACK):
            # Nothing more to receive, but data queued ahead of our FIN may still be
            # waiting for the window this ACK opened.
            if not fin_acked:
                self._output(now)
            elif st is S.CLOSING:
                self._enter_time_wait(now)
            else:
                self._drop(None, send_rst=False)
            return False
        return True

    def _update_send_window(self, seg: Segment, ack: int) -> None:
        """Send window update (3.10.7.4): only from a segment newer than the last one used."""
        if seq_lt(self.snd_wl1, seg.seq) or (self.snd_wl1 == seg.seq
                                              and seq_le(self.snd_wl2, ack)):
            wnd = seg.window << self.snd_scale
            if self.snd_wnd == 0 and wnd > 0:
                self.t_persist = None
                self.persist_backoff = 0
                # A probe byte this ACK does not cover was refused: resend from SND.UNA
                # now (no timer runs for it; the persist timer just stopped).
                self.sb.mark_all_lost()
            self.snd_wnd = wnd
            self.snd_wl1 = seg.seq
            self.snd_wl2 = ack
            if wnd > self.max_snd_wnd:
                self.max_snd_wnd = wnd

    # ------------------------------------------------------------------ receiving text
    def _receive_text(self, seg: Segment, payload: bytes, fin: int, rcv_wnd: int,
                      now: float) -> None:
        st = self.state
        if st not in _RECEIVES_TEXT:
            # CLOSE-WAIT, CLOSING, LAST-ACK: the peer already sent its FIN (3.10.7.4,
            # seventh and eighth); a repeat of that FIN is acknowledged.
            if fin or payload:
                self._send_ack(now)
            return
        seq = seg.seq
        # Trim what lies before RCV.NXT and beyond the window.
        offset = seq_sub(seq, self.rcv_nxt)
        if offset < 0:
            cut = -offset
            if payload:
                self._report_duplicate(seq, min(cut, len(payload)))
            if cut >= len(payload):
                if fin and cut == len(payload):
                    payload = b""
                    offset = 0
                else:
                    self._send_ack(now)   # a duplicate: tell the peer where we are
                    return
            else:
                payload = payload[cut:]
                offset = 0
        room = rcv_wnd - offset
        if len(payload) > room:
            payload = payload[:max(room, 0)]
            fin = 0
        if payload and self.read_closed:
            # New data after CLOSE: nobody will read it (RFC 1122 4.2.2.13).
            self._drop(None, send_rst=True, now=now)
            return
        if offset > 0:
            # Out of order: hold it and send an immediate duplicate ACK (RFC 5681 4.2).
            start = self.rcv_off + offset
            if payload:
                refused = self.reasm.refused
                kept = self.reasm.add(start, payload)
                # Data reassembly had no room for was not received: neither a duplicate
                # nor SACKable (RFC 2018 8: a SACKed byte must be held, or the sender
                # never resends it). Reporting less is safe; the sender resends it.
                if self.sack_permitted and self.reasm.refused == refused:
                    if not kept:
                        self.sack_report.duplicate(start, start + len(payload))
                    self.sack_report.held(start, start + len(payload))
            if fin:
                self.peer_fin_off = start + len(payload)
            self._send_ack(now)
            return
        delivered = len(payload)
        if payload:
            self.rcvbuf.append(payload)
            self.rcv_off += delivered
        filled_hole = False
        if self.reasm.held:
            for piece in self.reasm.pop_ready(self.rcv_off):
                self.rcvbuf.append(piece)
                self.rcv_off += len(piece)
                delivered += len(piece)
                filled_hole = True
        if self.sack_permitted and self.sack_report:
            self.sack_report.delivered(self.rcv_off)
        self.rcv_nxt = seq_add(self.rcv_nxt, delivered)
        self.bytes_received += delivered
        if fin:
            self.peer_fin_off = self.rcv_off
        if delivered:
            self.stack._post(ev.DataReceived(self))
        if self.peer_fin_off is not None and self.peer_fin_off == self.rcv_off:
            self._fin_arrives(now)
            return
        if filled_hole:
            self._send_ack(now)
        elif delivered:
            self._delayed_ack(delivered, now)

    def _fin_arrives(self, now: float) -> None:
        """Eighth check (3.10.7.4): the peer's FIN, in order."""
        self.peer_fin_off = None
        self.rcv_nxt = seq_add(self.rcv_nxt, 1)
        self.eof = True
        self._send_ack(now)
        st = self.state
        self.stack._post(ev.EofReceived(self))
        if st is S.ESTABLISHED:
            self._set_state(S.CLOSE_WAIT)
        elif st is S.FIN_WAIT_1:
            if self.fin_off is not None and self.snd_una == self._fin_seq_end():
                self._enter_time_wait(now)
            else:
                self._set_state(S.CLOSING)
        elif st is S.FIN_WAIT_2:
            self._enter_time_wait(now)

    def _report_duplicate(self, seq: int, length: int) -> None:
        """Data below RCV.NXT came again: the next ACK reports it (RFC 2883 4)."""
        if self.sack_permitted:
            start = self.rcv_off - seq_sub(self._rcv_data_nxt(), seq)
            self.sack_report.duplicate(start, start + length)

    def _rcv_data_nxt(self) -> int:
        """RCV.NXT without the peer's FIN: the sequence number of stream offset rcv_off."""
        return (self.irs + 1 + self.rcv_off) & MASK

    def _delayed_ack(self, nbytes: int, now: float) -> None:
        """ACK at least every second full-size segment, and within the delayed-ACK time
        (RFC 9293 3.8.6.3, RFC 5681 4.2)."""
        self.unacked_segments += (nbytes + self.rcv_mss - 1) // self.rcv_mss
        if self.unacked_segments >= 2:
            self._send_ack(now)
        elif self.t_delack is None:
            self._set_timer("t_delack", now + self.config.delayed_ack)

    # ------------------------------------------------------------------ windows
    def _rcv_wnd(self) -> int:
        """RCV.WND: what is left of the window we advertised."""
        wnd = ((self.rcv_adv - self.rcv_nxt + 0x80000000) & MASK) - 0x80000000   # seq_sub
        return wnd if wnd > 0 else 0

    def _window_field(self) -> int:
        """The window to advertise now, as the 16-bit field, without shrinking the right
        edge already offered (3.8.6.2.2) and opening it only in steps of at least
        min(buffer/2, MSS) (receiver SWS avoidance)."""
        rcvbuf = self.rcvbuf
        buf_limit = rcvbuf.limit
        free = rcvbuf.free()
        rcv_nxt = self.rcv_nxt
        scale = self.rcv_scale
        # RCV.WND (`_rcv_wnd`), inlined: this runs for every segment we send.
        offered = ((self.rcv_adv - rcv_nxt + 0x80000000) & MASK) - 0x80000000
        if offered < 0:
            offered = 0
        threshold = min(buf_limit // 2, self.rcv_mss)
        wnd = free if free - offered >= threshold or free >= buf_limit else offered
        if wnd < offered:
            wnd = offered
        limit = 65535 << scale
        if wnd > limit:
            wnd = limit
        field = wnd >> scale
        if scale and (field << scale) < offered:
            field += 1   # rounding must not shrink the edge we already offered
        self.rcv_adv = (rcv_nxt + (field << scale)) & MASK
        return field

    def _window_update_due(self) -> bool:
        free = self.rcvbuf.free()
        offered = self._rcv_wnd()
        return free - offered >= min(self.rcvbuf.limit // 2, self.rcv_mss)
