"""Errors raised by the wire codec."""

__all__ = ["MalformedSegment", "REASONS"]

# The stable short strings carried in MalformedSegment.reason.  Counters and logs key on
# them, so they never change; add new ones rather than renaming.
REASONS = frozenset(
    {
        "short-header",  # datagram shorter than the 20-byte fixed header
        "bad-data-offset",  # data offset < 5 words
        "data-offset-overrun",  # data offset points past the end of the datagram
        "option-overrun",  # option kind without its length byte, or option past the header
        "option-length",  # option length 0 or 1 (RFC 9293 MUST-68)
        "option-fixed-length",  # MSS != 4, WS != 3, SACK-permitted != 2, timestamps != 10
        "sack-length",  # SACK length not 2 + 8n with n in 1..4
    }
)


class MalformedSegment(ValueError):
    """A datagram that is not a well-formed TCP segment.

    ``reason`` is one of the short strings in :data:`REASONS`; ``detail`` is optional
    free text for humans (offsets, the offending values).
    """

    def __init__(self, reason: str, detail: str | None = None) -> None:
        if detail is None:
            super().__init__(reason)
        else:
            super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        if self.detail is None:
            return self.reason
        return f"{self.reason}: {self.detail}"
