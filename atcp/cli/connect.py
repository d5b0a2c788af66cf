"""``atcp connect HOST:PORT``: netcat over atcp.

Standard input goes to the connection and the connection to standard output, both at
once. At the end of standard input the connection is half-closed (a FIN: the peer reads
EOF and may go on sending); the command exits once both directions are done: all of
standard input sent and the peer's FIN received.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading

from .. import aio
from .common import (add_common_flags, config_from, impairment_from, parse_address,
                     positive_seconds, run, with_target)
from .stats import connection_label, format_stats

DESCRIPTION = """\
Connect to the atcp service at HOST:PORT (UDP address; TCP port PORT). Standard input is
sent to it and what it sends is written to standard output. End of input half-closes the
connection (the peer sees EOF and can still answer); atcp connect exits once the peer has
closed its side too. Example: echo hello | atcp connect 127.0.0.1:9000
"""

_CHUNK = 65536
_CLOSE_WAIT = 5.0   # seconds a finished connection may take to close before it is aborted


def register(subparsers) -> None:
    parser = subparsers.add_parser("connect", help="netcat-like client: stdin to the "
                                   "connection, the connection to stdout",
                                   description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("address", metavar="HOST:PORT", help="UDP address of the service")
    parser.add_argument("--timeout", type=positive_seconds, default=None, metavar="T",
                        help="give up connecting after T seconds (default: the protocol's "
                             "SYN retries, about two minutes)")
    add_common_flags(parser)
    parser.set_defaults(func=lambda args: run(connect, args))


async def open_to(args, target, *, config=None):
    """Open an atcp stream to ``target`` with the common flags, within ``--timeout``."""
    try:
        async with asyncio.timeout(getattr(args, "timeout", None)):
            return await aio.open_connection(target.host, target.port,
                                             config=config or config_from(args),
                                             impairment=impairment_from(args))
    except OSError as exc:
        raise with_target(exc, target) from None


class StdinChunks:
    """Standard input read in a daemon thread (a tty, a pipe or a file alike), handed to
    the event loop through a small queue, so a slow connection holds the reader back.
    An empty chunk means end of input.

    The thread reads the file descriptor with ``os.read``, not through ``sys.stdin``: a
    daemon thread blocked inside a buffered reader holds its lock, and the interpreter
    aborts at exit when it cannot take that lock to close stdin."""

    def __init__(self, fd: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=4)
        self._fd = fd
        threading.Thread(target=self._run, name="atcp-stdin", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                data = os.read(self._fd, _CHUNK)
            except OSError:
                data = b""
            try:
                asyncio.run_coroutine_threadsafe(self._queue.put(data), self._loop).result()
            except Exception:
                return   # the loop is gone: the command has ended
            if not data:
                return

    async def get(self) -> bytes:
        return await self._queue.get()


async def connect(args) -> int:
    target = parse_address(args.address)
    reader, writer = await open_to(args, target)
    label = connection_label(writer)
    stdin = StdinChunks(sys.stdin.fileno())
    stdout = sys.stdout.buffer

    async def upstream() -> None:
        while data := await stdin.get():
            writer.write(data)
            await writer.drain()
        writer.write_eof()

    async def downstream() -> None:
        while data := await reader.read(_CHUNK):
            try:
                stdout.write(data)
                stdout.flush()
            except BrokenPipeError:
                # Nobody reads our output any more (| head): stop quietly, as cat does.
                _silence_stdout()
                return

    tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
    graceful = False
    try:
        await asyncio.gather(*tasks)
        graceful = True
    except OSError as exc:
        raise with_target(exc, target) from None
    finally:
        for task in tasks:
            task.cancel()
        await finish(writer, graceful=graceful)
        if args.verbose:
            print(format_stats(writer.get_extra_info("tcp_info"), label), file=sys.stderr,
                  flush=True)
    return 0


async def finish(writer, *, graceful: bool) -> None:
    """End a connection: after success, close it (FIN after pending data) and wait, a
    bounded time, for the end of the exchange; after a failure or an interruption, abort
    it (RST) at once so that nothing waits on a peer that may be gone."""
    if graceful:
        writer.close()
        try:
            async with asyncio.timeout(_CLOSE_WAIT):
                await writer.wait_closed()
            return
        except (OSError, TimeoutError):
            pass
    writer.transport.abort()


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
