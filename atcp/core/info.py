"""A snapshot of one connection's state and counters, like Linux's ``TCP_INFO``.

`tcp_info(conn)` reads the `Connection` and copies what an operator looks at first into a
frozen `TcpInfo`; the asyncio transport returns it from ``get_extra_info("tcp_info")``
(``atcp -v`` prints it when a connection ends). Times are seconds, sizes and windows bytes
(windows already scaled), counters count since the connection was created. A snapshot
does not change; ask again for fresh numbers.

The fields, with the ``struct tcp_info`` member of Linux each corresponds to (where Linux
counts in segments or microseconds, atcp says bytes or seconds):

==================== ====================== ===============================================
field                Linux                  meaning
==================== ====================== ===============================================
state                tcpi_state             RFC 9293 state name ("ESTABLISHED", ...); a
                                            connection out of TIME-WAIT reads "CLOSED"
srtt, rttvar         tcpi_rtt, tcpi_rttvar  smoothed RTT and its variation (RFC 6298);
                                            None before the first sample
rto                  tcpi_rto               retransmission timeout now, backoff included
snd_mss, rcv_mss     tcpi_snd_mss, rcv_mss  largest payload we send / we offered to receive
cwnd, ssthresh       tcpi_snd_cwnd, ...     congestion window and slow-start threshold, in
                                            bytes (ssthresh 2**30 until the first loss)
congestion           (TCP_CONGESTION)       the congestion controller's name
congestion_state     (INET_DIAG_BBRINFO)    what the controller says of itself, a dict:
                                            BBR gives its state, btl_bw (bytes/s),
                                            rt_prop (s), pacing_gain and cwnd_gain;
                                            CUBIC and NewReno give nothing ({})
pacing_rate          tcpi_pacing_rate       bytes/s the pacer allows; None: not pacing
delivery_rate        tcpi_delivery_rate     bytes/s delivered over the last round trip
min_rtt              tcpi_min_rtt           smallest RTT seen (RACK, RFC 8985)
in_recovery          tcpi_ca_state          True during fast recovery (RFC 6675, 6582)
snd_wnd              tcpi_snd_wnd           the peer's advertised window
rcv_wnd              tcpi_rcv_wnd           what is left of the window we advertised
unacked              tcpi_unacked           SND.NXT - SND.UNA: sent, not yet acknowledged
send_queued          (SIOCOUTQ)             bytes in the send buffer, unacknowledged or
                                            not yet sent
recv_queued          (SIOCINQ)              bytes received in order and not yet read
bytes_sent           tcpi_bytes_sent        data sent for the first time
bytes_acked          tcpi_bytes_acked       data the peer acknowledged
bytes_received       tcpi_bytes_received    data received in order
bytes_retransmitted  tcpi_bytes_retrans     data sent again
segs_in, segs_out    tcpi_segs_in, _out     segments received and sent, all kinds
retransmits          tcpi_total_retrans     segments sent again
lost                 tcpi_lost (a total)    segments presumed lost over the connection's
                                            life (Linux: those lost right now)
sacked               tcpi_sacked            bytes the peer holds above a hole, now
reordering           tcpi_reordering        largest reordering seen, in segments
loss_probes          (TCPLossProbes)        tail loss probes sent (RFC 8985 7)
spurious_retransmits (TCP*Undo counters)    loss episodes undone as spurious
dsacks_received      tcpi_dsack_dups        D-SACK blocks from the peer (RFC 2883)
paws_rejected        (PAWSEstab)            segments dropped by PAWS (RFC 7323 5)
zero_window_probes   tcpi_probes (a total)  persist-timer probes (RFC 9293 3.8.6.1)
dup_segments_in      -                      unacceptable segments answered with an ACK
backoff              tcpi_backoff           RTO doublings since the last RTT sample
snd_wscale,          tcpi_snd_wscale,       window scale shifts in use (RFC 7323 2):
rcv_wscale           tcpi_rcv_wscale        applied to the peer's windows / to ours
timestamps, sack     tcpi_options           whether timestamps (RFC 7323) and SACK
                                            (RFC 2018) were negotiated
io_path              -                      how the asyncio endpoint moves datagrams:
                                            "gso+gro", "gso", "gro" or "per-datagram"
                                            (`atcp.aio.udp_batch`); None without one
==================== ====================== ===============================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..wire.seq import seq_sub

__all__ = ["TcpInfo", "tcp_info"]


@dataclass(frozen=True, slots=True)
class TcpInfo:
    state: str               # RFC 9293 name, e.g. "ESTABLISHED", "TIME-WAIT"
    srtt: float | None       # smoothed RTT (RFC 6298), None before the first sample
    rttvar: float | None
    rto: float               # current retransmission timeout, backoff included
    snd_mss: int
    rcv_mss: int
    cwnd: int                # congestion window (RFC 5681)
    ssthresh: int
    congestion: str          # the congestion controller's name, e.g. "cubic"
    pacing_rate: float | None  # bytes/s the pacer allows, None when not pacing
    delivery_rate: float     # bytes/s delivered over the last round trip
    min_rtt: float | None    # smallest RTT seen (RACK, RFC 8985)
    in_recovery: bool        # in fast recovery (RFC 6675, RFC 6582)
    snd_wnd: int             # the peer's advertised window
    rcv_wnd: int             # what is left of the window we advertised
    unacked: int             # SND.NXT - SND.UNA
    send_queued: int         # bytes in the send buffer (unacknowledged or unsent)
    recv_queued: int         # bytes received in order and not yet read
    bytes_sent: int          # new data, first transmissions
    bytes_acked: int
    bytes_received: int      # delivered in order
    bytes_retransmitted: int
    segs_in: int
    segs_out: int
    retransmits: int         # segments sent again
    lost: int                # segments presumed lost, over the connection's life
    sacked: int              # bytes the peer holds above a hole, now (RFC 2018)
    reordering: int          # the largest reordering seen, in segments (3 until seen)
    loss_probes: int         # tail loss probes sent (RFC 8985 7)
    spurious_retransmits: int  # loss episodes undone as spurious (RFC 3522, RFC 2883)
    dsacks_received: int     # D-SACK blocks from the peer (RFC 2883)
    paws_rejected: int       # segments dropped as old by their timestamp (RFC 7323 5)
    zero_window_probes: int  # persist-timer probes (RFC 9293 3.8.6.1)
    dup_segments_in: int     # unacceptable segments answered with an ACK
    backoff: int = 0         # RTO doublings since the last RTT sample (RFC 6298 5.5)
    snd_wscale: int = 0      # shift applied to the peer's windows (RFC 7323 2.3)
    rcv_wscale: int = 0      # shift applied to the windows we send
    timestamps: bool = False  # timestamps negotiated (RFC 7323)
    sack: bool = False       # SACK negotiated (RFC 2018)
    io_path: str | None = None  # how the endpoint moves datagrams; None from the core alone
    congestion_state: dict = field(default_factory=dict)  # the controller's own state

    def as_dict(self) -> dict:
        return asdict(self)


def tcp_info(conn, io_path: str | None = None) -> TcpInfo:
    """The current `TcpInfo` of ``conn`` (a `Connection`); ``io_path`` is what the I/O
    edge carrying it reports (the core knows no sockets)."""
    rto = conn.rto
    cc = conn.cc
    pacer = conn.pacer
    return TcpInfo(
        state=str(conn.stack.state_of(conn)),
        srtt=rto.srtt,
        rttvar=rto.rttvar,
        rto=rto.rto,
        snd_mss=conn.snd_mss,
        rcv_mss=conn.rcv_mss,
        cwnd=conn.cwnd,
        ssthresh=conn.ssthresh,
        congestion=cc.name if cc is not None else _controller_name(conn.config),
        pacing_rate=pacer.rate if pacer is not None else None,
        delivery_rate=conn.delivery_rate,
        min_rtt=conn.rack.min_rtt,
        in_recovery=conn.in_recovery,
        snd_wnd=conn.snd_wnd,
        rcv_wnd=conn._rcv_wnd(),
        unacked=seq_sub(conn.snd_nxt, conn.snd_una),
        send_queued=len(conn.sndbuf),
        recv_queued=len(conn.rcvbuf),
        bytes_sent=conn.bytes_sent,
        bytes_acked=conn.bytes_acked,
        bytes_received=conn.bytes_received,
        bytes_retransmitted=conn.bytes_retransmitted,
        segs_in=conn.segs_in,
        segs_out=conn.segs_out,
        retransmits=conn.retransmits,
        lost=conn.sb.lost_marked,
        sacked=conn.sb.sacked,
        reordering=conn.rack.reordering,
        loss_probes=conn.loss_probes,
        spurious_retransmits=conn.spurious_retransmits,
        dsacks_received=conn.dsacks_in,
        paws_rejected=conn.paws_rejected,
        zero_window_probes=conn.zero_window_probes,
        dup_segments_in=conn.dup_segments_in,
        backoff=rto.backoff,
        snd_wscale=conn.snd_scale,
        rcv_wscale=conn.rcv_scale,
        timestamps=conn.ts_enabled,
        sack=conn.sack_permitted,
        io_path=io_path,
        congestion_state=cc.info() if cc is not None else {},
    )


def _controller_name(config) -> str:
    spec = config.congestion
    return spec if isinstance(spec, str) else getattr(spec, "name", spec.__name__)
