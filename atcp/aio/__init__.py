"""The asyncio edge of atcp: endpoints (UDP sockets), transports, servers and streams."""

from .api import create_connection, create_server
from .endpoint import Endpoint
from .server import Server
from .streams import open_connection, start_server
from .tls import start_tls
from .transport import Transport

__all__ = ["create_connection", "create_server", "open_connection", "start_server",
           "start_tls", "Endpoint", "Server", "Transport"]
