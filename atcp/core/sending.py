"""The sender's half of a connection: what goes out, when, and how loss is repaired.

`Sending` holds the methods of `Connection` that act on the send side; it is a mixin with
no state of its own (the fields are the connection's, named after RFC 9293's SND.*
variables), so a newcomer finds the sender's rules here, the receiver's in `receiving`,
and the state machine and the timers in `connection`.

* ACK processing for the sender (RFC 9293 3.10.7.4 fifth check, after SND.UNA moved):
  `_snd_una_advances` releases acknowledged data and restarts the RTO (RFC 6298 5.2/5.3);
  `_sender_ack` updates the `recovery.Scoreboard` (cumulative ACK, SACK blocks, RFC 2018),
  takes RTT samples (RFC 6298, RFC 7323 4), runs loss detection -- RACK (RFC 8985) with
  SACK, else DupThresh (RFC 6675, RFC 5681, NewReno's RFC 6582) -- and tells the congestion
  controller (`congestion`).
* Spurious episodes are undone (Eifel, RFC 3522; D-SACK, RFC 2883) and tail loss probes
  sent (RFC 8985 7).
* `_output` sends what the windows allow: presumed-lost segments first, then new data
  (Nagle, RFC 9293 3.7.4; sender SWS avoidance, 3.8.6.2.1), then the FIN, paced
  (`pacing`). Runs of whole segments are built at once (`_send_run`). When data goes out
  with nothing in flight, the controller's `on_restart` decides what an idle period did
  to the window (RFC 5681 4.1; ``Config.restart_after_idle``).
"""

from __future__ import annotations

from ..wire import ACK, FIN, PSH, SYN, NO_OPTIONS, Options, Segment
from ..wire.segment import build_header, header_template
from ..wire.seq import MASK, seq_add, seq_ge, seq_gt, seq_le, seq_lt, seq_sub
from . import events as ev
from .recovery import ACKED, DUPTHRESH, LOST, RETRANS, SACKED
from .states import State
from .tsclock import ts_clock

__all__ = ["Sending"]

S = State
_OUTPUT_STATES = (S.ESTABLISHED, S.CLOSE_WAIT, S.FIN_WAIT_1, S.CLOSING, S.LAST_ACK)
_SACK_BLOCK_BYTES = 8
#: RFC 8985 7.2 WCDelAckT: a lone segment's ACK may wait this long at the receiver.
_WORST_DELAYED_ACK = 0.2


class Sending:
    """The send side of `Connection` (a mixin: every field is the connection's)."""

    __slots__ = ()

    def _snd_una_advances(self, ack: int, now: float) -> None:
        """New data (or our SYN or FIN) was acknowledged: release it, restart the timer."""
        acked = seq_sub(ack, self.snd_una)
        data_acked = acked
        if self.snd_una == self.iss:
            data_acked -= 1     # our SYN took a sequence number, not a data byte
        if self.fin_off is not None and ack == self._fin_seq_end():
            data_acked -= 1     # so did our FIN
        self.snd_una = ack
        data_end = self._seq_to_send_off(ack)
        if self.fin_off is not None and data_end > self.fin_off:
            data_end = self.fin_off
        released = self.sndbuf.release(data_end)
        self.bytes_acked += data_acked if data_acked > 0 else 0
        # RTT sample from a timed, never-retransmitted segment (RFC 6298 3, Karn); with
        # timestamps every ACK gives one instead (`_sender_ack`).
        if self.rtt_seq is not None and seq_gt(ack, self.rtt_seq):
            self.rto.sample(now - self.rtt_time)
            self.rtt_seq = None
        self.rexmt_count = 0
        # RFC 6298 5.2/5.3: stop the timer when all is acknowledged, else restart it.
        if self.snd_una == self.snd_nxt:
            self.t_rexmt = None
        else:
            self._arm_rexmt(now)
        if released and self.send_blocked and not self.fin_queued \
                and self.state in (S.ESTABLISHED, S.CLOSE_WAIT):
            self.send_blocked = False
            self.stack._post(ev.SendSpace(self))

    # ------------------------------------------------------------------ loss recovery
    def _flight(self) -> int:
        """FlightSize (RFC 5681 2): sent and not cumulatively acknowledged."""
        return seq_sub(self.snd_nxt, self.snd_una)

    def _in_flight(self) -> int:
        """RFC 6675's pipe: in flight and neither SACKed nor presumed lost. Without SACK,
        each duplicate ACK stands for one segment that left the network, which is exactly
        the window inflation of RFC 5681 3.2 and RFC 6582 (and limited transmit, RFC 3042,
        for the first two)."""
        sb = self.sb
        n = sb.out - sb.sacked - sb.lost
        if self.dupacks and not self.sack_permitted:
            n -= self.dupacks * self.snd_mss
            if n < 0:
                n = 0
        return n

    def _recovering(self) -> bool:
        """In fast recovery, or still resending what a retransmission timeout presumed
        lost (RFC 6675 5.1: no new episode until SND.UNA passes RecoveryPoint)."""
        return self.in_recovery or seq_lt(self.snd_una, self.recover)

    def _sender_ack(self, seg: Segment, advanced: bool, now: float) -> None:
        """Everything an acceptable ACK tells the sender (SND.UNA already moved): the
        scoreboard, RTT, loss detection, recovery, the congestion window, probes."""
        sb = self.sb
        cc = self.cc
        if cc is None or (not advanced and not sb.out):
            return
        prior_in_flight = self._in_flight()
        prior_flight = sb.out
        una = self._seq_to_send_off(self.snd_una)
        sb.begin_ack()
        if advanced:
            sb.ack(una)
        opts = seg.options
        dsack = None
        if opts.sack and self.sack_permitted:
            dsack = self._take_sack(opts.sack, una)
        tsecr = opts.ts_ecr if self.ts_enabled and opts.ts_val is not None else None
        rtt = None
        if sb.delivered:
            rtt = self.rack.update(sb.delivered, now, tsecr, self.ts_offset, self.snd_mss)
            self.delivered += sb.delivered_bytes
        # The guards below skip calls that would find nothing to do; they run on every
        # ACK, and a request/response exchange makes one ACK per message.
        if advanced:
            if tsecr is not None:
                self._ts_rtt_sample(tsecr, prior_flight, now)
            if self.eifel is not None:
                self._check_spurious(una, tsecr)
            if una >= self.round_end:
                self._count_round(una, now)
        if dsack is not None:
            self._dsack_arrived(dsack, una)
        if self.tlp_end is not None:
            self._tlp_ack(una, advanced, dsack, seg, now)
        self._detect_loss(seg, advanced, now)
        if self.in_recovery and seq_ge(self.snd_una, self.recover):
            self._end_recovery(now)
        if sb.delivered_bytes and not self.in_recovery:
            cc.on_ack(sb.delivered_bytes, rtt, now, prior_in_flight, self.round_trips)
        if sb.rate is not None:
            cc.on_rate_sample(sb.rate.on_ack(sb, now, rtt, self.rack.min_rtt, prior_in_flight),
                              now, self._in_flight())
        if sb.lost and self.state is not S.CLOSED and not self.in_recovery:
            self._enter_recovery_if_lost(now)
        if advanced:
            if sb.out:
                self._arm_probe(now)
            else:
                self.t_probe = None   # nothing in flight to probe for (`_arm_probe`)

    def _take_sack(self, blocks, una: int) -> tuple[int, int] | None:
        """Mark what the SACK blocks report (RFC 2018 4); returns the D-SACK block, if the
        first one is one: below the cumulative ACK or inside the second (RFC 2883 4)."""
        nxt = self._seq_to_send_off(self.snd_nxt)
        ranges = []
        dsack = None
        for i, (left, right) in enumerate(blocks):
            lo = self._seq_to_send_off(left)
            hi = lo + seq_sub(right, left)
            if hi <= lo:
                continue
            if i == 0 and (hi <= una or (len(blocks) > 1 and seq_le(blocks[1][0], left)
                                         and seq_le(right, blocks[1][1]))):
                dsack = (lo, hi)
                continue
            if lo < una:
                lo = una
            if hi > nxt or lo >= hi:
                continue   # SACKs data never sent, or nothing new: ignore the block
            ranges.append((lo, hi))
        if ranges:
            ranges.sort()
            self.sb.sack(ranges)
        return dsack

    def _ts_rtt_sample(self, tsecr: int, flight: int, now: float) -> None:
        """RFC 7323 4 (RTTM): an RTT sample from every ACK that advances SND.UNA. TSecr
        names the transmission acknowledged; when that is the one our scoreboard timed,
        its send time gives the RTT at full resolution instead of the millisecond clock.
        Samples are weighted by how many an RTT brings (Appendix G)."""
        rec = self.sb.delivered[0] if self.sb.delivered else None
        if rec is not None and rec.flags & ACKED and (
                not rec.flags & RETRANS or not seq_lt(tsecr, self._ts_of(rec.time))):
            sample = now - rec.time
        else:
            ms = (self._ts_now(now) - tsecr) & MASK
            if ms >= 1 << 31:
                return   # an echo from the future: not ours
            sample = ms / 1000
        per_rtt = -(-flight // (2 * self.snd_mss)) if flight > 0 else 1
        self.rto.sample(sample, per_rtt)

    def _count_round(self, una: int, now: float) -> None:
        """A round trip ends when what was in flight at its start is acknowledged; the
        bytes delivered over it give the delivery rate shown in `tcp_info`. Called when
        ``una`` reached the round's end."""
        elapsed = now - self.round_start
        if elapsed > 0 and self.round_trips:
            self.delivery_rate = (self.delivered - self.round_delivered) / elapsed
        self.round_trips += 1
        self.round_end = self._seq_to_send_off(self.snd_nxt)
        self.round_start = now
        self.round_delivered = self.delivered

    def _detect_loss(self, seg: Segment, advanced: bool, now: float) -> None:
        """Mark lost records: RACK with SACK (RFC 8985), else the DupThresh rules of
        RFC 6675 (with SACK) and RFC 5681/6582 (without)."""
        sb = self.sb
        if self.sack_permitted and self.config.rack_tlp:
            if sb.out:
                self._rack_detect(now)
            else:
                self.t_reorder = None   # nothing outstanding can be lost
            return
        if advanced:
            if (self.in_recovery and not self.sack_permitted
                    and seq_lt(self.snd_una, self.recover)):
                # RFC 6582 3.2 step 4, partial ACK: the next hole goes out now; the
                # duplicate ACKs it covered no longer count as segments gone.
                self.dupacks = max(0, self.dupacks - sb.delivered_bytes // self.snd_mss)
                self._retransmit_first(now)
            elif not self.in_recovery:
                self.dupacks = 0
        elif self._is_dupack(seg):
            self.dupacks += 1
            if self.dupacks >= DUPTHRESH and not self._recovering():
                first = sb.first()
                if first is not None:
                    sb.mark_lost(first)
        if self.sack_permitted:
            sb.mark_dupthresh(self.snd_mss)

    def _is_dupack(self, seg: Segment) -> bool:
        """RFC 5681 2: a duplicate ACK carries no data, no SYN or FIN, the same window, and
        arrives while data is outstanding. Not while the window is closed: those ACKs
        answer zero-window probes (FreeBSD counts none while its RTO timer is off)."""
        return not (seg.payload or seg.flags & (SYN | FIN) or self.snd_una == self.snd_nxt
                    or (seg.window << self.snd_scale) != self.snd_wnd or self.snd_wnd == 0)

    def _rack_detect(self, now: float) -> None:
        """RFC 8985 6.2 step 5, and the reordering timer for what may still arrive."""
        rack = self.rack
        if rack.time < 0:
            return
        sb = self.sb
        reo_wnd = rack.reo_wnd(self._recovering(), sb.sacked // self.snd_mss, self.rto.srtt)
        timeout = sb.rack_detect(rack.tx, rack.rtt + reo_wnd, now)
        if timeout:
            self._set_timer("t_reorder", now + timeout)
        else:
            self.t_reorder = None

    def _enter_recovery_if_lost(self, now: float) -> None:
        """A loss was detected: enter fast recovery (RFC 6675 5, RFC 6582 3.2 step 2) once
        per window of data, reduce the window, and resend the first lost segment at once
        whatever the window says."""
        if not self.sb.lost or seq_lt(self.snd_una, self.recover):
            return
        self.in_recovery = True
        self.recover = self.snd_nxt
        self.cc.on_congestion(now, self._flight())
        self._start_episode()
        self.t_probe = None
        self.tlp_end = None
        self.stack._note("fast_recovery", self, ssthresh=self.cc.ssthresh,
                         recover=self.recover)
        rec = self.sb.next_lost()
        if rec is not None:
            self._retransmit(rec, now)

    def _end_recovery(self, now: float) -> None:
        """RecoveryPoint acknowledged (RFC 6675 5, RFC 6582 3.2 step 3)."""
        self.in_recovery = False
        self.dupacks = 0
        self.rack.recovery_ended()
        self.cc.on_recovery_end(now, self._in_flight())

    def _start_episode(self) -> None:
        """Remember the state a spurious episode would undo (RFC 3522, RFC 2883)."""
        self.undo_marker = self._seq_to_send_off(self.snd_una)
        self.undo_retrans = 0
        self.eifel = None

    def _retransmit_first(self, now: float) -> None:
        """Resend the first unacknowledged segment now (RFC 6582 partial ACK)."""
        first = self.sb.first()
        if first is not None and not first.flags & SACKED:
            self.sb.mark_lost(first)
            self._retransmit(first, now)

    # ------------------------------------------------------------------ spurious episodes
    def _check_spurious(self, una: int, tsecr: int | None) -> None:
        """Eifel detection (RFC 3522): the ACK for the first retransmission of an episode
        echoes the original's older timestamp, so the original arrived and the episode was
        spurious; the response (RFC 4015) restores the window and stops resending."""
        eifel = self.eifel
        if una < eifel[0]:
            return
        self.eifel = None
        if tsecr is not None and seq_lt(tsecr, eifel[1]):
            self._undo("timestamps")

    def _dsack_arrived(self, block: tuple[int, int], una: int) -> None:
        """A D-SACK (RFC 2883): RACK widens its reordering window (RFC 8985 6.2 step 4);
        when every retransmission of the episode comes back as a duplicate, the episode
        was spurious and is undone."""
        self.dsacks_in += 1
        self.rack.on_dsack(una, self._seq_to_send_off(self.snd_nxt))
        if self.undo_marker is not None and block[0] >= self.undo_marker \
                and self.undo_retrans > 0:
            self.undo_retrans -= 1
            if self.undo_retrans == 0:
                self._undo("dsack")

    def _undo(self, how: str) -> None:
        # The "lost" segments arrived after all: the path reorders (RFC 8985 6.2 step 3's
        # test cannot see it, as they were retransmitted), so RACK waits from now on.
        self.rack.reordering_seen = True
        self.cc.undo()
        self.sb.unmark_lost()
        self.undo_marker = None
        self.eifel = None
        self.spurious_retransmits += 1
        if self.in_recovery:
            self.in_recovery = False
            self.dupacks = 0
        self.stack._note("spurious_undo", self, detected_by=how,
                         cwnd=self.cc.cwnd)

    # ------------------------------------------------------------------ tail loss probe
    def _arm_probe(self, now: float) -> None:
        """RFC 8985 7.2: after new data goes out or an ACK advances, schedule a probe
        timeout (PTO) of two smoothed RTTs, so a lost tail is found in about two RTTs
        instead of an RTO. Only with SACK (to learn what the probe repaired), outside
        recovery, and one probe at a time."""
        if (not self.sack_permitted or not self.config.rack_tlp or self.tlp_end is not None
                or self._recovering() or not self.sb.out or self.t_rexmt is None):
            self.t_probe = None
            return
        srtt = self.rto.srtt
        if srtt is None:
            pto = 1.0
        else:
            pto = 2 * srtt
            if self.sb.out <= self.snd_mss:
                pto += _WORST_DELAYED_ACK
        deadline = now + pto
        if deadline >= self.t_rexmt:
            self.t_probe = None   # the RTO comes first anyway
            return
        self._set_timer("t_probe", deadline)

    def _probe_expired(self, now: float) -> None:
        """RFC 8985 7.3: send one segment, new data if the windows allow, else the last
        one again, so that its ACK (with SACK) shows what was lost; then re-arm the RTO."""
        if self.state not in _OUTPUT_STATES or not self.sb.out or self._recovering():
            return
        off = self._seq_to_send_off(self.snd_nxt)
        avail = self.sndbuf.end - off
        wnd_end = self._seq_to_send_off(self.snd_una) + self.snd_wnd
        if avail > 0 and off + min(avail, self.snd_mss) <= wnd_end:
            self.tlp_retrans = False
            self._send_new(off, min(avail, self.snd_mss), now)
        else:
            rec = self.sb.last()
            if rec is None or rec.flags & SACKED:
                return
            self.tlp_retrans = True
            self.sb.retransmitted(rec, now)
            self.rtt_seq = None
            self._send_range(rec.start, rec.end, now, retransmit=True)
        self.tlp_end = self._seq_to_send_off(self.snd_nxt)
        self.loss_probes += 1
        self.stack._note("loss_probe", self, retransmission=self.tlp_retrans)
        self._arm_rexmt(now)

    def _tlp_ack(self, una: int, advanced: bool, dsack, seg: Segment, now: float) -> None:
        """RFC 8985 7.4: did the probe repair a loss? If so the congestion controller
        hears of it, as of any loss; if the probe was a needless duplicate, not."""
        end = self.tlp_end
        if una < end:
            return
        if not self.tlp_retrans or (dsack is not None and dsack[1] >= end):
            self.tlp_end = None
        elif una > end:
            self.tlp_end = None
            if not self._recovering():
                self.cc.on_congestion(now, self._flight())
        elif not advanced and not seg.options.sack:
            self.tlp_end = None   # a duplicate ACK: original and probe both arrived

    # ------------------------------------------------------------------ sending
    def _queue_fin(self) -> None:
        self.fin_queued = True
        self.fin_off = self.sndbuf.end

    def _fin_seq_end(self) -> int:
        """The sequence number just past our FIN."""
        return seq_add(self.iss, self.fin_off + 2)

    def _seq_to_send_off(self, seq: int) -> int:
        """Stream offset of a sequence number on the send side (data starts at ISS+1)."""
        base = self.sndbuf.start
        # seq_sub(seq, seq_add(ISS, 1 + base)) inlined: this runs several times a segment.
        return base + ((seq - self.iss - 1 - base + 0x80000000) & MASK) - 0x80000000

    def _send_off_to_seq(self, off: int) -> int:
        return (self.iss + 1 + off) & MASK

    def _output(self, now: float) -> None:
        """Send what the windows allow: presumed-lost segments first (RFC 6675 NextSeg),
        then new data, then our FIN (3.8.6, 3.7.4 Nagle, 3.8.6.2.1), while what is in
        flight stays under the congestion window and the pacer lets it go."""
        if self.state not in _OUTPUT_STATES or self.snd_una == self.iss:
            return   # nothing but the SYN may be in flight until it is acknowledged
        # Neither the send buffer nor the FIN's place changes while we send.
        end = self.sndbuf.end
        fin_off = self.fin_off
        sb = self.sb
        # Nothing to send -- no record to resend, no unsent data, no FIN waiting -- is the
        # usual case for a receiver and for most ACKs a sender gets: the loop below would
        # reach the same ``break`` after computing windows and the pipe for nothing. (The
        # pacer's bucket fills by the time since its last refill, so skipping it loses
        # nothing.)
        nxt = self._seq_to_send_off(self.snd_nxt)
        if not sb.lost and nxt >= end and nxt != fin_off:
            if sb.rate is not None and self.sndbuf.free():
                # The application is the limit (delivery.py) -- unless the send buffer
                # is full: then the writer is waiting for room, not out of data.
                sb.rate.check_app_limited(self._in_flight(), self.cc.cwnd, 0)
            return
        if not sb.out and self.config.restart_after_idle:
            # Sending restarts from an empty pipe (RFC 5681 4.1; BBR 4.3.4.4).
            self.cc.on_restart(now, now - self.last_sent, self.rto.rto)
        mss = self.snd_mss - self._sack_room()   # so that new data leaves room for SACK
        pacer = self.pacer
        if pacer is not None:
            pacer.refill(now, self.cc.pacing_rate(self.rto.srtt), mss)
        cwnd = self.cc.cwnd
        una = self._seq_to_send_off(self.snd_una)
        wnd_end = una + self.snd_wnd
        sent_new = False
        off = nxt   # SND.NXT's offset, worked out again after each send below
        while True:
            if pacer is not None and not pacer.ready():
                self._set_timer("t_pace", now + pacer.wait())
                break
            in_flight = self._in_flight()
            if sb.lost:
                rec = sb.next_lost()
                if rec is not None:
                    # Within the congestion window, and the peer's (its first segment may
                    # overhang a window too small for it, but not a closed one).
                    if in_flight >= cwnd or (rec.end > wnd_end
                                             and (rec.start != una or not self.snd_wnd)):
                        break
                    self._retransmit(rec, now)
                    off = self._seq_to_send_off(self.snd_nxt)   # it may take new data along
                    continue
            avail = end - off
            if avail <= 0:
                if sb.rate is not None and self.sndbuf.free():
                    sb.rate.check_app_limited(in_flight, cwnd, sb.lost)
                if off == fin_off:
                    self._send_new(off, 0, now)   # the FIN alone
                    sent_new = True
                break
            usable = wnd_end - off
            room = cwnd - in_flight
            n = min(mss, avail, usable, room)
            if n <= 0:
                if self.snd_wnd == 0 and self.snd_una == self.snd_nxt and self.t_persist is None:
                    self._set_timer("t_persist", now + self._persist_interval())
                break
            if n == mss and mss == self.snd_mss:
                # Whole segments with no SACK blocks to carry: as many as every window,
                # the pacer and the send buffer allow go out as one run (`_send_run`).
                # The segment that carries the FIN takes the general way below.
                k = min(avail, usable, room) // mss
                if fin_off is not None and off + k * mss >= fin_off:
                    k = (fin_off - off - 1) // mss
                if pacer is not None and pacer.rate is not None:
                    k = min(k, -int(-pacer.tokens // mss))
                if k > 1:
                    self._send_run(off, k, mss, now)
                    sent_new = True
                    off += k * mss
                    continue
            if n < mss and n < avail:
                if room < usable:
                    break   # the congestion window waits for a whole segment
                # The peer's window, not the data, is short. Sender SWS avoidance
                # (3.8.6.2.1): wait for a bigger window unless it is half the largest the
                # peer offered, or nothing is in flight to bring one.
                if n < self.max_snd_wnd // 2 and self.snd_una != self.snd_nxt:
                    break
            if n < mss and not self.fin_queued:
                # Nagle (3.7.4) in Minshall's form: one small segment in flight at a time,
                # unless no-delay; the tail of a write may follow full-sized segments out
                # (as FreeBSD and Linux let it).
                if not self.config.nodelay and self.small_end is not None \
                        and seq_gt(self.small_end, self.snd_una):
                    break
            self._send_new(off, n, now)
            sent_new = True
            off = self._seq_to_send_off(self.snd_nxt)   # past a FIN it carried, too
            if n < mss:
                self.small_end = self.snd_nxt
            if off >= end and off != fin_off and sb.rate is None:
                break   # all of it sent: another pass would find nothing (nor resend)
        if sent_new:
            self._arm_probe(now)

    def _send_new(self, off: int, n: int, now: float) -> None:
        """First transmission of ``n`` bytes from stream offset ``off`` (and the FIN, if it
        follows them): record it and move SND.NXT."""
        fin = self.fin_off is not None and off + n == self.fin_off
        end = off + n + (1 if fin else 0)
        self._send_range(off, end, now, retransmit=False)
        self.sb.add(off, end, now)
        self.bytes_sent += n
        seq = self._send_off_to_seq(off)
        if self.rtt_seq is None and not self.ts_enabled:
            self.rtt_seq = seq
            self.rtt_time = now
        self.snd_nxt = (seq + end - off) & MASK
        if self.t_rexmt is None:
            self._arm_rexmt(now)

    def _send_run(self, off: int, count: int, mss: int, now: float) -> None:
        """``count`` full-sized segments of new data from stream offset ``off``, each with
        the same effects as `_send_new` (none carries a FIN). What all of them share --
        the ACK field, the window, the options -- is worked out once, and the datagrams
        are built directly, as a TSO-capable NIC would cut one large send."""
        buf = self.sndbuf
        buf_end = buf.end
        remote = self.remote
        rcv_nxt = self.rcv_nxt
        window = self._window_field()
        opts = self._options(now, 0)
        # Every header is the same but for SEQ (and PSH on a last segment that empties the
        # buffer): two fixed pieces around it, and the payload joined in from the buffer
        # itself, so each datagram is made with one copy.
        before, after = header_template(self.local_port, self.remote_port, rcv_nxt, ACK,
                                        window, opts)
        emit = self.stack._emit_bytes
        add = self.sb.add
        join = b"".join
        data = buf.view()
        base = buf.start
        seq = self._send_off_to_seq(off)
        if self.rtt_seq is None and not self.ts_enabled:
            self.rtt_seq = seq
            self.rtt_time = now
        try:
            for _ in range(count):
                end = off + mss
                if end == buf_end:
                    emit(build_header(self.local_port, self.remote_port, seq, rcv_nxt,
                                      ACK | PSH, window, opts)
                         + data[off - base:end - base].tobytes(), remote)
                else:
                    emit(join((before, seq.to_bytes(4, "big"), after,
                               data[off - base:end - base])), remote)
                add(off, end, now)
                off = end
                seq = (seq + mss) & MASK
        finally:
            data.release()
        nbytes = count * mss
        self.bytes_sent += nbytes
        self.snd_nxt = seq
        self.segs_out += count
        self._carried_ack()
        self.last_sent = now
        if self.pacer is not None:
            self.pacer.spend(nbytes)
        if self.t_rexmt is None:
            self._arm_rexmt(now)

    def _retransmit(self, rec, now: float) -> None:
        """Send a recorded segment again (RFC 6675 NextSeg rule 1, RFC 5681 3.2, RFC 6298
        5.4). Contiguous lost segments after it are merged into it up to one SMSS, as a
        go-back-N after a timeout would send them."""
        sb = self.sb
        mss = self.snd_mss
        if rec.end - rec.start < mss and rec.flags & LOST:
            sb.coalesce(rec, mss)
            if rec is sb.last():
                self._extend_with_new_data(rec, mss)
        if self.undo_marker is not None:
            self.undo_retrans += 1
            if self.eifel is None and self.ts_enabled and self.undo_retrans == 1:
                self.eifel = (rec.end, self._ts_now(now))
        sb.retransmitted(rec, now)
        self.rtt_seq = None   # Karn: no RTT sample across a retransmission
        self._send_range(rec.start, rec.end, now, retransmit=True)

    def _extend_with_new_data(self, rec, mss: int) -> None:
        """A short last segment resent after a timeout or a refused probe takes unsent
        data along, up to one SMSS and the peer's window (go-back-N sends whole segments)."""
        fin_off = self.fin_off
        if fin_off is not None and rec.end > fin_off:
            return
        wnd_end = self._seq_to_send_off(self.snd_una) + self.snd_wnd
        extra = min(mss - (rec.end - rec.start), self.sndbuf.end - rec.end, wnd_end - rec.end)
        if extra <= 0:
            return
        if fin_off is not None and rec.end + extra == fin_off:
            extra += 1   # the FIN follows its data
        self.sb.extend(rec, extra)
        self.bytes_sent += extra - (1 if fin_off is not None and rec.end > fin_off else 0)
        self.snd_nxt = seq_add(self.snd_nxt, extra)

    def _send_range(self, start: int, end: int, now: float, retransmit: bool) -> None:
        """Emit the segment for stream offsets ``[start, end)``; ``end`` is one past
        ``fin_off`` when it carries our FIN."""
        fin_off = self.fin_off
        fin_here = fin_off is not None and end > fin_off
        data_end = fin_off if fin_here else end
        data = self.sndbuf.peek(start, data_end - start) if data_end > start else b""
        flags = ACK
        if fin_here:
            flags |= FIN
        if data and data_end == self.sndbuf.end:
            flags |= PSH
        seq = self._send_off_to_seq(start)
        header = build_header(self.local_port, self.remote_port, seq, self.rcv_nxt, flags,
                              self._window_field(), self._options(now, self.snd_mss - len(data)))
        self.stack._emit_bytes(header + data if data else header, self.remote)
        self.segs_out += 1
        self._carried_ack()
        self.last_sent = now
        if self.pacer is not None:
            self.pacer.spend(len(data) or 1)
        if retransmit:
            self.retransmits += 1
            self.bytes_retransmitted += len(data)
            self.stack._note("retransmit", self, seq=seq, length=len(data))

    def _send_ack(self, now: float) -> None:
        """An empty ACK: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>."""
        seq = self.snd_nxt
        seg = Segment(self.local_port, self.remote_port, seq, self.rcv_nxt, ACK,
                      self._window_field(), b"", self._options(now))
        self._emit(seg, now)

    def _challenge_ack(self, now: float) -> None:
        """RFC 5961 3.2/4.2/5.2 challenge ACK, rate-limited (section 7)."""
        if self.challenges.allow(now):
            self.stack.stats["challenge_acks"] += 1
            self.stack._note("challenge_ack", self, sent=True)
            self._send_ack(now)
        else:
            self.stack.stats["challenge_acks_suppressed"] += 1
            self.stack._note("challenge_ack", self, sent=False)

    def _emit(self, seg: Segment, now: float) -> None:
        """Hand a segment to the stack; every segment we send with ACK set carries RCV.NXT
        and our window, so it also serves as the ACK owed."""
        if seg.flags & ACK:
            self._carried_ack()
        self.segs_out += 1
        self.stack._emit_raw(seg, self.remote)

    def _carried_ack(self) -> None:
        """A segment with ACK set went out: it carried RCV.NXT and our window, so the ACK
        owed is sent."""
        self.last_ack_sent = self.rcv_nxt
        self.unacked_segments = 0
        self.t_delack = None

    def _options(self, now: float, room: int = 40):
        """The options of a segment we send. ``room``: bytes the segment has for SACK
        blocks (RFC 6691: options come out of the MSS, so a full data segment has none)."""
        if self.sack_permitted and self.sack_report and room >= _SACK_BLOCK_BYTES + 4:
            return self._sack_options(now, room)
        if self.ts_enabled:
            # Options are immutable, so the last timestamps-only set is reused while the
            # millisecond clock and TS.Recent stand still (most segments of a burst).
            ts_val = (int(now * 1000) + self.ts_offset) & MASK   # ts_clock(), inlined
            opts = self._ts_options
            if opts is None or opts.ts_val != ts_val or opts.ts_ecr != self.ts_recent:
                opts = self._ts_options = Options(ts_val=ts_val, ts_ecr=self.ts_recent)
            return opts
        return NO_OPTIONS

    def _sack_options(self, now: float, room: int) -> Options:
        """SACK blocks (RFC 2018 3-4): four fit beside no other option, three beside
        timestamps; fewer when data takes the room."""
        ts = self.ts_enabled
        limit = min(3 if ts else 4, (room - 4) // _SACK_BLOCK_BYTES)
        base = self.irs + 1
        blocks = tuple(((base + a) & MASK, (base + b) & MASK)
                       for a, b in self.sack_report.blocks(limit))
        if ts:
            return Options(sack=blocks, ts_val=self._ts_now(now), ts_ecr=self.ts_recent)
        return Options(sack=blocks)

    def _sack_room(self) -> int:
        """Bytes the SACK blocks of our next ACK will take (NOP, NOP, kind, length and
        eight per block), which data segments leave free; 0 when there are none."""
        report = self.sack_report
        if not self.sack_permitted or not report:
            return 0
        blocks = len(report.ranges()) + (report.dsack is not None)
        return 4 + _SACK_BLOCK_BYTES * min(blocks, 3 if self.ts_enabled else 4)

    def _ts_now(self, now: float) -> int:
        """TSval: a millisecond clock with a per-connection offset (RFC 7323 5.4)."""
        return ts_clock(now, self.ts_offset)

    def _ts_of(self, sent: float) -> int:
        """The TSval a segment sent at ``sent`` carried."""
        return ts_clock(sent, self.ts_offset)
