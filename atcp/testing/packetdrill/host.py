"""The host a script runs on: FreeBSD-like tunables, sockets and system calls over a `Stack`.

Scripts in packetdrill syntax were written for kernels, so the runner plays a small
FreeBSD host around atcp's sans-I/O core:

* Tunables start at FreeBSD's defaults (`Tunables.DEFAULTS`) and ``sysctl -w`` changes the
  `Config` used from then on: by sockets created afterwards and by the stack's own
  decisions (LISTEN, TIME-WAIT). A sysctl without an atcp meaning fails the script, and so
  does a value asking for a feature atcp lacks (ECN, PMTU black-hole detection): a script must never pass by silently testing something else.
  Like FreeBSD's default TCP stack, the host uses NewReno, no RACK-TLP and no pacing, so
  scripts see exact ACK-clocked timing; ``net.inet.tcp.functions_default=rack`` turns on
  RACK-TLP (FreeBSD's RACK stack) and ``net.inet.tcp.cc.algorithm=cubic`` selects CUBIC;
  ``net.inet.tcp.functions_default=bbr`` (FreeBSD's BBR stack) is RACK-TLP with BBR and
  pacing.
* The remote peer is one host, ``192.0.2.1`` (``2001:db8::1`` for IPv6). atcp identifies a
  peer by an opaque ``remote``; here it is ``(host, udp_port)`` for a peer reached through
  FreeBSD's TCP-over-UDP encapsulation and ``(host, None)`` for plain TCP. A socket with
  ``TCP_REMOTE_UDP_ENCAPS_PORT`` set to P connects to ``(host, P)``; a listener takes SYNs
  from any remote. The MSS offered follows the path: 1460 (IPv4) or 1440 (IPv6) bytes,
  less ``net.inet.tcp.udp_tunneling_overhead`` when encapsulated.
* TCP ports: a bound socket uses port 8080, an unbound one that connects gets the next
  port from 40000; the remote always uses port 54321. Injected segments go to the port of
  the socket most recently bound or connected, as packetdrill's do.
* File descriptors start at 3. System calls return an `Outcome`, or a `Blocked` retry when
  a blocking socket would block; the runner retries it as time passes.
"""

from __future__ import annotations

import errno as _errno
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ...config import Config
from ...core.connection import Connection
from ...core.stack import Listener, Stack
from ...core.states import State

__all__ = ["Host", "Outcome", "Blocked", "ScriptError", "LOCAL_PORT", "REMOTE_PORT"]

LOCAL_PORT = 8080
REMOTE_PORT = 54321
FIRST_EPHEMERAL = 40000
REMOTE_HOST = {"ipv4": "192.0.2.1", "ipv6": "2001:db8::1"}
#: MSS of a 1500-byte path less the IP and TCP headers (RFC 9293 3.7.1).
PLAIN_MSS = {"ipv4": 1460, "ipv6": 1440}
#: IPV6_USE_MIN_MTU: the IPv6 minimum MTU, 1280, less the IPv6 and TCP headers.
IPV6_MIN_MTU_MSS = 1220

O_RDWR = 0x0002
O_NONBLOCK = 0x0004   # FreeBSD's value
_OPEN_FLAGS = {"O_RDONLY": 0, "O_WRONLY": 1, "O_RDWR": O_RDWR, "O_NONBLOCK": O_NONBLOCK}
_ERRNO_ALIASES = {"EWOULDBLOCK": "EAGAIN", "ENOTSUP": "EOPNOTSUPP"}

#: State names as FreeBSD's sockstat prints them.
BSD_STATE = {
    State.CLOSED: "CLOSED", State.LISTEN: "LISTEN", State.SYN_SENT: "SYN_SENT",
    State.SYN_RECEIVED: "SYN_RCVD", State.ESTABLISHED: "ESTABLISHED",
    State.FIN_WAIT_1: "FIN_WAIT_1", State.FIN_WAIT_2: "FIN_WAIT_2",
    State.CLOSE_WAIT: "CLOSE_WAIT", State.CLOSING: "CLOSING", State.LAST_ACK: "LAST_ACK",
    State.TIME_WAIT: "TIME_WAIT",
}


class ScriptError(Exception):
    """The script cannot go on: a check failed or it asks for something unsupported."""


@dataclass
class Outcome:
    """What a system call returned: its value, errno name, and output arguments by index."""

    value: int
    errno: str | None = None
    outputs: dict[int, object] = field(default_factory=dict)


@dataclass
class Blocked:
    """A blocking call that could not complete yet; ``attempt(now)`` retries it."""

    attempt: Callable[[float], Outcome | None]


def errno_name(name_or_code) -> str:
    """Canonical errno name, so EWOULDBLOCK and EAGAIN compare equal."""
    if isinstance(name_or_code, int):
        name_or_code = _errno.errorcode.get(name_or_code, str(name_or_code))
    return _ERRNO_ALIASES.get(name_or_code, name_or_code)


def _failure(exc: OSError) -> Outcome:
    return Outcome(-1, errno_name(exc.errno) if exc.errno else "EIO")


# --------------------------------------------------------------------------- tunables


def _shift_for(maxsockbuf: int) -> int:
    """FreeBSD offers the smallest window scale whose range covers kern.ipc.maxsockbuf."""
    shift = 0
    while (65535 << shift) < maxsockbuf and shift < 14:
        shift += 1
    return shift


class Tunables:
    """The sysctls a script may set, at FreeBSD's defaults, and the `Config` they make."""

    DEFAULTS = {
        "net.inet.tcp.rfc1323": 1,
        "net.inet.tcp.sack.enable": 1,
        "net.inet.tcp.insecure_rst": 0,
        "net.inet.tcp.insecure_syn": 0,
        "net.inet.tcp.recvspace": 65536,
        "net.inet.tcp.sendspace": 32768,
        "kern.ipc.maxsockbuf": 2097152,
        "net.inet.tcp.rexmit_initial": 1000,
        # FreeBSD's floor is 30 ms, but it adds a 200 ms slop to every RTO, which Config
        # cannot express; RFC 6298 2.4's 1 s floor is the conservative stand-in, so that a
        # script's 100 ms steps never race a retransmission FreeBSD would not make.
        "net.inet.tcp.rexmit_min": 1000,
        "net.inet.tcp.delacktime": 100,
        "net.inet.tcp.drop_synfin": 0,
        "net.inet.tcp.udp_tunneling_port": 0,
        "net.inet.tcp.udp_tunneling_overhead": 8,
        "net.inet.tcp.syncookies": 1,
        "net.inet.tcp.syncookies_only": 0,
        "net.inet.tcp.blackhole": 0,
        "net.inet.tcp.ecn.enable": 2,
        "net.inet.tcp.mssdflt": 536,
        "net.inet.tcp.hostcache.purgenow": 0,
        "net.inet.tcp.functions_default": "freebsd",
        "net.inet.tcp.cc.algorithm": "newreno",
        "net.inet.tcp.reass.maxqueuelen": 100,
    }
    #: Tunables whose values are names, and the names atcp knows.
    NAMES = {
        "net.inet.tcp.functions_default": ("freebsd", "rack", "bbr"),
        "net.inet.tcp.cc.algorithm": ("newreno", "cubic"),
    }
    #: Values atcp cannot honour, and why: setting one fails the script.
    UNSUPPORTED = {
        "net.inet.tcp.blackhole": (lambda v: v != 0, "atcp always answers with RSTs"),
        "net.inet.tcp.ecn.enable": (lambda v: v == 1, "atcp does not negotiate ECN"),
        "net.inet.tcp.mssdflt": (lambda v: v != 536, "atcp's default MSS is fixed at 536"),
    }

    def __init__(self) -> None:
        self.values = dict(self.DEFAULTS)

    def __getitem__(self, name: str) -> int:
        return self.values[name]

    def set(self, name: str, text: str) -> None:
        if name not in self.values:
            raise ScriptError(f"unsupported sysctl {name} (no meaning in atcp)")
        if name in self.NAMES:
            if text not in self.NAMES[name]:
                raise ScriptError(f"unsupported: {name}={text} (atcp knows "
                                  f"{', '.join(self.NAMES[name])})")
            self.values[name] = text
            return
        try:
            value = int(text, 0)
        except ValueError:
            raise ScriptError(f"sysctl {name}={text}: not an integer") from None
        bad = self.UNSUPPORTED.get(name)
        if bad is not None and bad[0](value):
            raise ScriptError(f"unsupported: {name}={value} ({bad[1]})")
        old = self.values[name]
        self.values[name] = value
        try:
            self.config()
        except (TypeError, ValueError) as exc:
            self.values[name] = old
            raise ScriptError(f"sysctl {name}={value} gives no valid Config: {exc}") from None

    def config(self) -> Config:
        v = self.values
        rfc1323 = v["net.inet.tcp.rfc1323"]
        rto = v["net.inet.tcp.rexmit_initial"] / 1000
        stack = v["net.inet.tcp.functions_default"]
        bbr = stack == "bbr"   # FreeBSD's BBR stack: RACK's loss detection, BBR, pacing
        return Config(
            window_scaling=rfc1323 in (1, 2),
            timestamps=rfc1323 in (1, 3),
            sack=bool(v["net.inet.tcp.sack.enable"]),
            # atcp has one RFC 5961 switch for RST, SYN and ACK checks.
            rfc5961=not (v["net.inet.tcp.insecure_rst"] or v["net.inet.tcp.insecure_syn"]),
            recv_buffer=v["net.inet.tcp.recvspace"],
            recv_buffer_whole_segments=True,   # as FreeBSD's tcp_mss() rounds it
            send_buffer=v["net.inet.tcp.sendspace"],
            window_scale=_shift_for(v["kern.ipc.maxsockbuf"]),
            rto_initial=rto,
            rto_min=min(v["net.inet.tcp.rexmit_min"] / 1000, rto),
            delayed_ack=v["net.inet.tcp.delacktime"] / 1000,
            drop_synfin=bool(v["net.inet.tcp.drop_synfin"]),
            syncookies=bool(v["net.inet.tcp.syncookies"]),
            syncookies_only=bool(v["net.inet.tcp.syncookies_only"]),
            congestion="bbr" if bbr else v["net.inet.tcp.cc.algorithm"],
            # FreeBSD bounds the segments queued for reassembly; atcp the runs it holds.
            max_out_of_order=v["net.inet.tcp.reass.maxqueuelen"],
            rack_tlp=stack in ("rack", "bbr"),
            pacing=bbr,   # FreeBSD's default stack does not pace; its BBR stack does
        )


# --------------------------------------------------------------------------- sockets


@dataclass
class Socket:
    fd: int
    nonblocking: bool = False
    local_port: int | None = None
    reuseaddr: int = 0
    encaps_port: int = 0
    conn: Connection | None = None
    listener: Listener | None = None
    error_reported: bool = False
    abort_on_close: bool = False
    nodelay: bool = False
    maxseg: int | None = None
    min_mtu: bool = False
    rcvbuf: int | None = None
    sndbuf: int | None = None

    @property
    def opened(self) -> bool:
        """FreeBSD's t_state != TCPS_CLOSED: listening or connecting/connected."""
        return self.listener is not None or self.conn is not None


class Host:
    """The emulated FreeBSD host: tunables, the stack, sockets and their system calls."""

    def __init__(self, ip_version: str = "ipv4", *, seed: int = 1) -> None:
        if ip_version not in REMOTE_HOST:
            raise ScriptError(f"unsupported --ip_version={ip_version}")
        self.ip_version = ip_version
        self.peer_host = REMOTE_HOST[ip_version]
        self.tunables = Tunables()
        self.stack = Stack(self.tunables.config(), secret=bytes(range(32)),
                           rng=random.Random(seed), path_mss=self._path_mss)
        self.sockets: dict[int, Socket] = {}
        self.flow_port = LOCAL_PORT
        self.last_fd: int | None = None
        self._next_ephemeral = FIRST_EPHEMERAL

    # ------------------------------------------------------------------ paths
    def remote(self, udp_port: int | None):
        return (self.peer_host, udp_port)

    @property
    def tunnel_port(self) -> int:
        return self.tunables["net.inet.tcp.udp_tunneling_port"]

    def _path_mss(self, remote, min_mtu: bool = False) -> int:
        mss = IPV6_MIN_MTU_MSS if min_mtu else PLAIN_MSS[self.ip_version]
        if remote[1] is not None:
            mss -= self.tunables["net.inet.tcp.udp_tunneling_overhead"]
        return mss

    # ------------------------------------------------------------------ commands
    def command(self, text: str, now: float) -> None:
        """A backquoted shell command: sysctl, sockstat | grep -c | grep, tcpdrop."""
        words = text.split()
        if not words:
            raise ScriptError("empty shell command")
        if words[0] == "sysctl":
            self._sysctl(words[1:])
        elif words[0] == "sockstat":
            self._sockstat(text)
        elif words[0] == "tcpdrop":
            self._tcpdrop(words[1:], now)
        else:
            raise ScriptError(f"unsupported shell command: {text}")

    def _sysctl(self, args: list[str]) -> None:
        if not args or args[0] != "-w" or len(args) < 2:
            raise ScriptError("unsupported sysctl usage (only 'sysctl -w name=value')")
        for assignment in args[1:]:
            name, sep, value = assignment.partition("=")
            if not sep:
                raise ScriptError(f"sysctl -w needs name=value, got {assignment!r}")
            self.tunables.set(name, value)
        self.stack.config = self.tunables.config()

    _SOCKSTAT = re.compile(r"sockstat\b[^|]*\|\s*grep\s+-c\s+(\w+)\s*\|\s*grep\s+(\d+)$")

    def _sockstat(self, text: str) -> None:
        m = self._SOCKSTAT.match(text.strip())
        if not m:
            raise ScriptError(f"unsupported sockstat usage: {text} "
                              "(only 'sockstat ... | grep -c STATE | grep N')")
        state, want = _bsd_state_name(m.group(1)), int(m.group(2))
        count = sum(1 for name in self._states() if name == state)
        if count != want:
            raise ScriptError(f"{count} connection(s) in {state}, expected {want}")

    def _states(self) -> list[str]:
        names = [BSD_STATE[c.state] for c in self.stack.connections]
        names += ["TIME_WAIT"] * len(self.stack.time_wait)
        names += ["LISTEN"] * sum(1 for s in self.sockets.values() if s.listener is not None)
        return names

    def _tcpdrop(self, args: list[str], now: float) -> None:
        if "-s" not in args or args.index("-s") + 1 >= len(args):
            raise ScriptError("unsupported tcpdrop usage (only 'tcpdrop -s STATE')")
        state = _bsd_state_name(args[args.index("-s") + 1])
        if state == "TIME_WAIT":
            for record in self.stack.time_wait:
                # The administrator's tcpdrop: the record goes without a word to the peer.
                self.stack._forget_time_wait(record)
            return
        for conn in self.stack.connections:
            if BSD_STATE[conn.state] == state:
                conn.abort(now)

    # ------------------------------------------------------------------ system calls
    def syscall(self, name: str, args: list, now: float) -> Outcome | Blocked:
        handler = getattr(self, "_sys_" + name, None)
        if handler is None:
            raise ScriptError(f"unsupported system call {name}()")
        if args and isinstance(args[0], int) and name != "socket":
            self.last_fd = args[0]
        return handler(args, now)

    def _socket(self, args: list, index: int = 0) -> Socket:
        if len(args) <= index or not isinstance(args[index], int):
            raise ScriptError("expected a file descriptor argument")
        sock = self.sockets.get(args[index])
        if sock is None:
            raise ScriptError(f"fd {args[index]} is not an open socket")
        return sock

    def _new_fd(self) -> int:
        fd = 3
        while fd in self.sockets:
            fd += 1
        return fd

    def _sys_socket(self, args: list, now: float) -> Outcome:
        if len(args) != 3 or args[1] != "SOCK_STREAM":
            raise ScriptError("only socket(..., SOCK_STREAM, IPPROTO_TCP) is supported")
        fd = self._new_fd()
        self.sockets[fd] = Socket(fd)
        self.last_fd = fd
        return Outcome(fd)

    def _sys_fcntl(self, args: list, now: float) -> Outcome:
        sock = self._socket(args)
        cmd = args[1] if len(args) > 1 else None
        if cmd == "F_GETFL":
            return Outcome(O_RDWR | (O_NONBLOCK if sock.nonblocking else 0))
        if cmd == "F_SETFL" and len(args) == 3:
            sock.nonblocking = bool(_open_flags(args[2]) & O_NONBLOCK)
            return Outcome(0)
        raise ScriptError(f"unsupported fcntl command {cmd}")

    def _sys_bind(self, args: list, now: float) -> Outcome:
        sock = self._socket(args)
        if sock.opened or sock.local_port is not None:
            return Outcome(-1, "EINVAL")
        sock.local_port = LOCAL_PORT
        self.flow_port = LOCAL_PORT
        return Outcome(0)

    def _sys_listen(self, args: list, now: float) -> Outcome:
        sock = self._socket(args)
        if sock.conn is not None:
            return Outcome(-1, "EINVAL")
        if sock.listener is not None:
            return Outcome(0)
        port = sock.local_port or LOCAL_PORT
        backlog = args[1] if len(args) > 1 and isinstance(args[1], int) else None
        try:
            sock.listener = self.stack.listen(port, backlog)
        except OSError as exc:
            return _failure(exc)
        sock.local_port = self.flow_port = port
        return Outcome(0)

    def _sys_accept(self, args: list, now: float) -> Outcome | Blocked:
        sock = self._socket(args)
        if sock.listener is None:
            return Outcome(-1, "EINVAL")

        def attempt(now: float) -> Outcome | None:
            conn = sock.listener.accept() if sock.listener is not None else None
            if conn is None:
                return None
            fd = self._new_fd()
            self.sockets[fd] = Socket(fd, nonblocking=sock.nonblocking, conn=conn,
                                      local_port=conn.local_port)
            self.last_fd = fd
            return Outcome(fd)
        return self._blocking(sock, attempt, now)

    def _sys_connect(self, args: list, now: float) -> Outcome | Blocked:
        sock = self._socket(args)
        if sock.listener is not None:
            return Outcome(-1, "EINVAL")
        if sock.conn is not None:
            return Outcome(-1, "EALREADY" if sock.conn.state is State.SYN_SENT else "EISCONN")
        remote = self.remote(sock.encaps_port or None)
        mss = self._path_mss(remote, sock.min_mtu)
        if sock.maxseg is not None:
            mss = min(mss, sock.maxseg)
        local_port = sock.local_port
        if local_port is None:
            local_port = self._next_ephemeral
            self._next_ephemeral += 1
        try:
            conn = self.stack.connect(remote, REMOTE_PORT, now, local_port=local_port,
                                      config=self._socket_config(sock), mss=mss)
        except OSError as exc:
            return _failure(exc)
        sock.conn = conn
        sock.local_port = self.flow_port = local_port
        if sock.nonblocking:
            return Outcome(-1, "EINPROGRESS")

        def attempt(now: float) -> Outcome | None:
            if conn.error is not None:
                sock.error_reported = True
                return _failure(conn.error)
            if conn.state is State.SYN_SENT or conn.state is State.SYN_RECEIVED:
                return None
            return Outcome(0)
        return Blocked(attempt)

    def _socket_config(self, sock: Socket) -> Config:
        cfg = self.tunables.config()
        changes = {}
        if sock.rcvbuf is not None:
            changes["recv_buffer"] = sock.rcvbuf
        if sock.sndbuf is not None:
            changes["send_buffer"] = sock.sndbuf
        if sock.nodelay:
            changes["nodelay"] = True
        return cfg.replace(**changes) if changes else cfg

    def _sys_read(self, args: list, now: float) -> Outcome | Blocked:
        sock = self._connected(args)
        size = args[2] if len(args) > 2 and isinstance(args[2], int) else -1

        def attempt(now: float) -> Outcome | None:
            conn = sock.conn
            if conn.error is not None and not sock.error_reported:
                sock.error_reported = True
                return _failure(conn.error)
            if conn.readable():
                return Outcome(len(conn.read(size, now)))
            if conn.eof or conn.state is State.CLOSED:
                return Outcome(0)
            return None
        return self._blocking(sock, attempt, now)

    _sys_recv = _sys_read

    def _sys_write(self, args: list, now: float) -> Outcome | Blocked:
        sock = self._connected(args)
        size = args[2] if len(args) > 2 and isinstance(args[2], int) else None
        if size is None:
            raise ScriptError("write/send needs a byte count")

        def attempt(now: float) -> Outcome | None:
            try:
                n = sock.conn.send(bytes(size), now)
            except OSError as exc:
                sock.error_reported = True
                return _failure(exc)
            return Outcome(n) if n or not size else None
        return self._blocking(sock, attempt, now)

    _sys_send = _sys_write

    def _connected(self, args: list) -> Socket:
        sock = self._socket(args)
        if sock.conn is None:
            raise ScriptError(f"fd {sock.fd} is not connected")
        return sock

    def _blocking(self, sock: Socket, attempt, now: float) -> Outcome | Blocked:
        outcome = attempt(now)
        if outcome is not None:
            return outcome
        if sock.nonblocking:
            return Outcome(-1, "EAGAIN")
        return Blocked(attempt)

    def _sys_shutdown(self, args: list, now: float) -> Outcome:
        sock = self._socket(args)
        how = args[1] if len(args) > 1 else None
        if how not in ("SHUT_RD", "SHUT_WR", "SHUT_RDWR"):
            raise ScriptError(f"unsupported shutdown mode {how!r}")
        if sock.conn is None:
            return Outcome(-1, "ENOTCONN")
        if how != "SHUT_RD":
            try:
                sock.conn.shutdown(now)
            except OSError as exc:
                return _failure(exc)
        return Outcome(0)

    def _sys_close(self, args: list, now: float) -> Outcome:
        sock = self._socket(args)
        if sock.listener is not None:
            sock.listener.close(now)
        elif sock.conn is not None:
            if sock.abort_on_close:
                sock.conn.abort(now)
            else:
                sock.conn.close(now)
        del self.sockets[sock.fd]
        return Outcome(0)

    # ------------------------------------------------------------------ socket options
    def _sys_getsockopt(self, args: list, now: float) -> Outcome:
        sock = self._socket(args)
        if len(args) != 5:
            raise ScriptError("getsockopt needs (fd, level, name, [value], [length])")
        value = self._option_value(sock, args[1], args[2])
        return Outcome(0, outputs={3: [value]})

    def _option_value(self, sock: Socket, level, name) -> object:
        conn = sock.conn
        if name == "SO_ERROR":
            error = conn.error if conn is not None else None
            if error is None or sock.error_reported:
                return 0
            sock.error_reported = True
            return errno_name(error.errno)
        if name == "SO_RCVBUF":
            if conn is not None:
                return conn.rcvbuf.limit
            return sock.rcvbuf or self.tunables.config().recv_buffer
        if name == "SO_SNDBUF":
            if conn is not None:
                return conn.sndbuf.limit
            return sock.sndbuf or self.tunables.config().send_buffer
        if name == "SO_REUSEADDR":
            return sock.reuseaddr
        if name == "SO_LINGER":
            return {"onoff": int(sock.abort_on_close), "linger": 0}
        if name == "TCP_NODELAY":
            return int(sock.nodelay)
        if name == "TCP_MAXSEG":
            if conn is not None and conn.state is not State.SYN_SENT:
                return conn.snd_mss
            return sock.maxseg or self._path_mss(self.remote(sock.encaps_port or None),
                                                 sock.min_mtu)
        if name == "TCP_REMOTE_UDP_ENCAPS_PORT":
            if conn is not None:
                return conn.remote[1] or 0
            return sock.encaps_port
        raise ScriptError(f"unsupported socket option {level}/{name}")

    def _sys_setsockopt(self, args: list, now: float) -> Outcome:
        sock = self._socket(args)
        if len(args) != 5:
            raise ScriptError("setsockopt needs (fd, level, name, value, length)")
        name, raw = args[2], args[3]
        if isinstance(raw, dict):
            return self._set_struct_option(sock, name, raw)
        if not (isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], int)):
            raise ScriptError(f"setsockopt {name}: expected a value like [1]")
        return self._set_int_option(sock, name, raw[0], now)

    def _set_struct_option(self, sock: Socket, name, raw: dict) -> Outcome:
        if name == "SO_LINGER" and set(raw) == {"onoff", "linger"}:
            # SO_LINGER {onoff=1, linger=0}: close aborts the connection (sends a RST).
            sock.abort_on_close = bool(raw["onoff"]) and raw["linger"] == 0
            if raw["onoff"] and raw["linger"]:
                raise ScriptError("unsupported: SO_LINGER with a non-zero linger time")
            return Outcome(0)
        raise ScriptError(f"unsupported socket option {name}")

    def _set_int_option(self, sock: Socket, name, value: int, now: float) -> Outcome:
        conn = sock.conn
        if name == "SO_REUSEADDR":
            sock.reuseaddr = value
        elif name in ("SO_RCVBUF", "SO_SNDBUF"):
            if sock.opened:
                raise ScriptError(f"unsupported: {name} after listen/connect")
            if value <= 0:
                return Outcome(-1, "EINVAL")
            setattr(sock, "rcvbuf" if name == "SO_RCVBUF" else "sndbuf", value)
        elif name == "TCP_NODELAY":
            sock.nodelay = bool(value)
            if conn is not None:
                conn.config = conn.config.replace(nodelay=sock.nodelay)
        elif name == "TCP_MAXSEG":
            return self._set_maxseg(sock, value)
        elif name == "TCP_REMOTE_UDP_ENCAPS_PORT":
            return self._set_encaps_port(sock, value)
        elif name == "IPV6_USE_MIN_MTU":
            if self.ip_version != "ipv6":
                return Outcome(-1, "EINVAL")
            sock.min_mtu = bool(value)
        else:
            raise ScriptError(f"unsupported socket option {name}")
        return Outcome(0)

    def _set_maxseg(self, sock: Socket, value: int) -> Outcome:
        """TCP_MAXSEG lowers the MSS; on a connection, the send MSS in use (FreeBSD)."""
        conn = sock.conn
        limit = conn.snd_mss if conn is not None and conn.state is not State.SYN_SENT \
            else PLAIN_MSS[self.ip_version]
        if not 64 <= value <= limit:
            return Outcome(-1, "EINVAL")
        if conn is not None and conn.state is not State.SYN_SENT:
            conn.snd_mss = value
        else:
            sock.maxseg = value
        return Outcome(0)

    def _set_encaps_port(self, sock: Socket, value: int) -> Outcome:
        """FreeBSD's rules: only before listen/connect, a port number, and non-zero only
        while the host has a UDP tunneling port."""
        if sock.opened or not 0 <= value <= 65535:
            return Outcome(-1, "EINVAL")
        if value and not self.tunnel_port:
            return Outcome(-1, "EINVAL")
        sock.encaps_port = value
        return Outcome(0)

    # ------------------------------------------------------------------ inspection
    def current_state(self) -> State:
        """The state of the socket the script used last (for tcpi_state checks)."""
        sock = self.sockets.get(self.last_fd) if self.last_fd is not None else None
        if sock is None:
            raise ScriptError("no socket to inspect")
        if sock.listener is not None:
            return State.LISTEN
        if sock.conn is None:
            return State.CLOSED
        return self.stack.state_of(sock.conn)


def _open_flags(value) -> int:
    if isinstance(value, int):
        return value
    flags = 0
    for name in str(value).split("|"):
        if name not in _OPEN_FLAGS:
            raise ScriptError(f"unsupported open flag {name}")
        flags |= _OPEN_FLAGS[name]
    return flags


def _bsd_state_name(name: str) -> str:
    name = name.upper().replace("-", "_")
    if name == "SYN_RECEIVED":
        name = "SYN_RCVD"
    if name not in BSD_STATE.values():
        raise ScriptError(f"unknown TCP state {name}")
    return name
