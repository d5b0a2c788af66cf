"""`Server`: what `create_server` and `start_server` return, shaped like `asyncio.Server`.

A server owns one endpoint (UDP socket) per bound address, each with a listener on the
server's TCP port. Established connections are accepted as soon as the server is serving
(before that they wait in the listener's accept queue, up to ``backlog``, as they would in
a kernel's); each gets a protocol from the factory and a `Transport`.

``close()`` stops listening (connections not yet accepted are reset) and leaves accepted
connections alone; each endpoint closes its socket after its last connection is over.
``wait_closed()`` returns once the server is closed and every connection it accepted is
over, as in Python 3.12.
"""

from __future__ import annotations

import asyncio
from asyncio import trsock

__all__ = ["Server"]


class Server(asyncio.AbstractServer):
    """Listening atcp endpoints; use as ``async with server:`` or ``serve_forever()``."""

    def __init__(self, loop, protocol_factory, endpoints, tcp_ports, backlog) -> None:
        self._loop = loop
        self._protocol_factory = protocol_factory
        self._endpoints = list(endpoints)
        self._bindings = [(ep, ep.listen(port, backlog, self))
                          for ep, port in zip(self._endpoints, tcp_ports)]
        self._serving = False
        self._closed = False
        self._active: set = set()
        self._waiters: list[asyncio.Future] = []
        self._serving_forever_fut: asyncio.Future | None = None

    def __repr__(self) -> str:
        return f"<atcp Server sockets={self.addresses!r}>"

    # ------------------------------------------------------------------ information
    def get_loop(self):
        return self._loop

    @property
    def sockets(self) -> tuple:
        """The bound UDP sockets (as `asyncio.trsock.TransportSocket`); empty once closed."""
        if self._closed:
            return ()
        return tuple(trsock.TransportSocket(ep.sock) for ep in self._endpoints)

    @property
    def addresses(self) -> list:
        """The bound UDP addresses, e.g. ``[("127.0.0.1", 7000)]``; empty once closed."""
        if self._closed:
            return []
        return [ep.sockname for ep in self._endpoints]

    @property
    def tcp_ports(self) -> list[int]:
        """The TCP port listened on at each address (the UDP port unless set otherwise)."""
        return [listener.port for _, listener in self._bindings]

    @property
    def endpoints(self) -> list:
        """The `Endpoint` objects (diagnostics and tests)."""
        return list(self._endpoints)

    def is_serving(self) -> bool:
        return self._serving

    # ------------------------------------------------------------------ serving
    def _start(self) -> None:
        if self._serving or self._closed:
            return
        self._serving = True
        for endpoint, listener in self._bindings:
            endpoint.accept_pending(listener, self)

    async def start_serving(self) -> None:
        self._start()
        await asyncio.sleep(0)

    async def serve_forever(self) -> None:
        if self._serving_forever_fut is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._closed:
            raise RuntimeError(f"server {self!r} is closed")
        self._start()
        self._serving_forever_fut = self._loop.create_future()
        try:
            await self._serving_forever_fut
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever_fut = None

    def _attach(self, transport) -> None:
        self._active.add(transport)

    def _detach(self, transport) -> None:
        self._active.discard(transport)
        self._wake_if_done()

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Stop listening; accepted connections go on until they close."""
        if self._closed:
            return
        self._closed = True
        self._serving = False
        for endpoint, listener in self._bindings:
            endpoint.stop_listening(listener)
        fut = self._serving_forever_fut
        if fut is not None and not fut.done():
            fut.cancel()
        self._wake_if_done()

    def close_clients(self) -> None:
        """Close every accepted connection (FIN after pending data)."""
        for transport in list(self._active):
            transport.close()

    def abort_clients(self) -> None:
        """Abort every accepted connection (RST)."""
        for transport in list(self._active):
            transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the server is closed and all its connections are over."""
        if self._closed and not self._active:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter

    def _wake_if_done(self) -> None:
        if not self._closed or self._active:
            return
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
