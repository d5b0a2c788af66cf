"""``atcp serve-echo HOST:PORT``: an atcp echo server, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import sys

from .common import add_common_flags, parse_address, run, say, serve_until_stopped
from .stats import connection_label, format_stats

DESCRIPTION = """\
Listen on UDP HOST:PORT (TCP port PORT) and send every byte each client sends straight
back; when a client half-closes, finish the echo and close too. Serves any number of
clients at once until Ctrl-C or SIGTERM. Port 0 picks a free port; the address is printed
on stderr ("listening on ..."). :PORT listens on every interface.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve-echo", help="run an atcp echo server",
                                   description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("address", metavar="HOST:PORT", help="UDP address to listen on")
    add_common_flags(parser)
    parser.set_defaults(func=lambda args: run(serve_echo, args, serving=True))


async def serve_echo(args, stop) -> int:
    where = parse_address(args.address, listen=True)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        label = connection_label(writer)
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.write_eof()
        except (ConnectionError, TimeoutError) as exc:
            if args.verbose:
                say(f"{label}: {type(exc).__name__}: {exc}")
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, TimeoutError):
                pass
            if args.verbose:
                print(format_stats(writer.get_extra_info("tcp_info"), label),
                      file=sys.stderr, flush=True)

    return await serve_until_stopped(args, stop, handle, where, "serve-echo", "Ctrl-C stops")

