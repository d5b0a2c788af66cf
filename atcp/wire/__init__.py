"""The wire layer: segment codec and sequence-number arithmetic (no protocol state).

``parse`` turns one UDP payload into a :class:`Segment` or raises
:class:`MalformedSegment`; ``build`` does the reverse.  The ``seq_*`` helpers compare and
add sequence numbers modulo 2**32.
"""

from .errors import MalformedSegment
from .segment import (
    ACK,
    CWR,
    ECE,
    FIN,
    NO_OPTIONS,
    PSH,
    RST,
    SYN,
    URG,
    Options,
    Segment,
    build,
    parse,
)
from .seq import (
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

__all__ = [
    "Segment",
    "Options",
    "NO_OPTIONS",
    "parse",
    "build",
    "MalformedSegment",
    "FIN",
    "SYN",
    "RST",
    "PSH",
    "ACK",
    "URG",
    "ECE",
    "CWR",
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
