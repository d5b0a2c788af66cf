"""Every resource a peer can make a stack hold has a cap in `Config`, and each cap does
what its docstring says when it is reached:

* ``max_connections``: ``connect()`` fails with EMFILE; a SYN gets a cookie (or, with
  ``syncookies`` off, is dropped); a returning cookie is dropped while the stack is full.
* ``send_buffer`` / ``recv_buffer``: ``send()`` takes no more; a peer ignoring our window
  gets no more buffered than the window allowed.
* ``max_out_of_order``: scattered out-of-order segments beyond the cap are not kept, and
  the stream still completes when the peer sends them again.
* ``max_time_wait``: the oldest record is recycled, in order of expiry (a record whose
  2*MSL restarted counts as new).
* ``backlog`` is covered with the SYN queue in test_robust_synflood.py.
"""

from __future__ import annotations

import errno

import pytest

from atcp.core.states import State
from atcp.testing.link import Link
from atcp.testing.peer import Peer, new_stack
from atcp.wire import Options

from robust_model import check_bounds, peer_bytes


def _connect(stack, port: int):
    return stack.connect(("192.0.2.1", port), 80, 0.0, local_port=port)


# -- connections --------------------------------------------------------------------------


def test_connect_at_the_cap_fails_with_emfile_and_works_again_after_a_close() -> None:
    stack = new_stack(max_connections=3)
    conns = [_connect(stack, 5000 + i) for i in range(3)]
    with pytest.raises(OSError) as info:
        _connect(stack, 5003)
    assert info.value.errno == errno.EMFILE
    assert stack.stats["connection_limit"] == 1
    conns[0].abort(0.0)
    assert _connect(stack, 5003).state is State.SYN_SENT
    assert len(stack.connections) == 3


@pytest.mark.parametrize("cookies", [True, False])
def test_syn_at_the_connection_cap(cookies: bool) -> None:
    stack = new_stack(max_connections=2, syncookies=cookies)
    listener = stack.listen(80)
    _connect(stack, 5000)
    _connect(stack, 5001)
    stack.datagrams_to_send()
    peer = Peer(stack, isn=1)
    peer.send("S", seq=0)
    if cookies:
        synack = peer.expect("S.", ack=1)
        peer.stack_iss = synack.seq
        peer.send(".", seq=1, ack=1)             # still full: the cookie is dropped
        peer.expect_nothing()
        assert stack.stats["syncookies_dropped"] == 1
    else:
        peer.expect_nothing()
        assert stack.stats["connection_limit"] == 1
    assert len(stack.connections) == 2 and listener.accept() is None


# -- buffers ------------------------------------------------------------------------------


def test_send_takes_no_more_than_the_send_buffer() -> None:
    stack = new_stack(send_buffer=5000)
    peer = Peer(stack, isn=1)
    conn = peer.stack_connects(win=0)                      # the peer's window is closed
    assert conn.send(b"a" * 8000, 0.0) == 5000
    assert conn.send(b"b" * 10, 0.0) == 0
    assert len(conn.sndbuf) == 5000
    peer.advance(100.0)                                     # zero-window probes, backoff
    peer.take()
    assert len(conn.sndbuf) == 5000


@pytest.mark.parametrize("wscale", [0, 3])
def test_a_peer_ignoring_our_window_gets_nothing_more_buffered(wscale: int) -> None:
    stack = new_stack(recv_buffer=6000, window_scale=wscale, mss=1000)
    peer = Peer(stack, isn=1)
    conn = peer.peer_connects(syn_options=Options(mss=1000, wscale=0))
    for i in range(40):                 # 40 kB, in and out of order, nobody reading
        start = 1 + (i * 7 % 40) * 1000
        peer.send("P.", seq=start, ack=1, payload=peer_bytes(peer.seq(start), 1000))
        peer.take()
        check_bounds(stack)
    assert len(conn.rcvbuf) + conn.reasm.held <= 6000 + (1 << conn.rcv_scale)
    data = conn.read(-1, 0.0)
    assert len(data) >= 5000 and data == peer_bytes(conn.irs + 1, len(data))


def test_scattered_out_of_order_data_is_capped_and_the_stream_still_completes() -> None:
    a = new_stack(1000, seed=1, mss=1000)
    b = new_stack(2000, seed=2, mss=1000, max_out_of_order=8, recv_buffer=64_000)
    link = Link(a, b, delay=0.01, seed=3)
    listener = b.listen(80)
    ca = a.connect(link.addr_b, 80, 0.0)
    link.run(until=1.0, stop=lambda: bool(listener.accept_queue))
    cb = listener.accept()
    # A peer that scatters one-byte segments every other byte across the window.
    peer = Peer(b, isn=0, port=ca.local_port, stack_port=80, remote=link.addr_a,
                stack_iss=cb.iss)
    base = cb.rcv_nxt
    for i in range(1, 200):
        peer.send(".", abs_seq=(base + 2 * i) & 0xFFFFFFFF, abs_ack=cb.snd_nxt,
                  payload=b"\x00")
        assert len(cb.reasm) <= 8
    assert cb.reasm.refused > 0
    b.datagrams_to_send()
    # The real sender's stream still arrives whole (its bytes overwrite nothing held:
    # those scattered bytes were the same zeros it sends).
    data = bytes(300_000)
    view, got = memoryview(data), bytearray()
    for _ in range(20_000):
        if view:
            view = view[ca.send(view, link.now):]
        got += cb.read(-1, link.now)
        if len(got) == len(data):
            break
        link.run(until=link.now + 0.01)
        assert len(cb.reasm) <= 8
    assert bytes(got) == data


# -- TIME-WAIT ----------------------------------------------------------------------------


def _close_actively(stack, port: int, now: float) -> Peer:
    peer = Peer(stack, isn=port, port=port, stack_port=port, now=now)
    peer.drive_to(State.TIME_WAIT)
    return peer


def test_full_time_wait_table_recycles_the_oldest_record() -> None:
    stack = new_stack(max_time_wait=3, msl=30.0)
    peers = [_close_actively(stack, 6000 + i, float(i)) for i in range(3)]
    assert len(stack.time_wait) == 3
    # The first peer's FIN comes again: its 2*MSL restarts, so it is no longer the oldest.
    peers[0].now = 3.0
    peers[0].send("F.", seq=1, ack=2)
    peers[0].expect(".", seq=2, ack=2)
    _close_actively(stack, 6003, 4.0)
    left = sorted(tw.local_port for tw in stack.time_wait)
    assert left == [6000, 6002, 6003]
    assert stack.stats["time_wait_recycled"] == 1
    # The recycled identity is forgotten: its segments meet no connection.
    peers[1].send(".", seq=2, ack=2)
    peers[1].expect("R")
    for i in range(4, 20):
        _close_actively(stack, 6000 + i, float(i))
        assert len(stack.time_wait) == 3
    assert sorted(tw.local_port for tw in stack.time_wait) == [6017, 6018, 6019]
    assert stack.stats["time_wait_recycled"] == 17
    check_bounds(stack)
