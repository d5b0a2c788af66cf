"""Every asyncio test in tests/aio runs on the default event loop and on uvloop."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

import atcp


def pytest_asyncio_loop_factories(config, item):
    if item.get_closest_marker("default_loop_only"):
        return {"asyncio": asyncio.new_event_loop}
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "default_loop_only: the test exercises a path only the default loop has")


@pytest.fixture(autouse=True)
def _quiet_atcp_log():
    """A test that turns atcp's events on must not leave them on for the next one."""
    yield
    atcp.log.disable()
