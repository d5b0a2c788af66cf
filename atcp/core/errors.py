"""The exceptions a connection ends with, made the way the socket module makes them.

Applications already know these from kernel TCP: the same classes, errno values and
messages, so ``except ConnectionResetError`` works unchanged over atcp.
"""

from __future__ import annotations

import errno

__all__ = ["reset_error", "refused_error", "timeout_error", "address_in_use", "ProtocolUsageError"]


def reset_error() -> ConnectionResetError:
    """The peer reset the connection (an accepted RST, RFC 9293 3.10.7.4)."""
    return ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")


def refused_error() -> ConnectionRefusedError:
    """A RST answered our SYN (RFC 9293 3.10.7.3)."""
    return ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")


def timeout_error() -> TimeoutError:
    """Retransmissions were exhausted (RFC 9293 3.8.3, R2)."""
    return TimeoutError(errno.ETIMEDOUT, "Connection timed out")


def address_in_use(what: str) -> OSError:
    return OSError(errno.EADDRINUSE, f"Address already in use: {what}")


class ProtocolUsageError(OSError):
    """An application call that the connection's state does not allow (RFC 9293 3.10:
    "connection closing", "connection does not exist")."""
