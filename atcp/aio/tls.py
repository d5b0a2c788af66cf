"""TLS over atcp: asyncio's own TLS layer (``loop.start_tls``) on top of an atcp `Transport`.

Theory of operation
-------------------
TLS needs nothing from TCP but an ordered byte stream, so atcp does not implement it: a
connection is opened (or accepted) in the clear, then upgraded with ``loop.start_tls``,
which puts asyncio's `SSLProtocol` between the atcp transport and the application's
protocol and hands back the TLS transport the application uses. The application's
``connection_made`` is called with that TLS transport once the handshake is over, never
with the clear one, exactly as with ``loop.create_connection(ssl=...)``.

Until the upgrade starts, the clear connection belongs to a placeholder protocol that stops
reading at once, so that the peer's first TLS record (a ClientHello that arrives with the
handshake's last ACK, say) waits in the connection's receive buffer for the TLS layer.

asyncio's loops accept any transport that declares ``_start_tls_compatible``; uvloop's
``start_tls`` takes only its own transports, so on other loops `start_tls` here performs the
same few steps itself with asyncio's `SSLProtocol` (it only needs the loop's public
methods): pause reading, swap the protocol, start the handshake, resume reading, wait.

TLS has no half-close: on a TLS transport ``can_write_eof()`` is False. A failed
handshake (a certificate that does not verify, a timeout) raises from
`create_connection`/`open_connection` and resets the atcp connection; on a server it ends
only that connection, quietly, as asyncio's servers do.
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
from asyncio import sslproto

__all__ = ["start_tls", "client_context", "check_client_options", "check_server_options",
           "server_factory", "Placeholder"]


async def start_tls(transport, protocol, sslcontext, *, server_side: bool = False,
                    server_hostname: str | None = None,
                    ssl_handshake_timeout: float | None = None,
                    ssl_shutdown_timeout: float | None = None):
    """Upgrade ``transport`` to TLS for ``protocol``; return the TLS transport.

    Like ``loop.start_tls`` (which it calls when the loop accepts an atcp transport): the
    caller then calls ``protocol.connection_made`` with the returned transport.
    """
    loop = asyncio.get_running_loop()
    options = dict(server_side=server_side, server_hostname=server_hostname,
                   ssl_handshake_timeout=ssl_handshake_timeout,
                   ssl_shutdown_timeout=ssl_shutdown_timeout)
    if isinstance(loop, asyncio.BaseEventLoop):
        return await loop.start_tls(transport, protocol, sslcontext, **options)
    return await _start_tls_any_loop(loop, transport, protocol, sslcontext, **options)


async def _start_tls_any_loop(loop, transport, protocol, sslcontext, *, server_side,
                              server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout):
    if not isinstance(sslcontext, _ssl.SSLContext):
        raise TypeError(f"sslcontext must be an ssl.SSLContext, not {sslcontext!r}")
    waiter = loop.create_future()
    tls = sslproto.SSLProtocol(loop, protocol, sslcontext, waiter, server_side,
                               server_hostname, call_connection_made=False,
                               ssl_handshake_timeout=ssl_handshake_timeout,
                               ssl_shutdown_timeout=ssl_shutdown_timeout)
    # Nothing may reach the TLS layer before it has its transport.
    transport.pause_reading()
    transport.set_protocol(tls)
    made = loop.call_soon(tls.connection_made, transport)
    resumed = loop.call_soon(transport.resume_reading)
    try:
        await waiter
    except BaseException:
        transport.close()
        made.cancel()
        resumed.cancel()
        raise
    return tls._app_transport


def client_context(ssl, server_hostname: str | None):
    """The SSLContext for a client's ``ssl=`` argument (True: the system's defaults, with
    the hostname check off when ``server_hostname`` is ``""``)."""
    if isinstance(ssl, _ssl.SSLContext):
        return ssl
    context = _ssl.create_default_context()
    if not server_hostname:
        context.check_hostname = False
    return context


def check_client_options(host, ssl, server_hostname, ssl_handshake_timeout,
                         ssl_shutdown_timeout) -> str | None:
    """Validate the TLS keywords of a client call as asyncio does; return the name to
    verify the server's certificate against (the host unless given)."""
    if ssl is not None and not isinstance(ssl, (bool, _ssl.SSLContext)):
        raise TypeError(f"ssl must be an ssl.SSLContext, a bool or None, not {ssl!r}")
    if not ssl:
        for name, value in (("server_hostname", server_hostname),
                            ("ssl_handshake_timeout", ssl_handshake_timeout),
                            ("ssl_shutdown_timeout", ssl_shutdown_timeout)):
            if value is not None:
                raise ValueError(f"{name} is only meaningful with ssl")
        return None
    _check_timeouts(ssl_handshake_timeout, ssl_shutdown_timeout)
    return host if server_hostname is None else server_hostname


def check_server_options(ssl, ssl_handshake_timeout, ssl_shutdown_timeout) -> None:
    """Validate the TLS keywords of a server call as asyncio does."""
    if ssl is not None and not isinstance(ssl, _ssl.SSLContext):
        raise TypeError(f"ssl must be an ssl.SSLContext or None for a server, not {ssl!r}")
    if ssl is None:
        for name, value in (("ssl_handshake_timeout", ssl_handshake_timeout),
                            ("ssl_shutdown_timeout", ssl_shutdown_timeout)):
            if value is not None:
                raise ValueError(f"{name} is only meaningful with ssl")
        return
    _check_timeouts(ssl_handshake_timeout, ssl_shutdown_timeout)


def _check_timeouts(*timeouts) -> None:
    for value in timeouts:
        if value is not None and not value > 0:
            raise ValueError(f"TLS timeouts must be positive numbers of seconds, got {value!r}")


class Placeholder(asyncio.Protocol):
    """Owns a clear connection until the TLS upgrade takes it over; reads nothing."""

    def __init__(self) -> None:
        self.transport = None
        self.lost: BaseException | None = None
        self.is_lost = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.pause_reading()

    def eof_received(self) -> bool:
        return True   # held while paused; the TLS layer sees it once it reads

    def connection_lost(self, exc) -> None:
        self.is_lost = True
        self.lost = exc


def server_factory(protocol_factory, sslcontext, ssl_handshake_timeout,
                   ssl_shutdown_timeout):
    """A protocol factory for atcp's server that runs TLS on every accepted connection and
    gives the application's protocol the TLS transport once the handshake succeeds."""
    handshakes: set[asyncio.Task] = set()   # strong references while they run

    def factory():
        protocol = protocol_factory()
        return _ServerHandshake(protocol, sslcontext, ssl_handshake_timeout,
                                ssl_shutdown_timeout, handshakes)

    return factory


class _ServerHandshake(Placeholder):
    def __init__(self, protocol, sslcontext, handshake_timeout, shutdown_timeout,
                 tasks: set) -> None:
        super().__init__()
        self._protocol = protocol
        self._context = sslcontext
        self._timeouts = dict(ssl_handshake_timeout=handshake_timeout,
                              ssl_shutdown_timeout=shutdown_timeout)
        self._tasks = tasks

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        task = asyncio.get_running_loop().create_task(self._handshake())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handshake(self) -> None:
        transport = self.transport
        if self.is_lost or transport.is_closing():
            return
        try:
            tls_transport = await start_tls(transport, self._protocol, self._context,
                                            server_side=True, **self._timeouts)
        except OSError:
            # A failed handshake (ssl.SSLError), a reset or a timeout costs only this
            # connection; start_tls has closed it.
            return
        self._protocol.connection_made(tls_transport)
