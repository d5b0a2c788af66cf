"""One TCP connection: the transmission control block and the RFC 9293 event processing.

Theory of operation
-------------------
A `Connection` is driven from outside by three kinds of input, each with the current time:

* ``segment_arrives(seg, now)``: RFC 9293 3.10.7, checked in the RFC's order (sequence
  number, RST, SYN, ACK, text, FIN), in `receiving`. SYN-SENT has its own path (3.10.7.3).
* application calls (``send``, ``read``, ``shutdown``, ``close``, ``abort``): 3.10.1-3.10.5.
* ``on_timer(now)``: retransmission, delayed ACK, persist, keep-alive, FIN-WAIT-2, RACK
  reordering, tail loss probe and pacing timers, whose deadlines are plain attributes
  (``t_rexmt`` ...). The owning `Stack` keeps the connection in its timing wheel at its
  earliest deadline; moving a deadline later (as every ACK does to the retransmission
  timer) is a field write, and the wheel catches up lazily.

It answers by handing segments to its `Stack` (``stack._emit``) and posting events. It never
reads a clock, touches a socket or imports asyncio.

Variables keep the RFC's names: ``snd_una`` is SND.UNA, ``rcv_nxt`` is RCV.NXT, and so on.
``snd_nxt`` is SND.NXT, the highest sequence number sent so far plus one; retransmissions
never move it.

Data is held in stream offsets (`buffers`): offset 0 is the first byte after the SYN.
The rules for RSTs live in `reset`, the acceptability and PAWS tests in `acceptance`,
TIME-WAIT in `timewait` (a connection entering it is replaced by a compact record).

This module holds the TCB (the fields, listed in `Connection.__slots__`), opening (3.10.1;
the peer's SYN and our SYN or SYN,ACK: `_take_syn`, `_send_syn`), the state transitions,
the application calls, the timers (``on_timer`` and what each expiry does) and the
endings (ESTABLISHED reached, TIME-WAIT, `_drop`). Each direction of data is a mixin this
class inherits, with methods only; its fields are the connection's.

The receive side -- SEGMENT ARRIVES (3.10.7) with header prediction, the ACK checks,
receiving text and FIN, delayed ACKs and the window we advertise -- is in `receiving`
(the `Receiving` mixin).

The send side -- ACK processing for the sender, loss detection and recovery, tail loss
probes, the output loop and segment building -- is in `sending` (the `Sending` mixin):
every first transmission is recorded in the `recovery.Scoreboard`, lost records are
resent before new data while what is in flight is under the congestion window, whose size
belongs to the controller (`congestion`); when data leaves is paced (`pacing`). The
receiver's SACK blocks come from `sack.SackReport`.
"""

from __future__ import annotations

import math

from ..config import Config
from ..wire import ACK, SYN, Options, Segment
from ..wire.seq import seq_add
from . import events as ev
from .buffers import Reassembly, ReceiveBuffer, SendBuffer
from .congestion import resolve as resolve_congestion
from .delivery import DeliveryRate
from .errors import ProtocolUsageError, timeout_error
from .pacing import Pacer
from .receiving import Receiving
from .recovery import SACKED, Rack, Scoreboard
from .reset import ChallengeAckLimiter, reset_for_abort
from .rto import RtoEstimator
from .sack import SackReport
from .sending import _OUTPUT_STATES, Sending
from .states import ALLOWED, SYNCHRONIZED, State

__all__ = ["Connection"]

S = State
_MSS_DEFAULT = 536  # RFC 9293 3.7.1: assumed when the peer sends no MSS option
_MIN_MSS = 64
# Tuples, not frozensets: ``in`` on a tuple compares members by identity first, while a
# set would call Enum.__hash__, a Python-level function, on every segment.
_CAN_SEND_DATA = (S.ESTABLISHED, S.CLOSE_WAIT)
_SYNCHRONIZED = tuple(SYNCHRONIZED)
_TIMERS = ("t_rexmt", "t_delack", "t_persist", "t_keep", "t_finwait2", "t_reorder",
           "t_probe", "t_pace")


class Connection(Receiving, Sending):
    """The state of one connection and the rules that move it (RFC 9293 3.3.1, 3.10)."""

    # A server may hold tens of thousands of these: slots instead of a per-instance dict
    # (about 2.4 KB less each). "__dict__" stays, empty, for attributes added later; a test
    # checks that a connection in use sets none, so a new field belongs in this list.
    __slots__ = (
        "stack", "config", "remote", "local_port", "remote_port", "key", "state",
        "listener", "error", "iss", "snd_una", "snd_nxt", "snd_wnd", "snd_wl1",
        "snd_wl2", "max_snd_wnd", "irs", "rcv_nxt", "rcv_adv", "rcv_off",
        "last_ack_sent", "rcv_mss", "snd_mss", "snd_scale", "rcv_scale",
        "offered_scale", "ts_enabled", "ts_recent", "ts_recent_age", "ts_offset",
        "_ts_options", "sack_permitted", "sndbuf", "rcvbuf", "reasm", "fin_queued",
        "small_end", "fin_off", "peer_fin_off", "eof", "read_closed", "passive",
        "t_rexmt", "t_delack", "t_persist", "t_keep", "t_finwait2", "t_reorder",
        "t_probe", "t_pace", "wheel_at", "rto", "rexmt_count", "persist_backoff",
        "probe_sent", "keep_probes", "keep_sent", "rtt_seq", "rtt_time",
        "syn_rexmitted", "cc", "pacer", "sb", "rack", "sack_report", "dupacks",
        "in_recovery", "recover", "tlp_end", "tlp_retrans", "undo_marker",
        "undo_retrans", "eifel", "round_trips", "round_end", "round_start",
        "round_delivered", "delivered", "delivery_rate", "unacked_segments",
        "_ack_owed_now", "challenges", "last_recv", "last_sent", "segs_in", "segs_out",
        "bytes_sent", "bytes_acked", "bytes_received", "retransmits", "bytes_retransmitted",
        "dup_segments_in", "zero_window_probes", "loss_probes", "spurious_retransmits",
        "dsacks_in", "paws_rejected", "send_blocked",
        "__dict__", "__weakref__",
    )

    def __init__(self, stack, config: Config, remote, local_port: int, remote_port: int,
                 mss: int, now: float) -> None:
        self.stack = stack
        self.config = config
        self.remote = remote
        self.local_port = local_port
        self.remote_port = remote_port
        self.key = (remote, local_port, remote_port)
        self.state = S.CLOSED
        self.listener = None          # set for passive opens until accepted
        self.error: BaseException | None = None

        # Send sequence space (RFC 9293 3.3.1)
        self.iss = 0
        self.snd_una = 0
        self.snd_nxt = 0
        self.snd_wnd = 0
        self.snd_wl1 = 0
        self.snd_wl2 = 0
        self.max_snd_wnd = 0
        # Receive sequence space
        self.irs = 0
        self.rcv_nxt = 0
        self.rcv_adv = 0              # right edge of the window we last advertised
        self.rcv_off = 0              # stream offset of RCV.NXT
        self.last_ack_sent = 0
        # Negotiated options
        self.rcv_mss = mss            # what we advertise
        self.snd_mss = min(mss, _MSS_DEFAULT)
        self.snd_scale = 0            # applied to windows the peer sends (RFC 7323 2.3)
        self.rcv_scale = 0            # applied to windows we send
        self.offered_scale = config.rcv_wscale() if config.window_scaling else None
        self.ts_enabled = False
        self.ts_recent = 0
        self.ts_recent_age = now      # when TS.Recent was last set (RFC 7323 5.5)
        self.ts_offset = 0
        self._ts_options: Options | None = None   # reused by `_options`
        self.sack_permitted = False
        # Buffers
        self.sndbuf = SendBuffer(config.send_buffer)
        self.rcvbuf = ReceiveBuffer(config.recv_buffer)
        self.reasm = Reassembly(config.max_out_of_order)
        self.fin_queued = False       # the application asked to send a FIN
        self.send_blocked = False     # a send() found the buffer full: SendSpace is owed
        self.small_end: int | None = None   # end of the last small segment sent (Nagle)
        self.fin_off: int | None = None   # stream offset the FIN occupies once queued
        self.peer_fin_off: int | None = None
        self.eof = False              # the peer's FIN has been received in order
        self.read_closed = False      # close() was called: no more reads by the application
        self.passive = False
        # Timers (absolute deadlines, None when stopped) and their bookkeeping
        self.t_rexmt: float | None = None
        self.t_delack: float | None = None
        self.t_persist: float | None = None
        self.t_keep: float | None = None
        self.t_finwait2: float | None = None
        self.t_reorder: float | None = None   # RACK reordering window (RFC 8985 6.2 step 6)
        self.t_probe: float | None = None     # tail loss probe, PTO (RFC 8985 7.2)
        self.t_pace: float | None = None      # the pacer lets the next segment go
        self.wheel_at: float | None = None
        self.rto = RtoEstimator(config.rto_initial, config.rto_min, config.rto_max)
        self.rexmt_count = 0
        self.persist_backoff = 0
        self.probe_sent = now
        self.keep_probes = 0
        self.keep_sent = now
        self.rtt_seq: int | None = None
        self.rtt_time = 0.0
        self.syn_rexmitted = False
        # Congestion control (made once the SMSS is known) and loss recovery
        self.cc = None
        self.pacer: Pacer | None = None
        self.sb = Scoreboard()
        self.rack = Rack()
        self.sack_report = SackReport()
        self.dupacks = 0
        self.in_recovery = False      # fast recovery (RFC 6675, RFC 6582)
        self.recover = 0              # RecoveryPoint: no new episode until SND.UNA reaches it
        self.tlp_end: int | None = None   # TLP.end_seq (a stream offset) of the probe out
        self.tlp_retrans = False
        self.undo_marker: int | None = None   # where the episode began, for DSACK undo
        self.undo_retrans = 0         # its retransmissions not yet reported as duplicates
        self.eifel: tuple[int, int] | None = None  # (end, TSval) of its first retransmission
        # Round trips and delivery rate
        self.round_trips = 0
        self.round_end = 0
        self.round_start = now
        self.round_delivered = 0
        self.delivered = 0
        self.delivery_rate = 0.0
        # Delayed ACK (RFC 9293 3.8.6.3)
        self.unacked_segments = 0
        self._ack_owed_now = False
        self.challenges = ChallengeAckLimiter(config.challenge_ack_limit,
                                              config.challenge_ack_interval)
        self.last_recv = now
        self.last_sent = -math.inf   # when data last went out (restart from idle): never
        # Statistics
        self.segs_in = 0
        self.segs_out = 0
        self.bytes_sent = 0
        self.bytes_acked = 0
        self.bytes_received = 0
        self.retransmits = 0
        self.bytes_retransmitted = 0
        self.dup_segments_in = 0
        self.zero_window_probes = 0
        self.loss_probes = 0
        self.spurious_retransmits = 0     # episodes undone (RFC 3522 / DSACK)
        self.dsacks_in = 0
        self.paws_rejected = 0

    def __repr__(self) -> str:
        return (f"<Connection {self.local_port}->{self.remote!r}:{self.remote_port} "
                f"{self.state}>")

    @property
    def cwnd(self) -> int:
        """The congestion window (RFC 5681), bytes; the initial window before the SYN."""
        cc = self.cc
        return cc.cwnd if cc is not None else self.config.initial_window * self.snd_mss

    @property
    def ssthresh(self) -> int:
        cc = self.cc
        return cc.ssthresh if cc is not None else 1 << 30

    # ------------------------------------------------------------------ opening
    def open_active(self, iss: int, ts_offset: int, now: float) -> None:
        """OPEN call, active (3.10.1): send a SYN and enter SYN-SENT."""
        self._init_send(iss, ts_offset)
        self._set_state(S.SYN_SENT)
        self._send_syn(now)

    def open_passive(self, seg: Segment, iss: int, ts_offset: int, now: float) -> None:
        """A SYN reached a listener (3.10.7.2): answer SYN,ACK and enter SYN-RECEIVED."""
        self.passive = True
        self.state = S.LISTEN   # a new TCB forked from the listening one (3.10.7.2)
        self._init_send(iss, ts_offset)
        self._take_syn(seg)
        self._set_state(S.SYN_RECEIVED)
        self._send_syn(now)

    def open_from_cookie(self, syn: Segment, iss: int, ts_offset: int, now: float) -> None:
        """A valid SYN cookie returned (`syncookies`): enter SYN-RECEIVED as if ``syn`` had
        been answered with the SYN,ACK carrying ISS ``iss``, sending nothing; the caller
        then processes the returning ACK."""
        self.passive = True
        self.state = S.LISTEN
        self._init_send(iss, ts_offset)
        self._take_syn(syn)
        self._set_state(S.SYN_RECEIVED)
        self.snd_nxt = seq_add(iss, 1)
        self.rcv_adv = seq_add(self.rcv_nxt, min(self.rcvbuf.free(), 65535))
        self.last_ack_sent = self.rcv_nxt

    def _init_send(self, iss: int, ts_offset: int) -> None:
        self.iss = self.snd_una = self.snd_nxt = iss
        self.recover = iss   # RFC 6582 3.2 step 1: not 0, which may lie "ahead" of ISS
        self.ts_offset = ts_offset

    def _take_syn(self, seg: Segment) -> None:
        """Record the peer's SYN: IRS, RCV.NXT and its options (RFC 9293 3.10.7.2-3)."""
        self.irs = seg.seq
        self.rcv_nxt = seq_add(seg.seq, 1)
        self.rcv_adv = self.rcv_nxt
        opts = seg.options
        self.snd_mss = max(_MIN_MSS, min(self.rcv_mss, opts.mss if opts.mss else _MSS_DEFAULT))
        cfg = self.config
        if cfg.recv_buffer_whole_segments:
            self.rcvbuf.limit = min(-(-self.rcvbuf.limit // self.snd_mss) * self.snd_mss,
                                    65535 << 14)
        if opts.wscale is not None and self.offered_scale is not None:
            self.snd_scale = min(opts.wscale, 14)   # RFC 7323 2.3: larger shifts mean 14
            self.rcv_scale = self.offered_scale
        else:
            # RFC 7323 2.2: no scaling, and our SYN,ACK (simultaneous open included) may
            # carry the option only if the peer's SYN did.
            self.offered_scale = None
            self.snd_scale = self.rcv_scale = 0
        if seg.payload:
            # Text in a SYN is queued until ESTABLISHED (3.10.7.2, 3.10.7.3).
            self.reasm.add(0, bytes(seg.payload[:self.rcvbuf.free()]))
        if opts.ts_val is not None and cfg.timestamps:
            self.ts_enabled = True
            self.ts_recent = opts.ts_val
            self.ts_recent_age = self.last_recv
            # RFC 6691: the MSS counts no options, so the 12 bytes of timestamps on every
            # segment come out of the data.
            self.snd_mss = max(_MIN_MSS, self.snd_mss - 12)
        else:
            self.ts_enabled = False
        self.sack_permitted = bool(opts.sack_permitted and cfg.sack)
        self._new_congestion_control()
        # The window in a SYN is never scaled (RFC 7323 2.2).
        self.snd_wnd = seg.window
        self.max_snd_wnd = max(self.max_snd_wnd, seg.window)
        self.snd_wl1 = seg.seq
        self.snd_wl2 = seg.ack

    def _new_congestion_control(self) -> None:
        """The controller (RFC 6928 initial window) and the pacer, now that SMSS is known."""
        cfg = self.config
        self.cc = resolve_congestion(cfg.congestion)(self.snd_mss, cfg.initial_window,
                                                     paced=cfg.pacing)
        # Delivery-rate sampling only for a controller that uses it (BBR).
        self.sb.rate = DeliveryRate() if self.cc.wants_rate_samples else None
        self.pacer = Pacer(cfg.initial_window * self.snd_mss) if cfg.pacing else None

    def _send_syn(self, now: float) -> None:
        """Send (or resend) our SYN or SYN,ACK, with its options, and arm its timer."""
        cfg = self.config
        window = min(self.rcvbuf.free(), 65535)
        if self.state is S.SYN_SENT:
            flags = SYN
            opts = Options(
                mss=self.rcv_mss,
                wscale=self.offered_scale,
                sack_permitted=cfg.sack,
                ts_val=self._ts_now(now) if cfg.timestamps else None,
                ts_ecr=0 if cfg.timestamps else None,
            )
            ack = 0
        else:
            flags = SYN | ACK
            opts = Options(
                mss=self.rcv_mss,
                wscale=self.rcv_scale if self.offered_scale is not None else None,
                sack_permitted=self.sack_permitted,
                ts_val=self._ts_now(now) if self.ts_enabled else None,
                ts_ecr=self.ts_recent if self.ts_enabled else None,
            )
            ack = self.rcv_nxt
            self.rcv_adv = seq_add(self.rcv_nxt, window)
            self.last_ack_sent = self.rcv_nxt
        self._emit(Segment(self.local_port, self.remote_port, self.iss, ack, flags, window,
                           b"", opts), now)
        self.snd_nxt = seq_add(self.iss, 1)
        if self.t_rexmt is None:
            self._arm_rexmt(now)
        if self.rtt_seq is None and not self.syn_rexmitted:
            self.rtt_seq = self.iss
            self.rtt_time = now

    # ------------------------------------------------------------------ state
    def _set_state(self, new: State) -> None:
        old = self.state
        if (old, new) not in ALLOWED:
            raise AssertionError(f"illegal transition {old} -> {new}")
        self.state = new
        self.stack._state_changed(self, old, new)

    # ------------------------------------------------------------------ application calls
    def send(self, data, now: float) -> int:
        """SEND call (3.10.2): queue as much of ``data`` as the send buffer takes."""
        if self.error is not None:
            raise self.error
        if self.fin_queued or self.state not in (S.SYN_SENT, S.SYN_RECEIVED, S.ESTABLISHED,
                                                 S.CLOSE_WAIT):
            raise ProtocolUsageError(32, "connection closing")  # EPIPE
        n = self.sndbuf.append(data)
        if n < len(data):
            self.send_blocked = True
        if n and self.state in _CAN_SEND_DATA:
            self._output(now)
        return n

    def read(self, n: int = -1, now: float = 0.0) -> bytes:
        """RECEIVE call (3.10.3): take up to ``n`` bytes of in-order data.

        Freeing buffer space may open the window; a window update is sent when it grows by
        at least min(buffer/2, MSS) (receiver SWS avoidance, 3.8.6.2.2).
        """
        data = self.rcvbuf.read(n)
        if data and self.state in _SYNCHRONIZED and self.state is not S.TIME_WAIT:
            if self._window_update_due():
                self._send_ack(now)
        return data

    def readable(self) -> int:
        return len(self.rcvbuf)

    def shutdown(self, now: float) -> None:
        """Half close: send a FIN once the queued data is out (the CLOSE of 3.10.4, reading
        still allowed)."""
        if self.error is not None:
            raise self.error
        st = self.state
        if st is S.SYN_SENT:
            self._drop(None, send_rst=False)
            return
        if self.fin_queued:
            return
        if st is S.SYN_RECEIVED:
            # 3.10.4: queued until ESTABLISHED (`_established`); our SYN is not yet
            # acknowledged, so nothing may follow it.
            self._queue_fin()
            return
        if st is S.ESTABLISHED:
            self._queue_fin()
            self._set_state(S.FIN_WAIT_1)
        elif st is S.CLOSE_WAIT:
            self._queue_fin()
            self._set_state(S.LAST_ACK)
        else:
            return
        self._output(now)

    def close(self, now: float) -> None:
        """CLOSE (3.10.4): no more sending or reading by the application.

        Unread data, or data arriving later, is answered with a RST (RFC 1122 4.2.2.13) so the
        peer learns it was lost.
        """
        if self.state is S.CLOSED:
            return
        self.read_closed = True
        if len(self.rcvbuf) and self.state in _SYNCHRONIZED and self.state is not S.TIME_WAIT:
            self.abort(now)
            return
        if self.state in (S.SYN_SENT, S.SYN_RECEIVED, S.ESTABLISHED, S.CLOSE_WAIT):
            self.shutdown(now)
        if self.state is S.FIN_WAIT_2 and self.t_finwait2 is None:
            self._set_timer_finwait2(now)

    def abort(self, now: float) -> None:
        """ABORT (3.10.5): send ``<SEQ=SND.NXT><CTL=RST>`` where the peer knows us."""
        st = self.state
        if st is S.CLOSED:
            return
        send_rst = st in (S.SYN_RECEIVED, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2,
                          S.CLOSE_WAIT)
        self._drop(None, send_rst=send_rst, now=now)

    # ------------------------------------------------------------------ timers
    def _set_timer(self, name: str, deadline: float) -> None:
        setattr(self, name, deadline)
        if self.wheel_at is None or deadline < self.wheel_at:
            self.wheel_at = deadline
            self.stack._wheel.schedule(self, deadline)

    def _arm_rexmt(self, now: float) -> None:
        deadline = now + self.rto.rto
        self.t_rexmt = deadline
        if self.wheel_at is None or deadline < self.wheel_at:
            self.wheel_at = deadline
            self.stack._wheel.schedule(self, deadline)

    def _set_timer_finwait2(self, now: float) -> None:
        self._set_timer("t_finwait2", now + self.config.fin_wait_2_timeout)

    def _persist_interval(self) -> float:
        base = max(self.rto.rto, self.config.rto_min)
        return min(base * (1 << min(self.persist_backoff, 16)), self.config.rto_max)

    def next_deadline(self) -> float | None:
        best = None
        for t in (self.t_rexmt, self.t_delack, self.t_persist, self.t_keep, self.t_finwait2,
                  self.t_reorder, self.t_probe, self.t_pace):
            if t is not None and (best is None or t < best):
                best = t
        return best

    def _stop_timers(self) -> None:
        for name in _TIMERS:
            setattr(self, name, None)

    def on_timer(self, now: float) -> None:
        """The wheel reached this connection: run every timer that is due."""
        self.wheel_at = None
        if self.t_delack is not None and self.t_delack <= now:
            self.t_delack = None
            if self.state in _SYNCHRONIZED:
                self._send_ack(now)
        if self.t_rexmt is not None and self.t_rexmt <= now:
            self.t_rexmt = None
            self.t_probe = None
            self._rexmt_expired(now)
        if self.t_reorder is not None and self.t_reorder <= now:
            self.t_reorder = None
            self._reorder_expired(now)
        if self.t_probe is not None and self.t_probe <= now:
            self.t_probe = None
            self._probe_expired(now)
        if self.t_pace is not None and self.t_pace <= now:
            self.t_pace = None
            self._output(now)
        if self.t_persist is not None and self.t_persist <= now and self.state is not S.CLOSED:
            self.t_persist = None
            self._persist_expired(now)
        if self.t_finwait2 is not None and self.t_finwait2 <= now:
            self.t_finwait2 = None
            if self.state is S.FIN_WAIT_2:
                self._drop(None, send_rst=False)
        if self.t_keep is not None and self.t_keep <= now:
            self.t_keep = None
            self._keepalive_expired(now)
        if self.state is not S.CLOSED:
            deadline = self.next_deadline()
            if deadline is not None:
                self.wheel_at = deadline
                self.stack._wheel.schedule(self, deadline)

    def _keepalive_expired(self, now: float) -> None:
        """Keep-alive (RFC 9293 3.8.4, RFC 1122 4.2.3.6): after ``keepalive_idle`` seconds
        with nothing received, probe with <SEQ=SND.UNA-1><ACK=RCV.NXT>, which any live peer
        must answer with an ACK; ``keepalive_probes`` unanswered probes end the connection."""
        cfg = self.config
        if self.state not in (S.ESTABLISHED, S.CLOSE_WAIT, S.FIN_WAIT_1, S.FIN_WAIT_2):
            return
        if self.keep_probes and self.last_recv >= self.keep_sent:
            self.keep_probes = 0            # the last probe (or anything else) was answered
        if not self.keep_probes and now - self.last_recv < cfg.keepalive_idle:
            self._set_timer("t_keep", self.last_recv + cfg.keepalive_idle)
            return
        if self.keep_probes >= cfg.keepalive_probes:
            self._drop(timeout_error(), send_rst=True, now=now)
            return
        self._emit(Segment(self.local_port, self.remote_port, seq_add(self.snd_una, -1),
                           self.rcv_nxt, ACK, self._window_field(), b"", self._options(now)),
                   now)
        self.keep_probes += 1
        self.keep_sent = now
        self._set_timer("t_keep", now + cfg.keepalive_interval)

    def _rexmt_expired(self, now: float) -> None:
        """RFC 6298 5.4-5.6 and RFC 5681 3.1 (loss window) on a retransmission timeout."""
        st = self.state
        if st in (S.SYN_SENT, S.SYN_RECEIVED) or self.snd_una == self.iss:
            self.rexmt_count += 1
            if self.rexmt_count > self.config.syn_retries:
                if st is S.SYN_RECEIVED and self.passive:
                    self.stack._syn_received_aborted(self)
                    self._drop(None, send_rst=False)
                else:
                    self._drop(timeout_error(), send_rst=False)
                return
            self.rto.expired()
            self.stack._note("rto_expired", self, rto=self.rto.rto, backoff=self.rto.backoff,
                             retries=self.rexmt_count, syn=True)
            self.syn_rexmitted = True
            self.rtt_seq = None
            self._send_syn(now)
            self._arm_rexmt(now)
            return
        sb = self.sb
        first = sb.first()
        if first is None:
            return
        self.rexmt_count += 1
        if self.rexmt_count > self.config.data_retries:
            self._drop(timeout_error(), send_rst=True, now=now)
            return
        if first.flags & SACKED:
            sb.clear_sacks()   # the peer dropped data it had SACKed (RFC 2018 8)
        self.cc.on_rto(now, self._flight(), self.rexmt_count == 1)
        if self.rexmt_count == 1:
            self._start_episode()
        self.in_recovery = False
        self.recover = self.snd_nxt
        self.dupacks = 0
        self.rtt_seq = None
        self.tlp_end = None
        self.t_reorder = None
        sb.mark_all_lost()
        self.rto.expired()
        self.stack._note("rto_expired", self, rto=self.rto.rto, backoff=self.rto.backoff,
                         retries=self.rexmt_count, syn=False)
        rec = sb.next_lost()
        if rec is not None:
            self._retransmit(rec, now)   # RFC 6298 5.4: the earliest segment, at once
        self._arm_rexmt(now)

    def _reorder_expired(self, now: float) -> None:
        """RFC 8985 6.2 step 6: the reordering window of a suspect segment ran out."""
        if self.state not in _OUTPUT_STATES or self.cc is None:
            return
        self._rack_detect(now)
        if not self.in_recovery:
            self._enter_recovery_if_lost(now)
        self._output(now)

    def _persist_expired(self, now: float) -> None:
        """Zero-window probe (3.8.6.1): one byte past the window, backing off each time."""
        if self.snd_wnd != 0 or self.state not in _OUTPUT_STATES:
            self.persist_backoff = 0
            return
        if self.persist_backoff > self.config.data_retries and self.last_recv < self.probe_sent:
            self._drop(timeout_error(), send_rst=True, now=now)   # probes went unanswered
            return
        una = self._seq_to_send_off(self.snd_una)
        if self.snd_una != self.snd_nxt:
            self._send_range(una, una + 1, now, retransmit=True)   # the same probe byte
        elif una < self.sndbuf.end:
            self._send_new(una, 1, now)
        self.t_rexmt = None   # the persist timer, not the RTO, paces the probes
        self.rtt_seq = None   # its ACK waits for the window, not the path (RFC 6298 3)
        self.probe_sent = now
        self.zero_window_probes += 1
        self.stack._note("zero_window_probe", self, backoff=self.persist_backoff)
        self.persist_backoff += 1
        self._set_timer("t_persist", now + self._persist_interval())

    # ------------------------------------------------------------------ endings
    def _established(self, now: float) -> None:
        self._set_state(S.ESTABLISHED)
        if self.config.keepalive:
            self._set_timer("t_keep", now + self.config.keepalive_idle)
        if self.syn_rexmitted:
            self.rto.reset_after_syn_loss()
        self.rexmt_count = 0
        self.t_rexmt = None
        if self.reasm.held:
            self._deliver_syn_text(now)
        if self.fin_queued:
            self._set_state(S.FIN_WAIT_1)   # the CLOSE queued in SYN-RECEIVED (3.10.4)

    def _deliver_syn_text(self, now: float) -> None:
        """Hand the application the text that came with the peer's SYN (3.10.7.2-3)."""
        delivered = 0
        for piece in self.reasm.pop_ready(self.rcv_off):
            self.rcvbuf.append(piece)
            self.rcv_off += len(piece)
            delivered += len(piece)
        if delivered:
            self.rcv_nxt = seq_add(self.rcv_nxt, delivered)
            self.bytes_received += delivered
            self.stack._post(ev.DataReceived(self))
            self._delayed_ack(delivered, now)

    def _enter_time_wait(self, now: float) -> None:
        """Stop every timer; the stack swaps us for a TIME-WAIT record (3.6.1)."""
        self._stop_timers()
        self._set_state(S.TIME_WAIT)
        self.stack._enter_time_wait(self, now)
        self.stack._post(ev.ConnectionClosed(self, None))

    def _drop(self, error: BaseException | None, send_rst: bool, now: float = 0.0) -> None:
        """Delete the TCB (3.10.7.4 "enter CLOSED, delete the TCB"), optionally sending
        ``<SEQ=SND.NXT><CTL=RST>`` first, and tell the application why."""
        if self.state is S.CLOSED:
            return
        if send_rst:
            self.stack._emit_raw(reset_for_abort(self.local_port, self.remote_port,
                                                 self.snd_nxt), self.remote)
            self.stack.stats["rst_sent"] += 1
            self.stack._note("rst_sent", self, rule=_abort_rule(error, self.read_closed))
        if error is not None:
            self.error = error
            self.rcvbuf.clear()   # "all segment queues should be flushed" (3.10.7.4)
        self._stop_timers()
        self.reasm.clear()
        embryonic = self.state is S.SYN_RECEIVED and self.passive
        # Entering TIME-WAIT already told the application (an ABORT there only deletes).
        told = self.state is S.TIME_WAIT
        self._set_state(S.CLOSED)
        self.stack._remove(self)
        if not embryonic and not told:
            self.stack._post(ev.ConnectionClosed(self, error))


def _abort_rule(error: BaseException | None, read_closed: bool) -> str:
    """Why `Connection._drop` sends a RST, for the observer (see `reset`)."""
    if isinstance(error, TimeoutError):
        return "retries exhausted (RFC 9293 3.8.3)"
    if isinstance(error, ConnectionResetError):
        return "SYN in a synchronized state (RFC 793, rfc5961 off)"
    if read_closed:
        return "data after close (RFC 1122 4.2.2.13)"
    return "user abort (RFC 9293 3.10.5)"
