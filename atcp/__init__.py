"""atcp: TCP (RFC 9293) in pure Python on asyncio, carried inside UDP datagrams.

The API mirrors asyncio's own TCP API::

    reader, writer = await atcp.open_connection("127.0.0.1", 7000)
    server = await atcp.start_server(handle, "127.0.0.1", 7000)
    transport, protocol = await atcp.create_connection(factory, "127.0.0.1", 7000)
    server = await atcp.create_server(factory, "127.0.0.1", 7000)

Every entry point takes ``config=`` (`Config`, all tunables and their defaults) and
``impairment=`` (`Impairment`, loss injection on the datagrams it sends). Errors are the
ones kernel TCP gives: ConnectionResetError, ConnectionRefusedError, TimeoutError, OSError
EADDRINUSE. Structured protocol events are off until ``atcp.log.enable()``.
"""

from . import log
from .aio import (Server, Transport, create_connection, create_server, open_connection,
                  start_server)
from .config import Config
from .core.info import TcpInfo
from .core.states import State
from .impair import Impairment

__version__ = "0.1.0"

__all__ = [
    "open_connection", "start_server", "create_connection", "create_server",
    "Config", "Impairment", "Server", "Transport", "TcpInfo", "State", "log",
]
