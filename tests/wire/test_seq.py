"""Sequence-number arithmetic modulo 2**32 (atcp.wire.seq)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from atcp.wire.seq import (
    MASK,
    seq_add,
    seq_ge,
    seq_gt,
    seq_in_window,
    seq_le,
    seq_lt,
    seq_max,
    seq_min,
    seq_sub,
)

u32 = st.integers(min_value=0, max_value=MASK)
# Numbers near the wrap point and near the 2**31 boundary, where mistakes hide.
edgy_u32 = st.one_of(
    u32,
    st.integers(min_value=MASK - 70000, max_value=MASK),
    st.integers(min_value=0, max_value=70000),
    st.integers(min_value=2**31 - 1000, max_value=2**31 + 1000),
)
forward = st.integers(min_value=1, max_value=2**31 - 1)  # a strictly-after distance
distance = st.integers(min_value=-(2**31) + 1, max_value=2**31 - 1)

prop = settings(deadline=None, max_examples=300)


# -- fixed examples ------------------------------------------------------------------


def test_mask():
    assert MASK == 2**32 - 1


def test_add_wraps():
    assert seq_add(MASK, 1) == 0
    assert seq_add(MASK, 2) == 1
    assert seq_add(0, -1) == MASK
    assert seq_add(5, 2**32) == 5
    assert seq_add(10, 20) == 30


def test_sub_examples():
    assert seq_sub(0, MASK) == 1
    assert seq_sub(MASK, 0) == -1
    assert seq_sub(5, 5) == 0
    assert seq_sub(2**31 - 1, 0) == 2**31 - 1
    # Exactly half the space apart is reported as the most negative distance.
    assert seq_sub(2**31, 0) == -(2**31)
    assert seq_sub(0, 2**31) == -(2**31)


def test_comparisons_across_wrap():
    assert seq_lt(MASK, 0)
    assert seq_lt(MASK - 10, 5)
    assert seq_gt(5, MASK - 10)
    assert not seq_lt(0, MASK)
    assert seq_le(MASK, 0) and seq_le(0, 0)
    assert seq_ge(0, MASK) and seq_ge(7, 7)
    assert not seq_gt(7, 7) and not seq_lt(7, 7)


def test_half_space_apart_is_ambiguous():
    # RFC 1982: comparison of numbers exactly 2**31 apart is undefined; this
    # implementation calls each one "before" the other (pinned so changes are noticed).
    assert seq_lt(0, 2**31) and seq_lt(2**31, 0)
    assert seq_gt(0, 2**31) and seq_gt(2**31, 0)


def test_max_min_examples():
    assert seq_max(MASK, 3) == 3
    assert seq_min(MASK, 3) == MASK
    assert seq_max(3, MASK) == 3
    assert seq_min(3, MASK) == MASK
    assert seq_max(4, 4) == 4 and seq_min(4, 4) == 4
    assert seq_max(10, 20) == 20 and seq_min(10, 20) == 10


def test_window_examples():
    left = MASK - 1
    assert seq_in_window(MASK - 1, left, 4)
    assert seq_in_window(MASK, left, 4)
    assert seq_in_window(0, left, 4)
    assert seq_in_window(1, left, 4)
    assert not seq_in_window(2, left, 4)
    assert not seq_in_window(MASK - 2, left, 4)
    assert not seq_in_window(left, left, 0)
    assert seq_in_window(left, left, 1) and not seq_in_window(seq_add(left, 1), left, 1)
    # A window of almost the whole space holds everything but the one number before left.
    assert seq_in_window(seq_add(left, -2), left, MASK)
    assert not seq_in_window(seq_add(left, -1), left, MASK)


# -- properties ------------------------------------------------------------------------


@prop
@given(edgy_u32, forward)
def test_add_forward_is_later(a, n):
    b = seq_add(a, n)
    assert seq_lt(a, b) and seq_le(a, b)
    assert seq_gt(b, a) and seq_ge(b, a)
    assert not seq_lt(b, a) and not seq_ge(a, b)


@prop
@given(edgy_u32, edgy_u32)
def test_trichotomy_and_antisymmetry(a, b):
    if seq_sub(a, b) == -(2**31):
        return  # the undefined half-space case, pinned separately above
    lt, eq, gt = seq_lt(a, b), a == b, seq_gt(a, b)
    assert lt + eq + gt == 1
    assert seq_lt(a, b) == seq_gt(b, a)
    assert seq_le(a, b) == (lt or eq) == seq_ge(b, a)
    assert not (seq_lt(a, b) and seq_lt(b, a))
    assert seq_sub(a, b) == -seq_sub(b, a)


@prop
@given(edgy_u32, distance)
def test_sub_inverts_add(a, d):
    b = seq_add(a, d)
    assert 0 <= b <= MASK
    assert seq_sub(b, a) == d
    assert seq_add(a, seq_sub(b, a)) == b


@prop
@given(edgy_u32, edgy_u32)
def test_sub_range_and_sign(a, b):
    d = seq_sub(a, b)
    assert -(2**31) <= d < 2**31
    assert seq_add(b, d) == a
    if d != -(2**31):
        assert (d < 0) == seq_lt(a, b)
        assert (d > 0) == seq_gt(a, b)


@prop
@given(edgy_u32, edgy_u32)
def test_max_min(a, b):
    hi, lo = seq_max(a, b), seq_min(a, b)
    assert {hi, lo} == {a, b}
    assert seq_ge(hi, lo)
    if seq_sub(a, b) != -(2**31):
        assert seq_max(a, b) == seq_max(b, a)
        assert seq_min(a, b) == seq_min(b, a)


@prop
@given(edgy_u32, st.integers(min_value=0, max_value=2**31 - 1), distance)
def test_window_membership_matches_offsets(left, size, d):
    x = seq_add(left, d)
    assert seq_in_window(x, left, size) == (0 <= d < size)


@prop
@given(
    st.integers(min_value=MASK - 2000, max_value=MASK),
    st.integers(min_value=0, max_value=4000),
    st.integers(min_value=-100, max_value=4100),
)
def test_window_near_wrap(left, size, d):
    x = seq_add(left, d)
    inside = seq_in_window(x, left, size)
    assert inside == (0 <= d < size)
    # Equivalent to the textbook double comparison (RFC 9293 3.4) for non-empty windows.
    if size:
        assert inside == (seq_le(left, x) and seq_lt(x, seq_add(left, size)))


@prop
@given(edgy_u32, edgy_u32)
def test_empty_window_holds_nothing(x, left):
    assert not seq_in_window(x, left, 0)
