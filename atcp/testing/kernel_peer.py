"""The Linux kernel's TCP as a test peer for atcp, through a TUN gateway.

Theory of operation
-------------------
A test gets a network namespace of its own (`Namespace`: created with ``ip netns add``,
named after the test process, removed afterwards; stale ones from dead processes are swept).
Inside it a TUN device ``tun0`` carries raw IPv4 packets between that namespace's kernel and
a `Gateway` thread in the test process::

    kernel socket (in the namespace)            atcp endpoint (root namespace)
        |  IPv4 to ATCP_IP                           ^  UDP on 127.0.0.1
        v                                            |
      tun0 --- os.read: strip the IPv4 header ---> UDP payload = the TCP segment
      tun0 <-- os.write: prepend an IPv4 header <- UDP payload from atcp
               and compute the TCP checksum over
               the pseudo-header of the virtual addresses

The namespace's kernel owns ``KERNEL_IP`` on ``tun0``; ``ATCP_IP`` is the address it reaches
atcp at (both in 198.18.0.0/15, the benchmarking range of RFC 2544, and only ever routed to
the TUN inside the namespace). The gateway's UDP socket lives in the root namespace on
127.0.0.1: a socket keeps the namespace it was made in, and a TUN file descriptor keeps its
device, so the thread needs no namespace of its own.

TCP ports pass through unchanged, and atcp sees the gateway's UDP address as its peer. The
gateway remembers, per (kernel port, atcp port), the UDP address atcp last sent from; for a
connection the kernel opens first it sends to 127.0.0.1 at the TCP destination port, the
default of atcp's wire format. So bind the gateway's UDP port to the kernel listener's TCP
port when atcp is the client (`Gateway.address` is then what ``open_connection`` takes),
and start the atcp server on 127.0.0.1 at the port the kernel client connects to.

The gateway drops, duplicates, delays and reorders packets with a seeded RNG
(`GatewayImpairment`, either direction or both); `Gateway.drop_when` drops chosen segments
(e.g. atcp's final ACK, once), and every segment is logged (`Gateway.records`). Kernel-side
sockets are made inside the namespace by `Namespace.socket`, on a worker thread
that has ``setns()``-ed into it; they can be used from any thread or the event loop.

Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN), ``/dev/net/tun`` and iproute2's ``ip``;
`unavailable_reason` says what is missing.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import fcntl
import heapq
import itertools
import os
import random
import select
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from ..pcap import PcapWriter, ipv4_packet
from ..wire import FIN, RST, SYN, MalformedSegment, Segment, parse

__all__ = [
    "KERNEL_IP",
    "ATCP_IP",
    "TO_ATCP",
    "TO_KERNEL",
    "GatewayImpairment",
    "Namespace",
    "Gateway",
    "KernelPeer",
    "Record",
    "DropRule",
    "BASE_SYSCTLS",
    "unavailable_reason",
    "sweep_stale_namespaces",
    "tcp_state",
    "tcp_info_retransmits",
    "TCP_STATES",
]

KERNEL_IP = "198.18.0.1"
ATCP_IP = "198.18.0.2"
TO_ATCP = "to_atcp"        # a packet the kernel sent, on its way to atcp
TO_KERNEL = "to_kernel"    # a datagram atcp sent, on its way to the kernel

_NS_PREFIX = "atcp-kp-"
_CLONE_NEWNET = 0x40000000
_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000
_SO_SNDBUFFORCE = 32
_SO_RCVBUFFORCE = 33
_SOCKET_BUFFER = 4 << 20
_MTU = 1500
_KERNEL_PACKED = socket.inet_aton(KERNEL_IP)
_ATCP_PACKED = socket.inet_aton(ATCP_IP)

#: Linux TCP states as ``TCP_INFO`` reports them (include/net/tcp_states.h).
TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1",
              5: "FIN_WAIT2", 6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK",
              10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV"}

#: Set in every namespace before tun0 exists; a test's own sysctls come after.
BASE_SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": 1,      # before any link is up: no router solicitations
    "net.ipv6.conf.default.disable_ipv6": 1,
    "net.ipv4.tcp_syn_retries": 2,            # a SYN to nobody gives up in ~7 s, not ~127 s
    "net.ipv4.tcp_no_metrics_save": 1,
}


def unavailable_reason() -> str | None:
    """Why this machine cannot run kernel-peer tests, or None if it can."""
    if not hasattr(os, "geteuid") or os.uname().sysname != "Linux":
        return "the kernel peer needs Linux (network namespaces and TUN devices)"
    if os.geteuid() != 0:
        return "the kernel peer needs root (CAP_NET_ADMIN to make a namespace and a TUN)"
    missing = [name for name, bit in (("CAP_NET_ADMIN", 12), ("CAP_SYS_ADMIN", 21))
               if not _effective_caps() >> bit & 1]
    if missing:
        return f"the kernel peer needs {' and '.join(missing)} (root has them dropped here)"
    if not os.path.exists("/dev/net/tun"):
        return "the kernel peer needs /dev/net/tun (load the tun module)"
    if shutil.which("ip") is None:
        return "the kernel peer needs iproute2's `ip` command"
    return None


def _effective_caps() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def tcp_state(sock: socket.socket) -> str:
    """The kernel's state of ``sock`` (from ``TCP_INFO``), e.g. ``"LAST_ACK"``."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    return TCP_STATES.get(info[0], str(info[0]))


def tcp_info_retransmits(sock: socket.socket) -> int:
    """``tcpi_total_retrans``: segments the kernel has retransmitted on ``sock``."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("I", info, 100)[0]


# ---------------------------------------------------------------------------- namespace
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _ip(*args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(["ip", *args], input=stdin, capture_output=True, text=True,
                          timeout=30)
    if proc.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_namespaces() -> list[str]:
    """Remove ``atcp-kp-<pid>-<n>`` namespaces whose process is gone; return their names."""
    removed = []
    for line in _ip("netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(_NS_PREFIX):
            continue
        pid = name[len(_NS_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
            removed.append(name)
    return removed


class Namespace:
    """A named network namespace for one test, with a worker thread living inside it."""

    _counter = itertools.count()

    def __init__(self, sysctls: dict[str, object] | None = None) -> None:
        sweep_stale_namespaces()
        self.name = f"{_NS_PREFIX}{os.getpid()}-{next(self._counter)}"
        _ip("netns", "add", self.name)
        self._added = True
        self._fd: int | None = None
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None
        try:
            self._fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
            self._worker = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix=self.name, initializer=_setns, initargs=(self._fd,))
            self.call(lambda: None)   # fail now if setns does
            self.sysctl({**BASE_SYSCTLS, **(sysctls or {})})
        except BaseException:
            self.close()
            raise

    def call(self, fn: Callable, *args, **kwargs):
        """Run ``fn(*args, **kwargs)`` on a thread inside the namespace and return its
        result (sockets it makes belong to the namespace for their whole life)."""
        if self._worker is None:
            raise RuntimeError(f"namespace {self.name} is closed")
        return self._worker.submit(fn, *args, **kwargs).result(timeout=30)

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
               proto: int = 0) -> socket.socket:
        """A new socket inside the namespace."""
        return self.call(socket.socket, family, type, proto)

    def sysctl(self, values: dict[str, object]) -> None:
        """Set per-namespace sysctls, e.g. ``{"net.ipv4.tcp_sack": 0}``."""
        self.call(_write_sysctls, values)

    def read_sysctl(self, name: str) -> str:
        return self.call(_read_sysctl, name)

    def run(self, *argv: str, timeout: float = 30) -> str:
        """Run a command inside the namespace (``ip netns exec``); return its stdout."""
        proc = subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True,
                              text=True, timeout=timeout)
        if proc.returncode != 0:
            raise OSError(f"{' '.join(argv)} in {self.name}: {proc.stderr.strip()}")
        return proc.stdout

    def python(self, snippet: str, timeout: float = 30) -> str:
        """Run a Python snippet in a child process inside the namespace; return stdout."""
        return self.run(sys.executable, "-c", snippet, timeout=timeout)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._added:
            self._added = False
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)

    def __enter__(self) -> "Namespace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _sysctl_path(name: str) -> str:
    return "/proc/sys/" + name.replace(".", "/")


def _write_sysctls(values: dict[str, object]) -> None:
    for name, value in values.items():
        if isinstance(value, (tuple, list)):
            value = "\t".join(str(v) for v in value)
        with open(_sysctl_path(name), "w") as f:
            f.write(f"{value}\n")


def _read_sysctl(name: str) -> str:
    with open(_sysctl_path(name)) as f:
        return f.read().strip()


def _open_tun(name: str) -> int:
    """Create TUN device ``name`` (IFF_TUN | IFF_NO_PI: bare IP packets) in the calling
    thread's namespace; return its file descriptor."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
    except BaseException:
        os.close(fd)
        raise
    return fd


# ---------------------------------------------------------------------------- gateway
@dataclass(frozen=True)
class GatewayImpairment:
    """What the gateway does to packets, with its own seeded RNG.

    ``loss``, ``duplicate`` and ``reorder`` are probabilities per packet; a reordered packet
    is held ``reorder_delay`` seconds longer so that later ones overtake it. ``delay`` (plus
    up to ``jitter``) is added to every packet. ``directions`` says which way it applies.
    """

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_delay: float = 0.005
    delay: float = 0.0
    jitter: float = 0.0
    seed: int = 0
    directions: tuple[str, ...] = (TO_ATCP, TO_KERNEL)

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"GatewayImpairment.{name} must be a probability")
        for name in ("reorder_delay", "delay", "jitter"):
            if getattr(self, name) < 0:
                raise ValueError(f"GatewayImpairment.{name} must not be negative")
        for d in self.directions:
            if d not in (TO_ATCP, TO_KERNEL):
                raise ValueError(f"unknown direction {d!r}")


@dataclass(frozen=True)
class Record:
    """One segment the gateway saw (before impairment): when, which way, what."""

    time: float
    direction: str
    segment: Segment     # header and options; the payload is left out
    length: int          # payload octets

    @property
    def flags(self) -> int:
        return self.segment.flags


class DropRule:
    """Drops up to ``count`` segments for which ``predicate(direction, segment)`` is true."""

    def __init__(self, predicate: Callable[[str, Segment], bool], count: int) -> None:
        self.predicate = predicate
        self.remaining = count
        self.dropped: list[Segment] = []


class Gateway:
    """Forwards between a TUN device and a UDP socket on 127.0.0.1, on its own thread.

    ``pcap_path``: also write every packet the gateway delivers (after drops and
    impairment), both ways, as IPv4 between the virtual addresses.
    """

    def __init__(self, tun_fd: int, port: int = 0,
                 impairment: GatewayImpairment | None = None, pcap_path: str | None = None,
                 record: bool = True) -> None:
        self._tun = tun_fd
        os.set_blocking(tun_fd, False)
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            _raise_buffers(self._udp)
            self._udp.bind(("127.0.0.1", port))
        except BaseException:
            self._udp.close()
            raise
        self._udp.setblocking(False)
        self.address: tuple[str, int] = self._udp.getsockname()
        self.impairment = impairment or GatewayImpairment()
        self._rng = random.Random(self.impairment.seed)
        self._routes: dict[tuple[int, int], tuple[str, int]] = {}
        self._kernel_fin_end: dict[tuple[int, int], int] = {}
        self._rules: list[DropRule] = []
        self._held: list[tuple[float, int, str, bytes]] = []
        self._order = itertools.count()
        self._ident = 0
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._stopping = False
        self._pcap = PcapWriter(pcap_path) if pcap_path else None
        self.record = record
        self.log: list[Record] = []
        self.stats: Counter[str] = Counter()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kernel-peer-gateway",
                                        daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ test controls
    def set_impairment(self, impairment: GatewayImpairment) -> None:
        with self._lock:
            self.impairment = impairment
            self._rng = random.Random(impairment.seed)

    def drop_when(self, predicate: Callable[[str, Segment], bool], count: int = 1) -> DropRule:
        """Drop the next ``count`` segments matching ``predicate(direction, segment)``
        (the segment's payload is included). Returns the rule; ``rule.dropped`` lists what
        it dropped."""
        rule = DropRule(predicate, count)
        with self._lock:
            self._rules.append(rule)
        return rule

    def drop_final_ack_once(self) -> DropRule:
        """Drop the first bare ACK from atcp that acknowledges a FIN of the kernel."""
        def final_ack(direction: str, seg: Segment) -> bool:
            if direction != TO_KERNEL or seg.payload or seg.flags & (SYN | FIN | RST):
                return False
            return self._kernel_fin_end.get((seg.dst_port, seg.src_port)) == seg.ack
        return self.drop_when(final_ack, 1)

    def route(self, kernel_port: int, atcp_port: int, address: tuple[str, int]) -> None:
        """Send segments of this TCP port pair to ``address`` (normally learned)."""
        with self._lock:
            self._routes[(kernel_port, atcp_port)] = address

    def records(self, direction: str | None = None, flags: int | None = None) -> list[Record]:
        """The recorded segments, optionally only one way and/or with all of ``flags``."""
        with self._lock:
            log = list(self.log)
        return [r for r in log if (direction is None or r.direction == direction)
                and (flags is None or r.flags & flags == flags)]

    def close(self) -> None:
        """Stop the thread, close the socket and the capture (not the TUN descriptor)."""
        if self._stopping:
            return
        self._stopping = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=10)
        self._udp.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        if self._pcap is not None:
            self._pcap.close()

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:   # surfaced by KernelPeer.check()
            self.error = exc

    def _loop(self) -> None:
        poller = select.poll()
        for fd in (self._tun, self._udp.fileno(), self._wake_r):
            poller.register(fd, select.POLLIN)
        while not self._stopping:
            timeout = None
            if self._held:
                timeout = max(0.0, self._held[0][0] - time.monotonic()) * 1000
            for fd, _ in poller.poll(timeout):
                if fd == self._tun:
                    self._drain_tun()
                elif fd == self._wake_r:
                    os.read(self._wake_r, 64)
                else:
                    self._drain_udp()
            self._release_due()

    def _drain_tun(self) -> None:
        for _ in range(256):
            try:
                packet = os.read(self._tun, 65536)
            except BlockingIOError:
                return
            segment = _tcp_of(packet)
            if segment is None:
                self.stats["tun_ignored"] += 1
                continue
            # The wire format sends a zero checksum; the UDP checksum protects the datagram.
            segment = segment[:16] + b"\0\0" + segment[18:]
            self._arrive(TO_ATCP, segment)

    def _drain_udp(self) -> None:
        for _ in range(256):
            try:
                data, addr = self._udp.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                continue   # an ICMP error for an earlier datagram; nothing to do
            if len(data) < 20:
                self.stats["udp_short"] += 1
                continue
            src_port, dst_port = struct.unpack_from("!HH", data)
            with self._lock:
                self._routes[(dst_port, src_port)] = addr
            self._arrive(TO_KERNEL, data)

    def _arrive(self, direction: str, segment: bytes) -> None:
        """Record, then apply drop rules and impairment; forward now or later."""
        now = time.monotonic()
        try:
            seg = parse(segment)
        except MalformedSegment:
            seg = None
        with self._lock:
            if seg is not None:
                self._observe(direction, seg, now)
                for rule in self._rules:
                    if rule.remaining > 0 and rule.predicate(direction, seg):
                        rule.remaining -= 1
                        rule.dropped.append(seg)
                        self.stats[f"{direction}_dropped_by_rule"] += 1
                        return
            imp = self.impairment
            rng = self._rng
            copies = 1
            extra = 0.0
            if direction in imp.directions:
                if imp.loss and rng.random() < imp.loss:
                    self.stats[f"{direction}_lost"] += 1
                    return
                if imp.duplicate and rng.random() < imp.duplicate:
                    copies = 2
                    self.stats[f"{direction}_duplicated"] += 1
                extra = imp.delay + (rng.random() * imp.jitter if imp.jitter else 0.0)
                if imp.reorder and rng.random() < imp.reorder:
                    extra += imp.reorder_delay
                    self.stats[f"{direction}_reordered"] += 1
        for _ in range(copies):
            if extra > 0 or self._held:
                # Anything held keeps its place in time; a packet without delay still goes
                # out at once unless an earlier one is due first.
                heapq.heappush(self._held, (now + extra, next(self._order), direction, segment))
            else:
                self._forward(direction, segment)
        self._release_due()

    def _observe(self, direction: str, seg: Segment, now: float) -> None:
        if direction == TO_ATCP and seg.flags & FIN:
            end = (seg.seq + len(seg.payload) + 1) & 0xFFFFFFFF
            self._kernel_fin_end[(seg.src_port, seg.dst_port)] = end
        if self.record:
            header = Segment(seg.src_port, seg.dst_port, seg.seq, seg.ack, seg.flags,
                             seg.window, b"", seg.options, seg.urgent, seg.reserved)
            self.log.append(Record(now, direction, header, len(seg.payload)))

    def _release_due(self) -> None:
        now = time.monotonic()
        while self._held and self._held[0][0] <= now:
            _, _, direction, segment = heapq.heappop(self._held)
            self._forward(direction, segment)

    def _forward(self, direction: str, segment: bytes) -> None:
        if direction == TO_ATCP:
            self._to_atcp(segment)
        else:
            self._to_kernel(segment)

    def _to_atcp(self, segment: bytes) -> None:
        src_port, dst_port = struct.unpack_from("!HH", segment)
        with self._lock:
            addr = self._routes.get((src_port, dst_port), ("127.0.0.1", dst_port))
        if self._pcap is not None:
            self._capture(_KERNEL_PACKED, _ATCP_PACKED, segment)
        try:
            self._udp.sendto(segment, addr)
            self.stats[f"{TO_ATCP}_forwarded"] += 1
        except (BlockingIOError, ConnectionRefusedError):
            self.stats[f"{TO_ATCP}_send_failed"] += 1

    def _to_kernel(self, segment: bytes) -> None:
        self._ident = (self._ident + 1) & 0xFFFF
        packet = ipv4_packet(_ATCP_PACKED, _KERNEL_PACKED, segment, self._ident)
        if len(packet) > _MTU:
            # The TUN accepts it, but a real 1500-byte path would not: tests assert none.
            self.stats[f"{TO_KERNEL}_oversize"] += 1
        if self._pcap is not None:
            self._pcap.write_packet(packet, time.time())
        try:
            os.write(self._tun, packet)
            self.stats[f"{TO_KERNEL}_forwarded"] += 1
        except BlockingIOError:
            self.stats[f"{TO_KERNEL}_send_failed"] += 1

    def _capture(self, src: bytes, dst: bytes, segment: bytes) -> None:
        self._ident = (self._ident + 1) & 0xFFFF
        self._pcap.write_packet(ipv4_packet(src, dst, segment, self._ident), time.time())


def _raise_buffers(sock: socket.socket) -> None:
    """Large socket buffers, so bursts at loopback speed are not dropped (the *FORCE
    options need CAP_NET_ADMIN; without it the kernel caps SO_RCVBUF at rmem_max)."""
    for forced, plain in ((_SO_RCVBUFFORCE, socket.SO_RCVBUF),
                          (_SO_SNDBUFFORCE, socket.SO_SNDBUF)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, forced, _SOCKET_BUFFER)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, plain, _SOCKET_BUFFER)


def _tcp_of(packet: bytes) -> bytes | None:
    """The TCP segment of an IPv4 packet from the kernel to atcp, or None."""
    if len(packet) < 40 or packet[0] >> 4 != 4 or packet[9] != 6:
        return None
    if packet[16:20] != _ATCP_PACKED:
        return None
    ihl = (packet[0] & 0x0F) * 4
    total = struct.unpack_from("!H", packet, 2)[0]
    flags_frag = struct.unpack_from("!H", packet, 6)[0]
    if flags_frag & 0x3FFF:   # a fragment (MF set or an offset): the kernel never sends one
        return None
    return packet[ihl:total]


# ---------------------------------------------------------------------------- the whole peer
class KernelPeer:
    """A namespace with ``tun0`` up and a gateway running: the kernel as atcp's peer.

    ``gateway_port`` fixes the gateway's UDP port (0: any free one); atcp reaches the kernel
    at ``address`` (UDP), and the kernel reaches atcp at ``ATCP_IP``.
    """

    def __init__(self, sysctls: dict[str, object] | None = None,
                 impairment: GatewayImpairment | None = None, gateway_port: int = 0,
                 pcap_path: str | None = None) -> None:
        self.ns = Namespace(sysctls)
        self.kernel_ip = KERNEL_IP
        self.atcp_ip = ATCP_IP
        self._tun: int | None = None
        self.gateway: Gateway | None = None
        try:
            self._tun = self.ns.call(_open_tun, "tun0")
            _ip("-n", self.ns.name, "-batch", "-", stdin=(
                "link set lo up\n"
                f"link set tun0 mtu {_MTU} txqueuelen 10000\n"
                f"addr add {KERNEL_IP}/24 dev tun0\n"
                "link set tun0 up\n"))
            self.gateway = Gateway(self._tun, gateway_port, impairment, pcap_path)
        except BaseException:
            self.close()
            raise

    @property
    def name(self) -> str:
        """The namespace's name (for ``ip netns exec NAME ...``)."""
        return self.ns.name

    @property
    def address(self) -> tuple[str, int]:
        """The UDP address atcp sends to, to reach the kernel."""
        return self.gateway.address

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
               proto: int = 0) -> socket.socket:
        """A kernel socket inside the namespace."""
        return self.ns.socket(family, type, proto)

    def sysctl(self, values: dict[str, object] | None = None, **names) -> None:
        """Set namespace sysctls: ``sysctl({"net.ipv4.tcp_sack": 0})`` or, for
        ``net.ipv4.*``, ``sysctl(tcp_sack=0)``."""
        merged = dict(values or {})
        merged.update({f"net.ipv4.{k}": v for k, v in names.items()})
        self.ns.sysctl(merged)

    def tcp_sockets(self) -> list[str]:
        """``ss -tan`` lines inside the namespace (one per TCP socket, header dropped)."""
        return self.ns.run("ss", "-tan").splitlines()[1:]

    def check(self) -> None:
        """Raise what the gateway thread died of, if it did."""
        if self.gateway is not None and self.gateway.error is not None:
            raise RuntimeError("kernel-peer gateway failed") from self.gateway.error

    def close(self) -> None:
        if self.gateway is not None:
            self.gateway.close()
        if self._tun is not None:
            os.close(self._tun)
            self._tun = None
        self.ns.close()

    def __enter__(self) -> "KernelPeer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
