"""One side of one measurement, as its own process.

    python -m benchmarks.peer --role server --transport atcp --loop uvloop --scenario bulk ...

A server prints ``{"ready": PORT}`` once it listens, then one JSON report when its work is
over (or when the runner closes its stdin). A client prints one JSON report. Times are
``time.monotonic()`` values, which are comparable across processes on Linux.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback

from .common import emit, now, raise_nofile, run_on

__all__ = ["main"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--role", choices=("client", "server"), required=True)
    p.add_argument("--transport", choices=("atcp", "tcp", "quic", "udp", "udpstreams"), required=True)
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    p.add_argument("--scenario", choices=("bulk", "echo", "conns", "churn", "flow"),
                   required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--size", type=int, default=32 << 20, help="bulk bytes")
    p.add_argument("--msg", type=int, default=64, help="echo message bytes")
    p.add_argument("--duration", type=float, default=3.0, help="echo/churn/flow seconds")
    p.add_argument("--count", type=int, default=10_000, help="conns: connections")
    p.add_argument("--parallel", type=int, default=100, help="conns: opens in flight")
    p.add_argument("--trace", action="store_true", help="conns: measure with tracemalloc")
    p.add_argument("--datagram", type=int, default=1484, help="aioquic max_datagram_size")
    p.add_argument("--atcp-config", metavar="JSON", default=None,
                   help='atcp: Config overrides as a JSON object, e.g. \'{"udp_offload": false}\'')
    p.add_argument("--deadline", type=float, default=None,
                   help="time.monotonic() by which to stop, whatever is done")
    p.add_argument("--profile", metavar="FILE",
                   help="run under cProfile, stats to FILE.client or FILE.server (not for timing)")
    args = p.parse_args(argv)
    if args.deadline is None:
        args.deadline = now() + 120.0
    return args


async def _serve(args) -> dict:
    def ready(port: int) -> None:
        emit({"ready": port})

    if args.transport == "udp":
        from . import udp_raw
        return await udp_raw.server_workload(args, ready)
    from . import streams
    transport = streams.make_transport(args.transport, datagram_size=args.datagram,
                                       atcp_config=args.atcp_config)
    return await streams.server_workload(transport, args, ready)


async def _client(args) -> dict:
    if args.transport == "udp":
        from . import udp_raw
        return await udp_raw.client_workload(args)
    from . import streams
    transport = streams.make_transport(args.transport, datagram_size=args.datagram,
                                       atcp_config=args.atcp_config)
    return await streams.client_workload(transport, args)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.scenario in ("conns", "churn"):
        raise_nofile(2 * args.count + 1024)
    work = _serve(args) if args.role == "server" else _client(args)
    profiler = None
    if args.profile:
        import cProfile
        profiler = cProfile.Profile(time.process_time)   # CPU, not time spent idle
        profiler.enable()
    try:
        result = run_on(args.loop, work)
    except BaseException as exc:   # the runner reads a report, not a traceback
        emit({"error": f"{type(exc).__name__}: {exc}",
              "traceback": traceback.format_exc(limit=-6)})
        return 1
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(f"{args.profile}.{args.role}")
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
