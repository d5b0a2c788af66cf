"""TCP segment value types and their codec (RFC 9293 section 3.1).

In atcp one UDP payload is exactly one TCP segment: the 20-byte fixed header, options and
padding up to the data offset, then data (see shared/notes/wire-format.md).  This module
turns such a payload into a :class:`Segment` (``parse``) and back (``build``); it holds no
protocol state and makes no protocol decisions.

Receiving is strict but total: ``parse`` either returns a Segment or raises
:class:`MalformedSegment` with a stable ``reason`` string, for any byte string whatsoever,
and every loop over the option list advances by at least one byte (RFC 9293 MUST-64,
MUST-68, MUST-69).  It keeps values as received (MSS 0, window scale > 14, reserved bits,
odd flag combinations): judging them is the protocol core's job.  The checksum field is
ignored, since the UDP checksum covers the datagram.

Sending writes a zero checksum and lays options out in one fixed, 4-byte aligned order::

    MSS | NOP WS | SACK-permitted + TS | NOP NOP SACK | unknown... | EOL padding

where SACK-permitted and timestamps share 12 bytes (``4,2,8,10,...``) when both are
present, and otherwise each is preceded by two NOPs.  The two common shapes, no options and
timestamps only, are packed with one precompiled struct each.
"""

import struct

from .errors import MalformedSegment

__all__ = [
    "FIN",
    "SYN",
    "RST",
    "PSH",
    "ACK",
    "URG",
    "ECE",
    "CWR",
    "Options",
    "NO_OPTIONS",
    "Segment",
    "MalformedSegment",
    "parse",
    "build",
    "build_header",
    "header_template",
    "MAX_OPTION_BYTES",
]

# Control bits, in the order of the flags octet (RFC 9293 3.1, RFC 3168 for ECE/CWR).
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80

# Option kinds (RFC 9293 3.2, RFC 7323, RFC 2018).
_EOL = 0
_NOP = 1
_KIND_MSS = 2
_KIND_WS = 3
_KIND_SACK_PERMITTED = 4
_KIND_SACK = 5
_KIND_TS = 8

# Options that have exactly one legal length.
_FIXED_LENGTH = {_KIND_MSS: 4, _KIND_WS: 3, _KIND_SACK_PERMITTED: 2, _KIND_TS: 10}

HEADER_LEN = 20
MAX_OPTION_BYTES = 40  # data offset is at most 15 words

# src port, dst port, seq, ack, data offset|reserved, flags, window, checksum, urgent.
_HDR = struct.Struct("!HHIIBBHHH")
# The same followed by NOP,NOP,TS (RFC 7323 appendix A layout): the usual data segment.
_HDR_TS = struct.Struct("!HHIIBBHHHIII")
_TS_LEAD = b"\x01\x01\x08\x0a"
_TS_LEAD_INT = 0x0101080A
_SACKOK_TS_LEAD_INT = 0x0402080A  # SACK-permitted (2 bytes) then TS kind/len
_NOP_NOP_SACKOK = b"\x01\x01\x04\x02"
_OFF_TS = (HEADER_LEN + 12) << 2  # data offset 8 words, in the high nibble

_MSS = struct.Struct("!BBH")
_WS = struct.Struct("!BBBB")
_TS = struct.Struct("!III")  # lead word, TSval, TSecr
_II = struct.Struct("!II")
# NOP,NOP,5,len then n (left, right) pairs, for n = 1..4.
_SACK = [None] + [struct.Struct("!I" + "II" * n) for n in range(1, 5)]
_SACK_UNPACK = [None] + [struct.Struct("!" + "II" * n) for n in range(1, 5)]


class Options:
    """The TCP options of one segment, decoded.

    Absent options are ``None`` (``mss``, ``wscale``, ``ts_val``), ``False``
    (``sack_permitted``) or empty tuples (``sack``, ``unknown``).  Timestamps are present
    exactly when ``ts_val is not None``; ``ts_ecr`` is then an int (0 if not given) and
    otherwise ``None``.  ``sack`` is a tuple of ``(left, right)`` edge pairs, ``unknown`` a
    tuple of ``(kind, data)`` for options the parser skipped.

    Instances are shared (see :data:`NO_OPTIONS`), so treat them as immutable: use
    :meth:`replace` to derive a changed copy.
    """

    __slots__ = ("mss", "wscale", "sack_permitted", "sack", "ts_val", "ts_ecr", "unknown")

    def __init__(
        self,
        mss: int | None = None,
        wscale: int | None = None,
        sack_permitted: bool = False,
        sack: tuple[tuple[int, int], ...] = (),
        ts_val: int | None = None,
        ts_ecr: int | None = None,
        unknown: tuple[tuple[int, bytes], ...] = (),
    ) -> None:
        self.mss = mss
        self.wscale = wscale
        self.sack_permitted = sack_permitted
        self.sack = sack if type(sack) is tuple else tuple(tuple(b) for b in sack)
        self.ts_val = ts_val
        if ts_val is None:
            ts_ecr = None
        elif ts_ecr is None:
            ts_ecr = 0
        self.ts_ecr = ts_ecr
        self.unknown = unknown if type(unknown) is tuple else tuple(tuple(u) for u in unknown)

    def replace(self, **changes) -> "Options":
        """Return a copy with the given fields changed."""
        fields = {name: getattr(self, name) for name in Options.__slots__}
        fields.update(changes)
        return Options(**fields)

    def _key(self) -> tuple:
        return (
            self.mss,
            self.wscale,
            self.sack_permitted,
            self.sack,
            self.ts_val,
            self.ts_ecr,
            self.unknown,
        )

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Options):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = []
        if self.mss is not None:
            fields.append(f"mss={self.mss}")
        if self.wscale is not None:
            fields.append(f"wscale={self.wscale}")
        if self.sack_permitted:
            fields.append("sack_permitted=True")
        if self.sack:
            fields.append(f"sack={self.sack!r}")
        if self.ts_val is not None:
            fields.append(f"ts_val={self.ts_val}, ts_ecr={self.ts_ecr}")
        if self.unknown:
            fields.append(f"unknown={self.unknown!r}")
        return f"Options({', '.join(fields)})"

    def _summary(self) -> str:
        """tcpdump-style option list, e.g. ``mss 1452,wscale 7,sackOK,TS val 1 ecr 0``."""
        items = []
        if self.mss is not None:
            items.append(f"mss {self.mss}")
        if self.wscale is not None:
            items.append(f"wscale {self.wscale}")
        if self.sack_permitted:
            items.append("sackOK")
        if self.ts_val is not None:
            items.append(f"TS val {self.ts_val} ecr {self.ts_ecr}")
        if self.sack:
            blocks = "".join(f"{{{left}:{right}}}" for left, right in self.sack)
            items.append(f"sack {len(self.sack)} {blocks}")
        for kind, data in self.unknown:
            items.append(f"opt-{kind}:{bytes(data).hex()}" if data else f"opt-{kind}")
        return ",".join(items)


NO_OPTIONS = Options()
"""The shared, empty Options value of option-less segments."""

# tcpdump's flag letters, in tcpdump's order ('.' is ACK, 'W' is CWR, 'E' is ECE).
_FLAG_LETTERS = (
    (FIN, "F"),
    (SYN, "S"),
    (RST, "R"),
    (PSH, "P"),
    (ACK, "."),
    (URG, "U"),
    (ECE, "E"),
    (CWR, "W"),
)


class Segment:
    """One TCP segment: header fields, decoded options and payload.

    ``flags`` is the flags octet (an OR of FIN..CWR), ``reserved`` the 4 reserved header
    bits, ``payload`` bytes (or any bytes-like object when building).  The checksum is not
    represented: atcp always sends 0 and never checks it.
    """

    __slots__ = (
        "src_port",
        "dst_port",
        "seq",
        "ack",
        "flags",
        "window",
        "urgent",
        "options",
        "payload",
        "reserved",
    )

    def __init__(
        self,
        src_port: int,
        dst_port: int,
        seq: int,
        ack: int,
        flags: int,
        window: int,
        payload: bytes = b"",
        options: Options = NO_OPTIONS,
        urgent: int = 0,
        reserved: int = 0,
    ) -> None:
        self.src_port = src_port
        self.dst_port = dst_port
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.payload = payload
        self.options = options
        self.urgent = urgent
        self.reserved = reserved

    @property
    def seg_len(self) -> int:
        """SEG.LEN of RFC 9293: payload octets plus one each for SYN and FIN."""
        f = self.flags
        return len(self.payload) + ((f >> 1) & 1) + (f & 1)

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Segment):
            return NotImplemented
        return (
            self.src_port == other.src_port
            and self.dst_port == other.dst_port
            and self.seq == other.seq
            and self.ack == other.ack
            and self.flags == other.flags
            and self.window == other.window
            and self.urgent == other.urgent
            and self.reserved == other.reserved
            and self.options == other.options
            and self.payload == other.payload
        )

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        f = self.flags
        letters = "".join(ch for bit, ch in _FLAG_LETTERS if f & bit) or "none"
        parts = [f"{self.src_port}>{self.dst_port}", letters, f"seq={self.seq}"]
        if f & ACK or self.ack:
            parts.append(f"ack={self.ack}")
        parts.append(f"win={self.window}")
        if f & URG or self.urgent:
            parts.append(f"urg={self.urgent}")
        parts.append(f"len={len(self.payload)}")
        if self.reserved:
            parts.append(f"res={self.reserved:#x}")
        summary = self.options._summary()
        if summary:
            parts.append(f"<{summary}>")
        return f"Segment({' '.join(parts)})"


#: The timestamps-only Options `parse` made last (see there).
_last_ts = Options(ts_val=0, ts_ecr=0)


def parse(data: bytes | bytearray | memoryview) -> Segment:
    """Decode one UDP payload as a TCP segment.

    Raises :class:`MalformedSegment` (and nothing else, for any bytes-like input) when the
    header or the option list is malformed; ``reason`` says which rule was broken.
    """
    if type(data) is not bytes and type(data) is not bytearray:
        data = memoryview(data)
        if data.format != "B" or data.ndim != 1 or not data.c_contiguous:
            data = data.tobytes()
    n = len(data)
    if n < HEADER_LEN:
        raise MalformedSegment("short-header", f"{n} bytes")
    sport, dport, seq, ack, off, flags, window, _checksum, urgent = _HDR.unpack_from(data)
    doff = (off >> 4) << 2
    if doff == HEADER_LEN:
        options = NO_OPTIONS
    elif doff < HEADER_LEN:
        raise MalformedSegment("bad-data-offset", f"data offset {doff >> 2} words")
    elif doff > n:
        raise MalformedSegment("data-offset-overrun", f"data offset {doff} > {n} bytes")
    elif doff == HEADER_LEN + 12 and data[20:24] == _TS_LEAD:
        # Fast path: NOP,NOP,TS only, as on nearly every segment of a timestamped flow.
        # Segments in a row mostly carry the same two values (both clocks tick in
        # milliseconds), so the last such Options is shared while they do.
        global _last_ts
        ts_val, ts_ecr = _II.unpack_from(data, 24)
        options = _last_ts
        if options.ts_val != ts_val or options.ts_ecr != ts_ecr:
            options = _last_ts = Options(ts_val=ts_val, ts_ecr=ts_ecr)
    else:
        options = _parse_options(data, doff)
    return Segment(
        sport, dport, seq, ack, flags, window, bytes(data[doff:]), options, urgent, off & 0x0F
    )


def _parse_options(data, end: int) -> Options:
    """Decode the option list in ``data[20:end]``.

    Every iteration advances ``i`` by at least one (NOP) or two (any other option, whose
    length is checked to be >= 2 first), so the loop is bounded by 40 iterations.
    """
    mss = wscale = ts_val = ts_ecr = None
    sack_permitted = False
    sack = ()
    unknown = None
    i = HEADER_LEN
    while i < end:
        kind = data[i]
        if kind == _NOP:
            i += 1
            continue
        if kind == _EOL:
            break  # the rest of the option space is padding, whatever it holds
        if i + 1 >= end:
            raise MalformedSegment("option-overrun", f"kind {kind} at {i} without length")
        olen = data[i + 1]
        if olen < 2:
            raise MalformedSegment("option-length", f"kind {kind} length {olen} at {i}")
        # Length rules of known kinds are checked before the overrun check, so that an
        # oversized SACK (5 blocks, 42 bytes, which can never fit) is reported as such.
        fixed = _FIXED_LENGTH.get(kind)
        if fixed is not None:
            if olen != fixed:
                raise MalformedSegment(
                    "option-fixed-length", f"kind {kind} length {olen}, expected {fixed}"
                )
        elif kind == _KIND_SACK and ((olen - 2) & 7 or not 10 <= olen <= 34):
            raise MalformedSegment("sack-length", f"SACK length {olen}")
        nxt = i + olen
        if nxt > end:
            raise MalformedSegment("option-overrun", f"kind {kind} length {olen} at {i}")
        # Duplicates of known options: the first one wins, the rest are ignored.
        if kind == _KIND_TS:
            if ts_val is None:
                ts_val, ts_ecr = _II.unpack_from(data, i + 2)
        elif kind == _KIND_MSS:
            if mss is None:
                mss = (data[i + 2] << 8) | data[i + 3]
        elif kind == _KIND_WS:
            if wscale is None:
                wscale = data[i + 2]
        elif kind == _KIND_SACK_PERMITTED:
            sack_permitted = True
        elif kind == _KIND_SACK:
            if not sack:
                edges = _SACK_UNPACK[(olen - 2) >> 3].unpack_from(data, i + 2)
                sack = tuple(zip(edges[0::2], edges[1::2]))
        else:
            if unknown is None:
                unknown = []
            unknown.append((kind, bytes(data[i + 2 : nxt])))
        i = nxt
    if (
        mss is None
        and wscale is None
        and ts_val is None
        and not sack_permitted
        and not sack
        and unknown is None
    ):
        return NO_OPTIONS  # only NOPs / EOL padding
    return Options(
        mss, wscale, sack_permitted, sack, ts_val, ts_ecr, () if unknown is None else tuple(unknown)
    )


def build(seg: Segment) -> bytes:
    """Encode ``seg`` as one UDP payload, with a zero checksum.

    Raises ValueError if a field does not fit its header field or the options need more
    than 40 bytes.
    """
    try:
        out = build_header(seg.src_port, seg.dst_port, seg.seq, seg.ack, seg.flags,
                           seg.window, seg.options, seg.urgent, seg.reserved)
    except ValueError as exc:
        raise ValueError(f"cannot encode {seg!r}: {exc}") from None
    payload = seg.payload
    return out + payload if payload else out


def build_header(src_port: int, dst_port: int, seq: int, ack: int, flags: int, window: int,
                 opts: Options = NO_OPTIONS, urgent: int = 0, reserved: int = 0) -> bytes:
    """The header and options of a segment, without a `Segment`: what a sender building
    many segments alike (`Connection._send_run`) puts before each payload. Raises
    ValueError as `build` does."""
    if reserved and not 0 <= reserved <= 15:
        raise ValueError(f"reserved bits {reserved!r} do not fit in 4 bits")
    try:
        if opts is NO_OPTIONS:
            return _HDR.pack(
                src_port, dst_port, seq, ack, 0x50 | reserved, flags, window, 0, urgent,
            )  # fmt: skip
        if (
            opts.ts_val is not None
            and opts.mss is None
            and opts.wscale is None
            and not opts.sack_permitted
            and not opts.sack
            and not opts.unknown
        ):
            return _HDR_TS.pack(
                src_port, dst_port, seq, ack, _OFF_TS | reserved, flags, window, 0, urgent,
                _TS_LEAD_INT, opts.ts_val, opts.ts_ecr,
            )  # fmt: skip
        encoded = _encode_options(opts)
        return _HDR.pack(
            src_port, dst_port, seq, ack,
            ((HEADER_LEN + len(encoded)) << 2) | reserved, flags, window, 0, urgent,
        ) + encoded  # fmt: skip
    except struct.error as exc:
        raise ValueError(str(exc)) from None


def header_template(src_port: int, dst_port: int, ack: int, flags: int, window: int,
                    opts: Options = NO_OPTIONS) -> tuple[bytes, bytes]:
    """The header of segments that differ only in their sequence number, as the bytes
    before it (the ports) and after it (ACK field to options): a header is
    ``before + seq.to_bytes(4, "big") + after``. For senders that build many segments
    alike (`Connection._send_run`). Raises ValueError as `build` does."""
    full = build_header(src_port, dst_port, 0, ack, flags, window, opts)
    return full[:4], full[8:]


def _encode_options(opts: Options) -> bytes:
    parts = []
    if opts.mss is not None:
        parts.append(_MSS.pack(_KIND_MSS, 4, opts.mss))
    if opts.wscale is not None:
        parts.append(_WS.pack(_NOP, _KIND_WS, 3, opts.wscale))
    if opts.ts_val is not None:
        lead = _SACKOK_TS_LEAD_INT if opts.sack_permitted else _TS_LEAD_INT
        parts.append(_TS.pack(lead, opts.ts_val, opts.ts_ecr))
    elif opts.sack_permitted:
        parts.append(_NOP_NOP_SACKOK)
    sack = opts.sack
    if sack:
        nblocks = len(sack)
        if nblocks > 4:
            raise ValueError(f"{nblocks} SACK blocks; at most 4 fit")
        parts.append(
            _SACK[nblocks].pack(
                0x01010500 | (2 + 8 * nblocks), *[edge for block in sack for edge in block]
            )
        )
    for kind, data in opts.unknown:
        # Any kind may be sent here (tests use it to craft duplicates); only kinds the
        # parser does not understand come back in Options.unknown.
        if not 2 <= kind <= 255 or len(data) > 253:
            raise ValueError(f"cannot encode option kind {kind!r} with {len(data)} bytes")
        parts.append(bytes((kind, len(data) + 2)))
        parts.append(bytes(data))
    encoded = b"".join(parts)
    size = len(encoded)
    if size & 3:
        encoded += bytes(4 - (size & 3))  # EOL, then zero padding (RFC 9293 3.1)
        size = len(encoded)
    if size > MAX_OPTION_BYTES:
        raise ValueError(f"options need {size} bytes, more than {MAX_OPTION_BYTES}")
    return encoded
