"""Malformed and odd input to parse(): exact reasons, and totality on arbitrary bytes.

The corpus follows shared/notes/conformance.md, "Malformed input", and RFC 9293 MUST-64,
MUST-68 and MUST-69: parse either returns a Segment or raises MalformedSegment.
"""

import pickle
import struct

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from atcp.wire import ACK, FIN, RST, SYN, MalformedSegment, Segment, parse
from atcp.wire.errors import REASONS

prop = settings(deadline=None, max_examples=300)


def header(doff=5, flags=ACK, reserved=0, seq=1, ack=2, window=1000, csum=0, urg=0):
    return struct.pack(
        "!HHIIBBHHH", 4000, 80, seq, ack, (doff << 4) | reserved, flags, window, csum, urg
    )


def with_options(opt_bytes, payload=b""):
    """A header whose data offset covers opt_bytes (padded with zeros to 4)."""
    padded = opt_bytes + bytes(-len(opt_bytes) & 3)
    return header(doff=5 + len(padded) // 4) + padded + payload


def reason_of(data):
    with pytest.raises(MalformedSegment) as info:
        parse(data)
    assert info.value.reason in REASONS
    return info.value.reason


# -- the header ------------------------------------------------------------------------


@pytest.mark.parametrize("length", range(20))
def test_truncated_header(length):
    assert reason_of(header()[:length]) == "short-header"
    assert reason_of(b"\xff" * length) == "short-header"


@pytest.mark.parametrize("doff", range(5))
def test_data_offset_below_five(doff):
    assert reason_of(header(doff=doff)) == "bad-data-offset"
    assert reason_of(header(doff=doff) + b"\x01" * 60) == "bad-data-offset"


@pytest.mark.parametrize("doff", range(6, 16))
def test_data_offset_past_datagram(doff):
    # One byte short of the header the offset promises.
    assert reason_of(header(doff=doff) + b"\x01" * (doff * 4 - 21)) == "data-offset-overrun"


def test_data_offset_15_on_short_datagram():
    assert reason_of(header(doff=15)) == "data-offset-overrun"
    assert reason_of(header(doff=15) + b"\x01" * 39) == "data-offset-overrun"
    # Exactly 60 bytes is a full header of NOPs and parses.
    seg = parse(header(doff=15) + b"\x01" * 40)
    assert seg.payload == b""


# -- the option list -------------------------------------------------------------------


CORPUS = [
    # (description, option bytes, expected reason)
    ("kind without length byte", b"\x01\x01\x01\x02", "option-overrun"),
    ("unknown kind without length byte", b"\x01\x01\x01\x1e", "option-overrun"),
    ("MSS overrunning", b"\x01" * 5 + b"\x02\x04\x05", "option-overrun"),
    ("unknown kind overrunning", b"\x1e\x08\x00\x00", "option-overrun"),
    ("unknown kind max length", b"\x1e\xff\x00\x00", "option-overrun"),
    ("TS overrunning after NOPs", b"\x01\x01\x01\x01\x01\x01\x08\x0a\0\0\0\0", "option-overrun"),
    ("SACK overrunning", b"\x05\x0a" + b"\0" * 6, "option-overrun"),
    ("length 0", b"\x1e\x00\x00\x00", "option-length"),
    ("length 1", b"\x1e\x01\x00\x00", "option-length"),
    ("MSS length 0", b"\x02\x00\x00\x00", "option-length"),
    ("MSS length 1", b"\x02\x01\x00\x00", "option-length"),
    ("SACK length 1", b"\x05\x01\x00\x00", "option-length"),
    ("MSS length 3", b"\x02\x03\x05\x00", "option-fixed-length"),
    ("MSS length 5", b"\x02\x05\x05\xb4\x00", "option-fixed-length"),
    ("MSS length 2", b"\x02\x02\x00\x00", "option-fixed-length"),
    ("WS length 2", b"\x03\x02\x00\x00", "option-fixed-length"),
    ("WS length 4", b"\x03\x04\x07\x00", "option-fixed-length"),
    ("SACK-permitted length 3", b"\x04\x03\x00\x00", "option-fixed-length"),
    ("SACK-permitted length 4", b"\x04\x04\x00\x00", "option-fixed-length"),
    ("TS length 9", b"\x08\x09" + b"\0" * 8, "option-fixed-length"),
    ("TS length 11", b"\x08\x0b" + b"\0" * 9, "option-fixed-length"),
    ("TS length 2", b"\x08\x02\x00\x00", "option-fixed-length"),
    ("MSS length 40 running past", b"\x02\x28\x00\x00", "option-fixed-length"),
    ("SACK length 2 (no blocks)", b"\x05\x02\x00\x00", "sack-length"),
    ("SACK length 11 (2+8+1)", b"\x05\x0b" + b"\0" * 9, "sack-length"),
    ("SACK length 19 (2+16+1)", b"\x05\x13" + b"\0" * 17, "sack-length"),
    ("SACK length 35 (2+32+1)", b"\x05\x23" + b"\0" * 33, "sack-length"),
    ("SACK length 9", b"\x05\x09" + b"\0" * 7, "sack-length"),
    ("SACK with 5 blocks (42)", b"\x05\x2a" + b"\0" * 38, "sack-length"),
    ("malformed after a good MSS", b"\x02\x04\x05\xb4\x1e\x00", "option-length"),
    ("malformed after EOL-free NOP run", b"\x01" * 7 + b"\x03\x03\x07\x08\x0a", "option-overrun"),
    # A malformed duplicate is still malformed: the first-wins rule is for valid ones.
    ("duplicate MSS with bad length", b"\x02\x04\x05\xb4\x02\x03\x00", "option-fixed-length"),
]


@pytest.mark.parametrize(
    "opt_bytes,expected", [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS]
)
def test_malformed_options(opt_bytes, expected):
    assert reason_of(with_options(opt_bytes)) == expected
    assert reason_of(with_options(opt_bytes, payload=b"data after the header")) == expected


def test_every_reason_is_exercised():
    covered = {"short-header", "bad-data-offset", "data-offset-overrun"}
    covered |= {c[2] for c in CORPUS}
    assert covered == REASONS


@pytest.mark.parametrize("olen", [0, 1])
@pytest.mark.parametrize("kind", [2, 3, 4, 5, 6, 8, 30, 254, 255])
def test_option_length_zero_or_one_for_every_kind(kind, olen):
    assert reason_of(with_options(bytes((kind, olen)))) == "option-length"


def test_option_at_very_end_without_length_byte():
    # 40 option bytes: 39 NOPs then a lone MSS kind.
    assert reason_of(header(doff=15) + b"\x01" * 39 + b"\x02") == "option-overrun"


def test_option_exactly_filling_header_is_fine():
    opt = b"\x1e\x28" + bytes(range(38))  # kind 30, length 40: the whole option space
    seg = parse(header(doff=15) + opt + b"pay")
    assert seg.options.unknown == ((30, bytes(range(38))),)
    assert seg.payload == b"pay"


def test_malformed_segment_exception():
    exc = MalformedSegment("option-length", "kind 2 length 0 at 20")
    assert isinstance(exc, ValueError)
    assert exc.reason == "option-length"
    assert str(exc) == "option-length: kind 2 length 0 at 20"
    assert str(MalformedSegment("short-header")) == "short-header"
    again = pickle.loads(pickle.dumps(exc))
    assert again.reason == exc.reason and again.detail == exc.detail
    assert pickle.loads(pickle.dumps(MalformedSegment("sack-length"))).reason == "sack-length"


# -- odd but well-formed ---------------------------------------------------------------


def test_unknown_kind_30_length_4_is_skipped():
    seg = parse(with_options(b"\x1e\x04\xab\xcd" + b"\x02\x04\x05\xb4"))
    assert seg.options.unknown == ((30, b"\xab\xcd"),)
    assert seg.options.mss == 1460


def test_unknown_kind_length_2_has_empty_data():
    assert parse(with_options(b"\xfd\x02\x01\x01")).options.unknown == ((253, b""),)


def test_eol_followed_by_garbage_is_fine():
    seg = parse(with_options(b"\x02\x04\x05\xb4\x00\xff\x00\x07\x02\x01\x05"))
    assert seg.options.mss == 1460
    assert seg.options.unknown == ()
    # EOL as the very first option: everything after it is padding.
    assert parse(with_options(b"\x00\x02\x00\x05\x01")).options.mss is None


def test_duplicate_mss_keeps_the_first():
    seg = parse(with_options(b"\x02\x04\x05\xb4\x02\x04\x02\x18"))
    assert seg.options.mss == 1460
    assert seg.options.unknown == ()


def test_duplicates_of_every_known_option_keep_the_first():
    opts = (
        b"\x03\x03\x07" + b"\x03\x03\x02"
        + b"\x04\x02" + b"\x04\x02"
        + b"\x08\x0a" + struct.pack("!II", 1, 2) + b"\x08\x0a" + struct.pack("!II", 3, 4)
        + b"\x05\x0a" + struct.pack("!II", 5, 6)
    )  # fmt: skip
    o = parse(with_options(opts)).options
    assert o.wscale == 7
    assert o.sack_permitted is True
    assert (o.ts_val, o.ts_ecr) == (1, 2)
    assert o.sack == ((5, 6),)
    assert o.unknown == ()
    two_sacks = b"\x05\x0a" + struct.pack("!II", 5, 6) + b"\x05\x0a" + struct.pack("!II", 7, 8)
    o = parse(with_options(two_sacks)).options
    assert o.sack == ((5, 6),)


def test_window_scale_15_kept_as_received():
    assert parse(with_options(b"\x01\x03\x03\x0f")).options.wscale == 15
    assert parse(with_options(b"\x01\x03\x03\xff")).options.wscale == 255


def test_mss_zero_kept_as_received():
    assert parse(with_options(b"\x02\x04\x00\x00")).options.mss == 0


def test_four_sack_blocks_parse():
    blocks = [(i, i + 100) for i in (0, 0xFFFFFF00, 7, 2**31)]
    opt = b"\x01\x01\x05\x22" + b"".join(struct.pack("!II", *b) for b in blocks)
    assert parse(with_options(opt)).options.sack == tuple(blocks)


@pytest.mark.parametrize(
    "flags",
    [SYN | FIN, SYN | RST, FIN | RST, 0, 0xFF, SYN | FIN | RST | ACK],
    ids=["SF", "SR", "FR", "none", "all", "SFR."],
)
def test_odd_flag_combinations_are_kept(flags):
    seg = parse(header(flags=flags) + b"x")
    assert seg.flags == flags


@pytest.mark.parametrize("reserved", [1, 8, 15])
def test_reserved_bits_kept(reserved):
    seg = parse(header(reserved=reserved))
    assert seg.reserved == reserved
    assert seg.options.mss is None


def test_checksum_is_ignored():
    assert parse(header(csum=0xBEEF)) == parse(header(csum=0))


@pytest.mark.parametrize("value", [0, 1, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 1])
def test_extreme_sequence_numbers(value):
    seg = parse(header(seq=value, ack=value))
    assert (seg.seq, seg.ack) == (value, value)


# -- totality on arbitrary input --------------------------------------------------------


def _parse_or_malformed(data):
    try:
        seg = parse(data)
    except MalformedSegment as exc:
        assert exc.reason in REASONS
        return None
    assert isinstance(seg, Segment)
    assert type(seg.payload) is bytes
    assert 0 <= seg.reserved <= 15
    return seg


@prop
@given(st.binary(max_size=120))
@example(b"")
@example(b"\x00" * 20)
@example(b"\xff" * 60)
def test_arbitrary_bytes(data):
    _parse_or_malformed(data)
    _parse_or_malformed(bytearray(data))
    _parse_or_malformed(memoryview(data))


@prop
@given(
    st.integers(min_value=0, max_value=15),
    st.integers(min_value=0, max_value=15),
    st.integers(min_value=0, max_value=255),
    st.binary(max_size=100),
)
def test_arbitrary_options_after_valid_header(doff, reserved, flags, rest):
    data = header(doff=doff, reserved=reserved, flags=flags) + rest
    seg = _parse_or_malformed(data)
    if seg is not None:
        assert seg.payload == data[doff * 4 :]


# Option-shaped noise: mostly plausible kinds and lengths, to reach deep into the loop.
option_chunk = st.one_of(
    st.just(b"\x01"),
    st.just(b"\x00"),
    st.builds(
        lambda kind, olen, body: bytes((kind, olen)) + body,
        st.sampled_from([2, 3, 4, 5, 8, 30, 255]),
        st.integers(min_value=0, max_value=42),
        st.binary(max_size=40),
    ),
    st.binary(min_size=1, max_size=4),
)


@prop
@given(st.lists(option_chunk, max_size=10), st.binary(max_size=30))
def test_option_shaped_noise(chunks, payload):
    opt = b"".join(chunks)[:40]
    data = with_options(opt, payload)
    _parse_or_malformed(data)
    # Also with the data offset claiming the whole option space.
    _parse_or_malformed(header(doff=15) + opt + bytes(40 - len(opt)) + payload)
