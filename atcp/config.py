"""Configuration: every tunable of atcp, with its default, in one place.

`Config` is a frozen dataclass accepted by every entry point as ``config=``. The protocol
core reads it; nothing else keeps a second copy of a default. Values are checked when the
object is made, so a bad setting fails at the call that passes it, not deep in a timer.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

__all__ = ["Config"]


@dataclass(frozen=True, slots=True)
class Config:
    """Tunables of an atcp endpoint and its connections.

    Times are in seconds, sizes in bytes. The defaults follow the RFCs cited; where an RFC
    leaves a choice, the choice is the one documented here.
    """

    #: Maximum segment lifetime; TIME-WAIT lasts ``2 * msl`` (RFC 9293 3.4.2, 3.6.1).
    msl: float = 30.0
    #: Largest segment payload we accept and send. None: derived from the path, 1452 on
    #: IPv4 and 1432 on IPv6 (1500-byte path less IP, UDP and TCP headers).
    mss: int | None = None
    #: Receive buffer: the most unread data held for the application; the advertised
    #: window is its free space (RFC 9293 3.8.6). A connection moves at most one window
    #: per round trip: 1 MiB is ~50 MB/s at 20 ms, ~10 MB/s at 100 ms. Memory is taken
    #: only as data waits, not up front.
    recv_buffer: int = 1024 * 1024
    #: Send buffer: the most unacknowledged plus unsent data held.
    send_buffer: int = 1024 * 1024
    #: Round the receive buffer up to a whole number of segments once the MSS is known,
    #: so full-sized segments fill the window (FreeBSD's socket buffers behave so).
    recv_buffer_whole_segments: bool = False
    #: Window scale shift we offer (RFC 7323 2.2). None: the smallest shift that lets the
    #: receive buffer be advertised in full.
    window_scale: int | None = None
    #: Offer and use window scaling, timestamps and SACK-permitted on SYNs (RFC 7323, 2018).
    window_scaling: bool = True
    timestamps: bool = True
    sack: bool = True
    #: Retransmission timer (RFC 6298): initial, lower and upper bounds.
    rto_initial: float = 1.0
    rto_min: float = 0.2
    rto_max: float = 60.0
    #: Retransmissions of a SYN (or SYN-ACK) before the open fails with a timeout.
    syn_retries: int = 6
    #: Consecutive retransmission timeouts of data before the connection is dropped (R2 of
    #: RFC 9293 3.8.3).
    data_retries: int = 15
    #: Delayed ACK timeout; in-order data is acknowledged at least every second full-size
    #: segment and within this time (RFC 9293 3.8.6.3, RFC 5681 4.2: at most 0.5 s).
    delayed_ack: float = 0.04
    #: Disable Nagle's algorithm (RFC 9293 3.7.4).
    nodelay: bool = False
    #: RFC 5961 blind-attack checks for RST, SYN and ACK; False gives the RFC 793 window test.
    rfc5961: bool = True
    #: Challenge ACKs allowed per connection in ``challenge_ack_interval`` (RFC 5961 7).
    challenge_ack_limit: int = 10
    challenge_ack_interval: float = 5.0
    #: Ignore RSTs in TIME-WAIT, protecting it from assassination (RFC 1337).
    rfc1337: bool = True
    #: Let a new SYN reopen a connection in TIME-WAIT when it is provably newer (RFC 6191).
    time_wait_reuse: bool = True
    #: Drop segments with both SYN and FIN set that reach a listener or a connection (in
    #: any state, TIME-WAIT included): no TCP sends them, and acting on them could open,
    #: reset or restart something. Where nothing is, they still get a RST (3.10.7.1).
    drop_synfin: bool = True
    #: Keep-alive probes (RFC 9293 3.8.4): off by default.
    keepalive: bool = False
    keepalive_idle: float = 7200.0
    keepalive_interval: float = 75.0
    keepalive_probes: int = 9
    #: How long a fully closed connection may wait in FIN-WAIT-2 for the peer's FIN.
    fin_wait_2_timeout: float = 60.0
    #: Pending connections a listener holds (SYN queue) and accepted ones not yet taken by
    #: the application (accept queue), unless ``listen()`` is given a backlog. A SYN finds
    #: room only while the two together hold fewer; beyond, it gets a cookie (``syncookies``)
    #: and a returning cookie finds room while the accept queue alone holds fewer, so with
    #: cookies a listener holds up to twice ``backlog``.
    backlog: int = 128
    #: Answer a SYN with a SYN cookie (RFC 4987 3.6) instead of dropping it when the
    #: listener's SYN queue is full or the stack holds ``max_connections``: no state is
    #: kept until the client's ACK returns the cookie (`atcp.core.syncookies`).
    syncookies: bool = True
    #: Answer every SYN with a cookie, keeping no SYN-RECEIVED state at all (FreeBSD's
    #: net.inet.tcp.syncookies_only).
    syncookies_only: bool = False
    #: Connections one stack (one UDP socket) holds, in any state but TIME-WAIT. At the
    #: cap, ``connect()`` fails with EMFILE and a SYN to a listener is answered with a
    #: cookie (or dropped, with ``syncookies`` off); a cookie ACK is dropped while the
    #: stack is still full.
    max_connections: int = 16384
    #: TIME-WAIT records one stack holds. When full, the oldest record is recycled to make
    #: room (its 2*MSL cut short, as FreeBSD does at net.inet.tcp.maxtcptw).
    max_time_wait: int = 16384
    #: Separate runs of out-of-order data one connection holds for reassembly; a segment
    #: that would need more is dropped (and sent again by the peer). The bytes held are
    #: already bounded by the receive window.
    max_out_of_order: int = 1024
    #: Merge a run of in-order data segments of one connection that arrived together
    #: (one drain of the socket) into one before processing, and ACK the run once, as
    #: Linux's GRO does (`atcp.core.coalesce`). Off: every segment is processed alone and
    #: every second full-sized one is ACKed (RFC 5681 4.2).
    receive_coalescing: bool = True
    #: Initial congestion window in segments (RFC 6928 allows 10).
    initial_window: int = 10
    #: Congestion control (`atcp.core.congestion`): ``"cubic"`` (RFC 9438, with HyStart++
    #: of RFC 9406), ``"newreno"`` (RFC 5681), ``"bbr"`` (BBR v1, a model of the path's
    #: bandwidth and RTT; draft-cardwell-iccrg-bbr-congestion-control-00), or a
    #: `CongestionControl` subclass.
    congestion: str | type = "cubic"
    #: Restart from idle: when data goes out with nothing in flight, the congestion
    #: controller hears of it (`CongestionControl.on_restart`). CUBIC and NewReno start
    #: again from min(initial window, cwnd) after more than an RTO without sending
    #: (RFC 5681 4.1); BBR paces at its bandwidth estimate (4.3.4.4 of its draft). False
    #: keeps the window across idle periods, like Linux's
    #: ``net.ipv4.tcp_slow_start_after_idle=0``.
    restart_after_idle: bool = True
    #: RACK-TLP (RFC 8985): time-based loss detection and tail loss probes. Used when SACK
    #: is negotiated; without it, loss is detected by three duplicate ACKs (RFC 5681).
    rack_tlp: bool = True
    #: Pace transmissions over the round trip at the congestion controller's rate, in
    #: bursts of about a millisecond (the timer granularity), instead of sending whole
    #: windows back to back.
    pacing: bool = True
    #: Record every segment the endpoint sends and receives to this pcap file (truncated
    #: when the endpoint opens), as IP packets Wireshark reads as TCP: see `atcp.pcap`.
    #: Endpoint-wide: a per-connection config's value is ignored. None: no capture.
    pcap_path: str | os.PathLike | None = None
    #: Batched UDP I/O where the kernel supports it (Linux): send runs of equal-size
    #: datagrams to one peer with one call (UDP GSO, ``UDP_SEGMENT``) and receive
    #: datagrams coalesced by the kernel (``UDP_GRO``), falling back to one datagram per
    #: call where either is missing or refused (`atcp.aio.udp_batch`). False: always one
    #: ``sendto``/``recvfrom`` per datagram. Endpoint-wide, like ``pcap_path``; the path in
    #: use is ``tcp_info.io_path``.
    udp_offload: bool = True

    def __post_init__(self) -> None:
        for name in ("msl", "rto_initial", "rto_min", "rto_max", "delayed_ack",
                     "challenge_ack_interval", "keepalive_idle", "keepalive_interval",
                     "fin_wait_2_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TypeError(f"Config.{name} must be a number of seconds, not {value!r}")
            if not value > 0:
                raise ValueError(f"Config.{name} must be positive, got {value!r}")
        if self.delayed_ack > 0.5:
            raise ValueError("Config.delayed_ack must be at most 0.5 s (RFC 5681 4.2)")
        if not self.rto_min <= self.rto_initial <= self.rto_max:
            raise ValueError("Config needs rto_min <= rto_initial <= rto_max")
        for name in ("recv_buffer", "send_buffer", "syn_retries", "data_retries",
                     "challenge_ack_limit", "keepalive_probes", "backlog", "initial_window",
                     "max_connections", "max_time_wait", "max_out_of_order"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"Config.{name} must be an int, not {value!r}")
            if value < 1:
                raise ValueError(f"Config.{name} must be at least 1, got {value}")
        if self.recv_buffer > (65535 << 14):
            raise ValueError("Config.recv_buffer cannot exceed 65535 << 14 (RFC 7323 2.3)")
        if self.mss is not None:
            if not isinstance(self.mss, int) or isinstance(self.mss, bool):
                raise TypeError(f"Config.mss must be an int or None, not {self.mss!r}")
            if not 64 <= self.mss <= 65495:
                raise ValueError(f"Config.mss must be in 64..65495, got {self.mss}")
        if self.pcap_path is not None and not isinstance(self.pcap_path, (str, os.PathLike)):
            raise TypeError(f"Config.pcap_path must be a path or None, not {self.pcap_path!r}")
        if self.window_scale is not None and not 0 <= self.window_scale <= 14:
            raise ValueError("Config.window_scale must be in 0..14 (RFC 7323 2.3)")
        from .core.congestion import resolve
        resolve(self.congestion)   # a bad name or class fails here, not at connect time

    def replace(self, **changes) -> "Config":
        """A copy with some fields changed (and checked again)."""
        return dataclasses.replace(self, **changes)

    def rcv_wscale(self) -> int:
        """The window scale shift to offer for this receive buffer."""
        if self.window_scale is not None:
            return self.window_scale
        shift = 0
        while (65535 << shift) < self.recv_buffer and shift < 14:
            shift += 1
        return shift
