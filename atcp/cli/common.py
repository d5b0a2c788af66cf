"""What every subcommand shares: addresses, the common flags, error messages, the runner.

Errors a user can cause or meet (a bad address, a refused or reset connection, a timeout, a
file that is not there) end the command with one line on stderr, ``atcp: error: ...``, and
exit status 1; no traceback. ``ATCP_TRACEBACK=1`` in the environment shows the traceback
too, for bug reports.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import errno
import ipaddress
import os
import signal
import socket
import ssl
import sys
import traceback

from .. import log
from ..config import Config
from ..impair import Impairment

__all__ = ["CliError", "Address", "parse_address", "format_address", "add_common_flags",
           "positive_seconds", "congestion_names", "config_from", "impairment_from",
           "numbered_path", "setup_logging", "say", "describe_error", "with_target", "Stop",
           "run", "INTERRUPTED"]

#: Exit status of a command stopped by SIGINT (as a shell reports a process killed by it).
INTERRUPTED = 130


class CliError(Exception):
    """A failure to report as one line, without a traceback."""


@dataclasses.dataclass(frozen=True)
class Address:
    """HOST:PORT as typed, with the host unbracketed (None: every interface)."""
    host: str | None
    port: int

    def __str__(self) -> str:
        return format_address(self.host or "*", self.port)


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(text: str, *, listen: bool = False) -> Address:
    """``HOST:PORT``, ``[IPv6]:PORT``; for a listening address also ``:PORT`` (every
    interface) and port 0 (any free port)."""
    bad = CliError(f"bad address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9000 or "
                   f"[::1]:9000")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise bad
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host.split("%")[0])
        except ValueError:
            raise CliError(f"bad address {text!r}: {host!r} is not an IPv6 address") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            if ":" in host:
                raise CliError(f"bad address {text!r}: write an IPv6 address in brackets, "
                               f"e.g. [::1]:9000")
            raise bad
    if not host and not listen:
        raise CliError(f"bad address {text!r}: a host is needed, e.g. 127.0.0.1{text}")
    if not port_text.isdigit():
        raise CliError(f"bad address {text!r}: the port must be a number")
    port = int(port_text)
    low = 0 if listen else 1
    if not low <= port <= 65535:
        raise CliError(f"bad address {text!r}: the port must be in {low}..65535")
    return Address(host or None, port)


# ---------------------------------------------------------------------- common flags
def _probability(text: str) -> float:
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a probability: {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1) (or 0%..99%), got {text!r}")
    return value


def _seconds(text: str) -> float:
    scale = 1.0
    number = text
    if text.endswith("ms"):
        scale, number = 0.001, text[:-2]
    elif text.endswith("s"):
        number = text[:-1]
    try:
        value = float(number) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 0.05, 50ms, "
                                         f"2s)") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite duration >= 0, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def congestion_names() -> list[str]:
    """The congestion controllers ``Config(congestion=...)`` accepts by name (none if this
    version of atcp has no choice)."""
    if "congestion" not in {f.name for f in dataclasses.fields(Config)}:
        return []
    try:
        from ..core.congestion import names
    except ImportError:
        return []
    return names()


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of every subcommand: impairment, capture, logging, tuning, statistics."""
    link = parser.add_argument_group(
        "link impairment (applied to the datagrams this side sends; give it to both sides "
        "to impair both directions)")
    link.add_argument("--loss", type=_probability, default=0.0, metavar="P",
                      help="drop each outgoing datagram with probability P (0.05 or 5%%)")
    link.add_argument("--delay", type=_seconds, default=0.0, metavar="T",
                      help="delay each outgoing datagram by T (seconds, or 50ms)")
    link.add_argument("--seed", type=int, default=None, metavar="N",
                      help="seed the impairment's random choices, so runs repeat")
    tcp = parser.add_argument_group("protocol and diagnostics")
    tcp.add_argument("--msl", type=positive_seconds, default=None, metavar="T",
                     help=f"maximum segment lifetime; TIME-WAIT lasts 2*MSL "
                          f"(default {Config().msl:g} s)")
    names = congestion_names()
    if names:
        tcp.add_argument("--congestion", choices=names, default=None,
                         help=f"congestion control (default {Config().congestion})")
    tcp.add_argument("--pcap", metavar="FILE", default=None,
                     help="record every segment sent and received to FILE (pcap, opens in "
                          "Wireshark as TCP)")
    tcp.add_argument("--log", choices=("console", "json"), default=None,
                     help="print atcp's protocol events (state changes, retransmissions, "
                          "RSTs...) to stderr, for people or as JSON lines")
    tcp.add_argument("-v", "--verbose", action="store_true",
                     help="print connection statistics (like TCP_INFO) on stderr when a "
                          "connection ends")


def config_from(args: argparse.Namespace, *, pcap_path: str | None = None) -> Config:
    """The `Config` the flags ask for (``pcap_path`` overrides ``--pcap``)."""
    changes: dict = {}
    if args.msl is not None:
        changes["msl"] = args.msl
    if getattr(args, "congestion", None) is not None:
        changes["congestion"] = args.congestion
    path = pcap_path if pcap_path is not None else args.pcap
    if path is not None:
        changes["pcap_path"] = path
    return Config(**changes)


def impairment_from(args: argparse.Namespace) -> Impairment | None:
    if not args.loss and not args.delay:
        return None
    return Impairment(loss=args.loss, delay=args.delay, seed=args.seed)


def numbered_path(path: str | None, n: int) -> str | None:
    """``capture.pcap`` -> ``capture-3.pcap``: one file per endpoint where a command opens
    many (each endpoint truncates its file)."""
    if path is None:
        return None
    stem, ext = os.path.splitext(path)
    return f"{stem}-{n}{ext}"


def setup_logging(kind: str | None) -> None:
    """Route atcp's structured events to stderr through structlog (``--log``)."""
    if kind is None:
        return
    import structlog
    if kind == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    renderer],
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    log.enable()


def say(message: str) -> None:
    """A status line on stderr (stdout is kept for data)."""
    print(f"atcp: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- errors
def describe_error(exc: BaseException, target: str | None = None) -> str:
    """One line saying what went wrong, in the user's terms."""
    where = f" {target}" if target else ""
    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate check failed{_for(target)}: {exc.verify_message or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed{_for(target)}: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by{where or ' peer'} (nothing listens there)"
    if isinstance(exc, ConnectionResetError):
        return f"connection reset by peer{_for(target)}"
    if isinstance(exc, ConnectionAbortedError):
        return f"connection aborted{_for(target)}: {exc.strerror or exc}"
    if isinstance(exc, TimeoutError):
        return f"timed out: no answer from {target or 'the peer'}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve{where}: {exc.strerror or exc}"
    if isinstance(exc, OSError):
        if exc.errno == errno.EADDRINUSE:
            return f"address already in use:{where}"
        if exc.errno == errno.EADDRNOTAVAIL:
            return f"cannot use address{where}: not an address of this host"
        text = exc.strerror or str(exc)
        name = f" {exc.filename}" if exc.filename else where
        return f"{text}:{name}" if name else text
    if isinstance(exc, (ValueError, TypeError)):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"


def _for(target: str | None) -> str:
    return f" ({target})" if target else ""


def _report(exc: BaseException, target: str | None) -> None:
    if os.environ.get("ATCP_TRACEBACK"):
        traceback.print_exception(exc)
    print(f"atcp: error: {describe_error(exc, target)}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- running
class Stop:
    """Set by SIGINT or SIGTERM; a serving command waits on it and exits normally."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    async def wait(self) -> None:
        await self.event.wait()


def run(command, args: argparse.Namespace, *, serving: bool = False) -> int:
    """Run ``command(args[, stop])`` on a fresh event loop; return the exit status.

    A serving command receives a `Stop` and returns when it is set (SIGINT/SIGTERM: exit
    0). Any other command is cancelled by those signals (status 130). Exceptions become
    one line on stderr and status 1; the exception's ``target`` attribute, if set, says
    which address it concerns.
    """
    setup_logging(args.log)
    try:
        return asyncio.run(_main(command, args, serving))
    except KeyboardInterrupt:   # a signal before the handlers were installed
        return INTERRUPTED


async def _main(command, args, serving: bool) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    stop = Stop()
    interrupted = False

    def on_signal() -> None:
        nonlocal interrupted
        if serving:
            stop.event.set()
        else:
            interrupted = True
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        status = await (command(args, stop) if serving else command(args))
        return 0 if status is None else status
    except asyncio.CancelledError:
        if interrupted:
            say("interrupted")
            return INTERRUPTED
        raise
    except Exception as exc:
        _report(exc, getattr(exc, "target", None))
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def with_target(exc: BaseException, target) -> BaseException:
    """Attach the address an error concerns, for `describe_error`."""
    try:
        exc.target = str(target)
    except AttributeError:
        pass
    return exc


async def serve_until_stopped(args: argparse.Namespace, stop: asyncio.Event, handler,
                              where: Address, name: str, purpose: str,
                              medium: str = "") -> int:
    """Serve ``handler`` on ``where`` until ``stop`` is set, announcing the listening address
    with ``purpose`` ("echoing", "forwarding to ..."); the shared body of the servers."""
    from .. import aio
    from .stats import format_endpoint_totals

    try:
        server = await aio.start_server(handler, where.host, where.port,
                                        config=config_from(args),
                                        impairment=impairment_from(args))
    except OSError as exc:
        raise with_target(exc, where) from None
    for address, tcp_port in zip(server.addresses, server.tcp_ports):
        say(f"{name}: listening on {medium}{format_address(*address[:2])} "
            f"(TCP port {tcp_port}); {purpose}")
    try:
        await stop.wait()
    finally:
        endpoints = server.endpoints
        server.close()
        if args.verbose:
            print(format_endpoint_totals(name, endpoints), file=sys.stderr, flush=True)
    return 0
