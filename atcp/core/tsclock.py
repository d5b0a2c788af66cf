"""The timestamp clock of RFC 7323: what we put in TSval.

A millisecond clock (section 5.4: between 1 ms and 1 s per tick) taken from the ``now``
the core is given, plus a per-connection offset (section 5.4 and RFC 7323 appendix, as
RFC 6528 does for sequence numbers) so that TSval reveals nothing across connections.
Every TSval atcp sends, from a connection, a TIME-WAIT record or a SYN cookie, comes
from here.
"""

from __future__ import annotations

__all__ = ["ts_clock"]


def ts_clock(now: float, offset: int) -> int:
    """TSval at time ``now`` (seconds) for a connection whose clock offset is ``offset``."""
    return (int(now * 1000) + offset) & 0xFFFFFFFF
