"""An atcp echo server: every byte a client sends comes back.

    python examples/echo_server.py [--host 127.0.0.1] [--port 9000] [--log]

The server listens on UDP 127.0.0.1:9000 and TCP port 9000 (atcp's default pairing).
"""

from __future__ import annotations

import argparse
import asyncio

import atcp


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    peer = writer.get_extra_info("peername")
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()          # the client half-closed: finish our half too
        await writer.drain()
    except ConnectionResetError:
        print(f"{peer}: reset by peer")
    finally:
        writer.close()
        await writer.wait_closed()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--log", action="store_true", help="print atcp's structured events")
    args = parser.parse_args()
    if args.log:
        atcp.log.enable()
    server = await atcp.start_server(handle, args.host, args.port)
    print(f"echoing on {', '.join(map(str, server.addresses))}; Ctrl-C stops")
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
