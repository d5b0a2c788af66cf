"""Measuring the proxy's own ceiling: a blaster floods it, a sink counts what comes out.

    python -m benchmarks.flood sink        # prints {"ready": port}, then its count
    python -m benchmarks.flood blast PORT --duration 2 --size 1400

The blaster sends as fast as one Python loop can for ``duration`` seconds, then ``END``
several times; the sink counts datagrams until ``END`` (or its stdin closes). Datagrams the
proxy could not keep up with are dropped by the kernel at the proxy's socket, so
sink count / sink time is the proxy's forwarding rate under overload.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time

from .common import cpu_seconds, emit, now

_END = b"END"


def sink(args) -> dict:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(args.timeout)
    emit({"ready": sock.getsockname()[1]})
    count = 0
    t_first = t_last = None
    cpu0 = cpu_seconds()
    while True:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        if data == _END:
            break
        t_last = now()
        if t_first is None:
            t_first = t_last
        count += 1
    return {"datagrams": count, "t_first": t_first, "t_last": t_last,
            "cpu": cpu_seconds() - cpu0}


def blast(args) -> dict:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", args.port))
    payload = b"x" * args.size
    sent = 0
    t0 = now()
    end = t0 + args.duration
    send = sock.send
    while True:
        for _ in range(256):
            try:
                send(payload)
            except (BlockingIOError, ConnectionRefusedError):
                continue
            sent += 1
        if now() >= end:
            break
    t1 = now()
    time.sleep(0.3)
    for _ in range(5):
        sock.send(_END)
        time.sleep(0.01)
    return {"sent": sent, "t0": t0, "t1": t1}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("role", choices=("sink", "blast"))
    p.add_argument("port", type=int, nargs="?", default=0)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--size", type=int, default=1400)
    p.add_argument("--timeout", type=float, default=10.0)
    args = p.parse_args(argv)
    emit(sink(args) if args.role == "sink" else blast(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
