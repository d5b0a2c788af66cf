"""Coverage-guided fuzzing of the core with atheris (optional: not a dependency of atcp).

Each input is a little program read byte by byte: datagrams aimed at a stack that holds a
listener, an established connection and a TIME-WAIT record (headers with numbers near
the connection's own, options and payload from the input), raw bytes, time passing and
application calls. After every step the invariants of the robustness tests must hold:
nothing raises, every reply parses, no RST answers a RST, what a connection delivers is
the peer's stream, and memory stays within the configuration.

Run it where atheris installs (CPython on Linux or macOS, from PyPI)::

    pip install atheris
    python tests/robustness/atheris_target.py -atheris_runs=200000 -max_len=512 corpus/

(``corpus/`` is an optional directory that libFuzzer fills with interesting inputs; any
other libFuzzer flag works too.) Without atheris, ``python atheris_target.py FILE...``
replays saved inputs, and test_robust_atheris_smoke.py runs the target on random inputs
so that it cannot rot.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

try:
    import atheris
except ImportError:       # replay mode only
    atheris = None

if atheris is not None:
    with atheris.instrument_imports():
        from atcp.core.stack import Stack   # noqa: F401  (instrumented for coverage)
        from atcp.wire import segment       # noqa: F401

from atcp.core.states import State  # noqa: E402
from atcp.testing.peer import Peer  # noqa: E402
from atcp.wire import RST, Options, Segment, build, parse  # noqa: E402
from atcp.wire.seq import seq_add  # noqa: E402

from robust_model import DeliveryChecker, check_bounds, make_stack, peer_bytes  # noqa: E402

_FLAGS = (0x10, 0x18, 0x11, 0x02, 0x12, 0x04, 0x14, 0x01, 0x00, 0x06, 0x03, 0xFF)
_OPTIONS = (Options(), Options(ts_val=7, ts_ecr=1), Options(mss=0, wscale=15),
            Options(mss=536, wscale=3, sack_permitted=True, ts_val=9, ts_ecr=0),
            Options(sack=((0, 10), (20, 30))))


class _Input:
    """Reads small integers and byte strings off the fuzzer's input."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def signed(self) -> int:
        raw = self.take(4).ljust(4, b"\0")
        return struct.unpack("!i", raw)[0]

    def take(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out


def _world():
    stack = make_stack(3, mss=536, recv_buffer=3000, send_buffer=2000, backlog=2,
                       max_connections=4, max_time_wait=2, max_out_of_order=4, msl=2.0,
                       rto_initial=0.2, rto_min=0.2, rto_max=1.0, data_retries=3,
                       syn_retries=2)
    established = Peer(stack, isn=1000, port=4000, stack_port=80)
    conn = established.peer_connects(syn_options=Options(mss=536, wscale=2, ts_val=1,
                                                         ts_ecr=0))
    waiting = Peer(stack, isn=5000, port=4001, stack_port=81)
    waiting.drive_to(State.TIME_WAIT)
    stack.datagrams_to_send()
    return stack, [established, waiting], conn


def TestOneInput(data: bytes) -> None:
    stack, peers, conn = _world()
    delivery = DeliveryChecker()
    now = 0.0
    src = _Input(data)
    for _ in range(64):
        if src.left() <= 0:
            break
        op = src.byte() % 5
        answering = None
        if op == 0:        # a segment near the connection's numbers
            peer = peers[src.byte() % 2]
            key = (peer.remote, peer.stack_port, peer.port)
            live = stack._conns.get(key) or stack.time_wait_record(key)
            rcv = live.rcv_nxt if live is not None else peer.seq(0)
            snd = live.snd_nxt if live is not None else 0
            flags = _FLAGS[src.byte() % len(_FLAGS)]
            seq = seq_add(rcv, src.signed() >> (src.byte() % 32))
            ack = seq_add(snd, src.signed() >> (src.byte() % 32))
            length = src.byte() * 4
            seg = Segment(peer.port, peer.stack_port, seq, ack, flags, src.byte() << 8,
                          peer_bytes(seq, length), _OPTIONS[src.byte() % len(_OPTIONS)])
            answering = seg
            stack.receive(build(seg), peer.remote, now)
        elif op == 1:      # raw bytes
            stack.receive(src.take(src.byte()), peers[0].remote, now)
        elif op == 2:
            now += (src.byte() + 1) * 0.01
            stack.poll(now)
        elif op == 3:
            try:
                [lambda: conn.send(b"a" * (src.byte() * 8), now),
                 lambda: delivery.delivered(conn, conn.read(-1, now)),
                 lambda: conn.shutdown(now), lambda: conn.close(now),
                 lambda: conn.abort(now)][src.byte() % 5]()
            except OSError:
                pass
        else:              # a SYN from anywhere
            port = 1024 + src.byte() * 200
            stack.receive(build(Segment(port, 80, src.signed() & 0xFFFFFFFF, 0, 0x02, 1000,
                                        b"", Options(mss=1400, wscale=7))),
                          ("198.51.100.1", port), now)
        for raw, _ in stack.datagrams_to_send():
            reply = parse(raw)
            if answering is not None and answering.flags & RST:
                assert not reply.flags & RST, (reply, answering)
        while stack.next_event() is not None:
            pass
        check_bounds(stack)


def main(argv: list[str]) -> None:
    if atheris is not None:
        atheris.Setup(argv, TestOneInput)
        atheris.Fuzz()
        return
    for name in argv[1:]:
        TestOneInput(Path(name).read_bytes())
    print(f"replayed {len(argv) - 1} input(s) without atheris")


if __name__ == "__main__":
    main(sys.argv)
