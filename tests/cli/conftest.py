"""Fixtures for the CLI tests (helpers are in cli_helpers.py)."""

from __future__ import annotations

import pytest

from cli_helpers import WAIT, Server


@pytest.fixture
def spawn():
    """``spawn(*args)`` starts an atcp server process, killed at the end of the test."""
    servers: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(*args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=WAIT)
        for stream in (server.proc.stdout, server.proc.stderr):
            stream.close()


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch):
    monkeypatch.delenv("ATCP_TRACEBACK", raising=False)
