"""``atcp tunnel``: carry kernel TCP connections over atcp, one atcp connection per TCP one.

Two processes make a tunnel::

    client side:  atcp tunnel --listen-tcp 127.0.0.1:8080 --to-atcp server.example:9000
    server side:  atcp tunnel --listen-atcp 0.0.0.0:9000 --to-tcp 127.0.0.1:80

Each TCP connection accepted on the client side gets its own atcp connection to the server
side, which opens its own TCP connection to the service: the three are bridged end to end.
What one end does reaches the other: bytes in order, a half-close (FIN) as a half-close,
and a reset (RST) -- or a connection that fails or times out -- as a reset, so a client
sees the service's behaviour, not the tunnel's. A service that refuses the connection
resets the client's.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import socket
import struct
import sys

from .. import aio
from .common import (CliError, add_common_flags, config_from, describe_error, format_address,
                     impairment_from, numbered_path, parse_address, positive_seconds, run,
                     say, serve_until_stopped, with_target)
from .stats import connection_label, format_stats

DESCRIPTION = """\
Forward TCP connections over atcp. Run one side on each host:

  server host:  atcp tunnel --listen-atcp 0.0.0.0:9000 --to-tcp 127.0.0.1:80
  client host:  atcp tunnel --listen-tcp 127.0.0.1:8080 --to-atcp SERVER:9000

Then any TCP client connecting to 127.0.0.1:8080 on the client host reaches port 80 on the
server host, over atcp (UDP port 9000). Every TCP connection gets its own atcp connection;
data, half-closes and resets pass through in both directions. Port 0 picks a free port;
listening addresses are printed on stderr. The impairment flags act on the atcp side only;
with --pcap on the client side each connection writes its own file (FILE-1.pcap, ...).
"""

_CHUNK = 65536
_CLOSE_WAIT = 5.0   # seconds to wait for an end to finish closing before giving up on it


def register(subparsers) -> None:
    parser = subparsers.add_parser("tunnel", help="forward TCP connections over atcp",
                                   description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen-tcp", metavar="HOST:PORT",
                        help="client side: accept kernel TCP connections here...")
    parser.add_argument("--to-atcp", metavar="HOST:PORT",
                        help="...and carry each to the atcp tunnel end at this UDP address")
    parser.add_argument("--listen-atcp", metavar="HOST:PORT",
                        help="server side: accept atcp connections on this UDP address...")
    parser.add_argument("--to-tcp", metavar="HOST:PORT",
                        help="...and connect each on to this kernel TCP service")
    parser.add_argument("--timeout", type=positive_seconds, default=None, metavar="T",
                        help="give up an onward atcp connection after T seconds")
    add_common_flags(parser)
    parser.set_defaults(func=lambda args: run(tunnel, args, serving=True))


# ---------------------------------------------------------------------- the two ends
class End:
    """One side of a bridged pair: a kernel TCP stream or an atcp stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 kind: str) -> None:
        self.reader = reader
        self.writer = writer
        self.kind = kind

    def reset(self) -> None:
        """End the connection with a RST. A kernel socket sends one when closed with a
        zero linger time (SO_LINGER {1, 0}); an atcp transport's abort() sends one."""
        if self.kind == "tcp":
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
                except OSError:
                    pass
        self.writer.transport.abort()

    async def close(self) -> None:
        self.writer.close()
        try:
            async with asyncio.timeout(_CLOSE_WAIT):
                await self.writer.wait_closed()
        except (OSError, asyncio.TimeoutError):
            pass


async def _pump(source: End, sink: End) -> None:
    """Copy until the source's EOF, then half-close the sink (its peer reads EOF)."""
    while data := await source.reader.read(_CHUNK):
        sink.writer.write(data)
        await sink.writer.drain()
    sink.writer.write_eof()


async def bridge(a: End, b: End) -> BaseException | None:
    """Run both directions until each has seen its EOF; on an error in either (a reset, a
    timeout), reset both ends so the error reaches the far side too. Returns the error."""
    tasks = [asyncio.create_task(_pump(a, b)), asyncio.create_task(_pump(b, a))]
    error = None
    try:
        for next_done in asyncio.as_completed(tasks):
            try:
                await next_done
            except OSError as exc:
                error = exc
                break
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if error is not None:
        a.reset()
        b.reset()
    else:
        await asyncio.gather(a.close(), b.close())
    return error


# ---------------------------------------------------------------------- the command
async def tunnel(args, stop) -> int:
    if args.listen_tcp and args.to_atcp and not (args.listen_atcp or args.to_tcp):
        return await _tcp_to_atcp(args, stop, parse_address(args.listen_tcp, listen=True),
                                  parse_address(args.to_atcp))
    if args.listen_atcp and args.to_tcp and not (args.listen_tcp or args.to_atcp):
        return await _atcp_to_tcp(args, stop, parse_address(args.listen_atcp, listen=True),
                                  parse_address(args.to_tcp))
    raise CliError("tunnel needs either --listen-tcp HOST:PORT --to-atcp HOST:PORT (client "
                   "side) or --listen-atcp HOST:PORT --to-tcp HOST:PORT (server side)")


async def _tcp_to_atcp(args, stop, listen, target) -> int:
    numbers = itertools.count(1)

    async def accepted(reader, writer) -> None:
        n = next(numbers)
        tcp_end = End(reader, writer, "tcp")
        peer = _peer(writer)
        config = config_from(args, pcap_path=numbered_path(args.pcap, n))
        try:
            async with asyncio.timeout(args.timeout):
                onward = await aio.open_connection(target.host, target.port, config=config,
                                                   impairment=impairment_from(args))
        except OSError as exc:
            say(f"tunnel #{n} from {peer}: {describe_error(exc, str(target))}; "
                f"resetting it")
            tcp_end.reset()
            return
        await _run_pair(args, n, peer, tcp_end, End(*onward, "atcp"), atcp_index=1)

    try:
        server = await asyncio.start_server(accepted, listen.host, listen.port)
    except OSError as exc:
        raise with_target(exc, listen) from None
    for sock in server.sockets:
        say(f"tunnel: listening on TCP {format_address(*sock.getsockname()[:2])}, "
            f"forwarding over atcp to {target}")
    try:
        await stop.wait()
    finally:
        server.close()
    return 0


async def _atcp_to_tcp(args, stop, listen, target) -> int:
    numbers = itertools.count(1)

    async def accepted(reader, writer) -> None:
        n = next(numbers)
        atcp_end = End(reader, writer, "atcp")
        peer = _peer(writer)
        try:
            async with asyncio.timeout(args.timeout):
                onward = await asyncio.open_connection(target.host, target.port)
        except OSError as exc:
            say(f"tunnel #{n} from {peer}: {describe_error(exc, str(target))}; "
                f"resetting it")
            atcp_end.reset()
            return
        await _run_pair(args, n, peer, atcp_end, End(*onward, "tcp"), atcp_index=0)

    return await serve_until_stopped(args, stop, accepted, listen, "tunnel",
                                     f"forwarding to TCP {target}", medium="atcp ")


async def _run_pair(args, n: int, peer: str, first: End, second: End, atcp_index: int):
    atcp_end = (first, second)[atcp_index]
    label = connection_label(atcp_end.writer)
    if args.verbose:
        say(f"tunnel #{n} from {peer}: open ({label})")
    try:
        error = await bridge(first, second)
    except Exception as exc:   # never let one connection's trouble end the tunnel
        first.reset()
        second.reset()
        error = exc
    if error is not None and args.verbose:
        say(f"tunnel #{n}: {describe_error(error)}; reset both ends")
    if args.verbose:
        print(format_stats(atcp_end.writer.get_extra_info("tcp_info"), f"#{n} {label}"),
              file=sys.stderr, flush=True)


def _peer(writer) -> str:
    address = writer.get_extra_info("peername")
    return format_address(*address[:2]) if address else "?"
