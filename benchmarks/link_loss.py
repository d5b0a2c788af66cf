"""Goodput under random loss on the simulated link, against the Mathis bound.

    python -m benchmarks.link_loss [--size MiB] [--loss P] [--rtt S] [--seeds 1,2,3]
                                   [--congestion bbr|cubic|newreno] [--buffer KiB]

Two sans-I/O stacks over `atcp.testing.link.Link` (a fake clock, seeded independent loss
each way, a fixed RTT, no bandwidth limit): one transfer per seed, default configuration
(CUBIC with HyStart++, SACK, RACK-TLP, timestamps, pacing) unless ``--congestion`` or
``--buffer`` (send and receive buffers; the window then limits a controller that does not
back off on random loss, such as BBR) say otherwise. Goodput is bytes over simulated
time from the first write to the last byte read, compared with the Mathis et al. bound
MSS / RTT * sqrt(3/2) / sqrt(p) for the same MSS (the one the connection uses, timestamps
deducted), RTT and loss rate. The simulation measures the protocol, not the host: no socket,
no event loop. Self-contained; not part of the main suite (`python -m benchmarks`).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import statistics
import time

from atcp.config import Config
from atcp.core.info import tcp_info
from atcp.core.stack import Stack
from atcp.testing.link import Link


def transfer(size: int, loss: float, rtt: float, seed: int, config: Config) -> dict:
    a = Stack(config, rng=random.Random(seed), secret=b"a" * 32)
    b = Stack(config, rng=random.Random(seed + 1), secret=b"b" * 32)
    link = Link(a, b, delay=rtt / 2, loss=loss, seed=seed)
    client, server = link.open()
    data = random.Random(seed).randbytes(size)
    view = memoryview(data)
    got = bytearray()
    sent = 0
    start = link.now
    wall = time.perf_counter()
    for _ in range(50_000_000):
        if sent < size:
            sent += client.send(view[sent:sent + 262144], link.now)
        got += server.read(-1, link.now)
        if len(got) >= size or not link.step():
            break
    elapsed = link.now - start
    info = tcp_info(client)
    mss = client.snd_mss
    mathis = mss / rtt * math.sqrt(1.5) / math.sqrt(loss)
    return {
        "seed": seed, "goodput": size / elapsed, "mathis": mathis, "mss": mss,
        "intact": hashlib.sha256(got).digest() == hashlib.sha256(data).digest(),
        "seconds": elapsed, "wall": time.perf_counter() - wall,
        "retransmits": info.retransmits, "loss_probes": info.loss_probes,
        "rto_backoffs": client.rto.backoff, "dropped": link.dropped,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=16, help="MiB per transfer (default 16)")
    p.add_argument("--loss", type=float, default=0.01)
    p.add_argument("--rtt", type=float, default=0.020, help="seconds (default 0.020)")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--congestion", default="cubic")
    p.add_argument("--buffer", type=int, default=None,
                   help="send and receive buffer, KiB (default: Config's)")
    args = p.parse_args(argv)
    buffers = {} if args.buffer is None else {"send_buffer": args.buffer << 10,
                                              "recv_buffer": args.buffer << 10}
    config = Config(congestion=args.congestion, **buffers)
    rows = [transfer(args.size << 20, args.loss, args.rtt, int(s), config)
            for s in args.seeds.split(",")]
    for r in rows:
        print(f"seed {r['seed']}: {r['goodput'] / 1e6:.3f} MB/s in {r['seconds']:.1f} s "
              f"simulated ({r['wall']:.1f} s wall), {r['retransmits']} retransmits, "
              f"{r['loss_probes']} loss probes, {r['dropped']} datagrams dropped, "
              f"intact: {r['intact']}")
    median = statistics.median(r["goodput"] for r in rows)
    mathis = rows[0]["mathis"]
    print(f"median {median / 1e6:.3f} MB/s; Mathis bound {mathis / 1e6:.3f} MB/s "
          f"(MSS {rows[0]['mss']}, RTT {args.rtt * 1000:.0f} ms, loss {args.loss:.1%}): "
          f"{median / mathis:.2f}x")
    return 0 if all(r["intact"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
