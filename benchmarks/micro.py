"""In-process measurements of the sans-I/O core and of timers, one per process.

    python -m benchmarks.micro NAME [--quick]      # prints one JSON report

* ``timers``: re-arming one of 10,000 timers: ``TimingWheel.schedule`` (the wheel's re-arm),
  the connection's own lazy re-arm of the retransmission timer (a field write while the new
  deadline is later than the one filed in the wheel), and asyncio's
  ``handle.cancel()`` + ``loop.call_later`` on the default loop and on uvloop.
* ``core_segments``: a bulk transfer between two `Stack` objects over
  `atcp.testing.link.Link` (fake clock, no loss): CPU per data segment, split into the
  sender's side (ACKs in, data out), the receiver's side (data in, ACKs out) and the
  simulated link itself.
* ``core_memory``: memory per established connection in the core alone (both ends of N
  connections made over the Link), by tracemalloc.
* ``time_wait``: memory per TIME-WAIT record, with 100,000 records made through the core's
  own ``Stack._enter_time_wait`` (from connections built directly, not from 100,000 real
  closes); then open/close cycles over the Link with those 100,000 records waiting, against
  the same cycles with none.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import sys
import time
import tracemalloc

from .common import emit, run_on

__all__ = ["main"]

_REMOTE_A = ("10.0.0.1", 5000)
_REMOTE_B = ("10.0.0.2", 5000)


class _NullLog:
    """Stands in for Link.log, which would otherwise keep every datagram sent."""

    def append(self, _item) -> None:
        pass


class _Item:
    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n


# ------------------------------------------------------------------ timers
_BATCH = 1000   # re-arms timed together; figures are the median over batches


def _cpu() -> float:
    """This thread's CPU time: other processes on a busy machine do not count."""
    return time.thread_time()


def bench_timers(n: int, ops: int, rounds_count: int) -> dict:
    from atcp.core.wheel import TimingWheel

    rng = random.Random(1)
    picks = [rng.randrange(n) for _ in range(ops)]
    # Deadlines a retransmission timer would get: now + an RTO of 0.2-1.2 s, as time moves.
    deadlines = [0.2 + rng.random() + i * 1e-6 for i in range(ops)]

    items = [_Item(i) for i in range(n)]
    wheel = TimingWheel(tick=0.001, now=0.0)
    for item in items:
        wheel.schedule(item, 0.2 + rng.random())
    schedule = wheel.schedule
    targets = [items[i] for i in picks]

    def wheel_round() -> float:
        batches = []
        for start in range(0, ops, _BATCH):
            t = _cpu()
            for i in range(start, min(start + _BATCH, ops)):
                schedule(targets[i], deadlines[i])
            batches.append((_cpu() - t) / _BATCH * 1e9)
        return statistics.median(batches)

    # The methods take turns, round after round, so that a busy spell on the machine falls
    # on all of them alike; each figure is the median of its rounds.
    lazy_round = _lazy_rearm(n, ops, picks)
    rounds: dict[str, list[float]] = {}
    for _ in range(rounds_count):
        rounds.setdefault("wheel_schedule_ns", []).append(wheel_round())
        rounds.setdefault("connection_lazy_rearm_ns", []).append(lazy_round())
        for loop_name in ("asyncio", "uvloop"):
            rounds.setdefault(f"call_later_{loop_name}_ns", []).append(
                run_on(loop_name, _call_later_ns(n, picks, deadlines)))
    result = {"connections": n, "ops": ops, "rounds": rounds_count}
    result.update({name: statistics.median(values) for name, values in rounds.items()})
    return result


def _lazy_rearm(n: int, ops: int, picks: list[int]):
    """What an ACK costs the timers in atcp's core: `Connection._arm_rexmt` on connections
    whose wheel entry is earlier than the new deadline (the common case), i.e. a compare and
    a field write. Returns a function that times one round."""
    from atcp.core.stack import Stack

    stack = Stack(now=0.0)
    conns = [stack.connect(_REMOTE_B, 80, 0.0) for _ in range(min(n, 2000))]
    stack.datagrams_to_send()
    arm = [conns[i % len(conns)]._arm_rexmt for i in picks]
    clock = [0.0]

    def one_round() -> float:
        # Time moves on by 10 us per ACK, so each new deadline (now + RTO) is later than
        # the last one, as it is for a connection receiving ACKs.
        nows = [clock[0] + i * 1e-5 for i in range(ops)]
        clock[0] = nows[-1]
        return _rearm_batches(arm, nows, ops)
    return one_round


def _rearm_batches(arm, nows, ops: int) -> float:
    batches = []
    for start in range(0, ops, _BATCH):
        t = _cpu()
        for i in range(start, min(start + _BATCH, ops)):
            arm[i](nows[i])
        batches.append((_cpu() - t) / _BATCH * 1e9)
    return statistics.median(batches)


async def _call_later_ns(n: int, picks: list[int], deadlines: list[float]) -> float:
    loop = asyncio.get_running_loop()

    def callback() -> None:
        pass

    rng = random.Random(2)
    handles = [loop.call_later(0.2 + rng.random(), callback) for _ in range(n)]
    call_later = loop.call_later
    ops = len(picks)
    batches = []
    for start in range(0, ops, _BATCH):
        t = _cpu()
        for i in range(start, min(start + _BATCH, ops)):
            j = picks[i]
            handles[j].cancel()
            handles[j] = call_later(deadlines[i], callback)
        # One loop pass per batch, as a real program would make: the default loop purges
        # cancelled handles from its heap there, which is part of what cancel() costs.
        await asyncio.sleep(0)
        batches.append((_cpu() - t) / _BATCH * 1e9)
    for handle in handles:
        handle.cancel()
    return statistics.median(batches)


# ------------------------------------------------------------------ core per segment
def _pair(config=None, seed: int = 1, now: float = 0.0):
    from atcp.config import Config
    from atcp.core.stack import Stack
    from atcp.testing.link import Link

    cfg = config or Config()
    a = Stack(cfg, rng=random.Random(seed), secret=b"a" * 32)
    b = Stack(cfg, rng=random.Random(seed + 1), secret=b"b" * 32)
    link = Link(a, b, delay=0.0005, seed=seed, addr_a=_REMOTE_A, addr_b=_REMOTE_B, now=now)
    link.log = _NullLog()
    return a, b, link


class _Timed:
    """Wraps a callable and adds up the time spent in it."""

    __slots__ = ("fn", "total", "calls")

    def __init__(self, fn) -> None:
        self.fn, self.total, self.calls = fn, 0.0, 0

    def __call__(self, *args):
        t = time.perf_counter()
        try:
            return self.fn(*args)
        finally:
            self.total += time.perf_counter() - t
            self.calls += 1


def bench_core_segments(size: int) -> dict:
    a, b, link = _pair()
    conn, server = link.open()
    a_recv, b_recv = _Timed(a.receive), _Timed(b.receive)
    a_poll, b_poll = _Timed(a.poll), _Timed(b.poll)
    send, read = _Timed(conn.send), _Timed(server.read)
    a.receive, b.receive, a.poll, b.poll = a_recv, b_recv, a_poll, b_poll
    chunk = bytes(65536)
    view = memoryview(chunk)
    sent = received = 0
    segs_out0, segs_in0 = conn.segs_out, server.segs_in
    gc.collect()
    cpu0, t0 = time.process_time(), time.perf_counter()
    for _ in range(10_000_000):
        if received >= size:
            break
        while sent < size:
            n = send(view[:min(65536, size - sent)], link.now)
            sent += n
            if n == 0:
                break
        received += len(read(-1, link.now))
        if not link.step():
            break
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - t0
    data_segments = server.segs_in - segs_in0
    sender = a_recv.total + a_poll.total + send.total
    receiver = b_recv.total + b_poll.total + read.total
    return {"bytes": received, "data_segments": data_segments,
            "sender_segments_out": conn.segs_out - segs_out0,
            "acks_received": a_recv.calls, "cpu_s": cpu, "wall_s": wall,
            "us_per_segment_total": cpu / data_segments * 1e6,
            "us_per_segment_sender": sender / data_segments * 1e6,
            "us_per_segment_receiver": receiver / data_segments * 1e6,
            "us_per_segment_link": (wall - sender - receiver) / data_segments * 1e6,
            "retransmits": conn.retransmits}


def bench_core_echo(round_trips: int) -> dict:
    """64-byte request/response between two `Stack`s that hand each other their datagrams
    directly (no `Link`, no I/O, a clock that moves 50 us per hop): the protocol's own CPU
    per round trip on each side, which the end-to-end echo adds to the socket calls, the
    event loop and asyncio's streams."""
    from atcp.config import Config
    from atcp.core.stack import Stack

    cfg = Config()
    a = Stack(cfg, rng=random.Random(1), secret=b"a" * 32)
    b = Stack(cfg, rng=random.Random(2), secret=b"b" * 32)
    clock = [0.0]

    def hand_over(src, dst, src_addr) -> bool:
        out = src.datagrams_to_send()
        if out:
            clock[0] += 50e-6
            dst.receive_batch([(data, src_addr) for data, _ in out], clock[0])
        return bool(out)

    listener = b.listen(80)
    client = a.connect(_REMOTE_B, 80, 0.0)
    for _ in range(100):
        if not (hand_over(a, b, _REMOTE_A) | hand_over(b, a, _REMOTE_B)):
            break
    server = listener.accept()
    if server is None:
        raise RuntimeError("core echo: the connection did not open")
    msg = b"e" * 64

    def exchange(count: int) -> tuple[float, float]:
        client_s = server_s = 0.0
        perf = time.perf_counter
        for _ in range(count):
            t0 = perf()
            client.send(msg, clock[0])
            out = a.datagrams_to_send()
            t1 = perf()
            clock[0] += 50e-6
            b.receive_batch([(data, _REMOTE_A) for data, _ in out], clock[0])
            _drain_events(b)
            server.send(server.read(-1, clock[0]), clock[0])
            out = b.datagrams_to_send()
            t2 = perf()
            clock[0] += 50e-6
            a.receive_batch([(data, _REMOTE_B) for data, _ in out], clock[0])
            _drain_events(a)
            if len(client.read(-1, clock[0])) != len(msg):
                raise RuntimeError("core echo: the reply did not arrive whole")
            t3 = perf()
            client_s += (t1 - t0) + (t3 - t2)
            server_s += t2 - t1
        return client_s, server_s

    exchange(1_000)   # warm up: the RTT estimate and the windows settle
    gc.collect()
    client_s, server_s = exchange(round_trips)
    return {"round_trips": round_trips,
            "us_per_round_trip": (client_s + server_s) / round_trips * 1e6,
            "us_client": client_s / round_trips * 1e6,
            "us_server": server_s / round_trips * 1e6,
            "segments": client.segs_out + server.segs_out}


# ------------------------------------------------------------------ memory
def _established_pairs(count: int):
    """``count`` connections a->b over the Link, all ESTABLISHED and accepted."""
    from atcp.config import Config
    from atcp.core.states import State

    a, b, link = _pair(Config(backlog=count + 16))
    listener = b.listen(80)
    clients, servers = [], []
    batch = 200
    for start in range(0, count, batch):
        group = [a.connect(_REMOTE_B, 80, link.now) for _ in range(min(batch, count - start))]
        link.run(stop=lambda: all(c.state is State.ESTABLISHED for c in group),
                 max_steps=100_000)
        clients += group
        while (conn := listener.accept()) is not None:
            servers.append(conn)
    link.run(until=link.now + 1.0, max_steps=100_000)   # delayed ACKs, if any
    while (conn := listener.accept()) is not None:
        servers.append(conn)
    _drain_events(a)
    _drain_events(b)
    return a, b, link, clients, servers


def _drain_events(stack) -> None:
    while stack.next_event() is not None:
        pass


def bench_core_memory(count: int) -> dict:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    a, b, link, clients, servers = _established_pairs(count)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    total = len(clients) + len(servers)
    return {"connections": total, "bytes_per_connection": (after - before) / total,
            "established": sum(1 for c in clients if c.state.name == "ESTABLISHED")}


# ------------------------------------------------------------------ TIME-WAIT
def _fill_time_wait(stack, count: int, start: float, span: float) -> None:
    """``count`` TIME-WAIT records in ``stack``, made by the core's own code path from
    connections built directly (each to its own remote UDP address), entering TIME-WAIT at
    times spread evenly over ``[start, start + span)``."""
    from atcp.core.connection import Connection

    cfg = stack.config
    for i in range(count):
        now = start + span * i / count
        remote = (f"10.{1 + i // 65536}.{(i // 256) % 256}.{i % 256}", 40000)
        conn = Connection(stack, cfg, remote, 49152 + i % 16384, 80, stack.mss, now)
        conn.snd_nxt = conn.snd_una = 1000 + i
        conn.rcv_nxt = 5000 + i
        stack._enter_time_wait(conn, now)


def _roomy_config(time_wait: int):
    """The default Config, except that one stack may hold ``time_wait`` TIME-WAIT records
    (the default cap is lower; at the cap the oldest record is recycled)."""
    from atcp.config import Config

    cfg = Config()
    if hasattr(cfg, "max_time_wait"):
        cfg = cfg.replace(max_time_wait=max(cfg.max_time_wait, time_wait))
    return cfg


def bench_time_wait(entries: int, cycles: int) -> dict:
    from atcp.core.stack import Stack

    stack = Stack(_roomy_config(entries), now=0.0)
    span = 2 * stack.config.msl
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    _fill_time_wait(stack, entries, 0.0, span * 0.99)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    waiting = len(stack._time_wait)
    result = {"entries": waiting, "bytes_per_entry": (after - before) / waiting}
    result["churn_empty"] = _churn(0, cycles, 0.0)
    # Steady state: records entered TIME-WAIT over the last 2*MSL, so they expire a few at
    # a time while the cycles run.
    result["churn_full"] = _churn(entries, cycles, span * 0.99)
    # A burst: all records entered TIME-WAIT in the same instant (a mass close).
    result["churn_burst"] = _churn(entries, max(cycles // 10, 10), 0.0)
    return result


def _churn(prefill: int, cycles: int, span: float) -> dict:
    """Open, close (client first: it keeps the TIME-WAIT record) and wait for both ends to
    finish, ``cycles`` times over the Link, with ``prefill`` records already waiting."""
    from atcp.core.states import State

    a, b, link = _pair(_roomy_config(prefill + cycles), now=span)
    _fill_time_wait(a, prefill, 0.0, span)
    listener = b.listen(80)
    done = 0
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(cycles):
        conn = a.connect(_REMOTE_B, 80, link.now)
        link.run(stop=lambda: conn.state is State.ESTABLISHED, max_steps=1000)
        server = None
        for _ in range(100):
            server = listener.accept()
            if server is not None:
                break
            link.step()
        conn.close(link.now)
        link.run(stop=lambda: server.eof, max_steps=1000)
        server.close(link.now)
        link.run(stop=lambda: conn.state is State.TIME_WAIT
                 and server.state is State.CLOSED, max_steps=1000)
        _drain_events(a)
        _drain_events(b)
        done += conn.state is State.TIME_WAIT
    elapsed = time.perf_counter() - t0
    return {"prefilled": prefill, "cycles": done, "rate": done / elapsed,
            "us_per_cycle": elapsed / max(done, 1) * 1e6, "time_wait_after": len(a._time_wait)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", choices=("timers", "core_segments", "core_echo", "core_memory",
                                     "time_wait"))
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    q = args.quick
    if args.name == "timers":
        result = bench_timers(10_000, 50_000 if q else 100_000, 3 if q else 7)
    elif args.name == "core_segments":
        result = bench_core_segments((4 if q else 32) << 20)
    elif args.name == "core_echo":
        result = bench_core_echo(20_000 if q else 100_000)
    elif args.name == "core_memory":
        result = bench_core_memory(2_000 if q else 10_000)
    else:
        result = bench_time_wait(100_000, 300 if q else 2_000)
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
