"""The segments of a script: building those to inject, judging those the stack emits.

Sequence numbers in a script are relative, as in packetdrill: on ``<`` lines they count
from the remote's ISN (the runner picks it), on ``>`` lines from the stack's ISS, which is
learned from each SYN or SYN,ACK the stack sends. ``ack`` values and SACK blocks count from
the other side's ISN. A ``!`` after the sequence range makes that sequence number absolute;
``...`` means any. Before the stack has sent a SYN its ISS counts as 0, so a reset for a
segment that met no connection reads naturally (``< . 17:17(0) ack 34`` then ``> R 34:34(0)``).

Injected segments carry their options byte for byte in the script's order, NOPs and EOLs
included, so the codec's parser sees real layouts. Emitted segments are compared on flags,
sequence and acknowledgment numbers, window (when the line gives one), payload length and
options by kind and value: order and NOP/EOL padding do not matter, timestamps only need to
be present (their values are the stack's clock), and a line without ``<...>`` demands a
segment without options.
"""

from __future__ import annotations

import struct

from ...wire import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG, Segment, build
from ...wire.seq import MASK
from .script import Packet, TcpOption

__all__ = ["SeqSpace", "flag_bits", "build_inbound", "mismatch", "describe"]

_FLAG_BITS = {"F": FIN, "S": SYN, "R": RST, "P": PSH, ".": ACK, "U": URG, "E": ECE, "W": CWR}
# The order packetdrill and the FreeBSD scripts write flags in; "." (ACK) comes last.
_FLAG_ORDER = "SFRPEWU."


def flag_bits(flags: str) -> int:
    bits = 0
    for letter in flags:
        bits |= _FLAG_BITS[letter]
    return bits


def flag_letters(bits: int) -> str:
    return "".join(ch for ch in _FLAG_ORDER if bits & _FLAG_BITS[ch]) or "-"


class SeqSpace:
    """The bases that relative numbers in a script count from."""

    def __init__(self, remote_isn: int) -> None:
        self.remote_isn = remote_isn & MASK
        self.local_isn = 0          # the stack's ISS, once a SYN of its showed it
        self.ts_delta: int | None = None   # stack TSval minus the script's TS val

    def remote(self, rel: int) -> int:
        return (self.remote_isn + rel) & MASK

    def local(self, rel: int) -> int:
        return (self.local_isn + rel) & MASK

    def rel_remote(self, absolute: int) -> int:
        return (absolute - self.remote_isn) & MASK

    def rel_local(self, absolute: int) -> int:
        return (absolute - self.local_isn) & MASK


# --------------------------------------------------------------------------- inbound

_OPTION_KIND = {"eol": 0, "nop": 1, "mss": 2, "wscale": 3, "sackOK": 4, "sack": 5, "TS": 8}


def build_inbound(pkt: Packet, space: SeqSpace, src_port: int, dst_port: int) -> bytes:
    """The UDP payload for a ``<`` line: header from `atcp.wire.build`, options as written."""
    if pkt.seq_start is None:
        raise ValueError("an injected segment needs a sequence number, not '...'")
    if pkt.win is None:
        raise ValueError("an injected segment needs a window ('win N')")
    seq = pkt.seq_start if pkt.seq_absolute else space.remote(pkt.seq_start)
    ack = space.local(pkt.ack) if pkt.ack is not None else 0
    header = build(Segment(src_port, dst_port, seq & MASK, ack, flag_bits(pkt.flags), pkt.win))
    options = encode_options(pkt.options or [], space)
    offset = (len(header) + len(options)) // 4
    header = header[:12] + bytes([offset << 4]) + header[13:]
    return header + options + bytes(pkt.length)


def encode_options(options: list[TcpOption], space: SeqSpace) -> bytes:
    """Options in the given order, padded with zeros (EOL) to a 4-byte boundary."""
    out = bytearray()
    for opt in options:
        kind = _OPTION_KIND[opt.kind]
        if opt.kind in ("eol", "nop"):
            out.append(kind)
        elif opt.kind == "sackOK":
            out += bytes((kind, 2))
        elif opt.kind == "mss":
            out += struct.pack("!BBH", kind, 4, opt.values[0])
        elif opt.kind == "wscale":
            out += bytes((kind, 3, opt.values[0]))
        elif opt.kind == "TS":
            val, ecr = opt.values
            if space.ts_delta is not None:
                ecr = (ecr + space.ts_delta) & MASK   # echo the stack's own clock
            out += struct.pack("!BBII", kind, 10, val, ecr)
        else:   # sack: blocks acknowledge the stack's data, so they count from its ISS
            edges = [space.local(edge) for block in opt.values for edge in block]
            out += struct.pack(f"!BB{len(edges)}I", kind, 2 + 4 * len(edges), *edges)
    out += bytes(-len(out) % 4)
    if len(out) > 40:
        raise ValueError(f"the options need {len(out)} bytes; at most 40 fit")
    return bytes(out)


# --------------------------------------------------------------------------- outbound


def mismatch(pkt: Packet, seg: Segment, space: SeqSpace) -> str | None:
    """How ``seg`` differs from the ``>`` line ``pkt``, or None if it matches.

    A SYN teaches ``space`` the stack's ISS first, as packetdrill does.
    """
    flags = flag_bits(pkt.flags)
    if seg.flags != flags:
        return f"flags {flag_letters(seg.flags)}, expected {flag_letters(flags)}"
    if seg.flags & SYN and pkt.seq_start is not None and not pkt.seq_absolute:
        space.local_isn = (seg.seq - pkt.seq_start) & MASK
    elif seg.flags & SYN and pkt.seq_start is None:
        space.local_isn = seg.seq
    if pkt.seq_start is not None:
        want = pkt.seq_start if pkt.seq_absolute else space.local(pkt.seq_start)
        if seg.seq != want & MASK:
            return f"sequence number {_rel(seg.seq, want, space.rel_local, pkt.seq_absolute)}"
    if len(seg.payload) != pkt.length:
        return f"payload length {len(seg.payload)}, expected {pkt.length}"
    if pkt.ack is not None and seg.ack != space.remote(pkt.ack):
        return f"ack {space.rel_remote(seg.ack)}, expected {pkt.ack}"
    if pkt.win is not None and seg.window != pkt.win:
        return f"window {seg.window}, expected {pkt.win}"
    return _options_mismatch(pkt.options, seg, space)


def _rel(actual: int, want: int, to_rel, absolute: bool) -> str:
    if absolute:
        return f"{actual}!, expected {want}!"
    return f"{to_rel(actual)}, expected {to_rel(want)}"


def _options_mismatch(expected: list[TcpOption] | None, seg: Segment,
                      space: SeqSpace) -> str | None:
    got = _option_summary(seg, space)
    want: dict[str, object] = {}
    ts_val = None
    for opt in expected or []:
        if opt.kind in ("nop", "eol"):
            continue
        if opt.kind == "TS":
            want["TS"] = True
            ts_val = opt.values[0]
        elif opt.kind == "sackOK":
            want["sackOK"] = True
        elif opt.kind == "sack":
            want["sack"] = tuple(opt.values)
        else:
            want[opt.kind] = opt.values[0]
    if got != want:
        return f"options {_render(got)}, expected {_render(want)}"
    if ts_val is not None and space.ts_delta is None:
        space.ts_delta = (seg.options.ts_val - ts_val) & MASK
    return None


def _option_summary(seg: Segment, space: SeqSpace) -> dict[str, object]:
    opts = seg.options
    got: dict[str, object] = {}
    if opts.mss is not None:
        got["mss"] = opts.mss
    if opts.wscale is not None:
        got["wscale"] = opts.wscale
    if opts.sack_permitted:
        got["sackOK"] = True
    if opts.sack:
        got["sack"] = tuple((space.rel_remote(a), space.rel_remote(b)) for a, b in opts.sack)
    if opts.ts_val is not None:
        got["TS"] = True
    for kind, data in opts.unknown:
        got[f"kind-{kind}"] = data.hex()
    return got


def _render(summary: dict[str, object]) -> str:
    items = []
    for kind, value in summary.items():
        if value is True:
            items.append(kind)
        elif kind == "sack":
            items.append("sack " + " ".join(f"{a}:{b}" for a, b in value))
        else:
            items.append(f"{kind} {value}")
    return "<" + ",".join(items) + ">" if items else "none"


def describe(seg: Segment, space: SeqSpace, outbound: bool,
             udp: tuple[int, int] | None) -> str:
    """A segment in script syntax, numbers relative to the ISNs known so far."""
    if outbound:
        base = seg.seq if seg.flags & SYN else space.local_isn
        seq = (seg.seq - base) & MASK
        ack = space.rel_remote(seg.ack)
    else:
        seq = space.rel_remote(seg.seq)
        ack = space.rel_local(seg.ack)
    n = len(seg.payload)
    text = f"{flag_letters(seg.flags)} {seq}:{(seq + n) & MASK}({n})"
    if seg.flags & ACK:
        text += f" ack {ack}"
    text += f" win {seg.window}"
    opts = _format_options(seg, space.rel_remote if outbound else space.rel_local)
    if opts:
        text += f" <{opts}>"
    if udp is not None:
        text += f"/udp({udp[0]} > {udp[1]})"
    return text


def _format_options(seg: Segment, sack_rel) -> str:
    opts = seg.options
    items = []
    if opts.mss is not None:
        items.append(f"mss {opts.mss}")
    if opts.wscale is not None:
        items.append(f"wscale {opts.wscale}")
    if opts.sack_permitted:
        items.append("sackOK")
    if opts.ts_val is not None:
        items.append(f"TS val {opts.ts_val} ecr {opts.ts_ecr}")
    if opts.sack:
        items.append("sack " + " ".join(f"{sack_rel(a)}:{sack_rel(b)}" for a, b in opts.sack))
    items.extend(f"kind-{kind} {data.hex()}" for kind, data in opts.unknown)
    return ",".join(items)
