"""Stateful fuzzing of the core: a chaotic peer and a chaotic application, in any state.

Hypothesis drives one `Stack` with random inputs: segments from a peer on a few
identities (crafted near the windows the stack advertised and the numbers it sent, or
random), spoofed SYNs, garbage datagrams, application calls of every kind on whatever
connection exists (in whatever state), and time passing. After every input:

* nothing but OSError leaves an application call, and nothing at all leaves ``receive``
  or ``poll``;
* no RST answers a RST;
* what a connection delivers is the peer's stream (a prefix of what the peer sent), and
  every data segment sent carries what the application wrote at that offset;
* memory is bounded by the configuration (`robust_model.check_bounds`);
* a connection tells the application it closed at most once.

At the end the peer goes silent and time runs on: every connection that has a timer to
end it (opening, closing, data unacknowledged) ends, and TIME-WAIT empties.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from atcp.core import events as ev
from atcp.core.states import State
from atcp.wire import ACK, FIN, PSH, RST, SYN, URG, Options, Segment, build
from atcp.wire.seq import MASK, seq_add, seq_sub

from robust_model import DeliveryChecker, OutputChecker, check_bounds, make_stack, peer_bytes

PEER = ("192.0.2.1", 4000)
LISTEN_PORT = 80
#: (local TCP port, peer TCP port): three reach the listener, two are our active opens.
IDENTITIES = [(80, 4000), (80, 4001), (80, 4002), (5000, 7), (5001, 7)]
S = State
APP_DATA = bytes((b * 13 + 5) & 0xFF for b in range(6000))

FLAGS = st.sampled_from([
    ACK, ACK, ACK, ACK | PSH, ACK | FIN, SYN, SYN | ACK, RST, RST | ACK, FIN, 0, PSH,
    SYN | FIN, SYN | RST, 0xFF, ACK | URG,
])
#: Offsets from a base sequence number: the window edges and their neighbours, far away.
DELTAS = st.one_of(
    st.sampled_from([0, 0, 0, 1, -1, 2, 100, -100, 535, 536, 537, 4000, 65535, 65536,
                     -65536, 1 << 31, (1 << 31) - 1, -(1 << 30)]),
    st.integers(-(1 << 32), 1 << 32),
)
OPTIONS = st.sampled_from([
    Options(),
    Options(mss=536, wscale=3, sack_permitted=True, ts_val=1000, ts_ecr=0),
    Options(mss=0, wscale=15),
    Options(mss=64, wscale=14, sack_permitted=True),
    Options(ts_val=5000, ts_ecr=0),
    Options(ts_val=0xFFFFFFF0, ts_ecr=1),
    Options(sack=((1, 2), (3, 4))),
])


class ChaoticPeer(RuleBasedStateMachine):
    """One stack, a peer that sends anything, an application that calls anything."""

    @initialize(seed=st.integers(0, 2**16), rfc5961=st.booleans(), rfc1337=st.booleans(),
                timestamps=st.booleans(), wscale=st.sampled_from([None, 0, 3]),
                cookies_only=st.booleans())
    def setup(self, seed, rfc5961, rfc1337, timestamps, wscale, cookies_only) -> None:
        self.stack = make_stack(
            seed, mss=536, recv_buffer=4000, send_buffer=3000, window_scale=wscale,
            rfc5961=rfc5961, rfc1337=rfc1337, timestamps=timestamps, backlog=2,
            syncookies_only=cookies_only, max_connections=4, max_time_wait=2,
            max_out_of_order=4, msl=2.0, rto_initial=0.2, rto_min=0.2, rto_max=2.0,
            syn_retries=2, data_retries=3, fin_wait_2_timeout=5.0, delayed_ack=0.04,
            challenge_ack_limit=3, challenge_ack_interval=1.0)
        self.listener = self.stack.listen(LISTEN_PORT)
        self.now = 0.0
        self.out = OutputChecker(self.stack)
        self.delivery = DeliveryChecker()
        self.conns: dict[tuple, object] = {}      # identity -> latest Connection object
        self.last_seen: dict[tuple, Segment] = {}  # identity -> last segment sent to it
        self.closed_told: dict[int, object] = {}   # id -> conn (kept alive: ids stay unique)
        self.peer_isn = seed * 7919 & MASK

    # ---------------------------------------------------------------- plumbing
    def _key(self, ident):
        return (PEER, ident[0], ident[1])

    def _pump(self, answering: Segment | None = None) -> None:
        for seg, remote in self.out.drain(answering):
            if remote == PEER:
                self.last_seen[(seg.src_port, seg.dst_port)] = seg
        for _ in range(10_000):
            event = self.stack.next_event()
            if event is None:
                break
            if isinstance(event, ev.ConnectionClosed):
                assert id(event.conn) not in self.closed_told, f"{event!r} told twice"
                self.closed_told[id(event.conn)] = event.conn
            elif isinstance(event, ev.Accepted):
                pass
        else:
            raise AssertionError("events do not drain")

    def _deliver(self, seg: Segment, remote=PEER) -> None:
        self.stack.receive(build(seg), remote, self.now)
        self._pump(answering=seg)

    def _bases(self, ident):
        """(seq base, ack base): what the stack expects next and what it sent last."""
        conn = self.stack._conns.get(self._key(ident))
        tw = self.stack.time_wait_record(self._key(ident))
        if conn is not None and conn.state is not S.SYN_SENT:
            return conn.rcv_nxt, conn.snd_nxt, conn
        if tw is not None:
            return tw.rcv_nxt, tw.snd_nxt, None
        seen = self.last_seen.get(ident)
        if seen is not None:
            return seen.ack, seq_add(seen.seq, seen.seg_len), None
        return self.peer_isn, 0, None

    # ---------------------------------------------------------------- the peer
    @rule(i=st.integers(0, len(IDENTITIES) - 1), flags=FLAGS, dseq=DELTAS, dack=DELTAS,
          length=st.sampled_from([0, 0, 1, 10, 536, 600, 3000]), options=OPTIONS,
          window=st.sampled_from([0, 1, 100, 65535]),
          edge=st.sampled_from(["base", "base", "window", "random"]))
    def peer_sends(self, i, flags, dseq, dack, length, options, window, edge) -> None:
        ident = IDENTITIES[i]
        seq_base, ack_base, conn = self._bases(ident)
        if edge == "window" and conn is not None:
            seq_base = conn.rcv_adv            # the right edge we advertised
        elif edge == "random":
            seq_base = (seq_base * 31 + dack) & MASK
        seq = seq_add(seq_base, dseq)
        ack = seq_add(ack_base, dack) if flags & ACK else 0
        data_seq = seq_add(seq, 1) if flags & SYN else seq
        seg = Segment(ident[1], ident[0], seq, ack, flags, window,
                      peer_bytes(data_seq, length), options)
        self._deliver(seg)

    @rule(i=st.integers(0, 2), isn=st.integers(0, MASK), options=OPTIONS)
    def peer_connects(self, i, isn, options) -> None:
        ident = IDENTITIES[i]
        self._deliver(Segment(ident[1], ident[0], isn, 0, SYN, 65535, b"", options))

    @rule(i=st.integers(0, len(IDENTITIES) - 1), length=st.sampled_from([0, 1, 300, 2000]))
    def peer_acks_everything(self, i, length) -> None:
        """An honest peer: acknowledge all the stack sent, send in-order data."""
        ident = IDENTITIES[i]
        seq_base, ack_base, _ = self._bases(ident)
        self._deliver(Segment(ident[1], ident[0], seq_base, ack_base, ACK, 65535,
                              peer_bytes(seq_base, length)))

    @rule(port=st.integers(1, 65535), isn=st.integers(0, MASK),
          host=st.sampled_from(["198.51.100.7", "198.51.100.8"]))
    def spoofed_syn(self, port, isn, host) -> None:
        self._deliver(Segment(port, LISTEN_PORT, isn, 0, SYN, 1024, b"",
                              Options(mss=1460, wscale=7, sack_permitted=True)),
                      remote=(host, port))

    @rule(data=st.binary(max_size=80))
    def garbage(self, data) -> None:
        self.stack.receive(data, PEER, self.now)
        self._pump()

    # ---------------------------------------------------------------- the application
    def _app(self, call) -> None:
        try:
            call()
        except OSError:
            pass      # ProtocolUsageError, reset/timeout errors, EADDRINUSE, EMFILE
        self._pump()

    def _conn(self, i):
        return self.conns.get(IDENTITIES[i])

    @rule(i=st.integers(3, 4))
    def app_connects(self, i) -> None:
        ident = IDENTITIES[i]

        def call():
            self.conns[ident] = self.stack.connect(PEER, ident[1], self.now,
                                                   local_port=ident[0])
        self._app(call)

    @rule()
    def app_accepts(self) -> None:
        conn = self.listener.accept()
        if conn is not None:
            self.conns[(conn.local_port, conn.remote_port)] = conn

    @rule(i=st.integers(0, len(IDENTITIES) - 1), n=st.sampled_from([1, 100, 1000, 5000]))
    def app_sends(self, i, n) -> None:
        conn = self._conn(i)
        if conn is None:
            return
        data = APP_DATA[n % 251:n % 251 + n]

        def call():
            taken = conn.send(data, self.now)
            assert 0 <= taken <= n
            self.out.wrote(conn, data[:taken])
        self._app(call)

    @rule(i=st.integers(0, len(IDENTITIES) - 1), n=st.sampled_from([-1, 1, 500]))
    def app_reads(self, i, n) -> None:
        conn = self._conn(i)
        if conn is None:
            return

        def call():
            self.delivery.delivered(conn, conn.read(n, self.now))
        self._app(call)

    @rule(i=st.integers(0, len(IDENTITIES) - 1),
          how=st.sampled_from(["shutdown", "close", "abort"]))
    def app_ends(self, i, how) -> None:
        conn = self._conn(i)
        if conn is not None:
            self._app(lambda: getattr(conn, how)(self.now))

    @rule(dt=st.sampled_from([0.001, 0.04, 0.25, 1.0, 3.0, 30.0]))
    def time_passes(self, dt) -> None:
        self.now += dt
        self.stack.poll(self.now)
        self._pump()

    # ---------------------------------------------------------------- invariants
    @invariant()
    def bounded(self) -> None:
        check_bounds(self.stack)

    def teardown(self) -> None:
        if not hasattr(self, "stack"):
            return
        # The peer falls silent; every timer that can end something does.
        for _ in range(400):
            deadline = self.stack.next_deadline()
            if deadline is None:
                break
            self.now = max(self.now, deadline)
            self.stack.poll(self.now)
            self._pump()
            check_bounds(self.stack)
        assert self.stack.next_deadline() is None, "a timer keeps re-arming forever"
        assert self.stack.time_wait == []
        for conn in self.stack.connections:
            # What is left waits on the application or the peer, with nothing of ours in
            # flight or queued: otherwise a retransmission timer would still be running.
            assert conn.state in (S.ESTABLISHED, S.CLOSE_WAIT, S.FIN_WAIT_2), conn
            assert conn.snd_una == conn.snd_nxt and not len(conn.sndbuf), conn

ChaoticPeer.TestCase.settings = settings(
    max_examples=150, stateful_step_count=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_chaotic_peer_and_application = ChaoticPeer.TestCase
