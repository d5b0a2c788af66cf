"""Small helpers shared by the peer processes and the runner."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time

__all__ = ["emit", "cpu_seconds", "rss_bytes", "run_on", "raise_nofile", "now",
           "stop_on_stdin_eof", "wait_stdin_line"]

#: One clock for every process: CLOCK_MONOTONIC is system-wide on Linux, so a time taken by
#: the client and one taken by the server can be subtracted.
now = time.monotonic


def emit(obj: dict) -> None:
    """Report to the runner: one JSON object per line on stdout."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def cpu_seconds() -> float:
    """User plus system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_bytes() -> int:
    """Resident set size now (not the peak), from /proc."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def raise_nofile(wanted: int) -> int:
    """Raise the open-file limit towards ``wanted``; returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def run_on(loop_name: str, coro) -> object:
    """Run ``coro`` on the named event loop: "asyncio" (the default loop) or "uvloop"."""
    if loop_name == "uvloop":
        import uvloop
        return uvloop.run(coro)
    if loop_name != "asyncio":
        raise ValueError(f"unknown loop {loop_name!r}")
    return asyncio.run(coro)


def stop_on_stdin_eof(loop: asyncio.AbstractEventLoop, done: asyncio.Future, report) -> None:
    """Resolve ``done`` with ``report()`` when the runner closes our stdin (its stop signal)."""
    fd = sys.stdin.fileno()

    def on_stdin() -> None:
        if not os.read(fd, 4096):
            loop.remove_reader(fd)
            if not done.done():
                done.set_result({"stopped": True, **report()})

    loop.add_reader(fd, on_stdin)


async def wait_stdin_line(timeout: float) -> bytes:
    """What the runner writes to our stdin next (b"" at EOF), waiting at most ``timeout``
    seconds (asyncio.TimeoutError after)."""
    loop = asyncio.get_running_loop()
    got = loop.create_future()
    fd = sys.stdin.fileno()

    def on_stdin() -> None:
        loop.remove_reader(fd)
        if not got.done():
            got.set_result(os.read(fd, 4096))

    loop.add_reader(fd, on_stdin)
    try:
        return await asyncio.wait_for(got, timeout)
    finally:
        loop.remove_reader(fd)
