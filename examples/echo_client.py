"""Send a message to an atcp echo server and print what comes back.

    python examples/echo_client.py [--host 127.0.0.1] [--port 9000] [MESSAGE]
"""

from __future__ import annotations

import argparse
import asyncio

import atcp


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("message", nargs="?", default="hello over atcp")
    args = parser.parse_args()
    reader, writer = await atcp.open_connection(args.host, args.port)
    writer.write(args.message.encode())
    writer.write_eof()                       # half close: "that's all I have to say"
    reply = await reader.read()              # read until the server's FIN
    print(reply.decode(errors="replace"))
    writer.close()
    await writer.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
