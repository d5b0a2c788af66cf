"""Every asyncio test in tests/aio runs on the default event loop and on uvloop."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

import atcp


def pytest_asyncio_loop_factories(config, item):
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(autouse=True)
def _quiet_atcp_log():
    """A test that turns atcp's events on must not leave them on for the next one."""
    yield
    atcp.log.disable()
