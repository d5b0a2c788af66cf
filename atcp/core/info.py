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
    zero_window_probes: int  # persist-timer probes (RFC 9293 3.8.6.1)
    dup_segments_in: int     # unacceptable segments answered with an ACK

    def as_dict(self) -> dict:
        return asdict(self)


def tcp_info(conn) -> TcpInfo:
    """The current `TcpInfo` of ``conn`` (a `Connection`)."""
    rto = conn.rto
    return TcpInfo(
        state=str(conn.stack.state_of(conn)),
        srtt=rto.srtt,
        rttvar=rto.rttvar,
        rto=rto.rto,
        snd_mss=conn.snd_mss,
        rcv_mss=conn.rcv_mss,
        cwnd=conn.cwnd,
        ssthresh=conn.ssthresh,
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
        zero_window_probes=conn.zero_window_probes,
        dup_segments_in=conn.dup_segments_in,
    )
