"""The core's small pure helpers on their own: ISN (RFC 6528), RTO (RFC 6298), acceptability
(RFC 9293 3.10.7.4, RFC 5961 5), the RST verdict and challenge-ACK limiter (RFC 5961 3, 7),
the transition table, and the byte buffers."""

from __future__ import annotations

import random

import pytest

from atcp.core.acceptance import ack_acceptable_5961, ack_in_flight, segment_acceptable
from atcp.core.buffers import ReceiveBuffer, SendBuffer
from atcp.core.isn import IsnGenerator
from atcp.core.reset import ChallengeAckLimiter, RstVerdict, rst_verdict
from atcp.core.rto import RtoEstimator
from atcp.core.states import ALLOWED, SYNCHRONIZED, TRANSITIONS, State, diagram

# -- ISN (RFC 6528) -----------------------------------------------------------------------------

KEY = (("192.0.2.1", 4000), 80, 4000)


def test_isn_clock_ticks_every_4_microseconds() -> None:
    isn = IsnGenerator(b"s" * 32)
    base = isn(KEY, 0.0)
    assert isn(KEY, 0.000004) == (base + 1) & 0xFFFFFFFF
    assert isn(KEY, 1.0) == (base + 250_000) & 0xFFFFFFFF
    assert isn(KEY, 0.0) == base                          # a function of identity and time


def test_isn_depends_on_identity_and_secret() -> None:
    a, b = IsnGenerator(b"a" * 32), IsnGenerator(b"b" * 32)
    other = (("192.0.2.1", 4000), 80, 4001)
    assert a(KEY, 5.0) != a(other, 5.0)
    assert a(KEY, 5.0) != b(KEY, 5.0)
    assert 0 <= a(KEY, 1e9) < 2**32                      # wraps, never overflows


def test_isn_secret_must_be_long_enough() -> None:
    with pytest.raises(ValueError):
        IsnGenerator(b"short")


# -- RTO (RFC 6298) -----------------------------------------------------------------------------


def test_rto_first_and_later_samples() -> None:
    rto = RtoEstimator(1.0, 0.2, 60.0)
    assert rto.rto == 1.0 and rto.srtt is None
    rto.sample(0.5)                                       # 2.2: SRTT=R, RTTVAR=R/2
    assert (rto.srtt, rto.rttvar, rto.rto) == (0.5, 0.25, 1.5)
    rto.sample(0.1)                                       # 2.3
    assert rto.rttvar == pytest.approx(0.75 * 0.25 + 0.25 * 0.4)
    assert rto.srtt == pytest.approx(0.875 * 0.5 + 0.125 * 0.1)
    assert rto.rto == pytest.approx(rto.srtt + 4 * rto.rttvar)


def test_rto_bounds_backoff_and_negative_sample() -> None:
    rto = RtoEstimator(1.0, 0.2, 60.0)
    rto.sample(0.0)
    assert rto.rto == 0.2                                 # 2.4: the minimum
    for _ in range(12):
        rto.expired()
    assert rto.rto == 60.0 and rto.backoff == 12          # 5.5, capped
    rto.sample(-1.0)                                      # nonsense: ignored
    assert rto.rto == 60.0
    rto.sample(0.1)
    assert rto.backoff == 0 and rto.rto < 1.0


def test_rto_three_seconds_after_syn_loss_only_without_sample() -> None:
    rto = RtoEstimator(1.0, 0.2, 60.0)
    rto.expired()
    rto.reset_after_syn_loss()
    assert rto.rto == 3.0                                 # 5.7
    sampled = RtoEstimator(1.0, 0.2, 60.0)
    sampled.sample(0.1)
    before = sampled.rto
    sampled.reset_after_syn_loss()
    assert sampled.rto == before


# -- acceptability ------------------------------------------------------------------------------


@pytest.mark.parametrize("seq,seg_len,wnd,ok", [
    (100, 0, 0, True), (101, 0, 0, False), (99, 0, 0, False),       # zero window
    (100, 0, 10, True), (109, 0, 10, True), (110, 0, 10, False), (99, 0, 10, False),
    (100, 5, 0, False),                                              # data, zero window
    (95, 6, 10, True), (95, 5, 10, False), (109, 50, 10, True), (110, 1, 10, False),
])
def test_segment_acceptable_table(seq: int, seg_len: int, wnd: int, ok: bool) -> None:
    assert segment_acceptable(seq, seg_len, 100, wnd) is ok


def test_segment_acceptable_across_wrap() -> None:
    rcv_nxt = 2**32 - 5
    assert segment_acceptable(2, 0, rcv_nxt, 10)
    assert segment_acceptable(2**32 - 10, 6, rcv_nxt, 10)
    assert not segment_acceptable(5, 0, rcv_nxt, 10)


def test_ack_checks() -> None:
    assert ack_in_flight(101, 100, 200) and ack_in_flight(200, 100, 200)
    assert not ack_in_flight(100, 100, 200) and not ack_in_flight(201, 100, 200)
    assert ack_acceptable_5961(50, 100, 200, 50) and ack_acceptable_5961(200, 100, 200, 50)
    assert not ack_acceptable_5961(49, 100, 200, 50)
    assert not ack_acceptable_5961(201, 100, 200, 50)
    assert ack_acceptable_5961(2**32 - 10, 5, 20, 100)   # across the wrap


# -- RST verdict and challenge ACK limit (RFC 5961) ------------------------------------------


@pytest.mark.parametrize("seq,wnd,rfc5961,verdict", [
    (100, 10, True, RstVerdict.RESET), (101, 10, True, RstVerdict.CHALLENGE),
    (109, 10, True, RstVerdict.CHALLENGE), (110, 10, True, RstVerdict.DROP),
    (99, 10, True, RstVerdict.DROP), (105, 10, False, RstVerdict.RESET),
    (110, 10, False, RstVerdict.DROP), (100, 0, True, RstVerdict.RESET),
    (101, 0, True, RstVerdict.DROP),
])
def test_rst_verdict(seq: int, wnd: int, rfc5961: bool, verdict: RstVerdict) -> None:
    assert rst_verdict(seq, 100, wnd, rfc5961) is verdict


def test_challenge_ack_limiter_window() -> None:
    limiter = ChallengeAckLimiter(3, 5.0)
    assert [limiter.allow(1.0) for _ in range(5)] == [True, True, True, False, False]
    assert not limiter.allow(5.99)
    assert limiter.allow(6.0)                             # a new interval


# -- the state table ----------------------------------------------------------------------------


def test_transition_table_covers_every_state() -> None:
    sources = {a for a, _, _ in TRANSITIONS}
    targets = {b for _, b, _ in TRANSITIONS}
    assert sources | targets == set(State)
    assert State.CLOSED in targets and State.TIME_WAIT in sources
    assert (State.TIME_WAIT, State.ESTABLISHED) not in ALLOWED
    assert State.LISTEN not in SYNCHRONIZED and State.TIME_WAIT in SYNCHRONIZED


def test_diagram_lists_every_transition() -> None:
    text = diagram()
    assert text.startswith("digraph") and text.rstrip().endswith("}")
    assert text.count("->") == len(TRANSITIONS)


# -- buffers ------------------------------------------------------------------------------------


def test_send_buffer_limit_peek_release() -> None:
    buf = SendBuffer(10)
    assert buf.append(b"abcdefghijkl") == 10 and len(buf) == 10 and buf.free() == 0
    assert buf.append(b"x") == 0
    assert buf.peek(3, 4) == b"defg"
    assert buf.release(4) == 4 and buf.start == 4 and buf.end == 10
    assert buf.release(2) == 0
    assert buf.peek(8, 10) == b"ij"
    assert buf.append(memoryview(b"0123456789")) == 4


def test_receive_buffer_partial_reads_keep_the_stream_in_order() -> None:
    rng = random.Random(7)
    buf = ReceiveBuffer(1 << 20)
    written = bytearray()
    read = bytearray()
    for _ in range(2_000):
        if rng.random() < 0.5:
            piece = rng.randbytes(rng.randrange(1, 3000))
            buf.append(piece)
            written += piece
        else:
            read += buf.read(rng.choice((-1, rng.randrange(0, 5000))))
        assert len(buf) == len(written) - len(read)
        assert buf.free() == (1 << 20) - len(buf)
    read += buf.read(-1)
    assert read == written and len(buf) == 0
    buf.append(b"abcdef")
    assert buf.read(2) == b"ab" and buf.clear() == 4 and buf.read() == b""


def test_receive_buffer_read_and_clear() -> None:
    buf = ReceiveBuffer(8)
    buf.append(b"hello")
    assert buf.free() == 3 and buf.read(2) == b"he" and buf.read(-1) == b"llo"
    buf.append(b"xy")
    assert buf.read(10) == b"xy" and buf.clear() == 0


def test_receive_buffer_hands_a_lone_segment_over_without_copying() -> None:
    buf = ReceiveBuffer(1 << 16)
    payload = b"request" * 9
    buf.append(payload)
    assert len(buf) == len(payload) and buf.free() == (1 << 16) - len(payload)
    assert buf.read(-1) is payload and len(buf) == 0
    # More data behind it, a partial read, or a mutable buffer: the bytearray takes over.
    buf.append(b"abc")
    buf.append(bytearray(b"def"))
    assert buf.read(4) == b"abcd" and buf.read(-1) == b"ef"
    buf.append(b"ghij")
    assert buf.read(1) == b"g" and len(buf) == 3
    buf.append(b"kl")
    assert buf.read(-1) == b"hijkl"
    mutable = bytearray(b"xyz")
    buf.append(mutable)
    mutable[:] = b"???"
    assert buf.read(-1) == b"xyz"
