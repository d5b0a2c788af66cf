"""What the protocol core tells the application layer.

The core never calls into the application. After feeding it a datagram, a timer tick or an
application call, the caller drains `Stack.next_event()` and acts on these small records.
"""

from __future__ import annotations

__all__ = [
    "Event", "Connected", "Accepted", "DataReceived", "EofReceived", "SendSpace",
    "ConnectionClosed",
]


class Event:
    __slots__ = ("conn",)

    def __init__(self, conn) -> None:
        self.conn = conn

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.conn!r})"


class Connected(Event):
    """An active open reached ESTABLISHED."""
    __slots__ = ()


class Accepted(Event):
    """A passive open reached ESTABLISHED and waits in its listener's accept queue."""
    __slots__ = ("listener",)

    def __init__(self, conn, listener) -> None:
        super().__init__(conn)
        self.listener = listener


class DataReceived(Event):
    """New in-order data is ready in the receive buffer (read it with `Connection.read`)."""
    __slots__ = ()


class EofReceived(Event):
    """The peer's FIN arrived after all its data: no more data will come."""
    __slots__ = ()


class SendSpace(Event):
    """Acknowledged data left the send buffer after a ``send()`` found it full (took less
    than it was offered), so there is room to write again. Once per such wait."""
    __slots__ = ()


class ConnectionClosed(Event):
    """The connection is over for the application.

    ``error`` is None after an orderly close (TIME-WAIT entered, or LAST-ACK completed), or
    the exception the application should see: ConnectionResetError, ConnectionRefusedError
    or TimeoutError.
    """
    __slots__ = ("error",)

    def __init__(self, conn, error: BaseException | None) -> None:
        super().__init__(conn)
        self.error = error

    def __repr__(self) -> str:
        return f"ConnectionClosed({self.conn!r}, error={self.error!r})"
