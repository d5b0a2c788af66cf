"""The main job: an echo server and client talking over a lossy link, checked end to end.

    python examples/lossy_echo.py [--loss 0.05] [--size 1048576] [--seed 7] [--uvloop]

Both sides run in this process on 127.0.0.1, each on its own UDP socket, and every datagram
either side sends is dropped with probability --loss (seeded, so runs repeat). The client
sends --size random bytes, half-closes, and reads the echo back; the program prints what was
sent, received and retransmitted, and whether the SHA-256 of the echo matches.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import sys
import time

import atcp


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.write_eof()
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def run(args: argparse.Namespace) -> int:
    link = dict(loss=args.loss, seed=args.seed)
    config = atcp.Config(msl=1.0)   # a short TIME-WAIT so the demo ends promptly
    server = await atcp.start_server(echo, "127.0.0.1", 0, config=config,
                                     impairment=atcp.Impairment(**link))
    host, port = server.addresses[0][:2]
    payload = random.Random(args.seed).randbytes(args.size)
    started = time.perf_counter()
    reader, writer = await atcp.open_connection(
        host, port, config=config, impairment=atcp.Impairment(**{**link, "seed": args.seed + 1}))

    async def send() -> None:
        for i in range(0, len(payload), 65536):
            writer.write(payload[i:i + 65536])
            await writer.drain()
        writer.write_eof()

    sender = asyncio.create_task(send())
    echoed = await reader.read()            # everything, up to the server's FIN
    await sender
    elapsed = time.perf_counter() - started
    info = writer.get_extra_info("tcp_info")
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()

    ok = hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()
    print(f"link          : {args.loss:.1%} loss each way (seed {args.seed})")
    print(f"sent          : {len(payload):,} bytes")
    print(f"received      : {len(echoed):,} bytes in {elapsed:.2f} s "
          f"({len(echoed) / elapsed / 1e6:.2f} MB/s)")
    print(f"retransmitted : {info.retransmits} segments by the client "
          f"(srtt {info.srtt * 1000 if info.srtt else 0:.1f} ms, rto {info.rto * 1000:.0f} ms)")
    print(f"sha256 match  : {'yes' if ok else 'NO'}")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss", type=float, default=0.05)
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args()
    if not 0 <= args.loss < 1:
        parser.error("--loss must be in [0, 1)")
    if args.uvloop:
        import uvloop
        return uvloop.run(run(args))
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
