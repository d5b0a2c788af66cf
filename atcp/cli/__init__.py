"""The ``atcp`` command: an echo server, a netcat, file transfer and a TCP tunnel over atcp.

Each subcommand lives in its own module and registers its parser here; `main` parses the
arguments and runs the chosen one. ``atcp SUBCOMMAND --help`` describes each.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from . import connect, echo, transfer, tunnel

__all__ = ["main", "build_parser"]

DESCRIPTION = """\
TCP (RFC 9293) in pure Python, carried over UDP. Addresses are HOST:PORT (IPv6 as
[::1]:9000): the UDP address, whose port is also the TCP port.

  atcp serve-echo 127.0.0.1:9000            an echo server
  atcp connect 127.0.0.1:9000               netcat: stdin to the connection, it to stdout
  atcp receive :9000 -o DIR                 receive one file ...
  atcp send FILE HOST:9000                  ... sent like this, checked with SHA-256
  atcp tunnel --listen-atcp :9000 --to-tcp 127.0.0.1:80          (server side)
  atcp tunnel --listen-tcp 127.0.0.1:8080 --to-atcp HOST:9000    (client side)

Errors print one line on stderr and exit with status 1 (ATCP_TRACEBACK=1 shows the
traceback); usage errors exit with 2; Ctrl-C stops a client with 130 and a server with 0.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atcp", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"atcp {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for module in (echo, connect, transfer, tunnel):
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``atcp`` with ``argv`` (default: the process's arguments); return the status."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
