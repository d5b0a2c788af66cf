"""A snapshot of one connection's state and counters, like Linux's ``TCP_INFO``.

`tcp_info(conn)` reads the `Connection` and copies what an operator looks at first into a
frozen `TcpInfo`; the asyncio transport returns it from ``get_extra_info("tcp_info")``.
Times are seconds, sizes and windows bytes (windows already scaled).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

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

    def as_dict(self) -> dict:
        return asdict(self)


def tcp_info(conn) -> TcpInfo:
    """The current `TcpInfo` of ``conn`` (a `Connection`)."""
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
    )


def _controller_name(config) -> str:
    spec = config.congestion
    return spec if isinstance(spec, str) else getattr(spec, "name", spec.__name__)
