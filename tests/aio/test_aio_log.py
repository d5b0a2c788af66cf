"""Structured events: silent unless enabled; with a logger, the events carry connection ids
and the RFC rule behind each RST."""

from __future__ import annotations

import asyncio

import pytest
import structlog

import atcp

pytestmark = pytest.mark.asyncio


class Capture:
    """A structlog-shaped logger that keeps what it is given."""

    def __init__(self):
        self.events = []

    def _log(level):
        def method(self, event, **fields):
            self.events.append((level, event, fields))
        return method

    debug = _log("debug")
    info = _log("info")
    warning = _log("warning")

    def named(self, name):
        return [fields for _, event, fields in self.events if event == name]


async def exchange(config=None):
    async def handler(reader, writer):
        writer.write(await reader.read())
        writer.close()

    server = await atcp.start_server(handler, "127.0.0.1", 0, config=config)
    async with server:
        port = server.addresses[0][1]
        reader, writer = await atcp.open_connection("127.0.0.1", port, config=config)
        writer.write(b"ping")
        writer.write_eof()
        assert await reader.read() == b"ping"
        writer.close()
        await writer.wait_closed()
        with pytest.raises(ConnectionRefusedError):
            await atcp.open_connection("127.0.0.1", port, tcp_port=port % 65535 + 1)
    return port, writer


async def test_quiet_by_default(capsys):
    structlog.reset_defaults()           # structlog's default would print to stdout
    assert not atcp.log.is_enabled()
    async with asyncio.timeout(10):
        await exchange()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


async def test_events_when_enabled():
    capture = Capture()
    atcp.log.enable(capture)
    async with asyncio.timeout(10):
        port, writer = await exchange(atcp.Config(msl=0.05))
    local_port, remote_port = writer.get_extra_info("tcp_ports")
    conn = f"{local_port}-127.0.0.1:{port}-{remote_port}"
    states = [(f["old"], f["new"]) for f in capture.named("state") if f["conn"] == conn]
    assert states[:2] == [("CLOSED", "SYN-SENT"), ("SYN-SENT", "ESTABLISHED")]
    assert ("FIN-WAIT-2", "TIME-WAIT") in states or ("FIN-WAIT-1", "TIME-WAIT") in states \
        or ("CLOSING", "TIME-WAIT") in states
    assert [f["conn"] for f in capture.named("time_wait_entered")].count(conn) == 1
    rst = capture.named("rst_sent")
    assert [f["rule"] for f in rst] == ["no connection (RFC 9293 3.10.7.1)"]
    assert any(f["verdict"] == "refused" for f in capture.named("rst_received"))
    levels = {event: level for level, event, _ in capture.events}
    assert levels["state"] == "debug" and levels["rst_sent"] == "info"
    assert all("local" in f and "conn" in f for _, e, f in capture.events
               if e not in ("endpoint_closed",))


async def test_enable_uses_structlog_by_default(capsys):
    structlog.reset_defaults()
    atcp.log.enable()
    async with asyncio.timeout(10):
        await exchange()
    atcp.log.disable()
    out = capsys.readouterr().out
    assert "rst_sent" in out and "SYN-SENT" in out
