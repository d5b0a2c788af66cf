"""The sans-I/O stack: every TCP connection reachable through one UDP socket.

A `Stack` owns the demultiplexing table, the listeners, the TIME-WAIT records and the timing
wheel. Its whole interface is:

* inputs: ``receive(datagram, remote, now)``, ``poll(now)`` (timers), and the application's
  ``connect``/``listen`` plus the calls on the `Connection` and `Listener` objects it returns;
* outputs: ``datagrams_to_send()``, ``next_event()``, ``next_deadline()``.

``remote`` is whatever identifies the peer's UDP address (the asyncio layer passes the
``(host, port)`` tuple); the core only hashes and compares it. A connection is identified by
(remote, local TCP port, remote TCP port) as the wire format says, so a segment from the right
ports but another UDP address belongs to no connection and is answered with a RST.

Limits (all in `Config`, each documented there): a listener's SYN queue and accept queue
(``backlog``), beyond which SYNs get SYN cookies (`syncookies`, RFC 4987) and keep no
state; ``max_connections`` per stack; ``max_time_wait`` records, the oldest recycled when
full. Segments no TCP sends (SYN with RST; SYN with FIN where something listens or is
connected) are dropped and counted in ``stats`` before they reach any rule.

Nothing here reads a clock or touches a socket; tests drive it with a fake clock.
"""

from __future__ import annotations

import collections
import errno
import os
import random
from collections.abc import Callable

from ..config import Config
from ..wire import ACK, FIN, RST, SYN, MalformedSegment, Segment, build, parse
from ..wire.seq import seq_add
from . import events as ev
from . import syncookies
from .coalesce import Run, mergeable_start, scan_coalesced
from .connection import Connection
from .errors import address_in_use
from .isn import IsnGenerator
from .reset import reset_for_bad_ack, reset_for_no_connection
from .states import State
from .syncookies import SynCookies
from .timewait import TimeWait, TimeWaitAction, expires_of, filed_under_full_key, ports_of
from .tsclock import ts_clock
from .wheel import TimingWheel

__all__ = ["Stack", "Listener"]

_EPHEMERAL = range(49152, 65536)

#: The RNG of stacks made without one (ephemeral ports, timestamp offsets). One for all:
#: its state is 2.5 KB and a client makes a stack per connection. A forked child reseeds
#: it, so that parent and child do not draw the same numbers.
_SHARED_RNG = random.Random()
_DEFAULT_CONFIG = Config()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_SHARED_RNG.seed)


class Listener:
    """A TCP port in LISTEN on this stack, with its SYN queue and accept queue."""

    def __init__(self, stack: "Stack", port: int, backlog: int) -> None:
        self.stack = stack
        self.port = port
        self.backlog = backlog
        self.syn_queue: set[Connection] = set()
        self.accept_queue: collections.deque[Connection] = collections.deque()
        self.closed = False
        #: When this listener last answered a SYN with a cookie: cookies are checked on
        #: returning ACKs only while they may be in use (two cookie periods).
        self.cookies_sent_at: float | None = None

    def __repr__(self) -> str:
        return f"<Listener :{self.port} syn={len(self.syn_queue)} ready={len(self.accept_queue)}>"

    @property
    def state(self) -> State:
        return State.CLOSED if self.closed else State.LISTEN

    def accept(self) -> Connection | None:
        """Take the oldest established connection, or None if there is none yet."""
        if self.accept_queue:
            conn = self.accept_queue.popleft()
            conn.listener = None
            return conn
        return None

    def close(self, now: float) -> None:
        """Stop listening; connections not yet accepted are reset (nobody will serve them)."""
        if self.closed:
            return
        self.closed = True
        self.stack._listeners.pop(self.port, None)
        for conn in list(self.syn_queue):
            conn.abort(now)
        while self.accept_queue:
            self.accept_queue.popleft().abort(now)


class Stack:
    """TCP over one datagram socket, without the socket."""

    def __init__(self, config: Config | None = None, *, mss: int = 1452,
                 secret: bytes | None = None, rng: random.Random | None = None,
                 now: float = 0.0, tick: float = 0.001,
                 isn: Callable[[tuple, float], int] | None = None,
                 path_mss: Callable[[object], int] | None = None) -> None:
        self.config = config or _DEFAULT_CONFIG
        self.mss = self.config.mss or mss
        # ``path_mss(remote)``: the MSS to offer when it depends on the path to the remote
        # (IPv4 or IPv6, how it is encapsulated); without it every connection offers ``mss``.
        self._path_mss = path_mss
        self._rng = rng or _SHARED_RNG
        if secret is None:
            secret = os.urandom(32)
        # ``isn`` replaces the RFC 6528 generator (tests pin an ISS, e.g. next to the wrap).
        self._isn = isn or IsnGenerator(secret)
        self._cookies = SynCookies(secret)
        self._wheel = TimingWheel(tick=tick, now=now)
        self._conns: dict[tuple, Connection] = {}
        #: TIME-WAIT records, packed (`timewait`), under the remote address alone or the
        #: whole connection key (see `_time_wait_slot`), in the order they expire.
        self._time_wait: dict[object, int] = {}
        #: The same records in the same order, as alternate table key and packed record,
        #: plus stale pairs (records since forgotten or restarted) that are dropped when
        #: they reach the front; the front pair is always live. Made on first use.
        self._tw_queue: collections.deque | None = None
        #: When the front record expires (None when there is none).
        self._tw_next: float | None = None
        self._listeners: dict[int, Listener] = {}
        self._out: list[tuple[bytes, object]] = []
        self._events: collections.deque[ev.Event] | None = None   # made by the first event
        self.stats: collections.Counter[str] = collections.Counter()
        #: Optional ``observer(what, subject, fields)`` told about notable events (state
        #: changes, retransmissions, RSTs, TIME-WAIT...) for logging; it must not call back
        #: into the stack. ``subject`` is a Connection, a TimeWait or a connection key.
        self.observer: Callable[[str, object, dict], None] | None = None

    # ------------------------------------------------------------------ outputs
    def datagrams_to_send(self) -> list[tuple[bytes, object]]:
        """Take every datagram waiting to go out, as (payload, remote) pairs."""
        out = self._out
        self._out = []
        return out

    def next_event(self) -> ev.Event | None:
        events = self._events
        if events:
            return events.popleft()
        self._events = None   # drained: an idle stack keeps no deque (over 600 bytes)
        return None

    def next_deadline(self) -> float | None:
        """When `poll` next has work; None when no timer is running."""
        wheel = self._wheel.next_deadline()
        tw = self._tw_next
        if tw is None or wheel is not None and wheel < tw:
            return wheel
        return tw

    @property
    def connections(self) -> list[Connection]:
        return list(self._conns.values())

    @property
    def connection_count(self) -> int:
        """How many connections there are (without listing them)."""
        return len(self._conns)

    @property
    def time_wait_count(self) -> int:
        """How many TIME-WAIT records there are (without unpacking them)."""
        return len(self._time_wait)

    @property
    def time_wait(self) -> list[TimeWait]:
        """The TIME-WAIT records, unpacked, the first to expire first."""
        return [self._unpack_time_wait(slot, packed)
                for slot, packed in self._time_wait.items()]

    def time_wait_record(self, key: tuple) -> TimeWait | None:
        """The TIME-WAIT record of connection ``key`` (remote, local port, remote port)."""
        slot = self._time_wait_slot(key)
        return None if slot is None else TimeWait.unpack(key[0], self._time_wait[slot])

    # ------------------------------------------------------------------ application calls
    def listen(self, port: int, backlog: int | None = None) -> Listener:
        _check_port(port)
        if port in self._listeners:
            raise address_in_use(f"TCP port {port} is already listening")
        listener = Listener(self, port, backlog or self.config.backlog)
        self._listeners[port] = listener
        return listener

    def mss_for(self, remote) -> int:
        """The MSS we offer ``remote`` (RFC 9293 3.7.1): Config.mss if set, else the path's."""
        if self.config.mss is None and self._path_mss is not None:
            return self._path_mss(remote)
        return self.mss

    def connect(self, remote, remote_port: int, now: float, *, local_port: int | None = None,
                config: Config | None = None, mss: int | None = None) -> Connection:
        """Active OPEN (3.10.1): a new connection in SYN-SENT, its SYN already queued.

        ``mss`` overrides the MSS offered to this remote (a per-socket setting)."""
        _check_port(remote_port)
        if len(self._conns) >= self.config.max_connections:
            self.stats["connection_limit"] += 1
            raise OSError(errno.EMFILE, "Too many open connections "
                          f"(Config.max_connections={self.config.max_connections})")
        if local_port is None:
            local_port = self._ephemeral_port(remote, remote_port)
        else:
            _check_port(local_port)
        key = (remote, local_port, remote_port)
        if key in self._conns:
            raise address_in_use(f"connection {local_port}->{remote}:{remote_port} exists")
        if self._time_wait_slot(key) is not None:
            raise address_in_use(
                f"connection {local_port}->{remote}:{remote_port} is in TIME-WAIT")
        conn = Connection(self, config or self.config, remote, local_port, remote_port,
                          mss if mss is not None else self.mss_for(remote), now)
        self._conns[key] = conn
        conn.open_active(self._isn(key, now), self._rng.getrandbits(32), now)
        return conn

    def _ephemeral_port(self, remote, remote_port: int) -> int:
        for _ in range(64):
            port = self._rng.choice(_EPHEMERAL)
            key = (remote, port, remote_port)
            if key not in self._conns and self._time_wait_slot(key) is None \
                    and port not in self._listeners:
                return port
        for port in _EPHEMERAL:
            key = (remote, port, remote_port)
            if key not in self._conns and self._time_wait_slot(key) is None \
                    and port not in self._listeners:
                return port
        raise address_in_use("no free ephemeral TCP port")

    # ------------------------------------------------------------------ inputs
    def receive(self, data, remote, now: float) -> None:
        """A datagram arrived from ``remote``. Never raises for what the peer sent."""
        seg = self._parse(data)
        if seg is not None:
            self._segment_arrives(seg, remote, now)

    def receive_batch(self, datagrams, now: float) -> None:
        """Datagrams that arrived together, as ``(data, remote)`` pairs in arrival order:
        the same as `receive` for each, except that runs of in-order data segments of one
        connection are merged first when ``Config.receive_coalescing`` is on
        (`atcp.core.coalesce`)."""
        if not self.config.receive_coalescing:
            for data, remote in datagrams:
                self.receive(data, remote, now)
            return
        # ``first`` is a segment that may start a run, held until the next one shows
        # whether it does; most batches of one connection's ACKs or requests never make a
        # `Run` at all.
        run = first = None
        for data, remote in datagrams:
            seg = self._parse(data)
            if seg is None:
                continue
            if first is not None:
                run = Run(first[0], first[1])
                first = None
            if run is not None:
                if run.extend(seg, remote):
                    continue
                self._run_arrives(run, now)
                run = None
            if mergeable_start(seg):
                first = (seg, remote)
            else:
                self._segment_arrives(seg, remote, now)
        if first is not None:
            self._segment_arrives(first[0], first[1], now)
        elif run is not None:
            self._run_arrives(run, now)

    def receive_coalesced(self, data: bytes, size: int, remote, now: float) -> None:
        """Datagrams from ``remote`` that the kernel coalesced (UDP GRO): ``size`` bytes
        each, back to back in ``data``, the last maybe shorter. The same as `receive_batch`
        over them, but runs are merged straight from the headers in the buffer
        (`atcp.core.coalesce.scan_coalesced`), without a `Segment` per datagram."""
        if not self.config.receive_coalescing:
            n = len(data)
            self.receive_batch([(data[off:off + size], remote) for off in range(0, n, size)],
                               now)
            return
        for item, count in scan_coalesced(data, size):
            if count:
                self.stats["segments_in"] += count
                self._merged_arrives(item, count, remote, now)
            else:
                self.receive(item, remote, now)

    def _run_arrives(self, run: Run, now: float) -> None:
        self._merged_arrives(run.segment(), run.count, run.remote, now)

    def _merged_arrives(self, seg: Segment, count: int, remote, now: float) -> None:
        """``seg`` stands for ``count`` segments that came in (already counted as such)."""
        if count > 1:
            self.stats["segments_coalesced"] += count - 1
            conn = self._conns.get((remote, seg.dst_port, seg.src_port))
            if conn is not None:
                conn.segs_in += count - 1   # tcp_info counts what the wire carried
        self._segment_arrives(seg, remote, now)

    def _parse(self, data) -> Segment | None:
        try:
            seg = parse(data)
        except MalformedSegment as exc:
            self.stats["malformed"] += 1
            self.stats["malformed_" + exc.reason] += 1
            return None
        self.stats["segments_in"] += 1
        return seg

    def _segment_arrives(self, seg: Segment, remote, now: float) -> None:
        flags = seg.flags
        key = (remote, seg.dst_port, seg.src_port)
        if flags & (SYN | RST | FIN | ACK) != ACK and self._odd_segment(seg, key):
            return
        conn = self._conns.get(key)
        if conn is not None:
            conn.segment_arrives(seg, now)
            return
        if self._time_wait:
            slot = self._time_wait_slot(key)
            if slot is not None and not self._time_wait_arrives(slot, key, seg, now):
                return
        self._no_connection(seg, remote, now)

    def _odd_segment(self, seg: Segment, key: tuple) -> bool:
        """Count segments whose control bits or options no ordinary segment has; True if
        the segment is to be dropped here."""
        flags = seg.flags
        if flags & (SYN | RST) == SYN | RST:
            # RFC 9293 gives SYN and RST together no meaning, and no TCP sends them: acting
            # on either half could reset a connection or open one, so neither is.
            self.stats["dropped_syn_rst"] += 1
            return True
        if not flags & (SYN | RST | FIN | ACK):
            # No control bit at all: the ACK-bit rules of 3.10.7 drop it, or answer it with
            # a RST where there is no connection.
            self.stats["segments_without_flags"] += 1
        elif flags & SYN:
            if flags & FIN:
                self.stats["syn_fin_segments"] += 1
                if self.config.drop_synfin and (key in self._conns
                                                or self._time_wait_slot(key) is not None
                                                or seg.dst_port in self._listeners):
                    # Whatever it reaches, it opens, resets or restarts nothing; where
                    # nothing is, 3.10.7.1 still answers it with a RST.
                    self.stats["synfin_dropped"] += 1
                    return True
            wscale = seg.options.wscale
            if wscale is not None and wscale > 14:
                self.stats["wscale_over_14"] += 1   # used as 14 (RFC 7323 2.3)
        return False

    def poll(self, now: float) -> None:
        """Run every timer due at ``now``."""
        for conn in self._wheel.advance(now):
            conn.on_timer(now)
        if self._tw_next is not None and self._tw_next <= now:
            self._expire_time_wait(now)

    # ------------------------------------------------------------------ no connection, LISTEN
    def _no_connection(self, seg: Segment, remote, now: float) -> None:
        listener = self._listeners.get(seg.dst_port)
        if listener is None:
            self._reply_reset(reset_for_no_connection(seg), remote,
                              "no connection (RFC 9293 3.10.7.1)")
            return
        self._listen_arrives(listener, seg, remote, now)

    def _listen_arrives(self, listener: Listener, seg: Segment, remote, now: float,
                        iss: int | None = None) -> None:
        """SEGMENT ARRIVES in LISTEN (RFC 9293 3.10.7.2)."""
        flags = seg.flags
        if flags & RST:
            return
        if flags & ACK:
            if not flags & SYN and self._cookie_returns(listener, seg, remote, now):
                return
            self._reply_reset(reset_for_bad_ack(seg), remote, "ACK in LISTEN (RFC 9293 3.10.7.2)")
            return
        if not flags & SYN:
            return
        if flags & FIN and self.config.drop_synfin:
            self.stats["synfin_dropped"] += 1
            return
        cfg = self.config
        if len(listener.accept_queue) >= listener.backlog:
            # Nobody is accepting: a cookie would only bring an ACK there is no room for.
            self.stats["listen_overflow"] += 1
            return
        queue_full = len(listener.syn_queue) + len(listener.accept_queue) >= listener.backlog
        stack_full = len(self._conns) >= cfg.max_connections
        if iss is None and (cfg.syncookies_only
                            or cfg.syncookies and (queue_full or stack_full)):
            self._send_cookie(listener, seg, remote, now)
            return
        if queue_full or stack_full:
            # A SYN reopening a TIME-WAIT identity is dropped too: a cookie could not
            # promise the ISS above the old incarnation's that MAY-2 asks for.
            self.stats["listen_overflow" if queue_full else "connection_limit"] += 1
            return
        key = (remote, seg.dst_port, seg.src_port)
        conn = Connection(self, self.config, remote, seg.dst_port, seg.src_port,
                          self.mss_for(remote), now)
        conn.listener = listener
        self._conns[key] = conn
        listener.syn_queue.add(conn)
        if iss is None:
            iss = self._isn(key, now)
        conn.open_passive(seg, iss, self._rng.getrandbits(32), now)

    # ------------------------------------------------------------------ SYN cookies
    def _send_cookie(self, listener: Listener, syn: Segment, remote, now: float) -> None:
        """Answer ``syn`` with a SYN,ACK whose ISS is a cookie, keeping nothing (RFC 4987)."""
        cfg = self.config
        cookie = self._cookies.make(syn, remote, now)
        mss = self.mss_for(remote)
        ts_val = None
        if cfg.timestamps:
            ts_val = ts_clock(now, self._cookies.ts_offset(remote, syn.dst_port,
                                                             syn.src_port))
        reply = syncookies.syn_ack(
            syn, cookie, mss=mss, wscale=cfg.rcv_wscale() if cfg.window_scaling else None,
            sack=cfg.sack, ts_val=ts_val,
            window=_syn_window(cfg, mss, syncookies.decode(cookie).mss))
        listener.cookies_sent_at = now
        self.stats["syncookies_sent"] += 1
        self._note("syncookie_sent", (remote, syn.dst_port, syn.src_port))
        self._emit_raw(reply, remote)

    def _cookie_returns(self, listener: Listener, seg: Segment, remote, now: float) -> bool:
        """An ACK in LISTEN may return a cookie (RFC 4987 3.6). True if it did: the
        connection is created from it (or, without room for it, the ACK is dropped)."""
        cfg = self.config
        if not cfg.syncookies_only:
            sent = listener.cookies_sent_at
            if sent is None or now - sent > 2 * syncookies.PERIOD:
                return False
        params = self._cookies.check(seg, remote, now)
        if params is None:
            self.stats["syncookies_failed"] += 1
            return False
        if len(listener.accept_queue) >= listener.backlog \
                or len(self._conns) >= cfg.max_connections:
            # The client believes it is connected; its next segment brings the cookie again.
            self.stats["syncookies_dropped"] += 1
            return True
        self.stats["syncookies_accepted"] += 1
        key = (remote, seg.dst_port, seg.src_port)
        conn = Connection(self, cfg, remote, seg.dst_port, seg.src_port, self.mss_for(remote),
                          now)
        conn.listener = listener
        self._conns[key] = conn
        conn.open_from_cookie(syncookies.synthetic_syn(seg, params), seq_add(seg.ack, -1),
                              self._cookies.ts_offset(remote, seg.dst_port, seg.src_port),
                              now)
        conn.segment_arrives(seg, now)
        return True

    def _reply_reset(self, rst: Segment | None, remote, rule: str) -> None:
        if rst is not None:
            self.stats["rst_sent"] += 1
            self._note("rst_sent", (remote, rst.src_port, rst.dst_port), rule=rule)
            self._emit_raw(rst, remote)

    # ------------------------------------------------------------------ TIME-WAIT
    # The table keeps no timer in the wheel: records enter it with a deadline 2*MSL ahead
    # and a restart moves a record to the end with a new one, so the front of the queue is
    # always the next to expire (with one MSL for all; a connection given a longer MSL of
    # its own holds those behind it until it expires: later, never earlier).

    def _time_wait_slot(self, key: tuple):
        """The table key of connection ``key``'s TIME-WAIT record, or None if it has none."""
        table = self._time_wait
        if not table:
            return None
        remote, local_port, remote_port = key
        packed = table.get(remote)
        if packed is not None and not filed_under_full_key(packed) \
                and ports_of(packed) == local_port << 16 | remote_port:
            return remote
        packed = table.get(key)
        if packed is not None and filed_under_full_key(packed):
            return key
        return None

    def _unpack_time_wait(self, slot, packed: int) -> TimeWait:
        return TimeWait.unpack(slot[0] if filed_under_full_key(packed) else slot, packed)

    def _file_time_wait(self, tw: TimeWait) -> None:
        """Put ``tw`` in the table, at the end of the queue."""
        table = self._time_wait
        # Under the remote alone unless that is taken (another record of the same remote).
        tw.full_key = tw.remote in table
        slot = tw.key if tw.full_key else tw.remote
        packed = tw.pack()
        table[slot] = packed
        queue = self._tw_queue
        if queue is None:
            queue = self._tw_queue = collections.deque()
        queue.append(slot)
        queue.append(packed)
        if self._tw_next is None:
            self._tw_next = tw.expires
        elif len(queue) > 4 * len(table) + 64:
            self._compact_tw_queue()

    def _compact_tw_queue(self) -> None:
        """Drop the stale pairs (a peer repeating its FIN adds one each time): the table is
        in queue order, so the queue is rebuilt from it. Amortised O(1) per stale pair."""
        queue = self._tw_queue
        queue.clear()
        for slot, packed in self._time_wait.items():
            queue.append(slot)
            queue.append(packed)

    def _settle_tw_queue(self) -> None:
        """Drop stale pairs from the front of the queue; note when the front expires."""
        queue, table = self._tw_queue, self._time_wait
        while queue and table.get(queue[0]) is not queue[1]:
            queue.popleft()
            queue.popleft()
        self._tw_next = expires_of(queue[1]) if queue else None

    def _expire_time_wait(self, now: float) -> None:
        queue, table = self._tw_queue, self._time_wait
        while queue:
            slot, packed = queue[0], queue[1]
            if table.get(slot) is packed:
                if expires_of(packed) > now:
                    break
                del table[slot]
                self.stats["time_wait_expired"] += 1
                if self.observer is not None:
                    self._note("time_wait_expired", self._unpack_time_wait(slot, packed))
            queue.popleft()
            queue.popleft()
        self._tw_next = expires_of(queue[1]) if queue else None

    def _time_wait_arrives(self, slot, key: tuple, seg: Segment, now: float) -> bool:
        """Apply the TIME-WAIT rules; True if the segment should go on to a listener."""
        cfg = self.config
        packed = self._time_wait[slot]
        tw = TimeWait.unpack(key[0], packed)
        action, reply = tw.segment_arrives(seg, now, cfg.rfc1337, cfg.rfc5961,
                                           cfg.time_wait_reuse)
        if reply is not None:
            self._emit_raw(reply, tw.remote)
        if seg.flags & RST:
            self._note("rst_received", tw, verdict=action.value)
        if action is TimeWaitAction.RESTART:
            self._note("time_wait_fin_reacked", tw)
            # 2*MSL starts over: the record goes to the end of the table and of the queue.
            tw.expires = now + 2 * cfg.msl
            self._drop_time_wait(slot, packed)
            self._file_time_wait(tw)
        elif action is TimeWaitAction.CLOSE:
            self._drop_time_wait(slot, packed)
        elif action is TimeWaitAction.REOPEN:
            self._drop_time_wait(slot, packed)
            listener = self._listeners.get(seg.dst_port)
            if listener is not None:
                self.stats["time_wait_reopened"] += 1
                self._listen_arrives(listener, seg, tw.remote, now,
                                     iss=tw.next_iss(self._isn(tw.key, now)))
                return False
            return True
        return False

    def _forget_time_wait(self, tw: TimeWait) -> None:
        """Delete ``tw``'s record (if it is still there) without a word to the peer."""
        slot = self._time_wait_slot(tw.key)
        if slot is not None:
            self._drop_time_wait(slot, self._time_wait[slot])

    def _drop_time_wait(self, slot, packed: int) -> None:
        del self._time_wait[slot]
        queue = self._tw_queue
        if queue[1] is packed:
            self._settle_tw_queue()

    # ------------------------------------------------------------------ called by Connection
    def _emit_raw(self, seg: Segment, remote) -> None:
        self._out.append((build(seg), remote))

    def _emit_bytes(self, datagram: bytes, remote) -> None:
        """A segment a connection built itself (`Connection._send_run`)."""
        self._out.append((datagram, remote))

    def _post(self, event: ev.Event) -> None:
        events = self._events
        if events is None:
            events = self._events = collections.deque()
        events.append(event)

    def _note(self, what: str, subject, **fields) -> None:
        if self.observer is not None:
            self.observer(what, subject, fields)

    def _state_changed(self, conn: Connection, old: State, new: State) -> None:
        self._note("state", conn, old=old.value, new=new.value)
        if new is State.ESTABLISHED and old in (State.SYN_SENT, State.SYN_RECEIVED):
            listener = conn.listener
            if conn.passive and listener is not None:
                listener.syn_queue.discard(conn)
                if listener.closed:
                    return
                listener.accept_queue.append(conn)
                self._post(ev.Accepted(conn, listener))
            else:
                self._post(ev.Connected(conn))

    def _syn_received_aborted(self, conn: Connection) -> None:
        if conn.listener is not None:
            conn.listener.syn_queue.discard(conn)

    def _remove(self, conn: Connection) -> None:
        if self._conns.get(conn.key) is conn:
            del self._conns[conn.key]
        self._wheel.cancel(conn)
        conn.wheel_at = None
        if conn.listener is not None:
            conn.listener.syn_queue.discard(conn)
            try:
                conn.listener.accept_queue.remove(conn)
            except ValueError:
                pass

    def _enter_time_wait(self, conn: Connection, now: float) -> None:
        if self._conns.get(conn.key) is conn:
            del self._conns[conn.key]
        self._wheel.cancel(conn)
        conn.wheel_at = None
        if len(self._time_wait) >= self.config.max_time_wait:
            # Full: recycle the record closest to its end (the table is in order of
            # expiry), as FreeBSD does at net.inet.tcp.maxtcptw. Its identity loses the
            # rest of its 2*MSL; the newest, whose duplicates are the likeliest still in
            # flight, keeps its whole wait. The front of the queue is the oldest.
            slot, packed = self._tw_queue[0], self._tw_queue[1]
            self._drop_time_wait(slot, packed)
            self.stats["time_wait_recycled"] += 1
            if self.observer is not None:
                self._note("time_wait_recycled", self._unpack_time_wait(slot, packed))
        self._file_time_wait(TimeWait(conn, now + 2 * conn.config.msl))
        self.stats["time_wait_entered"] += 1
        self._note("time_wait_entered", conn, expires_in=2 * conn.config.msl)

    def state_of(self, conn: Connection) -> State:
        """The state of a connection as the application sees it: a connection whose record
        has expired from TIME-WAIT reads as CLOSED."""
        if conn.state is State.TIME_WAIT and self._time_wait_slot(conn.key) is None:
            return State.CLOSED
        return conn.state


def _syn_window(cfg: Config, our_mss: int, peer_mss: int) -> int:
    """The window field of a SYN,ACK: the receive buffer as `Connection` sizes it once the
    peer's MSS is known (``recv_buffer_whole_segments``), at most 65535 (RFC 7323 2.2)."""
    limit = cfg.recv_buffer
    if cfg.recv_buffer_whole_segments:
        mss = max(64, min(our_mss, peer_mss))
        limit = min(-(-limit // mss) * mss, 65535 << 14)
    return min(limit, 65535)


def _check_port(port) -> None:
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError(f"a TCP port must be an int, not {type(port).__name__}")
    if not 1 <= port <= 65535:
        raise ValueError(f"a TCP port must be in 1..65535, got {port}")

