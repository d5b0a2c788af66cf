"""``-v``: a connection's `TcpInfo` as a few readable lines, like ``ss -ti`` prints them.

The layout names the fields an operator reads first; any other `TcpInfo` field (newer
counters included) follows on a last line as ``name value``, so nothing is hidden.
"""

from __future__ import annotations

import dataclasses

__all__ = ["format_stats", "format_endpoint_totals"]

_SHOWN = {
    "state", "srtt", "rttvar", "min_rtt", "rto", "backoff", "snd_mss", "rcv_mss",
    "congestion", "cwnd", "ssthresh", "pacing_rate", "delivery_rate", "in_recovery",
    "snd_wnd", "rcv_wnd", "snd_wscale", "rcv_wscale", "timestamps", "sack", "unacked",
    "send_queued", "recv_queued", "bytes_sent", "bytes_acked", "bytes_received",
    "bytes_retransmitted", "segs_in", "segs_out", "retransmits", "lost", "sacked",
    "reordering", "loss_probes", "spurious_retransmits", "dsacks_received", "paws_rejected",
    "zero_window_probes", "dup_segments_in",
}
#: ssthresh before any loss (RFC 5681 3.1: "arbitrarily high").
_NO_SSTHRESH = 1 << 30


def _ms(seconds) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _n(value) -> str:
    return f"{value:,}"


def _rate(value) -> str:
    return "-" if not value else f"{value / (1 << 20):.2f} MiB/s"


def _value(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return _n(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_stats(info, label: str) -> str:
    """Lines describing ``info`` (a `TcpInfo`) for the connection called ``label``."""
    ssthresh = "-" if info.ssthresh >= _NO_SSTHRESH else _n(info.ssthresh)
    options = [name for name in ("timestamps", "sack") if getattr(info, name)]
    lines = [
        f"atcp stats {label}  {info.state}",
        f"  rtt {_ms(info.srtt)} (var {_ms(info.rttvar)}, min {_ms(info.min_rtt)})  "
        f"rto {_ms(info.rto)} (backoff {info.backoff})  "
        f"mss {info.snd_mss} out / {info.rcv_mss} in",
        f"  {info.congestion}: cwnd {_n(info.cwnd)}  ssthresh {ssthresh}  "
        f"pacing {_rate(info.pacing_rate)}  delivery {_rate(info.delivery_rate)}"
        f"{'  in recovery' if info.in_recovery else ''}",
        f"  windows: send {_n(info.snd_wnd)} (scale {info.snd_wscale})  "
        f"receive {_n(info.rcv_wnd)} (scale {info.rcv_wscale})  "
        f"options: {' '.join(options) or 'none'}",
        f"  bytes sent {_n(info.bytes_sent)}  acked {_n(info.bytes_acked)}  "
        f"received {_n(info.bytes_received)}  retransmitted {_n(info.bytes_retransmitted)}",
        f"  segments in {_n(info.segs_in)}  out {_n(info.segs_out)}  "
        f"retransmitted {_n(info.retransmits)}  lost {_n(info.lost)}  "
        f"loss probes {_n(info.loss_probes)}  spurious {_n(info.spurious_retransmits)}",
        f"  sacked {_n(info.sacked)}  reordering {info.reordering}  "
        f"dsacks {_n(info.dsacks_received)}  paws rejected {_n(info.paws_rejected)}  "
        f"duplicates in {_n(info.dup_segments_in)}  "
        f"zero-window probes {_n(info.zero_window_probes)}",
        f"  queued: unacked {_n(info.unacked)}  send buffer {_n(info.send_queued)}  "
        f"unread {_n(info.recv_queued)}",
    ]
    extra = [f"{f.name} {_value(getattr(info, f.name))}"
             for f in dataclasses.fields(info) if f.name not in _SHOWN]
    if extra:
        lines.append("  " + "  ".join(extra))
    return "\n".join(lines)


def format_endpoint_totals(label: str, endpoints) -> str:
    """One line of datagram counts and notable events over ``endpoints`` (a server's)."""
    datagrams_in = sum(ep.datagrams_in for ep in endpoints)
    datagrams_out = sum(ep.datagrams_out for ep in endpoints)
    counts: dict[str, int] = {}
    for ep in endpoints:
        for name, count in ep.stats.items():
            if name != "state":
                counts[name] = counts.get(name, 0) + count
    events = "  ".join(f"{name} {_n(count)}" for name, count in sorted(counts.items()))
    line = (f"atcp stats {label}  datagrams in {_n(datagrams_in)}  "
            f"out {_n(datagrams_out)}")
    return f"{line}\n  {events}" if events else line


def connection_label(writer) -> str:
    """``local -> peer`` for an atcp stream (UDP addresses, with the TCP ports when they
    differ from the UDP ones)."""
    def side(addr, tcp_port):
        host, port = addr[0], addr[1]
        text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return text if tcp_port in (None, port) else f"{text}/tcp{tcp_port}"

    ports = writer.get_extra_info("tcp_ports") or (None, None)
    local = side(writer.get_extra_info("sockname"), ports[0])
    peer = side(writer.get_extra_info("peername"), ports[1])
    return f"{local} -> {peer}"
