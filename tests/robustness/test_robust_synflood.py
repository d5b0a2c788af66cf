"""SYN floods (RFC 4987) and the SYN cookies that let real clients in through them.

The cookie itself (`atcp.core.syncookies`), the listener's switch to cookies when its SYN
queue is full, connections made from a returning cookie (options and all), forged and stale
cookies, and a flood of spoofed SYNs next to live connections: those keep working and the
stack's memory stays flat.
"""

from __future__ import annotations

import gc
import random
import tracemalloc

import pytest

from atcp.core.states import State
from atcp.core.syncookies import MSS_TABLE, PERIOD, SynCookies
from atcp.testing.link import Link
from atcp.testing.peer import Peer, new_stack
from atcp.wire import ACK, RST, SYN, Options, Segment, build, parse

SECRET = bytes(range(32))
CLIENT = ("192.0.2.1", 4000)


def _syn(isn=1000, mss=1452, wscale=7, sack=True, ts=None, sport=4000, dport=80):
    opts = Options(mss=mss, wscale=wscale, sack_permitted=sack, ts_val=ts,
                   ts_ecr=0 if ts is not None else None)
    return Segment(sport, dport, isn, 0, SYN, 65535, b"", opts)


def _ack_for(syn: Segment, cookie: int, **kw) -> Segment:
    return Segment(syn.src_port, syn.dst_port, syn.seq + 1, cookie + 1, ACK,
                   kw.get("window", 1000), kw.get("payload", b""), kw.get("options", Options()))


# -- the cookie ---------------------------------------------------------------------------


@pytest.mark.parametrize("mss,expected", [(None, 536), (0, 536), (10, 64), (100, 64),
                                          (536, 536), (1459, 1452), (1460, 1452),
                                          (9000, 1452), (1433, 1432), (1300, 1200)])
def test_cookie_rounds_mss_down_to_the_table(mss, expected) -> None:
    cookies = SynCookies(SECRET)
    syn = _syn(mss=mss)
    params = cookies.check(_ack_for(syn, cookies.make(syn, CLIENT, 10.0)), CLIENT, 10.0)
    assert params is not None and params.mss == expected
    assert expected in MSS_TABLE


@pytest.mark.parametrize("wscale,sack", [(None, False), (0, True), (7, False), (14, True),
                                         (15, True), (255, False)])
def test_cookie_carries_window_scale_and_sack(wscale, sack) -> None:
    cookies = SynCookies(SECRET)
    syn = _syn(wscale=wscale, sack=sack)
    params = cookies.check(_ack_for(syn, cookies.make(syn, CLIENT, 0.0)), CLIENT, 0.0)
    assert params.wscale == (None if wscale is None else min(wscale, 14))
    assert params.sack_permitted is sack


def test_cookie_lives_one_to_two_periods() -> None:
    cookies = SynCookies(SECRET)
    syn = _syn()
    made = 3 * PERIOD + 1.0
    ack = _ack_for(syn, cookies.make(syn, CLIENT, made))
    assert cookies.check(ack, CLIENT, made) is not None
    assert cookies.check(ack, CLIENT, 5 * PERIOD - 0.001) is not None   # previous counter
    assert cookies.check(ack, CLIENT, 5 * PERIOD) is None
    assert cookies.check(ack, CLIENT, 2 * PERIOD) is None                # from the future


def test_cookie_is_bound_to_host_ports_isn_and_secret() -> None:
    cookies = SynCookies(SECRET)
    syn = _syn()
    cookie = cookies.make(syn, CLIENT, 0.0)
    ack = _ack_for(syn, cookie)
    # The UDP port is not covered: a NAT may rebind it between SYN and ACK.
    assert cookies.check(ack, ("192.0.2.1", 4999), 0.0) is not None
    assert cookies.check(ack, ("192.0.2.2", 4000), 0.0) is None
    assert SynCookies(bytes(32)).check(ack, CLIENT, 0.0) is None
    for changed in (
        Segment(4001, 80, ack.seq, ack.ack, ACK, 1000),
        Segment(4000, 81, ack.seq, ack.ack, ACK, 1000),
        Segment(4000, 80, ack.seq + 1, ack.ack, ACK, 1000),
        Segment(4000, 80, ack.seq, ack.ack ^ 0x01, ACK, 1000),      # a parameter bit
        Segment(4000, 80, ack.seq, ack.ack ^ 0x100, ACK, 1000),     # a MAC bit
    ):
        assert cookies.check(changed, CLIENT, 0.0) is None


def test_forged_cookies_are_rare() -> None:
    """Random ACKs pass as cookies about once in 2**23 tries: none in 20000."""
    cookies = SynCookies(SECRET)
    rng = random.Random(5)
    hits = sum(cookies.check(Segment(4000, 80, rng.getrandbits(32), rng.getrandbits(32),
                                     ACK, 1000), CLIENT, 0.0) is not None
               for _ in range(20000))
    assert hits == 0


# -- the listener -------------------------------------------------------------------------


def _full_listener(**config):
    """A stack whose listener (backlog 1) already holds one SYN-RECEIVED connection."""
    stack = new_stack(mss=1452, **config)
    listener = stack.listen(80, backlog=1)
    first = Peer(stack, isn=1, port=4001, remote=("192.0.2.9", 4001))
    first.send("S", seq=0)
    first.expect("S.", ack=1)
    return stack, listener


def test_full_syn_queue_answers_with_a_cookie_and_keeps_nothing() -> None:
    stack, listener = _full_listener()
    peer = Peer(stack, isn=7000)
    peer.send("S", seq=0, options=Options(mss=1400, wscale=5, sack_permitted=True,
                                          ts_val=777, ts_ecr=0))
    synack = peer.expect("S.", ack=1)
    assert synack.seq != stack._isn(None, 0)   # the cookie, not the pinned ISS
    assert synack.options.mss == stack.mss_for(peer.remote)
    assert synack.options.wscale == stack.config.rcv_wscale()
    assert synack.options.sack_permitted and synack.options.ts_ecr == 777
    assert len(stack.connections) == 1 and len(listener.syn_queue) == 1
    assert stack.stats["syncookies_sent"] == 1


def test_returning_cookie_makes_a_connection_with_the_syn_options() -> None:
    stack, listener = _full_listener()
    peer = Peer(stack, isn=7000)
    peer.send("S", seq=0, options=Options(mss=1400, wscale=5, sack_permitted=True,
                                          ts_val=777, ts_ecr=0))
    synack = peer.expect("S.", ack=1)
    peer.stack_iss = synack.seq
    peer.now = 0.3
    peer.send(".", seq=1, ack=1, win=100,
              options=Options(ts_val=800, ts_ecr=synack.options.ts_val),
              payload=b"hello")
    conn = listener.accept()
    assert conn is not None and conn.state is State.ESTABLISHED
    assert conn.read(-1, peer.now) == b"hello"
    assert conn.iss == synack.seq and conn.snd_una == synack.seq + 1
    assert conn.snd_scale == 5 and conn.rcv_scale == stack.config.rcv_wscale()
    assert conn.snd_wnd == 100 << 5
    assert conn.sack_permitted and conn.ts_enabled and conn.ts_recent == 800
    assert conn.snd_mss == 1400 - 12       # table entry, less the timestamp option
    # Our TSval clock goes on from the one the SYN,ACK used.
    peer.take()                            # the window update after the read
    conn.send(b"x", peer.now)
    data = peer.expect("P.", seq=1, ack=6)
    assert 0 <= data.options.ts_val - synack.options.ts_val <= 400
    assert stack.stats["syncookies_accepted"] == 1


def test_cookie_connection_without_options() -> None:
    stack, listener = _full_listener()
    peer = Peer(stack, isn=7000)
    peer.send("S", seq=0)
    synack = peer.expect("S.", ack=1)
    assert synack.options.wscale is None and synack.options.ts_val is None
    assert not synack.options.sack_permitted
    peer.stack_iss = synack.seq
    peer.send(".", seq=1, ack=1)
    conn = listener.accept()
    assert conn.snd_mss == 536 and conn.snd_scale == conn.rcv_scale == 0
    assert not conn.ts_enabled and not conn.sack_permitted


def test_forged_or_stale_cookie_gets_the_listen_rst() -> None:
    stack, listener = _full_listener()
    peer = Peer(stack, isn=7000)
    peer.send("S", seq=0)
    synack = peer.expect("S.", ack=1)
    peer.send(".", abs_seq=peer.seq(1), abs_ack=(synack.seq + 2) & 0xFFFFFFFF)
    peer.expect("R", abs_seq=(synack.seq + 2) & 0xFFFFFFFF)
    assert stack.stats["syncookies_failed"] == 1
    peer.now = 2 * PERIOD + 1
    peer.send(".", abs_seq=peer.seq(1), abs_ack=(synack.seq + 1) & 0xFFFFFFFF)
    peer.expect("R")
    assert listener.accept() is None


def test_cookies_are_not_checked_when_none_were_sent() -> None:
    """An ACK to a listener that sent no cookie is the RST case of RFC 9293 3.10.7.2
    whatever its numbers: a forged cookie cannot even be tried."""
    stack = new_stack()
    listener = stack.listen(80)
    syn = _syn()
    cookie = stack._cookies.make(syn, CLIENT, 0.0)
    stack.receive(build(_ack_for(syn, cookie)), CLIENT, 0.0)
    (reply, _), = stack.datagrams_to_send()
    assert parse(reply).flags == RST
    assert listener.accept() is None and stack.stats["syncookies_failed"] == 0


def test_cookies_only_mode_keeps_no_state_for_any_syn() -> None:
    stack = new_stack(syncookies_only=True)
    listener = stack.listen(80)
    for port in range(4000, 4050):
        Peer(stack, isn=port, port=port).send("S", seq=0)
    assert stack.connections == [] and stack.stats["syncookies_sent"] == 50
    peer = Peer(stack, isn=4000, port=4000)
    synacks = [s for s in peer.take() if s.flags == SYN | ACK]
    peer.stack_iss = synacks[0].seq
    peer.send(".", seq=1, ack=1)
    assert listener.accept() is not None


def test_cookie_ack_waits_while_nobody_accepts() -> None:
    """With the accept queue full a valid cookie is dropped, not answered; the client's
    next segment carries it again and gets in once there is room."""
    stack = new_stack()
    listener = stack.listen(80, backlog=2)
    pending = [Peer(stack, isn=n, port=4000 + n) for n in (1, 2)]
    for peer in pending:
        peer.send("S", seq=0)
        peer.stack_iss = peer.expect("S.", ack=1).seq
    cookie_peer = Peer(stack, isn=3, port=4003)
    cookie_peer.send("S", seq=0)
    cookie_peer.stack_iss = cookie_peer.expect("S.", ack=1).seq
    for peer in pending:
        peer.send(".", seq=1, ack=1)                # the accept queue fills up
    assert len(listener.accept_queue) == 2
    cookie_peer.send(".", seq=1, ack=1, payload=b"early")
    cookie_peer.expect_nothing()
    assert stack.stats["syncookies_dropped"] == 1
    assert listener.accept() is not None           # room again
    cookie_peer.send(".", seq=1, ack=1, payload=b"early")
    conns = [listener.accept(), listener.accept()]
    assert conns[1] is not None and conns[1].read(-1, 0.0) == b"early"
    assert stack.stats["syncookies_accepted"] == 1


# -- a flood next to live connections -----------------------------------------------------


def _spoofed_syns(rng: random.Random, n: int):
    for _ in range(n):
        host = f"198.51.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        port = rng.randrange(1024, 65536)
        yield build(_syn(isn=rng.getrandbits(32), sport=port)), (host, port)


def test_flood_leaves_established_connections_working_and_memory_flat() -> None:
    a = new_stack(10_000, seed=1, mss=1452)
    b = new_stack(20_000, seed=2, mss=1452)
    link = Link(a, b, delay=0.005, seed=3)
    listener = b.listen(80, backlog=8)
    ca = a.connect(link.addr_b, 80, 0.0)
    link.run(until=1.0, stop=lambda: bool(listener.accept_queue))
    cb = listener.accept()
    rng = random.Random(4)
    payload = rng.randbytes(400_000)
    view, got = memoryview(payload), bytearray()
    flood = _spoofed_syns(rng, 30_000)
    late = None
    tracemalloc.start()
    try:
        baseline = None
        for step in range(3000):
            for _ in range(10):
                data, remote = next(flood, (None, None))
                if data is not None:
                    b.receive(data, remote, link.now)
            if view:
                view = view[ca.send(view, link.now):]
            got += cb.read(-1, link.now)
            if step == 300:
                late = a.connect(link.addr_b, 80, link.now)   # a real client, mid-flood
                gc.collect()
                baseline = tracemalloc.get_traced_memory()[0]
            link.run(until=link.now + 0.01)
            link.log.clear()
            assert len(listener.syn_queue) <= 8
            assert len(b.connections) <= 8 + 2 and b.time_wait == []
            if not view and len(got) == len(payload) and late is not None \
                    and late.state is State.ESTABLISHED and step > 2000:
                break
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert bytes(got) == payload
    assert late.state is State.ESTABLISHED
    accepted = listener.accept()
    assert accepted is not None and accepted.remote_port == late.local_port
    late.send(b"through the flood", link.now)
    link.run(until=link.now + 0.5)
    assert accepted.read(-1, link.now) == b"through the flood"
    assert b.stats["syncookies_sent"] > 20_000
    assert b.stats["syncookies_accepted"] == 1     # the real client came in by cookie
    # 20000 more SYNs after the baseline cost the stack nothing it keeps.
    assert grown < 64 * 1024, f"traced memory grew by {grown} bytes during the flood"
