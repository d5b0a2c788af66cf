"""A disposable atcp peer process for test_robust_faults.py, which kills it with SIGKILL.

    python fault_peer.py client HOST PORT send   # connect, write zeros forever
    python fault_peer.py client HOST PORT sink   # connect, say hello, read forever
    python fault_peer.py server PORT             # echo server on UDP/TCP port PORT

It prints one line when it is ready ("connected" or "listening") and then runs until
killed. Retries are short so that nothing it does outlives the test by long.
"""

from __future__ import annotations

import asyncio
import sys

import atcp

CONFIG = atcp.Config(rto_initial=0.1, rto_min=0.05, rto_max=0.5, data_retries=4,
                     syn_retries=3, msl=0.5)


async def client(host: str, port: int, mode: str) -> None:
    reader, writer = await atcp.open_connection(host, port, config=CONFIG)
    print("connected", flush=True)
    if mode == "send":
        block = bytes(16384)
        while True:
            writer.write(block)
            await writer.drain()
    writer.write(b"hello")
    while await reader.read(65536):
        pass


async def server(port: int) -> None:
    async def echo(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        writer.close()

    srv = await atcp.start_server(echo, "127.0.0.1", port, config=CONFIG)
    print("listening", flush=True)
    async with srv:
        await srv.serve_forever()


def main(argv: list[str]) -> None:
    if argv[0] == "client":
        asyncio.run(client(argv[1], int(argv[2]), argv[3]))
    else:
        asyncio.run(server(int(argv[1])))


if __name__ == "__main__":
    main(sys.argv[1:])
