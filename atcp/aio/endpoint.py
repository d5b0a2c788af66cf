"""One UDP socket on an asyncio loop, and the `Stack` of every connection behind it.

Theory of operation
-------------------
The endpoint is the only thing that touches the socket, the clock and the loop's timers;
everything TCP happens in the sans-I/O `Stack`. Three things make it run:

* **Input.** ``loop.add_reader`` calls `_on_readable`, which drains the non-blocking socket
  with ``recvfrom`` (at most `_MAX_BATCH` datagrams per call, so one busy endpoint cannot
  starve the loop) and hands the datagrams straight to ``stack.receive_batch`` -- a
  direct call chain, no queues. After the first datagram it asks the kernel whether
  another is queued (``FIONREAD``) instead of reading until a read fails: a
  request/response exchange gets one datagram per wake-up, and the failing read raises a
  Python exception, which costs over twice as much as the question. The loop polls the
  socket level-triggered, so a datagram that comes meanwhile still wakes it. (The default
  loop's datagram transport would read one datagram per loop pass and drop the rest
  under load.) With UDP GRO on (`atcp.aio.udp_batch`, ``Config.udp_offload``),
  `_on_readable_gro` reads with ``recvmsg`` instead and splits what the kernel coalesced
  back into datagrams.
* **Timers.** One ``loop.call_at`` is armed at ``stack.next_deadline()`` (the timing wheel's
  earliest deadline), none when idle. It is moved only when the next deadline becomes
  earlier; a later one waits for the armed callback, which polls and re-arms.
* **Application calls.** A transport method changes the core directly, then calls `_kick`,
  which sends what the core queued at once and leaves any events for a ``call_soon``, so
  that protocol callbacks never run inside ``transport.write()``.

After every input or timer the endpoint *services* the stack: it delivers every event to
its transport, listener or pending connect (which may queue more datagrams and events,
until none is left), sends the queued datagrams, and re-arms the timer.

Time given to the core is ``time.monotonic()``: uvloop's ``loop.time()`` moves in 1 ms
steps, too coarse for RTT samples; deadlines are converted to loop time only to arm
``call_at``.

Sending uses ``sock.sendto`` directly or, with UDP GSO, one ``sendmsg`` per run of
equal-size datagrams to one address (a bulk sender's full-sized segments), the kernel
cutting it into datagrams; datagrams held by the impairment layer go one by one. If the
socket would block, datagrams wait in a short backlog flushed by ``add_writer``; beyond
it they are dropped and counted (TCP retransmits). ``io_path`` names the path in use.
Socket buffers are raised to several MiB so bursts are not dropped on loopback.

A client endpoint (shared by the client connections to one peer, see `atcp.aio.api`) has
its socket ``connect()``-ed to the peer, so ICMP port-unreachable surfaces as ECONNREFUSED;
it refuses every connection still in SYN-SENT, as kernel TCP does for this hard error
(RFC 1122 4.2.3.9), and is otherwise ignored. The endpoint closes its socket itself once nothing is left to serve: for a client,
after its connection is over and out of TIME-WAIT; for a server, after the server was
closed and its last connection is gone (its TIME-WAIT records go with the socket).
"""

from __future__ import annotations

import collections
import errno
import fcntl
import socket
import sys
import termios
import time
import weakref

from .. import log
from ..config import Config
from ..core import events as ev
from ..core.errors import refused_error
from ..core.stack import Stack
from ..core.states import State
from ..impair import Impairer, Impairment
from ..pcap import PcapWriter
from .transport import Transport
from .udp_batch import (GRO_CMSG_SPACE, GSO_FALLBACK_ERRORS, enable_offload, gro_segment_size,
                        io_path, run_end, segment_cmsg, split_coalesced)

__all__ = ["Endpoint", "open_udp_socket"]

monotonic = time.monotonic

#: Datagrams read per readable callback before servicing and yielding to the loop.
_MAX_BATCH = 256
#: Events handled per service pass before yielding to the loop (a bound, not a tuning).
_MAX_EVENTS = 100_000
_MAX_DATAGRAM = 65535
_NOTHING_QUEUED = bytes(4)
#: Outgoing datagrams held while the socket would block; more are dropped.
_BACKLOG_LIMIT = 1024
#: Socket buffer size asked for (SO_RCVBUFFORCE needs CAP_NET_ADMIN; else SO_RCVBUF,
#: which the kernel caps at net.core.rmem_max).
SOCKET_BUFFER = 4 << 20
#: Default MSS for a 1500-byte path less IP, UDP and TCP headers (wire format notes).
_MSS = {socket.AF_INET: 1452, socket.AF_INET6: 1432}

if sys.platform.startswith("linux"):
    _BUFFER_OPTIONS = ((33, socket.SO_RCVBUF), (32, socket.SO_SNDBUF))  # *BUFFORCE
else:  # pragma: no cover - only Linux is tested
    _BUFFER_OPTIONS = ((None, socket.SO_RCVBUF), (None, socket.SO_SNDBUF))


def open_udp_socket(family: int, bind_addr=None, *, reuse_port: bool = False,
                    connect_addr=None) -> socket.socket:
    """A non-blocking UDP socket with large buffers, bound and/or connected as asked."""
    sock = socket.socket(family, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setblocking(False)
        for forced, plain in _BUFFER_OPTIONS:
            try:
                if forced is None:
                    raise OSError
                sock.setsockopt(socket.SOL_SOCKET, forced, SOCKET_BUFFER)
            except OSError:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, plain, SOCKET_BUFFER)
                except OSError:
                    pass
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # As asyncio does: an IPv6 socket does not also take IPv4, so binding "::" and
            # "0.0.0.0" on one port both work.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if bind_addr is not None:
            sock.bind(bind_addr)
        if connect_addr is not None:
            sock.connect(connect_addr)
    except BaseException:
        sock.close()
        raise
    return sock


def normalize_addr(addr) -> tuple:
    """The UDP address as the core keys connections by: IPv6 flow info is not identity."""
    if len(addr) == 4 and addr[2]:
        return (addr[0], addr[1], 0, addr[3])
    return tuple(addr)


def conn_id(subject) -> str:
    """``"<local TCP port>-<peer UDP host>:<peer UDP port>-<peer TCP port>"``."""
    key = getattr(subject, "key", subject)
    remote, local_port, remote_port = key
    host = f"[{remote[0]}]" if ":" in remote[0] else remote[0]
    return f"{local_port}-{host}:{remote[1]}-{remote_port}"


class _Connecting:
    """An active open waiting for ESTABLISHED."""
    __slots__ = ("future", "protocol_factory")

    def __init__(self, future, protocol_factory) -> None:
        self.future = future
        self.protocol_factory = protocol_factory


class Endpoint:
    """A UDP socket serving any number of TCP connections on one loop.

    ``linger`` keeps the socket open for TIME-WAIT records after the last connection is
    gone (client endpoints); ``auto_close`` closes the socket once the endpoint is idle.
    """

    def __init__(self, loop, sock: socket.socket, *, config: Config | None = None,
                 impairment: Impairment | None = None, auto_close: bool = False,
                 linger: bool = False) -> None:
        self.loop = loop
        self.sock = sock
        self.family = sock.family
        self.sockname = sock.getsockname()
        self._label = _format_addr(self.sockname)
        self.stack = Stack(config, mss=_MSS.get(sock.family, 1452), now=monotonic())
        self.stack.observer = self._observe
        #: Capture of every segment sent and received (``Config.pcap_path``), or None.
        pcap_path = self.stack.config.pcap_path
        self.pcap = PcapWriter(pcap_path) if pcap_path is not None else None
        self.auto_close = auto_close
        self.linger = linger
        self.closed = False
        #: Test hook: ``drop_filter(data, addr)`` returning True drops an outgoing datagram
        #: before the impairment layer sees it.
        self.drop_filter = None
        #: Called with the endpoint once it closes (the shared client endpoints' registry).
        self.on_close = None
        self.datagrams_in = 0
        self.datagrams_out = 0
        #: Counts of I/O trouble and of the core's notable events (see `atcp.log`).
        self.stats: collections.Counter[str] = collections.Counter()
        self._transports: dict = {}          # Connection -> Transport, for event routing
        self._live: set[Transport] = set()   # transports not yet told connection_lost
        self._connecting: dict = {}          # Connection -> _Connecting
        self._servers: dict = {}             # Listener -> Server
        # Events taken from the core outside a service pass; made by the first.
        self._deferred: collections.deque | None = None
        self._servicing = False
        self._service_scheduled = False
        self._timer = None
        self._timer_at = 0.0
        # Datagrams held while the socket would block; made by the first.
        self._backlog: collections.deque | None = None
        self._impairer = None
        if impairment is not None and impairment.active:
            self._impairer = Impairer(impairment, loop, self._send_now,
                                      on_drained=self._check_idle)
        self._fd = sock.fileno()
        self._queued_size = bytearray(4)   # FIONREAD's answer (`_more_queued`)
        # Batched I/O (`atcp.aio.udp_batch`) where the kernel has it: GSO sends runs of
        # equal-size datagrams in one call, GRO receives them coalesced.
        self._gso = self._gro = False
        if self.stack.config.udp_offload:
            self._gso, self._gro = enable_offload(sock)
        loop.add_reader(self._fd, self._on_readable_gro if self._gro else self._on_readable)
        # If the loop is closed with the endpoint still open (a client lingering in
        # TIME-WAIT), the socket is closed when the endpoint is collected (or at exit),
        # quietly, and the capture is flushed and closed rather than lost.
        self._finalizer = weakref.finalize(self, _release, sock, self.pcap)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._live)} transports"
        return f"<atcp Endpoint {self._label} {state}>"

    @property
    def io_path(self) -> str:
        """How datagrams move: "gso+gro", "gso", "gro" or "per-datagram"
        (`atcp.aio.udp_batch`); ``tcp_info.io_path`` reports it."""
        return io_path(self._gso, self._gro)

    @property
    def timer_deadline(self) -> float | None:
        """The monotonic time the endpoint's one ``call_at`` is armed for; None when no
        timer is armed (nothing in the wheel)."""
        return self._timer_at if self._timer is not None else None

    # ------------------------------------------------------------------ opening
    def connect(self, remote, remote_port: int, protocol_factory, *,
                local_port: int | None = None, config: Config | None = None):
        """Start an active open; return (Connection, future of (transport, protocol))."""
        conn = self.stack.connect(remote, remote_port, monotonic(), local_port=local_port,
                                  config=config)
        future = self.loop.create_future()
        self._connecting[conn] = _Connecting(future, protocol_factory)
        self._kick()
        return conn, future

    def cancel_connect(self, conn) -> None:
        """Forget an active open whose caller went away (cancelled or failed)."""
        self._connecting.pop(conn, None)
        if conn.state is not State.CLOSED and conn not in self._transports:
            conn.abort(monotonic())
        self._kick()
        self._check_idle()

    def listen(self, port: int, backlog: int | None, server):
        listener = self.stack.listen(port, backlog)
        self._servers[listener] = server
        return listener

    def stop_listening(self, listener) -> None:
        """Close a listener (its unaccepted connections are reset); close the socket once
        the connections already accepted are over."""
        self._servers.pop(listener, None)
        listener.close(monotonic())
        if not self._servers:
            self.auto_close = True
        self._kick()
        self._check_idle()

    def accept_pending(self, listener, server) -> None:
        """Hand every established connection waiting on ``listener`` to ``server``."""
        factory = server._protocol_factory
        while (conn := listener.accept()) is not None:
            self._accept(conn, factory, server)
        self._kick()

    def _accept(self, conn, factory, server) -> None:
        try:
            protocol = factory()
        except Exception as exc:
            self.loop.call_exception_handler({
                "message": "atcp: protocol_factory() of a server failed; connection reset",
                "exception": exc,
            })
            conn.abort(monotonic())
            return
        transport = Transport(self, conn, protocol, server)
        self._transports[conn] = transport
        self._live.add(transport)
        server._attach(transport)
        transport._start()

    def _connected(self, conn) -> None:
        pending = self._connecting.pop(conn, None)
        if pending is None:
            return
        if pending.future.done():            # the caller was cancelled meanwhile
            conn.abort(monotonic())
            return
        try:
            protocol = pending.protocol_factory()
        except BaseException as exc:
            conn.abort(monotonic())
            pending.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        transport = Transport(self, conn, protocol, None)
        self._transports[conn] = transport
        self._live.add(transport)
        transport._start()
        pending.future.set_result((transport, protocol))

    # ------------------------------------------------------------------ input
    def _on_readable(self) -> None:
        sock = self.sock
        ipv6 = self.family == socket.AF_INET6
        now = monotonic()
        batch = []
        append = batch.append
        for i in range(_MAX_BATCH):
            try:
                data, addr = sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._socket_error(exc)
                continue
            if ipv6:
                addr = normalize_addr(addr)
            if self.pcap is not None:
                self.pcap.write_segment(data, addr, self.sockname, time.time())
            append((data, addr))
            if not i and not self._more_queued():
                break
        self.datagrams_in += len(batch)
        # One drain is one batch: runs of in-order data are merged (atcp.core.coalesce).
        self.stack.receive_batch(batch, now)
        self._service()

    def _on_readable_gro(self) -> None:
        """`_on_readable` for a socket with UDP_GRO on: one ``recvmsg`` may return several
        datagrams of one sender. Single datagrams gather into a batch as in
        `_on_readable`; a coalesced buffer goes to the core whole
        (`Stack.receive_coalesced`), after the batch gathered before it, so that each
        sender's datagrams are taken in the order they came."""
        recvmsg = self.sock.recvmsg
        ipv6 = self.family == socket.AF_INET6
        pcap = self.pcap
        stack = self.stack
        now = monotonic()
        batch = []
        append = batch.append
        count = 0
        for i in range(_MAX_BATCH):
            try:
                data, ancdata, _flags, addr = recvmsg(_MAX_DATAGRAM, GRO_CMSG_SPACE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._socket_error(exc)
                continue
            if ipv6:
                addr = normalize_addr(addr)
            size = gro_segment_size(ancdata) if ancdata else 0
            if size and size < len(data):
                self.stats["gro_batches"] += 1
                if pcap is not None:
                    stamp = time.time()
                    for d in split_coalesced(data, size):
                        pcap.write_segment(d, addr, self.sockname, stamp)
                if batch:
                    stack.receive_batch(batch, now)
                    batch = []
                    append = batch.append
                stack.receive_coalesced(data, size, addr, now)
                count += -(-len(data) // size)
            else:
                if pcap is not None:
                    pcap.write_segment(data, addr, self.sockname, time.time())
                append((data, addr))
                count += 1
            if count >= _MAX_BATCH or not i and not self._more_queued():
                break
        if batch:
            stack.receive_batch(batch, now)
        self.datagrams_in += count
        self._service()

    def _more_queued(self) -> bool:
        """Whether another datagram waits in the socket: FIONREAD gives the size of the
        next one, 0 when there is none (an empty datagram, which is no segment anyway,
        is left for the next wake-up)."""
        queued = self._queued_size
        fcntl.ioctl(self._fd, termios.FIONREAD, queued)
        return queued != _NOTHING_QUEUED

    def _socket_error(self, exc: OSError) -> None:
        """An error queued on the socket, usually from ICMP (connected sockets only)."""
        self.stats["socket_errors"] += 1
        if exc.errno != errno.ECONNREFUSED:
            return
        # Port unreachable is a hard error for an opening connection (RFC 1122 4.2.3.9);
        # afterwards it is left to retransmission (RFC 5461).
        now = monotonic()
        for conn, pending in list(self._connecting.items()):
            if conn.state is State.SYN_SENT:
                del self._connecting[conn]
                conn.abort(now)
                if not pending.future.done():
                    pending.future.set_exception(refused_error())

    def _on_timer(self) -> None:
        self._timer = None
        if self.closed:
            return
        # A loop may run a timer up to its resolution early (uvloop: 1 ms); treat it as due.
        self.stack.poll(max(monotonic(), self._timer_at))
        self._service()

    # ------------------------------------------------------------------ servicing
    def _service(self) -> None:
        if self.closed:
            return
        self._servicing = True
        try:
            self._run_events()
        finally:
            self._servicing = False
        self._arm_timer()
        if self.auto_close:
            self._check_idle()

    def _run_events(self) -> None:
        stack = self.stack
        deferred = self._deferred
        dispatch = self._dispatch
        for _ in range(_MAX_EVENTS):
            event = deferred.popleft() if deferred else stack.next_event()
            if event is None:
                self._flush()
                return
            dispatch(event)
        self._flush()
        self._schedule_service()   # an event storm: continue on the next loop pass

    def _dispatch(self, event) -> None:
        kind = type(event)
        conn = event.conn
        if kind is ev.DataReceived:
            transport = self._transports.get(conn)
            if transport is not None:
                transport._data_ready()
        elif kind is ev.SendSpace:
            transport = self._transports.get(conn)
            if transport is not None:
                transport._send_space()
        elif kind is ev.EofReceived:
            transport = self._transports.get(conn)
            if transport is not None:
                transport._eof_arrived()
        elif kind is ev.ConnectionClosed:
            self._connection_closed(conn, event.error)
        elif kind is ev.Connected:
            self._connected(conn)
        elif kind is ev.Accepted:
            server = self._servers.get(event.listener)
            if server is not None and server.is_serving():
                self.accept_pending(event.listener, server)

    def _connection_closed(self, conn, error) -> None:
        if log.is_enabled():
            log.emit("connection_closed", conn=conn_id(conn), local=self._label,
                     error=repr(error) if error is not None else None)
        transport = self._transports.pop(conn, None)
        if transport is not None:
            transport._finished(error)
            return
        pending = self._connecting.pop(conn, None)
        if pending is not None and not pending.future.done():
            pending.future.set_exception(error if error is not None else ConnectionAbortedError(
                errno.ECONNABORTED, "Connection aborted"))

    def _kick(self) -> None:
        """After an application call changed the core: send now, deliver events soon."""
        if self._servicing or self.closed:
            return
        self._flush()
        event = self.stack.next_event()
        if event is not None:
            if self._deferred is None:
                self._deferred = collections.deque()
            while event is not None:
                self._deferred.append(event)
                event = self.stack.next_event()
            self._schedule_service()
        self._arm_timer()

    def _schedule_service(self) -> None:
        if not self._service_scheduled:
            self._service_scheduled = True
            self.loop.call_soon(self._scheduled_service)

    def _scheduled_service(self) -> None:
        self._service_scheduled = False
        self._service()

    def _transport_lost(self, transport: Transport) -> None:
        self._live.discard(transport)
        if not self._servicing:
            self._check_idle()

    # ------------------------------------------------------------------ timer
    def _arm_timer(self) -> None:
        deadline = self.stack.next_deadline()
        timer = self._timer
        if deadline is None:
            if timer is not None:
                timer.cancel()
                self._timer = None
            return
        if timer is not None:
            if self._timer_at <= deadline:
                return        # the armed callback comes first, and re-arms
            timer.cancel()
        loop = self.loop
        self._timer_at = deadline
        self._timer = loop.call_at(loop.time() + (deadline - monotonic()), self._on_timer)

    # ------------------------------------------------------------------ output
    def _flush(self) -> None:
        out = self.stack.datagrams_to_send()
        if not out:
            return
        if self.pcap is not None:
            # Recorded as sent, before test drops and impairment: a capture on the host.
            stamp = time.time()
            for data, addr in out:
                self.pcap.write_segment(data, self.sockname, addr, stamp)
        if self.drop_filter is not None:
            out = [(d, a) for d, a in out if not self.drop_filter(d, a)]
        if self._impairer is not None:
            submit = self._impairer.submit
            for data, addr in out:
                submit(data, addr)
            return
        if self._backlog:
            for data, addr in out:
                self._hold(data, addr)
            return
        if self._gso and len(out) > 1:
            self._send_runs(out)
        else:
            self._send_each(out)

    def _send_runs(self, out: list) -> None:
        """Send ``out`` with GSO: each run of equal-size datagrams to one address
        (`udp_batch.run_end`) in one ``sendmsg``, the datagrams as its buffer list; a run
        of one by ``sendto``."""
        sock = self.sock
        n = len(out)
        i = sent = 0
        while i < n:
            j = run_end(out, i)
            data, addr = out[i]
            try:
                if j - i == 1:
                    sock.sendto(data, addr)
                else:
                    sock.sendmsg([d for d, _ in out[i:j]], segment_cmsg(len(data)), 0, addr)
                    self.stats["gso_sends"] += 1
            except (BlockingIOError, InterruptedError):
                for data, addr in out[i:]:
                    self._hold(data, addr)
                break
            except OSError as exc:
                if j - i > 1 and exc.errno in GSO_FALLBACK_ERRORS:
                    self._gso_refused(exc)
                    self.datagrams_out += sent
                    self._send_each(out[i:])
                    return
                self._send_failed(exc, j - i)
            else:
                sent += j - i
            i = j
        self.datagrams_out += sent

    def _gso_refused(self, exc: OSError) -> None:
        """The kernel accepted UDP_SEGMENT but refused a GSO send (a device without
        checksum offload, an old kernel...): send datagram by datagram from now on."""
        self._gso = False
        self.stats["gso_fallback"] += 1
        if log.is_enabled():
            log.emit("gso_fallback", local=self._label, reason=repr(exc))

    def _send_each(self, out: list) -> None:
        """Send ``out`` one ``sendto`` per datagram."""
        sendto = self.sock.sendto
        sent = 0
        for i, (data, addr) in enumerate(out):
            try:
                sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                for data2, addr2 in out[i:]:
                    self._hold(data2, addr2)
                break
            except OSError as exc:
                self._send_failed(exc)
            else:
                sent += 1
        self.datagrams_out += sent

    def _send_now(self, data: bytes, addr) -> None:
        """Send one datagram, or hold it if the socket would block."""
        if self.closed:
            return
        if self._backlog:
            self._hold(data, addr)
            return
        try:
            self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self._hold(data, addr)
        except OSError as exc:
            self._send_failed(exc)
        else:
            self.datagrams_out += 1

    def _hold(self, data: bytes, addr) -> None:
        backlog = self._backlog
        if backlog is None:
            backlog = self._backlog = collections.deque()
        if len(backlog) >= _BACKLOG_LIMIT:
            self.stats["send_dropped"] += 1
            return
        if not backlog:
            self.loop.add_writer(self._fd, self._on_writable)
        backlog.append((data, addr))

    def _on_writable(self) -> None:
        backlog = self._backlog
        sendto = self.sock.sendto
        while backlog:
            data, addr = backlog[0]
            try:
                sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._send_failed(exc)
            else:
                self.datagrams_out += 1
            backlog.popleft()
        self.loop.remove_writer(self._fd)
        self._check_idle()

    def _send_failed(self, exc: OSError, count: int = 1) -> None:
        """Datagrams the socket refused (ENOBUFS, unreachable...): they are lost, and TCP's
        retransmission deals with them like any other loss."""
        self.stats["send_dropped"] += count
        if exc.errno == errno.ECONNREFUSED:
            self._socket_error(exc)
        if log.is_enabled():
            log.emit("send_dropped", local=self._label, reason=repr(exc))

    # ------------------------------------------------------------------ observer, closing
    def _observe(self, what: str, subject, fields: dict) -> None:
        self.stats[what] += 1
        if log.is_enabled():
            log.emit(what, conn=conn_id(subject), local=self._label, **fields)

    def _check_idle(self) -> None:
        if not self.auto_close or self.closed or self._servicing:
            return
        if self._live or self._connecting or self._servers or self._backlog:
            return
        if self._impairer is not None and self._impairer.pending:
            return
        stack = self.stack
        if stack.connection_count or (self.linger and stack.time_wait_count):
            return
        self.close()

    def close(self) -> None:
        """Close the socket now; connections still open are abandoned without a word."""
        if self.closed:
            return
        self.closed = True
        loop = self.loop
        if not loop.is_closed():
            loop.remove_reader(self._fd)
            if self._backlog:
                loop.remove_writer(self._fd)
        self._backlog = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._impairer is not None:
            self._impairer.close()
        self._finalizer()
        if self.on_close is not None:
            self.on_close(self)
        if self.pcap is not None:
            self.pcap.close()
        if log.is_enabled():
            log.emit("endpoint_closed", local=self._label)


def _release(sock: socket.socket, pcap: PcapWriter | None) -> None:
    sock.close()
    if pcap is not None:
        pcap.close()


def _format_addr(addr) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
