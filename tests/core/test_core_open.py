"""Opening a connection (RFC 9293 3.5, 3.10.1, 3.10.7.2-3): active, passive and simultaneous
open, SYN retransmission, refusal, and option negotiation (RFC 9293 3.7.1, RFC 7323, 2018)."""

from __future__ import annotations

import errno

import pytest

from atcp.config import Config
from atcp.core import events as ev
from atcp.core.states import State
from atcp.testing.link import Link
from atcp.testing.peer import STACK_ISS, Peer, new_stack
from atcp.wire import Options

PEER_ISN = 7_000_000


def _closed_events(events):
    return [e for e in events if isinstance(e, ev.ConnectionClosed)]


# -- active open -----------------------------------------------------------------------------


def test_active_open_syn_then_ack() -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn = stack.connect(peer.remote, peer.port, 0.0, local_port=80)
    assert conn.state is State.SYN_SENT
    syn = peer.expect("S", abs_seq=STACK_ISS, abs_ack=0, win=65535)
    assert syn.options.mss == 1000
    assert syn.options.sack_permitted
    assert syn.options.ts_val is not None and syn.options.ts_ecr == 0
    assert syn.options.wscale == Config().rcv_wscale()
    assert peer.events() == []

    peer.send("S.", seq=0, ack=1)
    peer.expect(".", seq=1, ack=1)
    assert conn.state is State.ESTABLISHED
    assert [type(e) for e in peer.events()] == [ev.Connected]
    assert (conn.snd_una, conn.snd_nxt) == (STACK_ISS + 1, STACK_ISS + 1)
    assert (conn.irs, conn.rcv_nxt) == (PEER_ISN, PEER_ISN + 1)


def test_syn_ack_with_wrong_ack_in_syn_sent_gets_reset_and_syn_keeps_going() -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn = stack.connect(peer.remote, peer.port, 0.0, local_port=80)
    peer.expect("S")
    # SEG.ACK =< ISS and SEG.ACK > SND.NXT are both unacceptable (3.10.7.3): <SEQ=SEG.ACK><CTL=RST>
    for bad_ack in (0, 2, -5):
        peer.send("S.", seq=0, ack=bad_ack)
        peer.expect("R", abs_seq=peer.iss_rel(bad_ack), abs_ack=0)
    assert conn.state is State.SYN_SENT
    peer.advance(1.0)
    peer.expect("S", abs_seq=STACK_ISS)


def test_plain_ack_or_data_without_syn_in_syn_sent_is_ignored() -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn = stack.connect(peer.remote, peer.port, 0.0, local_port=80)
    peer.expect("S")
    peer.send(".", seq=0, ack=1)               # acceptable ACK but no SYN: drop
    peer.send("P.", seq=0, ack=1, payload=b"x")
    peer.expect_nothing()
    assert conn.state is State.SYN_SENT


def test_synfin_in_syn_sent_dropped() -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn = stack.connect(peer.remote, peer.port, 0.0, local_port=80)
    peer.expect("S")
    peer.send("SF.", seq=0, ack=1)
    peer.expect_nothing()
    assert conn.state is State.SYN_SENT


# -- passive open ----------------------------------------------------------------------------


def test_passive_open_syn_ack_then_accept() -> None:
    stack = new_stack()
    listener = stack.listen(80)
    peer = Peer(stack, isn=PEER_ISN)
    peer.send("S", seq=0, options=Options(mss=1200))
    syn_ack = peer.expect("S.", abs_seq=STACK_ISS, ack=1, win=65535)
    assert syn_ack.options == Options(mss=1000)       # nothing offered, nothing echoed
    assert listener.accept() is None                  # not established yet
    assert len(listener.syn_queue) == 1
    peer.send(".", seq=1, ack=1)
    peer.expect_nothing()
    events = peer.events()
    assert [type(e) for e in events] == [ev.Accepted]
    assert events[0].listener is listener
    conn = listener.accept()
    assert conn is events[0].conn
    assert conn.state is State.ESTABLISHED
    assert conn.snd_mss == 1000
    assert listener.accept() is None and not listener.syn_queue


def test_listen_twice_is_eaddrinuse() -> None:
    stack = new_stack()
    stack.listen(80)
    with pytest.raises(OSError) as info:
        stack.listen(80)
    assert info.value.errno == errno.EADDRINUSE


def test_duplicate_syn_in_syn_received_resends_syn_ack() -> None:
    stack = new_stack()
    stack.listen(80)
    peer = Peer(stack, isn=PEER_ISN)
    peer.send("S", seq=0)
    peer.expect("S.", abs_seq=STACK_ISS, ack=1)
    peer.send("S", seq=0)
    peer.expect("S.", abs_seq=STACK_ISS, ack=1)


def test_syn_ack_retransmitted_then_embryo_dropped_silently() -> None:
    stack = new_stack(syn_retries=2)
    listener = stack.listen(80)
    peer = Peer(stack, isn=PEER_ISN)
    peer.send("S", seq=0)
    peer.expect("S.", ack=1)
    peer.run_timers_until(0.999)
    peer.expect_nothing()
    peer.at(1.0)
    peer.expect("S.", ack=1)
    peer.at(3.0)
    peer.expect("S.", ack=1)
    peer.at(7.0)
    peer.expect_nothing()           # no RST: the peer never completed the handshake
    assert not listener.syn_queue and stack.connections == []
    assert peer.events() == []      # the application never heard of it


def test_backlog_full_drops_syn() -> None:
    # With SYN cookies off; with them on (the default) the SYN gets a cookie instead
    # (tests/robustness/test_robust_synflood.py).
    stack = new_stack(syncookies=False)
    stack.listen(80, backlog=1)
    Peer(stack, isn=1, port=4001).send("S", seq=0)
    assert len(stack.datagrams_to_send()) == 1
    Peer(stack, isn=2, port=4002).send("S", seq=0)
    assert stack.datagrams_to_send() == []
    assert stack.stats["listen_overflow"] == 1


def test_listen_ignores_rst_and_segments_without_syn() -> None:
    stack = new_stack()
    stack.listen(80)
    peer = Peer(stack, isn=PEER_ISN, stack_iss=0)
    peer.send("R", seq=0)
    peer.send("F", seq=0)
    peer.send("", seq=0, payload=b"data")
    peer.expect_nothing()
    assert stack.connections == []


def test_listen_drops_synfin() -> None:
    stack = new_stack()
    stack.listen(80)
    peer = Peer(stack, isn=PEER_ISN)
    peer.send("SF", seq=0)
    peer.expect_nothing()
    assert stack.stats["synfin_dropped"] == 1


def test_listener_close_resets_pending_connections() -> None:
    stack = new_stack()
    listener = stack.listen(80)
    peer = Peer(stack, isn=PEER_ISN)
    peer.peer_connects()                   # accepted above, then a second, unaccepted one
    other = Peer(stack, isn=9, port=4001)
    other.send("S", seq=0)
    other.expect("S.", ack=1)
    other.send(".", seq=1, ack=1)
    third = Peer(stack, isn=11, port=4002)
    third.send("S", seq=0)
    third.expect("S.", ack=1)
    listener.close(0.0)
    assert listener.state is State.CLOSED
    other.expect("R", seq=1, abs_ack=0)      # established but never accepted: told
    third.expect("R", seq=1, abs_ack=0)      # SYN-RECEIVED: RST at SND.NXT (3.10.5)
    third.send("S", seq=0)
    third.expect("R.", abs_seq=0, ack=1)     # nobody listens any more


# -- simultaneous open ------------------------------------------------------------------------


def test_simultaneous_open_scripted() -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn = stack.connect(peer.remote, peer.port, 0.0, local_port=80)
    peer.expect("S", abs_seq=STACK_ISS)
    peer.send("S", seq=0)                          # the peer's own SYN crosses ours
    peer.expect("S.", abs_seq=STACK_ISS, ack=1)    # figure 8, line 5: same ISS, now ACKing
    assert conn.state is State.SYN_RECEIVED
    peer.send("S.", seq=0, ack=1)                  # the peer's SYN,ACK (figure 8, line 6)
    peer.expect_nothing()
    assert conn.state is State.ESTABLISHED
    assert [type(e) for e in peer.events()] == [ev.Connected]
    conn.send(b"hi", 0.0)
    peer.expect("P.", seq=1, ack=1, payload=b"hi")


def test_close_in_syn_received_waits_for_established() -> None:
    """RFC 9293 3.10.4: a CLOSE in SYN-RECEIVED with data queued is processed once
    ESTABLISHED. (It used to enter FIN-WAIT-1 at once, skip the ESTABLISHED setup and stall
    with the data unsent and no timer running.)"""
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn = stack.connect(peer.remote, peer.port, 0.0, local_port=80)
    peer.expect("S")
    peer.send("S", seq=0)
    peer.expect("S.", abs_seq=STACK_ISS, ack=1)
    assert conn.send(b"data", 0.0) == 4
    conn.shutdown(0.0)
    peer.expect_nothing()                          # nothing may follow an unacked SYN
    peer.send("S.", seq=0, ack=1)
    peer.expect("FP.", seq=1, ack=1, payload=b"data")
    assert conn.state is State.FIN_WAIT_1
    assert [type(e) for e in peer.events()] == [ev.Connected]
    peer.send(".", seq=1, ack=6)
    assert conn.state is State.FIN_WAIT_2


def test_simultaneous_open_over_link() -> None:
    a, b = new_stack(1111), new_stack(2222)
    link = Link(a, b, seed=5)
    ca = a.connect(link.addr_b, 7000, 0.0, local_port=6000)
    cb = b.connect(link.addr_a, 6000, 0.0, local_port=7000)
    link.run(until=5.0)
    assert ca.state is State.ESTABLISHED and cb.state is State.ESTABLISHED
    ca.send(b"ping", link.now)
    link.run(until=6.0)
    assert cb.read(-1, link.now) == b"ping"
    assert (ca.snd_nxt, ca.rcv_nxt) == (cb.rcv_nxt, cb.snd_nxt)


# -- SYN retransmission and failure ----------------------------------------------------------


def test_syn_backoff_doubles_then_times_out() -> None:
    stack = new_stack(syn_retries=6)
    peer = Peer(stack, isn=PEER_ISN)
    conn = stack.connect(peer.remote, peer.port, 0.0, local_port=80)
    first = peer.expect("S", abs_seq=STACK_ISS)
    times = [0.0]
    for _ in range(20):
        deadline = stack.next_deadline()
        if deadline is None:
            break
        peer.at(deadline - 1e-6)
        peer.expect_nothing()                     # never early
        peer.at(deadline)
        for seg in peer.take():
            assert seg.seq == STACK_ISS and seg.options.mss == first.options.mss
            times.append(deadline)
    # RFC 6298 5.5: 1 s, then doubling; rto_max caps the last wait at 60 s.
    assert times == [0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0]
    assert stack.next_deadline() is None
    closed = _closed_events(peer.events())
    assert len(closed) == 1 and isinstance(closed[0].error, TimeoutError)
    assert closed[0].error.errno == errno.ETIMEDOUT
    assert conn.state is State.CLOSED and stack.connections == []
    assert peer.now == 123.0
    with pytest.raises(TimeoutError):
        conn.send(b"x", peer.now)


def test_rst_ack_to_syn_is_refused() -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn = stack.connect(peer.remote, peer.port, 0.0, local_port=80)
    peer.expect("S")
    peer.send("R.", abs_seq=0, ack=1)
    peer.expect_nothing()                          # a RST is never answered
    closed = _closed_events(peer.events())
    assert len(closed) == 1 and isinstance(closed[0].error, ConnectionRefusedError)
    assert conn.state is State.CLOSED and stack.next_deadline() is None


@pytest.mark.parametrize("flags,ack", [("R", 0), ("R.", 0), ("R.", 2)])
def test_rst_not_acking_our_syn_is_ignored_in_syn_sent(flags: str, ack: int) -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn = stack.connect(peer.remote, peer.port, 0.0, local_port=80)
    peer.expect("S")
    peer.send(flags, abs_seq=0, abs_ack=peer.iss_rel(ack) if "." in flags else 0)
    peer.expect_nothing()
    assert conn.state is State.SYN_SENT
    assert _closed_events(peer.events()) == []


def test_close_in_syn_sent_sends_nothing_and_late_syn_ack_gets_reset() -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn = stack.connect(peer.remote, peer.port, 0.0, local_port=80)
    peer.expect("S")
    conn.close(0.1)
    peer.expect_nothing()
    assert conn.state is State.CLOSED and stack.next_deadline() is None
    peer.send("S.", seq=0, ack=1)
    peer.expect("R", seq=1, abs_ack=0)             # conformance 8: no connection, rule 1


def test_connect_same_identity_twice_is_eaddrinuse() -> None:
    stack = new_stack()
    stack.connect(("192.0.2.1", 4000), 4000, 0.0, local_port=80)
    with pytest.raises(OSError) as info:
        stack.connect(("192.0.2.1", 4000), 4000, 0.0, local_port=80)
    assert info.value.errno == errno.EADDRINUSE


def test_ephemeral_ports_are_distinct() -> None:
    stack = new_stack()
    ports = {stack.connect(("192.0.2.1", 4000), 4000, 0.0).local_port for _ in range(50)}
    assert len(ports) == 50 and all(49152 <= p <= 65535 for p in ports)


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_bad_ports_rejected(port: int) -> None:
    stack = new_stack()
    with pytest.raises(ValueError):
        stack.connect(("192.0.2.1", 4000), port, 0.0)
    with pytest.raises(ValueError):
        stack.listen(port)
    with pytest.raises(TypeError):
        stack.listen(True)


def test_rto_for_data_starts_at_3s_after_syn_loss() -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn = stack.connect(peer.remote, peer.port, 0.0, local_port=80)
    peer.expect("S")
    peer.at(1.0)
    peer.expect("S")                               # the first SYN was "lost"
    peer.send("S.", seq=0, ack=1)
    peer.expect(".", seq=1, ack=1)
    assert conn.rto.srtt is None                   # Karn: the SYN was retransmitted
    assert conn.rto.rto == 3.0                     # RFC 6298 5.7
    conn.send(b"x" * 10, peer.now)
    peer.expect("P.", seq=1, length=10)
    assert conn.t_rexmt == pytest.approx(peer.now + 3.0)
    start = peer.now
    peer.run_timers_until(start + 2.999)
    peer.expect_nothing()
    peer.run_timers_until(start + 3.0)
    peer.expect("P.", seq=1, length=10)


def test_first_rtt_sample_from_syn_exchange() -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn = stack.connect(peer.remote, peer.port, 0.0, local_port=80)
    peer.expect("S")
    peer.at(0.1)
    peer.send("S.", seq=0, ack=1)
    peer.expect(".")
    assert conn.rto.srtt == pytest.approx(0.1)
    assert conn.rto.rto == pytest.approx(0.3)      # SRTT + 4 * RTTVAR = 0.1 + 4 * 0.05


# -- option negotiation ------------------------------------------------------------------------


def _data_lengths(peer: Peer, conn, nbytes: int) -> list[int]:
    conn.send(b"d" * nbytes, peer.now)
    return [len(s.payload) for s in peer.take()]


@pytest.mark.parametrize("peer_mss,expected", [(500, 500), (None, 536), (4000, 1000)])
def test_send_mss_from_syn_ack(peer_mss, expected: int) -> None:
    stack = new_stack(nodelay=True)
    peer = Peer(stack, isn=PEER_ISN)
    conn = peer.stack_connects(syn_ack_options=Options(mss=peer_mss))
    assert conn.snd_mss == expected
    lengths = _data_lengths(peer, conn, 3 * expected + 10)
    assert lengths == [expected] * 3 + [10]


@pytest.mark.parametrize("peer_mss,expected", [(500, 500), (None, 536)])
def test_send_mss_from_syn_passive(peer_mss, expected: int) -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn = peer.peer_connects(syn_options=Options(mss=peer_mss))
    assert conn.snd_mss == expected


def test_mss_option_only_on_syn_segments() -> None:
    stack = new_stack(nodelay=True)
    peer = Peer(stack, isn=PEER_ISN)
    conn = peer.stack_connects(syn_ack_options=Options(mss=1000))
    conn.send(b"abc", peer.now)
    data = peer.expect("P.", seq=1)
    assert data.options.mss is None
    peer.send(".", seq=1, ack=4)
    peer.send("P.", seq=1, ack=4, payload=b"zz")
    conn.read(-1, peer.now)
    peer.advance(1.0)
    for seg in peer.take():
        assert seg.options.mss is None


def test_full_options_negotiated_active() -> None:
    stack = new_stack(recv_buffer=1 << 20)
    peer = Peer(stack, isn=PEER_ISN)
    conn = stack.connect(peer.remote, peer.port, 0.0, local_port=80)
    syn = peer.expect("S")
    assert syn.options.wscale == 5                 # smallest shift that fits 1 MiB
    peer.send("S.", seq=0, ack=1, win=100,
              options=Options(mss=1000, wscale=2, sack_permitted=True, ts_val=555,
                              ts_ecr=syn.options.ts_val))
    ack = peer.expect(".", seq=1, ack=1)
    assert ack.options.ts_ecr == 555
    conn = stack.connections[0]
    assert ack.window == conn.rcvbuf.free() >> 5   # scaled from now on (RFC 7323 2.2)
    assert (conn.snd_scale, conn.rcv_scale) == (2, 5)
    assert conn.snd_wnd == 100                     # a SYN's window is never scaled
    assert conn.ts_enabled and conn.sack_permitted
    assert conn.snd_mss == 1000 - 12                # RFC 6691: timestamps come out of the MSS
    peer.send(".", seq=1, ack=1, win=100, options=Options(ts_val=556, ts_ecr=1))
    assert conn.snd_wnd == 400                     # later windows are shifted by 2


def test_no_options_from_peer_means_none_used() -> None:
    stack = new_stack(recv_buffer=1 << 20)
    peer = Peer(stack, isn=PEER_ISN)
    conn = peer.stack_connects()
    assert (conn.snd_scale, conn.rcv_scale) == (0, 0)
    assert not conn.ts_enabled and not conn.sack_permitted
    conn.send(b"x", peer.now)
    seg = peer.expect("P.", seq=1)
    assert seg.options == Options()
    assert seg.window == 65535                     # unscaled, capped at 16 bits


@pytest.mark.parametrize("shift", [14, 15, 255])
def test_wscale_above_14_is_14(shift: int) -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn = peer.stack_connects(syn_ack_options=Options(wscale=shift))
    assert conn.snd_scale == 14
    peer.send(".", seq=1, ack=1, win=3)
    assert conn.snd_wnd == 3 << 14


def test_passive_echoes_only_what_the_peer_offered() -> None:
    stack = new_stack(recv_buffer=1 << 20)
    stack.listen(80)
    peer = Peer(stack, isn=PEER_ISN)
    peer.send("S", seq=0, options=Options(mss=1400, wscale=15, sack_permitted=True,
                                           ts_val=42))
    syn_ack = peer.expect("S.", ack=1)
    assert syn_ack.options.mss == 1000
    assert syn_ack.options.wscale == 5
    assert syn_ack.options.sack_permitted
    assert syn_ack.options.ts_ecr == 42
    peer.send(".", seq=1, ack=1, options=Options(ts_val=43, ts_ecr=syn_ack.options.ts_val))
    conn = stack.connections[0]
    assert conn.state is State.ESTABLISHED and conn.snd_scale == 14


def test_passive_without_wscale_or_ts_in_syn() -> None:
    stack = new_stack(recv_buffer=1 << 20)
    stack.listen(80)
    peer = Peer(stack, isn=PEER_ISN)
    peer.send("S", seq=0, options=Options(mss=1400, sack_permitted=True))
    syn_ack = peer.expect("S.", ack=1)
    assert syn_ack.options == Options(mss=1000, sack_permitted=True)


def test_config_disables_options() -> None:
    stack = new_stack(window_scaling=False, timestamps=False, sack=False)
    peer = Peer(stack, isn=PEER_ISN)
    stack.connect(peer.remote, peer.port, 0.0, local_port=80)
    syn = peer.expect("S")
    assert syn.options == Options(mss=1000)
    peer.send("S.", seq=0, ack=1, options=Options(wscale=3, sack_permitted=True, ts_val=1))
    peer.expect(".", seq=1, ack=1, options=Options())
    conn = stack.connections[0]
    assert (conn.snd_scale, conn.ts_enabled, conn.sack_permitted) == (0, False, False)


def test_text_in_syn_delivered_once_established() -> None:
    stack = new_stack()
    listener = stack.listen(80)
    peer = Peer(stack, isn=PEER_ISN)
    peer.send("S", seq=0, payload=b"hello")
    peer.expect("S.", ack=1)                          # the text is held, not yet ACKed
    assert listener.syn_queue and next(iter(listener.syn_queue)).readable() == 0
    peer.send(".", seq=1, ack=1)
    conn = listener.accept()
    assert conn.read(-1, peer.now) == b"hello"
    assert [type(e) for e in peer.events()] == [ev.Accepted, ev.DataReceived]
    peer.run_timers_until(0.5)
    peer.expect(".", seq=1, ack=6)


def test_observer_sees_state_changes() -> None:
    stack = new_stack()
    seen = []
    stack.observer = lambda what, subject, fields: seen.append((what, fields))
    peer = Peer(stack, isn=PEER_ISN)
    peer.stack_connects()
    states = [(f["old"], f["new"]) for what, f in seen if what == "state"]
    assert states == [("CLOSED", "SYN-SENT"), ("SYN-SENT", "ESTABLISHED")]


def test_listener_close_twice_and_repr() -> None:
    stack = new_stack()
    listener = stack.listen(80)
    assert ":80" in repr(listener)
    listener.close(0.0)
    listener.close(0.0)
    assert listener.state is State.CLOSED
    stack.listen(80)                                  # the port is free again


def test_ephemeral_ports_exhausted() -> None:
    stack = new_stack()
    stack._rng.choice = lambda ports: ports[0]
    from atcp.core.connection import Connection
    for port in range(49152, 65536):
        # Every ephemeral port to this remote is held by a TIME-WAIT record.
        waiting = Connection(stack, stack.config, ("192.0.2.1", 4000), port, 4000, 536, 0.0)
        stack._enter_time_wait(waiting, 0.0)
    assert len(stack.time_wait) == 65536 - 49152
    with pytest.raises(OSError) as info:
        stack.connect(("192.0.2.1", 4000), 4000, 0.0)
    assert info.value.errno == errno.EADDRINUSE


def test_path_mss_hook_sets_offered_mss() -> None:
    import random as _random

    from atcp.core.stack import Stack
    from atcp.testing.peer import fixed_isn
    stack = Stack(isn=fixed_isn(STACK_ISS), rng=_random.Random(1),
                  path_mss=lambda remote: 1200 if remote[0].startswith("192.") else 1000)
    peer = Peer(stack, isn=PEER_ISN)
    stack.connect(peer.remote, peer.port, 0.0, local_port=80)
    assert peer.expect("S").options.mss == 1200
