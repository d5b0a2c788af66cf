"""`create_connection` and `create_server`: the event loop's methods, over atcp.

Addresses are UDP addresses; the TCP port defaults to the same number (the wire format's
convention) and can be set apart with ``tcp_port=``.

Client connections to one peer address share a UDP socket (an ephemeral port), connected
to that address, and its sans-I/O stack, which gives each connection its own ephemeral TCP
port -- as a server's connections share its socket. The socket stays open while any of its
connections lives or waits in TIME-WAIT (2*MSL, if this side closed first), then closes
itself. So a thousand connections to one server cost one file descriptor, not a thousand,
and their TIME-WAIT records a few hundred bytes each, not a socket each. ICMP
port-unreachable on that socket refuses every connection to the peer still opening, as it
concerns them all.

A connection gets a socket of its own when it asks for ``local_addr`` or an
``impairment``, or when the shared stack has no room left (``Config.max_connections``, or
no free ephemeral TCP port); connections share only with others of an equal ``config``.
As with kernel TCP, a new connection from the same ``local_addr`` fails with EADDRINUSE
until the old one's TIME-WAIT is over.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl as _ssl
import weakref
from collections.abc import Callable, Iterable

from ..config import Config
from ..impair import Impairment
from . import tls
from .endpoint import Endpoint, normalize_addr, open_udp_socket
from .server import Server

__all__ = ["create_connection", "create_server"]


async def create_connection(protocol_factory: Callable[[], asyncio.BaseProtocol], host: str,
                            port: int, *, tcp_port: int | None = None, local_addr=None,
                            local_tcp_port: int | None = None, family: int = 0,
                            config: Config | None = None,
                            impairment: Impairment | None = None,
                            ssl: _ssl.SSLContext | bool | None = None,
                            server_hostname: str | None = None,
                            ssl_handshake_timeout: float | None = None,
                            ssl_shutdown_timeout: float | None = None):
    """Open a connection to UDP ``host:port``, TCP port ``tcp_port`` (default ``port``).

    Returns ``(transport, protocol)`` once the connection is ESTABLISHED, like
    `asyncio.loop.create_connection`. Raises ConnectionRefusedError when a RST answers the
    SYN (no listener on that TCP port) or the host reports the UDP port unreachable, and
    TimeoutError (errno ETIMEDOUT) when ``config.syn_retries`` SYNs go unanswered. When the
    name resolves to several addresses they are tried in turn, as asyncio does.

    ``ssl`` (an `ssl.SSLContext`, or True for the system's default context) runs TLS over
    the connection (`atcp.aio.tls`): the returned transport is then the TLS transport, and
    the protocol's ``connection_made`` comes after the handshake. The server's certificate
    is checked against ``server_hostname`` (default ``host``; ``""`` skips the name check);
    a failed check raises `ssl.SSLCertVerificationError`. ``ssl_handshake_timeout`` and
    ``ssl_shutdown_timeout`` are as in asyncio (60 s and 30 s by default).
    """
    if not callable(protocol_factory):
        raise TypeError("protocol_factory must be callable")
    hostname = tls.check_client_options(host, ssl, server_hostname, ssl_handshake_timeout,
                                        ssl_shutdown_timeout)
    plain = dict(tcp_port=tcp_port, local_addr=local_addr, local_tcp_port=local_tcp_port,
                 family=family, config=config, impairment=impairment)
    if not ssl:
        return await _open(protocol_factory, host, port, **plain)
    placeholder = tls.Placeholder()
    transport, _ = await _open(lambda: placeholder, host, port, **plain)
    try:
        protocol = protocol_factory()
        if placeholder.is_lost or transport.is_closing():
            raise placeholder.lost or ConnectionResetError(
                errno.ECONNRESET, "Connection reset by peer")
        tls_transport = await tls.start_tls(
            transport, protocol, tls.client_context(ssl, hostname),
            server_hostname=hostname or None, ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)
    except BaseException:
        transport.abort()
        raise
    protocol.connection_made(tls_transport)
    return tls_transport, protocol


async def _open(protocol_factory, host, port, *, tcp_port, local_addr, local_tcp_port,
                family, config, impairment):
    """The clear-text connection of `create_connection`."""
    _check_host(host, required=True)
    _check_port(port, "port", zero_ok=False)
    if tcp_port is not None:
        _check_port(tcp_port, "tcp_port", zero_ok=False)
    if local_tcp_port is not None:
        _check_port(local_tcp_port, "local_tcp_port", zero_ok=False)
    _check_options(config, impairment)
    if local_addr is not None and (not isinstance(local_addr, tuple) or len(local_addr) != 2):
        raise TypeError("local_addr must be a (host, port) tuple")
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_DGRAM,
                                   proto=socket.IPPROTO_UDP)
    if not infos:
        raise OSError("getaddrinfo() returned empty list")
    errors: list[OSError] = []
    for fam, _, _, _, addr in infos:
        try:
            return await _connect_one(loop, protocol_factory, fam, addr,
                                      tcp_port if tcp_port is not None else port,
                                      local_addr, local_tcp_port, config, impairment)
        except OSError as exc:
            errors.append(exc)
    if len(errors) == 1 or all(str(e) == str(errors[0]) for e in errors):
        raise errors[0]
    raise OSError(f"Multiple exceptions: {', '.join(str(e) for e in errors)}")


async def _connect_one(loop, protocol_factory, family, addr, tcp_port, local_addr,
                       local_tcp_port, config, impairment):
    bind_addr = None
    if local_addr is not None:
        local = await loop.getaddrinfo(*local_addr, family=family, type=socket.SOCK_DGRAM,
                                       proto=socket.IPPROTO_UDP)
        if not local:
            raise OSError(f"no {family!r} address for local_addr {local_addr!r}")
        bind_addr = local[0][4]
    remote = normalize_addr(addr)
    shared = bind_addr is None and impairment is None and _hashable(config)
    endpoint = conn = None
    key = (family, remote, config)
    if shared:
        for candidate in _shared(loop, key):
            try:
                conn, future = candidate.connect(remote, tcp_port, protocol_factory,
                                                 local_port=local_tcp_port)
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.EADDRINUSE):
                    raise
                continue   # full: try the next, or open another socket below
            endpoint = candidate
            break
    if endpoint is None:
        sock = open_udp_socket(family, bind_addr, connect_addr=remote)
        endpoint = Endpoint(loop, sock, config=config, impairment=impairment,
                            auto_close=True, linger=True)
        if shared:
            _share(loop, key, endpoint)
    try:
        if conn is None:
            conn, future = endpoint.connect(remote, tcp_port, protocol_factory,
                                            local_port=local_tcp_port)
        return await future
    except BaseException:
        if conn is not None:
            endpoint.cancel_connect(conn)
        else:
            endpoint.close()
        raise


#: Per loop, the open client endpoints that connections may share, by
#: (family, peer address, config), held weakly: an endpoint leaves when it closes, and the
#: registry never keeps one alive (an open endpoint lives by its loop's reader callback).
_SHARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _shared(loop, key: tuple) -> list[Endpoint]:
    refs = _SHARED.get(loop, {}).get(key, ())
    return [ep for ep in (ref() for ref in refs) if ep is not None and not ep.closed]


def _share(loop, key: tuple, endpoint: Endpoint) -> None:
    table = _SHARED.setdefault(loop, {})
    table.setdefault(key, []).append(weakref.ref(endpoint))

    def closed(ep: Endpoint) -> None:
        refs = table.get(key)
        if refs is None:
            return
        refs[:] = [ref for ref in refs if ref() is not None and ref() is not ep]
        if not refs:
            del table[key]
    endpoint.on_close = closed


def _hashable(config) -> bool:
    try:
        hash(config)
    except TypeError:
        return False
    return True


async def create_server(protocol_factory: Callable[[], asyncio.BaseProtocol],
                        host: str | Iterable[str] | None = None, port: int | None = None, *,
                        tcp_port: int | None = None, family: int = socket.AF_UNSPEC,
                        flags: int = socket.AI_PASSIVE, backlog: int | None = None,
                        config: Config | None = None, impairment: Impairment | None = None,
                        reuse_address: bool | None = None, reuse_port: bool | None = None,
                        start_serving: bool = True, ssl: _ssl.SSLContext | None = None,
                        ssl_handshake_timeout: float | None = None,
                        ssl_shutdown_timeout: float | None = None) -> Server:
    """Listen on UDP ``host:port`` (every address ``host`` resolves to; all interfaces if
    None), TCP port ``tcp_port`` (default: the bound UDP port, so ``port=0`` works).

    Like `asyncio.loop.create_server`: returns a `Server`. ``backlog`` bounds the SYN queue;
    with SYN cookies (the default) a listener holds at most twice ``backlog`` handshakes and
    accepted connections in all (default ``config.backlog``; see README "Reliability"). ``reuse_address`` is accepted for
    compatibility and has no effect: a UDP socket has no TIME-WAIT of its own to reuse.
    ``reuse_port`` sets SO_REUSEPORT.

    ``ssl`` (an `ssl.SSLContext` with the server's certificate) runs TLS on every accepted
    connection: a protocol gets ``connection_made`` with the TLS transport once its
    handshake is done; a client that fails the handshake is dropped without a word.
    """
    if not callable(protocol_factory):
        raise TypeError("protocol_factory must be callable")
    tls.check_server_options(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
    if ssl is not None:
        protocol_factory = tls.server_factory(protocol_factory, ssl, ssl_handshake_timeout,
                                              ssl_shutdown_timeout)
    if port is None:
        port = 0
    _check_port(port, "port", zero_ok=True)
    if tcp_port is not None:
        _check_port(tcp_port, "tcp_port", zero_ok=False)
    if backlog is not None:
        if not isinstance(backlog, int) or isinstance(backlog, bool):
            raise TypeError(f"backlog must be an int, not {type(backlog).__name__}")
        if backlog < 1:
            raise ValueError(f"backlog must be at least 1, got {backlog}")
    _check_options(config, impairment)
    if host is None or isinstance(host, str):
        hosts = [host or None]
    else:
        hosts = list(host)
        for h in hosts:
            _check_host(h, required=True)
    loop = asyncio.get_running_loop()
    targets: list[tuple[int, tuple]] = []
    for h in hosts:
        infos = await loop.getaddrinfo(h, port, family=family, type=socket.SOCK_DGRAM,
                                       proto=socket.IPPROTO_UDP, flags=flags)
        for fam, _, _, _, addr in infos:
            if (fam, addr) not in targets:
                targets.append((fam, addr))
    if not targets:
        raise OSError("getaddrinfo() returned empty list")
    endpoints: list[Endpoint] = []
    try:
        for fam, addr in targets:
            sock = open_udp_socket(fam, addr, reuse_port=bool(reuse_port))
            endpoints.append(Endpoint(loop, sock, config=config, impairment=impairment))
        ports = [tcp_port if tcp_port is not None else ep.sockname[1] for ep in endpoints]
        server = Server(loop, protocol_factory, endpoints, ports, backlog)
    except BaseException:
        for ep in endpoints:
            ep.close()
        raise
    if start_serving:
        server._start()
        await asyncio.sleep(0)
    return server


def _check_host(host, *, required: bool) -> None:
    if host is None and not required:
        return
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, not {type(host).__name__}")
    if not host:
        raise ValueError("host must not be empty")


def _check_port(port, name: str, *, zero_ok: bool) -> None:
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError(f"{name} must be an int, not {type(port).__name__}")
    low = 0 if zero_ok else 1
    if not low <= port <= 65535:
        raise ValueError(f"{name} must be in {low}..65535, got {port}")


def _check_options(config, impairment) -> None:
    if config is not None and not isinstance(config, Config):
        raise TypeError(f"config must be an atcp.Config, not {type(config).__name__}")
    if impairment is not None and not isinstance(impairment, Impairment):
        raise TypeError(f"impairment must be an atcp.Impairment, "
                        f"not {type(impairment).__name__}")
