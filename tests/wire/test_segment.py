"""Segment value types and the parse/build codec on well-formed input (atcp.wire.segment)."""

import array
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import atcp.wire as wire
from atcp.wire import (
    ACK,
    CWR,
    ECE,
    FIN,
    NO_OPTIONS,
    PSH,
    RST,
    SYN,
    URG,
    MalformedSegment,
    Options,
    Segment,
    build,
    parse,
)
from atcp.wire.segment import _encode_options

prop = settings(deadline=None, max_examples=200)

KNOWN_KINDS = {0, 1, 2, 3, 4, 5, 8}
u8 = st.integers(min_value=0, max_value=0xFF)
u16 = st.integers(min_value=0, max_value=0xFFFF)
u32 = st.integers(min_value=0, max_value=0xFFFFFFFF)
unknown_kind = st.integers(min_value=2, max_value=255).filter(lambda k: k not in KNOWN_KINDS)
sack_block = st.tuples(u32, u32)


def header(
    sport=1000, dport=80, seq=1, ack=0, doff=5, reserved=0, flags=0, window=512, csum=0, urg=0
):
    """A fixed header packed independently of the code under test."""
    return struct.pack(
        "!HHIIBBHHH", sport, dport, seq, ack, (doff << 4) | reserved, flags, window, csum, urg
    )


def canonical_size(opts):
    """Bytes build() should use for opts (the layout documented in segment.py)."""
    size = 0
    if opts.mss is not None:
        size += 4
    if opts.wscale is not None:
        size += 4
    if opts.ts_val is not None:
        size += 12
    elif opts.sack_permitted:
        size += 4
    if opts.sack:
        size += 4 + 8 * len(opts.sack)
    size += sum(2 + len(data) for _, data in opts.unknown)
    return (size + 3) & ~3


@st.composite
def options(draw):
    """Arbitrary Options that fit in 40 bytes in build()'s layout."""
    mss = draw(st.none() | u16)
    wscale = draw(st.none() | u8)
    sack_permitted = draw(st.booleans())
    ts = draw(st.none() | st.tuples(u32, u32))
    used = canonical_size(
        Options(mss=mss, wscale=wscale, sack_permitted=sack_permitted, ts_val=ts and ts[0])
    )
    max_blocks = min(4, (40 - used - 4) // 8)
    sack = ()
    if max_blocks >= 1:
        sack = tuple(draw(st.lists(sack_block, max_size=max_blocks)))
    used += 4 + 8 * len(sack) if sack else 0
    unknown = []
    while draw(st.booleans()):
        room = 40 - used - 2  # ignoring padding; checked below
        if room < 0:
            break
        data = draw(st.binary(max_size=min(room, 8)))
        unknown.append((draw(unknown_kind), data))
        used += 2 + len(data)
    opts = Options(
        mss=mss,
        wscale=wscale,
        sack_permitted=sack_permitted,
        sack=sack,
        ts_val=ts[0] if ts else None,
        ts_ecr=ts[1] if ts else None,
        unknown=tuple(unknown),
    )
    if canonical_size(opts) > 40:
        opts = opts.replace(unknown=())
    return opts


@st.composite
def segments(draw):
    opts = draw(st.just(NO_OPTIONS) | options())
    return Segment(
        src_port=draw(u16),
        dst_port=draw(u16),
        seq=draw(u32),
        ack=draw(u32),
        flags=draw(u8),
        window=draw(u16),
        payload=draw(st.binary(max_size=2000)),
        options=opts,
        urgent=draw(u16),
        reserved=draw(st.integers(min_value=0, max_value=15)),
    )


# -- round trips -----------------------------------------------------------------------


@prop
@given(segments())
def test_parse_build_round_trip(seg):
    wire_bytes = build(seg)
    assert type(wire_bytes) is bytes
    back = parse(wire_bytes)
    assert back == seg
    assert type(back.payload) is bytes
    assert build(back) == wire_bytes


@prop
@given(segments())
def test_build_layout(seg):
    out = build(seg)
    opt_len = canonical_size(seg.options)
    assert len(out) == 20 + opt_len + len(seg.payload)
    assert out[12] >> 4 == 5 + opt_len // 4
    assert out[12] & 0x0F == seg.reserved
    assert out[13] == seg.flags
    assert out[16:18] == b"\0\0"  # checksum is always written as zero
    assert out[20 + opt_len :] == seg.payload


@prop
@given(segments())
def test_parse_accepts_bytearray_and_memoryview(seg):
    out = build(seg)
    assert parse(bytearray(out)) == seg
    assert parse(memoryview(out)) == seg
    assert parse(memoryview(bytearray(b"xx" + out))[2:]) == seg


@prop
@given(options())
def test_options_round_trip_alone(opts):
    seg = Segment(1, 2, 3, 4, ACK, 5, options=opts)
    assert parse(build(seg)).options == opts


@st.composite
def free_form_option_lists(draw):
    """Well-formed option bytes in any order, with NOPs, duplicates and trailing EOL.

    Returns (option bytes padded to 4, expected Options).
    """
    items = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("nop")),
                st.tuples(st.just("mss"), u16),
                st.tuples(st.just("ws"), u8),
                st.tuples(st.just("sackok")),
                st.tuples(st.just("ts"), u32, u32),
                st.tuples(st.just("sack"), st.lists(sack_block, min_size=1, max_size=4)),
                st.tuples(st.just("unknown"), unknown_kind, st.binary(max_size=6)),
            ),
            max_size=12,
        )
    )
    out = bytearray()
    expect = {}
    unknown = []
    for item in items:
        tag = item[0]
        if tag == "nop":
            enc = b"\x01"
        elif tag == "mss":
            enc = struct.pack("!BBH", 2, 4, item[1])
        elif tag == "ws":
            enc = bytes((3, 3, item[1]))
        elif tag == "sackok":
            enc = b"\x04\x02"
        elif tag == "ts":
            enc = struct.pack("!BBII", 8, 10, item[1], item[2])
        elif tag == "sack":
            blocks = item[1]
            enc = bytes((5, 2 + 8 * len(blocks))) + b"".join(
                struct.pack("!II", *b) for b in blocks
            )
        else:
            enc = bytes((item[1], 2 + len(item[2]))) + item[2]
        if len(out) + len(enc) > 40:
            break
        out += enc
        if tag == "unknown":
            unknown.append((item[1], item[2]))
        elif tag != "nop":
            expect.setdefault(tag, item[1:])  # the first of duplicates wins
    eol_garbage = b""
    if len(out) < 40 and draw(st.booleans()):
        eol_garbage = b"\x00" + draw(st.binary(max_size=40 - len(out) - 1))
        out += eol_garbage
    out += bytes(-len(out) & 3)
    ts = expect.get("ts")
    opts = Options(
        mss=expect["mss"][0] if "mss" in expect else None,
        wscale=expect["ws"][0] if "ws" in expect else None,
        sack_permitted="sackok" in expect,
        sack=tuple(tuple(b) for b in expect["sack"][0]) if "sack" in expect else (),
        ts_val=ts[0] if ts else None,
        ts_ecr=ts[1] if ts else None,
        unknown=tuple(unknown),
    )
    return bytes(out), opts


@prop
@given(free_form_option_lists(), st.binary(max_size=64))
def test_parse_free_form_options(opt_and_expected, payload):
    opt_bytes, expected = opt_and_expected
    data = header(doff=5 + len(opt_bytes) // 4) + opt_bytes + payload
    seg = parse(data)
    assert seg.options == expected
    assert seg.payload == payload
    # Re-encoding in the canonical layout preserves the decoded value whenever it fits.
    try:
        again = build(seg)
    except ValueError:
        assert canonical_size(expected) > 40
    else:
        assert parse(again) == seg


# -- fixed examples --------------------------------------------------------------------


def test_flag_values():
    assert (FIN, SYN, RST, PSH, ACK, URG, ECE, CWR) == (1, 2, 4, 8, 16, 32, 64, 128)


def test_package_reexports():
    for name in (
        "Segment Options NO_OPTIONS parse build MalformedSegment FIN SYN RST PSH ACK URG ECE"
        " CWR seq_add seq_sub seq_lt seq_le seq_gt seq_ge seq_in_window seq_max seq_min"
    ).split():
        assert hasattr(wire, name), name
    assert MalformedSegment is wire.segment.MalformedSegment
    assert issubclass(MalformedSegment, ValueError)


def test_syn_ack_bytes_exactly():
    seg = Segment(
        1234,
        80,
        0x01020304,
        0xA0B0C0D0,
        SYN | ACK,
        65535,
        options=Options(mss=1452, wscale=7, sack_permitted=True, ts_val=100, ts_ecr=7),
    )
    expected = (
        header(1234, 80, 0x01020304, 0xA0B0C0D0, doff=10, flags=0x12, window=65535)
        + b"\x02\x04\x05\xac"  # MSS 1452
        + b"\x01\x03\x03\x07"  # NOP, WS 7
        + b"\x04\x02\x08\x0a"  # SACK-permitted, TS kind/len
        + struct.pack("!II", 100, 7)
    )
    assert build(seg) == expected
    assert parse(expected) == seg


def test_option_less_segment_uses_shared_options():
    data = header(flags=ACK) + b"payload"
    seg = parse(data)
    assert seg.options is NO_OPTIONS
    assert seg.payload == b"payload"
    assert build(seg) == data


def test_nop_only_options_parse_as_no_options():
    seg = parse(header(doff=6) + b"\x01\x01\x01\x00")
    assert seg.options is NO_OPTIONS


def test_timestamp_fast_paths_agree_with_general_layout():
    opts = Options(ts_val=0xDEADBEEF, ts_ecr=42)
    assert _encode_options(opts) == b"\x01\x01\x08\x0a" + struct.pack("!II", 0xDEADBEEF, 42)
    data = build(Segment(5, 6, 7, 8, ACK | PSH, 9, b"abc", opts))
    assert data == header(5, 6, 7, 8, doff=8, flags=ACK | PSH, window=9) + _encode_options(
        opts
    ) + b"abc"
    assert parse(data).options == opts
    # Timestamps not in the fast-path position still parse through the general loop.
    moved = header(doff=8) + struct.pack("!BBII", 8, 10, 0xDEADBEEF, 42) + b"\x01\x01"
    assert parse(moved).options == opts


def test_sack_permitted_alone_and_sack_blocks_layout():
    opts = Options(sack_permitted=True, sack=((1, 2), (3, 4)))
    assert _encode_options(opts) == (
        b"\x01\x01\x04\x02" + b"\x01\x01\x05\x12" + struct.pack("!IIII", 1, 2, 3, 4)
    )


def test_unknown_options_are_encoded_and_padded():
    opts = Options(unknown=((30, b"\xaa"),))
    assert _encode_options(opts) == b"\x1e\x03\xaa\x00"
    assert parse(build(Segment(1, 2, 3, 4, 0, 0, options=opts))).options == opts


def test_empty_options_instance_builds_like_no_options():
    assert build(Segment(1, 2, 3, 4, ACK, 5, options=Options())) == build(
        Segment(1, 2, 3, 4, ACK, 5)
    )


def test_build_accepts_bytes_like_payloads():
    base = build(Segment(1, 2, 3, 4, ACK, 5, b"hello"))
    assert build(Segment(1, 2, 3, 4, ACK, 5, memoryview(b"xhello")[1:])) == base
    assert build(Segment(1, 2, 3, 4, ACK, 5, bytearray(b"hello"))) == base


def test_parse_non_byte_memoryview_formats():
    data = build(Segment(1, 2, 3, 4, ACK, 5, b"hi", Options(mss=1000)))
    assert parse(memoryview(data).cast("c")).options.mss == 1000
    assert parse(memoryview(data).cast("b")).payload == b"hi"
    words = array.array("I")
    words.frombytes(data + b"\0\0")  # 4-byte aligned copy: 2 bytes of extra payload
    assert parse(words).payload == b"hi\0\0"


@pytest.mark.parametrize(
    "flags,payload,expected",
    [
        (0, b"", 0),
        (SYN, b"", 1),
        (FIN, b"", 1),
        (SYN | FIN, b"", 2),
        (ACK | PSH, b"abc", 3),
        (FIN | ACK, b"abc", 4),
        (SYN | FIN | RST | ACK, b"x" * 10, 12),
        (0xFF, b"", 2),
    ],
)
def test_seg_len(flags, payload, expected):
    assert Segment(1, 2, 3, 4, flags, 5, payload).seg_len == expected


def test_segment_repr_tcpdump_style():
    seg = Segment(
        1234,
        80,
        100,
        200,
        SYN | ACK,
        29200,
        options=Options(mss=1452, wscale=7, sack_permitted=True, ts_val=1, ts_ecr=0),
    )
    assert repr(seg) == (
        "Segment(1234>80 S. seq=100 ack=200 win=29200 len=0 "
        "<mss 1452,wscale 7,sackOK,TS val 1 ecr 0>)"
    )
    assert repr(Segment(1, 2, 3, 0, SYN, 4)) == "Segment(1>2 S seq=3 win=4 len=0)"
    assert repr(Segment(1, 2, 3, 9, 0, 4, b"ab")) == "Segment(1>2 none seq=3 ack=9 win=4 len=2)"
    odd = Options(sack=((1, 2), (3, 4)), unknown=((30, b"\x01"), (31, b"")))
    full = Segment(1, 2, 3, 4, 0xFF, 5, b"", odd, urgent=7, reserved=0xA)
    assert repr(full) == (
        "Segment(1>2 FSRP.UEW seq=3 ack=4 win=5 urg=7 len=0 res=0xa "
        "<sack 2 {1:2}{3:4},opt-30:01,opt-31>)"
    )


def test_options_repr():
    assert repr(NO_OPTIONS) == "Options()"
    assert repr(Options(mss=1, wscale=2, sack_permitted=True, ts_val=3, ts_ecr=4)) == (
        "Options(mss=1, wscale=2, sack_permitted=True, ts_val=3, ts_ecr=4)"
    )
    assert repr(Options(sack=((1, 2),), unknown=((30, b"x"),))) == (
        "Options(sack=((1, 2),), unknown=((30, b'x'),))"
    )


def test_options_normalisation_equality_and_hash():
    assert Options(ts_val=5) == Options(ts_val=5, ts_ecr=0)
    assert Options(ts_ecr=5) == NO_OPTIONS  # TSecr alone is meaningless
    assert Options(sack=[[1, 2], [3, 4]]).sack == ((1, 2), (3, 4))
    assert Options(unknown=[[30, b"x"]]).unknown == ((30, b"x"),)
    assert Options(mss=5) != Options(mss=6)
    assert hash(Options(mss=5, sack=((1, 2),))) == hash(Options(mss=5, sack=((1, 2),)))
    assert Options(mss=5) != "mss=5"
    assert (NO_OPTIONS == object()) is False


def test_options_replace():
    opts = Options(mss=1000, ts_val=1, ts_ecr=2)
    changed = opts.replace(ts_val=9)
    assert changed == Options(mss=1000, ts_val=9, ts_ecr=2)
    assert opts.ts_val == 1  # original untouched
    assert opts.replace(ts_val=None).ts_ecr is None


def test_segment_equality():
    a = Segment(1, 2, 3, 4, ACK, 5, b"x", Options(mss=1))
    assert a == Segment(1, 2, 3, 4, ACK, 5, b"x", Options(mss=1))
    assert a == a
    for field, value in [
        ("src_port", 9), ("dst_port", 9), ("seq", 9), ("ack", 9), ("flags", 0),
        ("window", 9), ("urgent", 9), ("reserved", 1), ("options", NO_OPTIONS),
        ("payload", b"y"),
    ]:  # fmt: skip
        b = Segment(1, 2, 3, 4, ACK, 5, b"x", Options(mss=1))
        setattr(b, field, value)
        assert a != b, field
    assert a != (1, 2, 3)
    with pytest.raises(TypeError):
        hash(a)


def test_segment_keyword_construction():
    seg = Segment(src_port=1, dst_port=2, seq=3, ack=4, flags=ACK, window=5)
    assert seg.payload == b"" and seg.options is NO_OPTIONS
    assert seg.urgent == 0 and seg.reserved == 0


# -- build errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "opts",
    [
        Options(sack=((1, 2),) * 5),  # 5 blocks never fit
        Options(ts_val=1, sack=((1, 2),) * 4),  # 12 + 36 bytes
        Options(mss=1, wscale=1, sack_permitted=True, sack=((1, 2),) * 4),  # 4+4+4+36
        Options(unknown=((30, b"x" * 39),)),  # 41 bytes
        Options(unknown=((0, b""),)),  # kinds 0 and 1 are not TLV options
        Options(unknown=((1, b""),)),
        Options(unknown=((256, b""),)),
        Options(unknown=((30, b"x" * 254),)),
        Options(mss=70000),
        Options(wscale=256),
        Options(ts_val=2**32),
        Options(sack=((1, 2, 3),)),
    ],
)
def test_build_rejects_unencodable_options(opts):
    with pytest.raises(ValueError):
        build(Segment(1, 2, 3, 4, ACK, 5, options=opts))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"src_port": 65536},
        {"dst_port": -1},
        {"seq": 2**32},
        {"ack": -1},
        {"flags": 256},
        {"window": 65536},
        {"urgent": 65536},
        {"reserved": 16},
        {"reserved": -1},
    ],
)
def test_build_rejects_out_of_range_fields(kwargs):
    fields = dict(src_port=1, dst_port=2, seq=3, ack=4, flags=ACK, window=5)
    fields.update(kwargs)
    with pytest.raises(ValueError):
        build(Segment(**fields))
    # Same with options, to cover the option-carrying paths too.
    with pytest.raises(ValueError):
        build(Segment(**fields, options=Options(ts_val=1)))
    with pytest.raises(ValueError):
        build(Segment(**fields, options=Options(mss=1)))


def test_timestamp_options_are_shared_while_the_values_repeat():
    def stamped(ts_val, ts_ecr):
        return build(Segment(1, 2, 3, 4, ACK, 5, b"x", Options(ts_val=ts_val, ts_ecr=ts_ecr)))

    first = parse(stamped(7, 9)).options
    again = parse(stamped(7, 9)).options
    later = parse(stamped(8, 9)).options
    assert (first.ts_val, first.ts_ecr) == (7, 9) and again is first
    assert (later.ts_val, later.ts_ecr) == (8, 9) and later is not first
    zero = parse(stamped(0, 0)).options   # the values the shared one starts with
    assert (zero.ts_val, zero.ts_ecr, zero.sack, zero.mss) == (0, 0, (), None)
