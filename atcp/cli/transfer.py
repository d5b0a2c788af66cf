"""``atcp send FILE HOST:PORT`` and ``atcp receive HOST:PORT``: one file, checked end to end.

The stream (all integers big-endian)::

    header   8 bytes  b"ATCPFILE"
             1 byte   version (1)
             1 byte   flags (0)
             2 bytes  length of the name in bytes
             8 bytes  size of the file in bytes
             name     the file's base name, UTF-8
    body     the file's bytes, exactly "size" of them
    trailer  32 bytes SHA-256 of the body
    (the sender then half-closes: FIN)

    reply    32 bytes the receiver's own SHA-256 of what it received; then it closes

Both sides compare the two digests, so both exit non-zero if the file arrived damaged (TCP
makes that unlikely; atcp's segments carry no checksum of their own and UDP's may be
off). The receiver writes into ``NAME.part`` and renames it only once the digest matches.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import struct
import sys

from .. import aio
from .common import (CliError, add_common_flags, config_from, format_address, impairment_from,
                     parse_address, positive_seconds, run, say, with_target)
from .connect import finish, open_to
from .progress import Progress, human_bytes
from .stats import connection_label, format_stats

MAGIC = b"ATCPFILE"
VERSION = 1
HEADER = struct.Struct("!8sBBHQ")
DIGEST_SIZE = hashlib.sha256().digest_size
_CHUNK = 256 * 1024
_TICK = 0.1   # seconds between progress samples on the sending side

FRAMING = """\
Framing: a 20-byte header (b"ATCPFILE", version 1, flags 0, name length: 2 bytes, file
size: 8 bytes, big-endian), the file's base name (UTF-8), the file's bytes, then its
32-byte SHA-256; the receiver answers with the SHA-256 of what it got, and both sides
compare.
"""

SEND_DESCRIPTION = """\
Send FILE to an `atcp receive` listening at HOST:PORT, with a progress bar (bytes the
receiver has acknowledged, rate and ETA) on stderr when it is a terminal or with
--progress. Exits 0 only when the receiver confirms the SHA-256 of the whole file.
""" + FRAMING

RECEIVE_DESCRIPTION = """\
Listen on UDP HOST:PORT (TCP port PORT) for one `atcp send`, write the file it sends and
exit. The file is written to -o FILE (a directory: the sender's file name inside it; -:
standard output), or by default to the sender's file name in the current directory. It is
written as NAME.part and renamed once its SHA-256 matches; a mismatch deletes it and exits
non-zero. Port 0 picks a free port; the address is printed on stderr.
""" + FRAMING


def register(subparsers) -> None:
    send = subparsers.add_parser("send", help="send a file to `atcp receive`",
                                 description=SEND_DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    send.add_argument("file", metavar="FILE", help="the file to send")
    send.add_argument("address", metavar="HOST:PORT", help="where `atcp receive` listens")
    send.add_argument("--timeout", type=positive_seconds, default=None, metavar="T",
                      help="give up connecting after T seconds")
    _progress_flag(send)
    add_common_flags(send)
    send.set_defaults(func=lambda args: run(send_file, args))

    receive = subparsers.add_parser("receive", help="receive one file from `atcp send`",
                                    description=RECEIVE_DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    receive.add_argument("address", metavar="HOST:PORT", help="UDP address to listen on")
    receive.add_argument("-o", "--output", metavar="FILE", default=None,
                         help="where to write the file (a directory, or - for stdout)")
    _progress_flag(receive)
    add_common_flags(receive)
    receive.set_defaults(func=lambda args: run(receive_file, args))


def _progress_flag(parser) -> None:
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show the progress bar even when stderr is not a terminal "
                             "(--no-progress: never)")


def _progress_enabled(args) -> bool:
    return args.progress if args.progress is not None else sys.stderr.isatty()


# ---------------------------------------------------------------------- framing
def encode_header(name: str, size: int) -> bytes:
    raw = name.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise CliError("file name too long")
    return HEADER.pack(MAGIC, VERSION, 0, len(raw), size) + raw


async def read_header(reader: asyncio.StreamReader) -> tuple[str, int]:
    """(name, size) from the start of a transfer; CliError if it is not one."""
    try:
        magic, version, _flags, name_len, size = HEADER.unpack(
            await reader.readexactly(HEADER.size))
        if magic != MAGIC:
            raise CliError("the sender does not speak atcp send's framing")
        if version != VERSION:
            raise CliError(f"unsupported atcp send framing version {version}")
        name = (await reader.readexactly(name_len)).decode("utf-8", errors="replace")
    except asyncio.IncompleteReadError:
        raise CliError("the sender closed before sending a complete header") from None
    return name, size


def safe_name(name: str) -> str:
    """The sender's name reduced to a plain file name (no directories, no surprises)."""
    base = os.path.basename(name.replace("\\", "/")).strip()
    if base in ("", ".", "..") or "\x00" in base:
        return "received.bin"
    return base


def output_path(output: str | None, name: str) -> str | None:
    """Where to write; None means standard output."""
    if output == "-":
        return None
    if output is None:
        return safe_name(name)
    if os.path.isdir(output):
        return os.path.join(output, safe_name(name))
    return output


# ---------------------------------------------------------------------- send
async def send_file(args) -> int:
    target = parse_address(args.address)
    try:
        size = os.stat(args.file).st_size
        source = open(args.file, "rb")
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    with source:
        if not os.path.isfile(args.file):
            raise CliError(f"{args.file} is not a regular file")
        name = os.path.basename(args.file)
        header = encode_header(name, size)
        reader, writer = await open_to(args, target)
        label = connection_label(writer)
        progress = Progress(f"send {name}", size, sys.stderr, enabled=_progress_enabled(args))
        ticker = asyncio.create_task(_track_acks(writer, progress, len(header), size))
        graceful = False
        try:
            digest = await _send_body(writer, source, header, size)
            reply = await reader.read()
            graceful = True
        except OSError as exc:
            raise with_target(exc, target) from None
        finally:
            ticker.cancel()
            await finish(writer, graceful=graceful)
            if args.verbose:
                print(format_stats(writer.get_extra_info("tcp_info"), label),
                      file=sys.stderr, flush=True)
        elapsed = progress.finish(size if len(reply) == DIGEST_SIZE else progress.done)
    if len(reply) != DIGEST_SIZE:
        raise CliError("the receiver closed without confirming the file")
    if reply != digest:
        raise CliError("SHA-256 mismatch: the receiver got different bytes")
    say(f"sent {name}: {size:,} bytes in {elapsed:.2f} s ({_rate(size, elapsed)}), "
        f"SHA-256 {digest.hex()} confirmed by the receiver")
    return 0


async def _send_body(writer, source, header: bytes, size: int) -> bytes:
    writer.write(header)
    sha = hashlib.sha256()
    sent = 0
    while chunk := source.read(_CHUNK):
        sha.update(chunk)
        writer.write(chunk)
        sent += len(chunk)
        await writer.drain()
    if sent != size:
        raise CliError(f"the file changed while it was sent ({sent:,} bytes, not {size:,})")
    digest = sha.digest()
    writer.write(digest)
    writer.write_eof()
    return digest


async def _track_acks(writer, progress: Progress, offset: int, size: int) -> None:
    """Progress on the sending side counts what the receiver acknowledged, not what was
    handed to the send buffer (which runs ahead by up to the buffer's size)."""
    while True:
        acked = writer.get_extra_info("tcp_info").bytes_acked - offset
        progress.update(max(0, min(acked, size)))
        await asyncio.sleep(_TICK)


# ---------------------------------------------------------------------- receive
async def receive_file(args) -> int:
    where = parse_address(args.address, listen=True)
    loop = asyncio.get_running_loop()
    first: asyncio.Future = loop.create_future()

    def handle(reader, writer) -> None:
        if first.done():
            writer.transport.abort()   # one transfer per run
        else:
            first.set_result((reader, writer))

    try:
        server = await aio.start_server(handle, where.host, where.port,
                                        config=config_from(args),
                                        impairment=impairment_from(args))
    except OSError as exc:
        raise with_target(exc, where) from None
    address, tcp_port = server.addresses[0], server.tcp_ports[0]
    say(f"receive: listening on {format_address(*address[:2])} (TCP port {tcp_port}); "
        f"waiting for atcp send")
    try:
        reader, writer = await first
    finally:
        server.close()
    label = connection_label(writer)
    graceful = False
    try:
        status = await _receive(args, reader, writer)
        graceful = True
        return status
    except CliError:
        graceful = True    # the exchange itself went through: let the reply reach the sender
        raise
    except OSError as exc:
        raise with_target(exc, "the sender") from None
    finally:
        await finish(writer, graceful=graceful)
        if args.verbose:
            print(format_stats(writer.get_extra_info("tcp_info"), label), file=sys.stderr,
                  flush=True)


async def _receive(args, reader, writer) -> int:
    name, size = await read_header(reader)
    path = output_path(args.output, name)
    progress = Progress(f"receive {safe_name(name)}", size, sys.stderr,
                        enabled=_progress_enabled(args))
    part = None if path is None else path + ".part"
    try:
        sink = sys.stdout.buffer if part is None else open(part, "wb")
    except OSError as exc:
        raise CliError(f"cannot write {part}: {exc.strerror}") from None
    try:
        digest = await _receive_body(reader, sink, size, progress)
        try:
            claimed = await reader.readexactly(DIGEST_SIZE)
        except asyncio.IncompleteReadError:
            raise CliError("the sender closed before sending the SHA-256 trailer") from None
        writer.write(digest)
        writer.write_eof()
        if await reader.read(1):
            raise CliError("the sender sent more than the framing allows")
        if claimed != digest:
            raise CliError(f"SHA-256 mismatch: received {digest.hex()}, the sender says "
                           f"{claimed.hex()}; nothing written")
    except BaseException:
        if part is not None:
            sink.close()
            os.unlink(part)
        raise
    elapsed = progress.finish()
    if part is not None:
        sink.close()
        os.replace(part, path)
    say(f"received {safe_name(name)} -> {path or 'stdout'}: {size:,} bytes in "
        f"{elapsed:.2f} s ({_rate(size, elapsed)}), SHA-256 {digest.hex()} ok")
    return 0


async def _receive_body(reader, sink, size: int, progress: Progress) -> bytes:
    sha = hashlib.sha256()
    got = 0
    try:
        while got < size:
            data = await reader.read(min(_CHUNK, size - got))
            if not data:
                raise CliError(f"transfer incomplete: the sender closed after {got:,} of "
                               f"{size:,} bytes")
            sha.update(data)
            sink.write(data)
            got += len(data)
            progress.update(got)
    except BaseException:
        progress.finish()
        raise
    return sha.digest()


def _rate(size: int, elapsed: float) -> str:
    return f"{human_bytes(size / elapsed)}/s" if elapsed > 0 else "-"
