"""`Transport`: one atcp connection as an `asyncio.Transport`.

It behaves like the loop's own TCP transport, so protocols and asyncio's streams work
unchanged. The differences come from where the buffers are:

* Writing: ``write()`` hands data to the core's send buffer (``Config.send_buffer``, the
  counterpart of a kernel socket's send buffer); what does not fit waits in the
  transport's own queue and is pushed as acknowledgments free space (SendSpace events).
  ``write()`` never blocks and never drops. As with asyncio over kernel TCP,
  ``get_write_buffer_size()`` is what the transport holds above that send buffer, so
  ``drain()`` returns once the data is in the send buffer, and blocks (the protocol gets
  ``pause_writing()``) once the send buffer is full and the queue above it crosses the
  high-water mark (64 KiB by default): a peer that stops reading stops the writer with
  at most ``send_buffer`` + high-water + one write held. (``tcp_info.send_queued`` is the
  send buffer's content, unacknowledged data included, like the kernel's SIOCOUTQ.)
* Reading: data is read out of the core's receive buffer and delivered with
  ``data_received`` as it arrives. ``pause_reading()`` stops reading, so the receive buffer
  fills and the window advertised to the peer closes (RFC 9293 3.8.6): real flow control.
  ``resume_reading()`` delivers what accumulated, then anything that was held back behind
  it (EOF, the end of the connection).
* Closing: ``close()`` sends a FIN once everything written has been handed to the core;
  ``write_eof()`` does the same but keeps reading (half-close). ``abort()`` sends a RST.
  ``connection_lost(None)`` comes when the connection is over: TIME-WAIT entered, or
  CLOSED. After a RST, a timeout or a refusal it carries the error
  (ConnectionResetError, TimeoutError...), which asyncio's streams then raise from reads
  and ``drain()``.

Protocols may be plain or buffered (`asyncio.BufferedProtocol`: data is copied into the
buffers they lend), and ``loop.start_tls`` accepts the transport, which is how TLS runs over
atcp (`atcp.aio.tls`).

``get_extra_info``: "peername" and "sockname" are UDP addresses (the peer's, the local
endpoint's); "socket" is None, because the UDP socket is shared by many connections and is
not a TCP socket (options like TCP_NODELAY do not apply to it); "udp_socket" gives it (an
`asyncio.trsock.TransportSocket`) for inspection; "tcp_info" is a fresh `TcpInfo`;
"tcp_ports" is (local TCP port, remote TCP port).
"""

from __future__ import annotations

import asyncio
import collections
import time
from asyncio import trsock

from ..core.info import tcp_info

__all__ = ["Transport"]

monotonic = time.monotonic

_HIGH_WATER = 64 * 1024
#: At most this much goes to ``data_received`` in one call (asyncio's socket transports
#: read 256 KiB at a time): a reader that pauses stops the rest, and no protocol gets the
#: whole receive buffer at once (a StreamReader holding a megabyte slows every read).
_READ_CHUNK = 256 * 1024
#: Writes after the connection was lost are dropped, as asyncio does; after this many a
#: warning is logged (asyncio.constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES).
_LOST_WRITES_WARNING = 5


class Transport(asyncio.Transport):
    """A TCP connection carried over UDP, with the `asyncio.Transport` interface."""

    #: ``loop.start_tls`` accepts the transport: it honours pause_reading() at once,
    #: set_protocol(), buffered protocols and ``_force_close`` (see `atcp.aio.tls`).
    _start_tls_compatible = True

    def __init__(self, endpoint, conn, protocol, server=None) -> None:
        super().__init__()
        self._endpoint = endpoint
        self._conn = conn
        self._protocol = protocol
        self._buffered = isinstance(protocol, asyncio.BufferedProtocol)
        self._forced: BaseException | None = None   # the error given to _force_close()
        self._server = server
        # Writes the send buffer had no room for; made by the first (an empty deque is
        # over 600 bytes, and an idle connection never needs one).
        self._queue: collections.deque[memoryview] | None = None
        self._queued = 0
        self._high = _HIGH_WATER
        self._low = _HIGH_WATER // 4
        self._protocol_paused = False     # pause_writing() was called
        self._reading_paused = False
        self._closing = False             # close() or abort() was called
        self._eof_written = False         # write_eof() (or close()) was called
        self._eof_pending = False         # the peer's EOF, held behind paused data
        self._eof_delivered = False
        self._done = False                # the core said ConnectionClosed
        self._error: BaseException | None = None
        self._lost = False                # connection_lost() was called
        self._resume_scheduled = False
        self._lost_writes = 0

    def __repr__(self) -> str:
        conn = self._conn
        state = "lost" if self._lost else str(conn.stack.state_of(conn))
        return (f"<atcp Transport {conn.local_port}->{conn.remote!r}:{conn.remote_port} "
                f"{state}>")

    # ------------------------------------------------------------------ diagnostics
    @property
    def endpoint(self):
        """The `Endpoint` (UDP socket and sans-I/O stack) carrying this connection."""
        return self._endpoint

    @property
    def connection(self):
        """The core `Connection` (read-only use: diagnostics and tests)."""
        return self._conn

    def get_extra_info(self, name, default=None):
        conn = self._conn
        if name == "peername":
            return conn.remote
        if name == "sockname":
            return self._endpoint.sockname
        if name == "socket":
            return None
        if name == "udp_socket":
            return trsock.TransportSocket(self._endpoint.sock)
        if name == "tcp_info":
            return tcp_info(conn, self._endpoint.io_path)
        if name == "tcp_ports":
            return (conn.local_port, conn.remote_port)
        return default

    # ------------------------------------------------------------------ protocol
    def set_protocol(self, protocol) -> None:
        self._protocol = protocol
        self._buffered = isinstance(protocol, asyncio.BufferedProtocol)

    def get_protocol(self):
        return self._protocol

    def _start(self) -> None:
        """The connection is established and its transport made: tell the protocol, then
        deliver anything that arrived before it was accepted."""
        self._call("connection_made", self)
        self._data_ready()
        if self._conn.eof:
            self._eof_arrived()

    def _call(self, name: str, *args):
        try:
            return getattr(self._protocol, name)(*args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._protocol_failed(name, exc)
            return None

    def _protocol_failed(self, name: str, exc: BaseException) -> None:
        """A protocol callback raised: report it as asyncio's transports do, and abort
        the connection (unless it is already being lost)."""
        self._endpoint.loop.call_exception_handler({
            "message": f"Fatal error: protocol.{name}() call failed.",
            "exception": exc,
            "transport": self,
            "protocol": self._protocol,
        })
        if name != "connection_lost":
            self.abort()

    # ------------------------------------------------------------------ reading
    def is_reading(self) -> bool:
        return not self._reading_paused and not self._closing and not self._lost

    def pause_reading(self) -> None:
        """Stop delivering data; the core keeps it and the advertised window closes."""
        if self._closing or self._reading_paused:
            return
        self._reading_paused = True

    def resume_reading(self) -> None:
        """Deliver what accumulated (soon, not from inside this call) and go on reading."""
        if self._closing or not self._reading_paused:
            return
        self._reading_paused = False
        if not self._resume_scheduled:
            self._resume_scheduled = True
            self._endpoint.loop.call_soon(self._resume_delivery)

    def _resume_delivery(self) -> None:
        self._resume_scheduled = False
        if self._reading_paused or self._lost:
            return
        self._data_ready()
        if self._reading_paused:
            return
        if self._eof_pending:
            self._eof_arrived()
        if self._done and not self._lost:
            self._call_connection_lost(self._error)
        self._endpoint._kick()   # reading may have opened the window: send the update

    def _data_ready(self) -> None:
        """DataReceived: hand the protocol everything in order, `_READ_CHUNK` at a time,
        until it pauses reading."""
        if self._reading_paused or self._closing or self._lost:
            return
        conn = self._conn
        now = monotonic()
        for _ in range(conn.readable() // _READ_CHUNK + 1):
            data = conn.read(_READ_CHUNK, now)
            if not data:
                return
            if self._buffered:
                self._feed_buffered(data)
            else:
                # `_call`, without looking the method up by name: once per message.
                try:
                    self._protocol.data_received(data)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._protocol_failed("data_received", exc)
            if len(data) < _READ_CHUNK or self._reading_paused or self._closing or self._lost:
                return

    def _feed_buffered(self, data: bytes) -> None:
        """Hand data to a `BufferedProtocol` (asyncio's TLS layer is one) through the
        buffers it lends with ``get_buffer``, as many as it takes."""
        view = memoryview(data)
        protocol = self._protocol
        try:
            while view:
                buf = protocol.get_buffer(len(view))
                n = min(len(buf), len(view))
                if not n:
                    raise RuntimeError("get_buffer() returned an empty buffer")
                buf[:n] = view[:n]
                protocol.buffer_updated(n)
                view = view[n:]
                if self._lost:
                    return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._protocol_failed("buffer_updated", exc)

    def _eof_arrived(self) -> None:
        """EofReceived: after the data before it, ``eof_received()``; a falsy answer closes
        the transport, as asyncio's transports do."""
        if self._closing or self._lost or self._eof_delivered:
            return
        if self._reading_paused or self._conn.readable():
            self._eof_pending = True
            return
        self._eof_pending = False
        self._eof_delivered = True
        if not self._call("eof_received"):
            self.close()

    def _finished(self, error) -> None:
        """ConnectionClosed: the core is done with the connection."""
        self._done = True
        self._error = error
        self._queue = None
        self._queued = 0
        if error is None and self._reading_paused and (self._conn.readable()
                                                       or self._eof_pending):
            return   # connection_lost waits until the paused reader took the data
        self._call_connection_lost(error)

    def _call_connection_lost(self, error) -> None:
        if self._lost:
            return
        if error is None:
            error = self._forced
        self._lost = True
        self._closing = True
        self._endpoint._transport_lost(self)
        if self._server is not None:
            self._server._detach(self)
        self._call("connection_lost", error)

    # ------------------------------------------------------------------ writing
    def write(self, data) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, "
                            f"not {type(data).__name__!r}")
        if self._eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data:
            return
        if self._done or self._lost:
            self._lost_writes += 1
            if self._lost_writes == _LOST_WRITES_WARNING:
                self._endpoint.loop.call_exception_handler({
                    "message": "atcp: writes to a lost connection are being dropped",
                    "transport": self,
                })
            return
        # bytes go to the core as they are; other buffers are counted in bytes.
        view = data if type(data) is bytes else memoryview(data).cast("B")
        if not self._queue:
            try:
                taken = self._conn.send(view, monotonic())
            except OSError:
                # The connection just ended (reset, timeout); its ConnectionClosed event is
                # on its way to connection_lost(). asyncio drops such writes too.
                self._endpoint._kick()
                return
            view = memoryview(view)[taken:] if taken < len(view) else None
        if view:
            if self._queue is None:
                self._queue = collections.deque()
            self._queue.append(memoryview(bytes(view)))   # the caller may reuse its buffer
            self._queued += len(view)
            self._maybe_pause_protocol()
        self._endpoint._kick()

    def writelines(self, list_of_data) -> None:
        self.write(b"".join(list_of_data))

    def _send_space(self) -> None:
        """SendSpace: move queued data into the core; finish a deferred close or EOF."""
        if not self._queue:
            return
        self._push()
        self._maybe_resume_protocol()
        if not self._queue and not self._done:
            if self._closing:
                self._close_conn()
            elif self._eof_written:
                self._shutdown_conn()

    def _push(self) -> None:
        queue = self._queue
        conn = self._conn
        now = monotonic()
        while queue:
            chunk = queue[0]
            try:
                taken = conn.send(chunk, now)
            except OSError:
                queue.clear()
                self._queued = 0
                return
            self._queued -= taken
            if taken < len(chunk):
                queue[0] = chunk[taken:]
                return
            queue.popleft()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """Send a FIN after the data written so far; reading goes on (half-close)."""
        if self._closing or self._eof_written:
            return
        self._eof_written = True
        if not self._queue:
            self._shutdown_conn()

    def _shutdown_conn(self) -> None:
        try:
            self._conn.shutdown(monotonic())
        except OSError:
            pass   # already reset or closed: the ConnectionClosed event says so
        self._endpoint._kick()

    def get_write_buffer_size(self) -> int:
        """Bytes written that the connection's send buffer has not taken yet."""
        return self._queued

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low, self._high)

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        for name, value in (("high", high), ("low", low)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise TypeError(f"{name} must be an int or None, not {type(value).__name__}")
        if high is None:
            high = _HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high = high
        self._low = low
        self._maybe_pause_protocol()
        self._maybe_resume_protocol()

    def _maybe_pause_protocol(self) -> None:
        if self._protocol_paused or self.get_write_buffer_size() <= self._high:
            return
        self._protocol_paused = True
        self._call_flow("pause_writing")

    def _maybe_resume_protocol(self) -> None:
        if not self._protocol_paused or self.get_write_buffer_size() > self._low:
            return
        self._protocol_paused = False
        self._call_flow("resume_writing")

    def _call_flow(self, name: str) -> None:
        try:
            getattr(self._protocol, name)()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._endpoint.loop.call_exception_handler({
                "message": f"protocol.{name}() failed",
                "exception": exc,
                "transport": self,
                "protocol": self._protocol,
            })

    # ------------------------------------------------------------------ closing
    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        """Stop reading; send a FIN after everything written (RFC 9293 3.10.4).

        ``connection_lost(None)`` follows once the connection is over (TIME-WAIT or
        CLOSED). Data still unread, or arriving after this, makes the core answer with a
        RST so the peer knows it was not read (RFC 1122 4.2.2.13), as kernel TCP does.
        """
        if self._closing or self._lost:
            return
        self._closing = True
        if self._done:
            self._lose_soon()   # a paused reader held connection_lost back: no longer
        elif not self._queue:
            self._close_conn()

    def _close_conn(self) -> None:
        try:
            self._conn.close(monotonic())
        except OSError:
            pass
        self._endpoint._kick()

    def abort(self) -> None:
        """Drop everything and send a RST (RFC 9293 3.10.5); ``connection_lost(None)``
        follows soon after."""
        if self._lost:
            return
        self._closing = True
        self._queue = None
        self._queued = 0
        if self._done:
            self._lose_soon()
            return
        self._conn.abort(monotonic())
        self._endpoint._kick()

    def _force_close(self, exc) -> None:
        """End the connection at once (RST) and report ``exc`` to ``connection_lost``:
        how asyncio's TLS layer ends a connection whose handshake or shutdown failed."""
        if self._lost:
            return
        if self._forced is None:
            self._forced = exc
        self.abort()

    def _lose_soon(self) -> None:
        self._endpoint.loop.call_soon(self._call_connection_lost, self._error)
