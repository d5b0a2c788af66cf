"""SYN cookies (RFC 4987 3.6): answer a SYN without keeping any state for it.

When a listener's SYN queue is full (or the stack holds ``Config.max_connections``), a SYN
is answered with a SYN,ACK whose ISS is a *cookie*, and nothing is remembered. A real client
returns the cookie, plus one, in the acknowledgment number of its ACK; the stack checks it
and only then creates the connection, directly from that ACK. A flood of spoofed SYNs so
costs a hash and one reply each, never memory.

The cookie (32 bits, our ISS) carries what the SYN told us and the connection needs:

    bits 31..8   MAC: 24 bits of keyed BLAKE2s over the secret, a coarse time counter, the
                 peer's host, both TCP ports, the peer's ISN and bits 7..0
    bits  7..5   the peer's MSS, as an index into `MSS_TABLE` (largest entry not above it)
    bits  4..1   the peer's window scale shift (0..14), 15 when it offered none
    bit   0      SACK-permitted offered by the peer

Timestamps (RFC 7323) need no bit: the peer sends them on its ACK exactly when both SYNs
carried them, and our TSval clock offset is a keyed hash of the connection identity, so
the connection goes on with the clock its SYN,ACK used.

The time counter advances every `PERIOD` seconds; a cookie is accepted with the current
counter or the one before, so it lives between one and two periods. The MAC leaves out the
peer's UDP port (only its host is covered): FreeBSD does the same with the encapsulation
port, so a NAT that rebinds the port between SYN and ACK does not break the handshake.

What is lost with a cookie, as everywhere (RFC 4987 3.6): the SYN,ACK is not retransmitted
(the client's SYN retransmission brings a new one), data carried on the SYN is dropped (the
client sends it again), and the MSS is rounded down to a table entry.

An off-path attacker must guess 24 bits for each of the 256 parameter values, with two
counters valid: about one forged ACK in 2**23 is accepted. Cookies are only checked while
they are in use (`Stack` remembers when a listener last sent one), so at other times a
forged ACK cannot create anything at all.
"""

from __future__ import annotations

import hashlib
import struct

from ..wire import ACK, SYN, Options, Segment
from ..wire.seq import seq_add

__all__ = ["SynCookies", "CookieParams", "decode", "synthetic_syn", "syn_ack", "MSS_TABLE",
           "PERIOD"]

#: Peer MSS values a cookie can carry: a floor, RFC 9293's default, and the usual paths
#: (IPv6 minimum MTU, tunnels, IPv6 and IPv4 over UDP encapsulation). A peer's MSS is
#: rounded down to the largest entry not above it.
MSS_TABLE = (64, 536, 1200, 1360, 1400, 1432, 1440, 1452)
#: Seconds per step of the cookie time counter.
PERIOD = 64.0
_NO_WSCALE = 15
_MSS_DEFAULT = 536   # RFC 9293 3.7.1: assumed when the SYN carries no MSS option
_PACK = struct.Struct("!QHHIB")


class CookieParams:
    """What a valid cookie says about the SYN it answered."""

    __slots__ = ("mss", "wscale", "sack_permitted")

    def __init__(self, mss: int, wscale: int | None, sack_permitted: bool) -> None:
        self.mss = mss
        self.wscale = wscale
        self.sack_permitted = sack_permitted

    def __repr__(self) -> str:
        return (f"CookieParams(mss={self.mss}, wscale={self.wscale}, "
                f"sack_permitted={self.sack_permitted})")


def _host(remote) -> object:
    """The part of a remote address the cookie covers: the host, not the UDP port."""
    if isinstance(remote, tuple) and remote:
        return remote[0]
    return remote


def _encode_params(syn: Segment) -> int:
    opts = syn.options
    mss = opts.mss or _MSS_DEFAULT
    index = 0
    for i, value in enumerate(MSS_TABLE):
        if value <= mss:
            index = i
    wscale = _NO_WSCALE if opts.wscale is None else min(opts.wscale, 14)
    return (index << 5) | (wscale << 1) | (1 if opts.sack_permitted else 0)


class SynCookies:
    """Makes and checks cookies with one stack's secret."""

    __slots__ = ("_key",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the SYN cookie secret must be at least 16 bytes")
        self._key = hashlib.blake2s(b"atcp syn cookies", key=secret[:32]).digest()

    def _mac(self, counter: int, remote, local_port: int, remote_port: int, irs: int,
             params: int) -> int:
        data = _PACK.pack(counter & 0xFFFFFFFFFFFFFFFF, local_port, remote_port, irs, params)
        data += repr(_host(remote)).encode()
        digest = hashlib.blake2s(data, key=self._key, digest_size=3).digest()
        return int.from_bytes(digest, "big")

    def make(self, syn: Segment, remote, now: float) -> int:
        """The cookie (our ISS) answering ``syn`` from ``remote`` at ``now``."""
        params = _encode_params(syn)
        mac = self._mac(int(now // PERIOD), remote, syn.dst_port, syn.src_port, syn.seq,
                        params)
        return (mac << 8) | params

    def check(self, ack: Segment, remote, now: float) -> CookieParams | None:
        """The parameters of a valid cookie returned in ``ack``, or None.

        ``ack`` must be the client's third segment: SEG.SEQ is its ISN plus one and SEG.ACK
        our cookie plus one (RFC 4987 3.6).
        """
        cookie = seq_add(ack.ack, -1)
        irs = seq_add(ack.seq, -1)
        params = cookie & 0xFF
        counter = int(now // PERIOD)
        for c in (counter, counter - 1):
            if self._mac(c, remote, ack.dst_port, ack.src_port, irs, params) == cookie >> 8:
                return decode(cookie)
        return None

    def ts_offset(self, remote, local_port: int, remote_port: int) -> int:
        """Our TSval clock offset for a cookie connection (RFC 7323 5.4: per connection,
        unpredictable), the same when the SYN,ACK is sent and when the ACK returns."""
        data = struct.pack("!HH", local_port, remote_port) + repr(_host(remote)).encode()
        digest = hashlib.blake2s(b"ts" + data, key=self._key, digest_size=4).digest()
        return int.from_bytes(digest, "big")


def decode(cookie: int) -> CookieParams:
    """The parameters in the low byte of ``cookie`` (not checked: see `SynCookies.check`)."""
    wscale = (cookie >> 1) & 0x0F
    return CookieParams(MSS_TABLE[(cookie >> 5) & 0x07],
                        None if wscale == _NO_WSCALE else wscale, bool(cookie & 1))


def synthetic_syn(ack: Segment, params: CookieParams) -> Segment:
    """The SYN a valid cookie stands for, rebuilt from the returning ACK: what
    `Connection.open_from_cookie` takes as the peer's SYN."""
    ts_val = ack.options.ts_val
    opts = Options(mss=params.mss, wscale=params.wscale,
                   sack_permitted=params.sack_permitted,
                   ts_val=ts_val, ts_ecr=0 if ts_val is not None else None)
    return Segment(ack.src_port, ack.dst_port, seq_add(ack.seq, -1), 0, SYN, ack.window,
                   b"", opts)


def syn_ack(syn: Segment, cookie: int, *, mss: int, wscale: int | None, sack: bool,
            ts_val: int | None, window: int) -> Segment:
    """The SYN,ACK carrying ``cookie``, with the options `Connection` would send: our MSS,
    and window scaling (our ``wscale``), SACK-permitted and timestamps (our ``ts_val``) each
    only if the SYN offered it and the configuration allows it (RFC 7323 2.2, 3.2; RFC 2018
    2); None or False means the configuration does not."""
    offered = syn.options
    use_ts = ts_val is not None and offered.ts_val is not None
    opts = Options(mss=mss, wscale=wscale if offered.wscale is not None else None,
                   sack_permitted=sack and offered.sack_permitted,
                   ts_val=ts_val if use_ts else None,
                   ts_ecr=offered.ts_val if use_ts else None)
    return Segment(syn.dst_port, syn.src_port, cookie, seq_add(syn.seq, 1), SYN | ACK,
                   window, b"", opts)
