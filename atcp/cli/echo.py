"""``atcp serve-echo HOST:PORT``: an atcp echo server, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import sys

from .. import aio
from .common import (add_common_flags, config_from, format_address, impairment_from,
                     parse_address, run, say, with_target)
from .stats import connection_label, format_endpoint_totals, format_stats

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

    try:
        server = await aio.start_server(handle, where.host, where.port,
                                        config=config_from(args),
                                        impairment=impairment_from(args))
    except OSError as exc:
        raise with_target(exc, where) from None
    for address, tcp_port in zip(server.addresses, server.tcp_ports):
        say(f"serve-echo: listening on {format_address(*address[:2])} (TCP port {tcp_port}); "
            f"Ctrl-C stops")
    try:
        await stop.wait()
    finally:
        endpoints = server.endpoints
        server.close()
        if args.verbose:
            print(format_endpoint_totals("serve-echo", endpoints), file=sys.stderr,
                  flush=True)
    return 0

