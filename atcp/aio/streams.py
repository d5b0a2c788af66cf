"""`open_connection` and `start_server`: asyncio's streams, over atcp.

They return asyncio's own `StreamReader`, `StreamWriter` and a `Server`, built with
`asyncio.StreamReaderProtocol` exactly as `asyncio.open_connection` and
`asyncio.start_server` build them, so ``read``, ``readline``, ``readexactly``, ``drain``,
``write_eof``, ``close``, ``wait_closed`` and ``get_extra_info`` behave as on kernel TCP:
``drain()`` waits while the connection's send buffer is full and the transport holds more
than its high-water mark above it, and a reader that stops reading closes the TCP window,
so a writer facing a reader that does not read stops with bounded memory on both sides.

With ``ssl=`` (and ``server_hostname=``, ``ssl_handshake_timeout=``) the streams run over
TLS, as with asyncio's own functions; see `create_connection` and `create_server`.
"""

from __future__ import annotations

import asyncio

from .api import create_connection, create_server

__all__ = ["open_connection", "start_server"]

_DEFAULT_LIMIT = 2 ** 16  # asyncio.streams._DEFAULT_LIMIT


async def open_connection(host: str, port: int, *, limit: int = _DEFAULT_LIMIT, **kwds):
    """Connect and return ``(reader, writer)``; keywords as for `create_connection`."""
    _check_limit(limit)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await create_connection(lambda: protocol, host, port, **kwds)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, writer


async def start_server(client_connected_cb, host=None, port=None, *,
                       limit: int = _DEFAULT_LIMIT, **kwds):
    """Serve ``client_connected_cb(reader, writer)`` (a function or coroutine function)
    for each connection; keywords as for `create_server`. Returns the `Server`."""
    if not callable(client_connected_cb):
        raise TypeError("client_connected_cb must be callable")
    _check_limit(limit)
    loop = asyncio.get_running_loop()

    def factory():
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        return asyncio.StreamReaderProtocol(reader, client_connected_cb, loop=loop)

    return await create_server(factory, host, port, **kwds)


def _check_limit(limit) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise TypeError(f"limit must be an int, not {type(limit).__name__}")
    if limit <= 0:
        raise ValueError(f"limit must be positive, got {limit}")
