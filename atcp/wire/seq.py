"""Sequence-number arithmetic modulo 2**32 (RFC 9293 section 3.4, RFC 1982).

TCP sequence numbers are 32-bit and wrap, so "before" and "after" are only meaningful
for numbers less than 2**31 apart: ``a`` comes before ``b`` when the 32-bit difference
``(a - b) mod 2**32`` has its top bit set, i.e. when walking forward from ``a`` reaches
``b`` in fewer than 2**31 steps.  This is RFC 1982's serial-number comparison with
SERIAL_BITS = 32.  Two numbers exactly 2**31 apart are each "before" the other under this
rule; RFC 1982 leaves that case undefined, and TCP never relies on it because windows are
at most 2**30 (RFC 7323 section 2.3).

Every function takes and returns plain ints in ``[0, 2**32)``; they are hot-path helpers,
so they are written as single expressions with no validation.
"""

MASK = 0xFFFFFFFF
_HALF = 0x80000000

__all__ = [
    "MASK",
    "seq_add",
    "seq_sub",
    "seq_lt",
    "seq_le",
    "seq_gt",
    "seq_ge",
    "seq_in_window",
    "seq_max",
    "seq_min",
]


def seq_add(a: int, n: int) -> int:
    """Return ``a + n`` modulo 2**32 (``n`` may be negative)."""
    return (a + n) & MASK


def seq_sub(a: int, b: int) -> int:
    """Return the signed distance ``a - b`` in ``[-2**31, 2**31)``."""
    return ((a - b + _HALF) & MASK) - _HALF


def seq_lt(a: int, b: int) -> bool:
    """``a`` is strictly before ``b``."""
    return ((a - b) & _HALF) != 0


def seq_le(a: int, b: int) -> bool:
    """``a`` is before or equal to ``b``."""
    return a == b or ((a - b) & _HALF) != 0


def seq_gt(a: int, b: int) -> bool:
    """``a`` is strictly after ``b``."""
    return ((b - a) & _HALF) != 0


def seq_ge(a: int, b: int) -> bool:
    """``a`` is after or equal to ``b``."""
    return a == b or ((b - a) & _HALF) != 0


def seq_in_window(x: int, left: int, size: int) -> bool:
    """``left <= x < left + size`` modulo 2**32; an empty window (``size == 0``) holds nothing.

    ``size`` must be in ``[0, 2**32)``.  Unlike chaining ``seq_le``/``seq_lt`` this is a
    single unsigned comparison of the offset of ``x`` from ``left``.
    """
    return ((x - left) & MASK) < size


def seq_max(a: int, b: int) -> int:
    """The later of ``a`` and ``b``."""
    return b if ((a - b) & _HALF) else a


def seq_min(a: int, b: int) -> int:
    """The earlier of ``a`` and ``b``."""
    return a if ((a - b) & _HALF) else b
