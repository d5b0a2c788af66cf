"""`atcp tunnel`: kernel TCP clients reach a kernel TCP service through two tunnel
processes and an atcp link between them: HTTP from urllib to http.server over a lossy
link, many connections at once, and half-closes and resets carried end to end."""

from __future__ import annotations

import concurrent.futures
import functools
import http.server
import os
import socket
import struct
import threading
import urllib.request

import pytest

from cli_helpers import WAIT


def start_tunnel(spawn, target_port: int, *flags: str) -> int:
    """Both tunnel sides to 127.0.0.1:target_port; returns the client side's TCP port."""
    far = spawn("tunnel", "--listen-atcp", "127.0.0.1:0", "--to-tcp",
                f"127.0.0.1:{target_port}", *flags)
    near = spawn("tunnel", "--listen-tcp", "127.0.0.1:0", "--to-atcp",
                 f"127.0.0.1:{far.port()}", *flags)
    return near.port()


@pytest.fixture
def web(tmp_path):
    """http.server on 127.0.0.1 serving tmp_path; yields (port, directory)."""
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], tmp_path
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_http_over_a_lossy_tunnel(spawn, web):
    port, directory = web
    pages = {f"page{i}.bin": os.urandom(100_000 + i) for i in range(4)}
    for name, body in pages.items():
        (directory / name).write_bytes(body)
    entry = start_tunnel(spawn, port, "--loss", "5%", "--seed", "11")

    def fetch(name: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{entry}/{name}", timeout=WAIT) as r:
            assert r.status == 200
            return r.read()

    # Four requests at once: four TCP connections, four atcp connections, one to one.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = dict(zip(pages, pool.map(fetch, pages)))
    assert results == pages


@pytest.fixture
def tcp_service():
    """A kernel TCP service whose behaviour per connection the test chooses: it yields
    (port, set_handler); the handler gets the accepted socket."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(WAIT)
    handler = {}
    results = []

    def serve():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(WAIT)
            try:
                results.append(handler["fn"](conn))
            except Exception as exc:   # reported to the test through results
                results.append(exc)

    thread = threading.Thread(target=serve, daemon=True)

    def set_handler(fn):
        handler["fn"] = fn
        thread.start()

    yield listener.getsockname()[1], set_handler, results, thread
    listener.close()


def _reset(sock: socket.socket) -> None:
    """Close with a RST (zero linger)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    for _ in range(10_000):
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)
    raise AssertionError("no EOF")


def test_half_close_crosses_the_tunnel(spawn, tcp_service):
    """The client half-closes; the service sees EOF, answers, and the answer arrives."""
    port, set_handler, results, thread = tcp_service

    def service(conn):
        request = _read_all(conn)           # up to the client's FIN
        conn.sendall(b"got " + request)
        return request

    set_handler(service)
    entry = start_tunnel(spawn, port)
    with socket.create_connection(("127.0.0.1", entry), timeout=WAIT) as client:
        client.sendall(b"ping")
        client.shutdown(socket.SHUT_WR)
        assert _read_all(client) == b"got ping"
    thread.join(WAIT)
    assert results == [b"ping"]


def test_reset_by_the_service_reaches_the_client(spawn, tcp_service):
    port, set_handler, results, thread = tcp_service

    def service(conn):
        assert conn.recv(100) == b"hello"
        _reset(conn)
        return "reset"

    set_handler(service)
    entry = start_tunnel(spawn, port)
    with socket.create_connection(("127.0.0.1", entry), timeout=WAIT) as client:
        client.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            _read_all(client)
    thread.join(WAIT)
    assert results == ["reset"]


def test_reset_by_the_client_reaches_the_service(spawn, tcp_service):
    port, set_handler, results, thread = tcp_service

    def service(conn):
        conn.sendall(b"ready")
        try:
            _read_all(conn)
        except ConnectionResetError:
            return "reset seen"
        return "EOF seen"

    set_handler(service)
    entry = start_tunnel(spawn, port)
    client = socket.create_connection(("127.0.0.1", entry), timeout=WAIT)
    assert client.recv(100) == b"ready"
    _reset(client)
    thread.join(WAIT)
    assert results == ["reset seen"]


def test_refused_service_resets_the_client(spawn):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()                          # nothing listens on this TCP port now
    entry = start_tunnel(spawn, port)
    with socket.create_connection(("127.0.0.1", entry), timeout=WAIT) as client:
        with pytest.raises(ConnectionResetError):
            client.sendall(b"x")
            _read_all(client)
