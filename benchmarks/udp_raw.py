"""Raw asyncio UDP: the ceiling a pure-Python protocol over UDP can reach on this machine.

Both workloads read the socket directly (``loop.add_reader`` and ``recv`` until it would
block), the fastest receive path on either loop (see shared/notes/performance.md), and do
all their work in that callback: no coroutine, no buffer, no protocol beyond a sequence
number.

* bulk (``window``): the client keeps 32 datagrams of 1400 bytes in flight; the server
  acknowledges every datagram by its 8-byte sequence number, packing the numbers of all the
  datagrams one wake-up drained (up to 64) into one ACK datagram, and each sequence number
  acknowledged lets one more datagram go. Datagrams not acknowledged within 50 ms are sent again, so a stray kernel
  drop cannot stall the run (there is no congestion control: it is not meant for lossy
  links and is only run without loss).
* echo (``pingpong``): one 64-byte datagram bounces between client and server.
"""

from __future__ import annotations

import asyncio
import socket
import struct

from .common import cpu_seconds, now, stop_on_stdin_eof

__all__ = ["client_workload", "server_workload"]

WINDOW = 32
DATAGRAM = 1400
_SEQ = struct.Struct("!Q")
_FIN = b"FIN"
_STALL = 0.05
_ACKS_PER_DATAGRAM = 64   # sequence numbers one ACK datagram carries at most


def _socket(host: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        sock.setsockopt(socket.SOL_SOCKET, opt, 1 << 20)
    return sock


async def client_workload(args) -> dict:
    loop = asyncio.get_running_loop()
    sock = _socket(args.host)
    sock.connect((args.host, args.port))
    try:
        if args.scenario == "bulk":
            return await _window_client(loop, sock, args)
        if args.scenario == "echo":
            return await _pingpong_client(loop, sock, args)
        raise ValueError(f"raw UDP has no {args.scenario!r} workload")
    finally:
        for _ in range(3):
            try:
                sock.send(_FIN)
            except OSError:
                break
        loop.remove_reader(sock.fileno())
        sock.close()


async def _window_client(loop, sock, args) -> dict:
    total = -(-args.size // DATAGRAM)
    buf = bytearray(DATAGRAM)
    outstanding: set[int] = set()
    state = {"next": 0, "acked": 0, "progress": now(), "resent": 0}
    done = loop.create_future()
    send, recv = sock.send, sock.recv
    pack_into = _SEQ.pack_into

    def send_seq(seq: int) -> None:
        pack_into(buf, 0, seq)
        try:
            send(buf)
        except BlockingIOError:
            pass   # counted as outstanding: the stall timer sends it again
        outstanding.add(seq)

    def send_more() -> None:
        while len(outstanding) < WINDOW and state["next"] < total:
            send_seq(state["next"])
            state["next"] += 1

    def on_readable() -> None:
        acked = 0
        while True:
            try:
                data = recv(65536)
            except BlockingIOError:
                break
            except ConnectionRefusedError:
                continue
            for (seq,) in _SEQ.iter_unpack(data):
                if seq in outstanding:
                    outstanding.discard(seq)
                    acked += 1
        if acked:
            state["acked"] += acked
            state["progress"] = now()
            send_more()
            if state["acked"] >= total and not done.done():
                done.set_result(None)

    def stall_check() -> None:
        if done.done():
            return
        if now() - state["progress"] > _STALL:
            for seq in list(outstanding):
                send_seq(seq)
                state["resent"] += 1
            state["progress"] = now()
        loop.call_later(_STALL, stall_check)

    loop.add_reader(sock.fileno(), on_readable)
    t0 = now()
    cpu0 = cpu_seconds()
    send_more()
    loop.call_later(_STALL, stall_check)
    try:
        await asyncio.wait_for(done, max(0.1, args.deadline - now()))
    except asyncio.TimeoutError:
        pass
    t1 = now()
    return {"t0": t0, "t1": t1, "sent": state["acked"] * DATAGRAM, "resent": state["resent"],
            "cpu": cpu_seconds() - cpu0, "t_connect": 0.0}


async def _pingpong_client(loop, sock, args) -> dict:
    msg = b"p" * args.msg
    state = {"count": 0, "last": now()}
    done = loop.create_future()
    end_box = [float("inf")]
    send, recv = sock.send, sock.recv

    def on_readable() -> None:
        got = 0
        while True:
            try:
                recv(2048)
            except BlockingIOError:
                break
            except ConnectionRefusedError:
                continue
            got += 1
        if not got:
            return
        state["count"] += got
        t = now()
        state["last"] = t
        if t >= end_box[0]:
            if not done.done():
                done.set_result(None)
            return
        send(msg)

    def stall_check() -> None:
        if done.done():
            return
        if now() - state["last"] > _STALL:
            send(msg)
            state["last"] = now()
        loop.call_later(_STALL, stall_check)

    loop.add_reader(sock.fileno(), on_readable)
    # Warm up, then count from zero.
    end_box[0] = now() + 0.2
    send(msg)
    loop.call_later(_STALL, stall_check)
    await done
    done = loop.create_future()
    state["count"] = 0
    cpu0 = cpu_seconds()
    t0 = now()
    end_box[0] = t0 + args.duration
    send(msg)
    await done
    t1 = now()
    return {"round_trips": state["count"], "t0": t0, "t1": t1, "cpu": cpu_seconds() - cpu0,
            "rate": state["count"] / (t1 - t0)}


async def server_workload(args, ready) -> dict:
    loop = asyncio.get_running_loop()
    sock = _socket(args.host)
    sock.bind((args.host, args.port))
    done = loop.create_future()
    total = -(-args.size // DATAGRAM) if args.scenario == "bulk" else 0
    seen = bytearray(total)
    state = {"datagrams": 0, "bytes": 0, "t_first": None, "t_last": None}
    recvfrom, sendto = sock.recvfrom, sock.sendto
    bulk = args.scenario == "bulk"

    acks: list[bytes] = []

    def flush(addr) -> None:
        try:
            sendto(b"".join(acks), addr)
        except BlockingIOError:
            pass   # the client's stall timer sends those datagrams again
        acks.clear()

    def on_readable() -> None:
        addr = None
        while True:
            try:
                data, addr = recvfrom(65536)
            except BlockingIOError:
                if acks:
                    flush(addr)
                return
            if data == _FIN:
                if not done.done():
                    done.set_result(None)
                return
            if bulk:
                seq = _SEQ.unpack_from(data)[0]
                if seq < total and not seen[seq]:
                    seen[seq] = 1
                    state["datagrams"] += 1
                    state["bytes"] += len(data)
                    t = now()
                    if state["t_first"] is None:
                        state["t_first"] = t
                    state["t_last"] = t
                acks.append(data[:8])
                if len(acks) == _ACKS_PER_DATAGRAM:
                    flush(addr)
            else:
                state["datagrams"] += 1
                sendto(data, addr)

    loop.add_reader(sock.fileno(), on_readable)
    stop_on_stdin_eof(loop, done, dict)
    cpu0 = cpu_seconds()
    ready(sock.getsockname()[1])
    try:
        await asyncio.wait_for(done, max(0.1, args.deadline + 5.0 - now()))
    except asyncio.TimeoutError:
        state["error"] = "server deadline passed"
    loop.remove_reader(sock.fileno())
    sock.close()
    result = {"bytes": state["bytes"], "datagrams": state["datagrams"],
              "t_first": state["t_first"], "t_last": state["t_last"],
              "complete": bulk and state["datagrams"] >= total,
              "cpu": cpu_seconds() - cpu0}
    if "error" in state:
        result["error"] = state["error"]
    return result
