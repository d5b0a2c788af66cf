"""Errors end an `atcp` command with one clear line on stderr and a non-zero status, never
a traceback; and the address syntax, as a unit."""

from __future__ import annotations

import asyncio
import socket
import sys

import pytest

import atcp
from atcp.cli.common import Address, CliError, describe_error, parse_address
from cli_helpers import ATCP, WAIT, one_line, run_atcp


def test_refused():
    result = run_atcp("connect", "127.0.0.1:9")
    assert result.returncode == 1
    assert one_line(result.stderr) == ("atcp: error: connection refused by 127.0.0.1:9 "
                                       "(nothing listens there)")


@pytest.mark.parametrize("address, message", [
    ("nonsense", "bad address 'nonsense': expected HOST:PORT"),
    ("127.0.0.1", "bad address '127.0.0.1': expected HOST:PORT"),
    ("127.0.0.1:http", "the port must be a number"),
    ("127.0.0.1:70000", "the port must be in 1..65535"),
    ("::1:9000", "write an IPv6 address in brackets"),
    ("[::1]9000", "bad address '[::1]9000'"),
    ("[not-v6]:1", "is not an IPv6 address"),
    (":9000", "a host is needed"),
])
def test_bad_address_messages(address, message):
    with pytest.raises(CliError) as caught:
        parse_address(address)
    assert message in str(caught.value)
    assert describe_error(caught.value) == str(caught.value)


@pytest.mark.parametrize("address", ["nonsense", "::1:9000"])
def test_bad_address_exits_with_one_line(address):
    result = run_atcp("connect", address)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith(f"atcp: error: bad address {address!r}: ")


def test_unresolvable_host():
    result = run_atcp("connect", "no-such-host.invalid:9000")
    assert result.returncode == 1
    assert one_line(result.stderr).startswith(
        "atcp: error: cannot resolve no-such-host.invalid:9000")


def test_timeout_against_a_silent_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:   # takes SYNs, says nothing
        hole.bind(("127.0.0.1", 0))
        port = hole.getsockname()[1]
        result = run_atcp("connect", f"127.0.0.1:{port}", "--timeout", "0.3")
    assert result.returncode == 1
    assert one_line(result.stderr) == f"atcp: error: timed out: no answer from 127.0.0.1:{port}"


def test_address_in_use():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = run_atcp("serve-echo", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert one_line(result.stderr) == f"atcp: error: address already in use: 127.0.0.1:{port}"


def test_tunnel_needs_a_complete_side():
    result = run_atcp("tunnel", "--listen-tcp", "127.0.0.1:0", "--to-tcp", "127.0.0.1:80")
    assert result.returncode == 1
    assert "tunnel needs either --listen-tcp" in one_line(result.stderr)


def test_usage_error_exits_2():
    result = run_atcp("connect")
    assert result.returncode == 2
    assert b"usage: atcp connect" in result.stderr


@pytest.mark.asyncio
async def test_reset_by_the_peer():
    """The service resets the connection: `atcp connect` says so and fails."""
    async def rude(reader, writer):
        await reader.read(1)
        writer.transport.abort()

    async with asyncio.timeout(WAIT):
        server = await atcp.start_server(rude, "127.0.0.1", 0)
        async with server:
            port = server.addresses[0][1]
            proc = await asyncio.create_subprocess_exec(
                *ATCP, "connect", f"127.0.0.1:{port}", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            proc.stdin.write(b"x")
            await proc.stdin.drain()   # stdin stays open: only the reset can end it
            out, err = await proc.communicate()
    assert proc.returncode == 1
    assert one_line(err) == f"atcp: error: connection reset by peer (127.0.0.1:{port})"
    assert out == b""


# ---------------------------------------------------------------------- units
def test_parse_address_forms():
    assert parse_address("127.0.0.1:9000") == Address("127.0.0.1", 9000)
    assert parse_address("[::1]:9000") == Address("::1", 9000)
    assert parse_address("[fe80::1%lo]:1") == Address("fe80::1%lo", 1)
    assert parse_address("example.com:1") == Address("example.com", 1)
    assert parse_address(":0", listen=True) == Address(None, 0)
    assert str(parse_address("[::1]:5", listen=True)) == "[::1]:5"
    with pytest.raises(CliError):
        parse_address("127.0.0.1:0")             # port 0 only for listening


def test_describe_error_is_one_line_for_each_kind():
    for exc in (ConnectionRefusedError(), ConnectionResetError(), TimeoutError(),
                socket.gaierror(-2, "Name or service not known"), OSError(98, "in use"),
                ValueError("Config.msl must be positive"), RuntimeError("surprise")):
        text = describe_error(exc, "h:1")
        assert text and "\n" not in text, exc
    assert describe_error(RuntimeError("x")).startswith("internal error")
    assert sys.modules["atcp.cli.common"].INTERRUPTED == 130
