"""RST segments: the three generation groups of RFC 9293 3.10.7.1 with their exact numbers,
acceptance per RFC 5961 3 (and the RFC 793 rule when it is off), SYN and ACK checks of RFC
5961 4-5, challenge-ACK rate limiting, ABORT (3.10.5) and close with unread data."""

from __future__ import annotations

import pytest

from atcp.core import events as ev
from atcp.core.states import State
from atcp.testing.peer import STACK_ISS, Peer, new_stack
from atcp.wire import RST, Options, Segment, build

S = State
PEER_ISN = 3_000_000
#: Beyond both the advertised window and the free receive buffer (1 MiB by default).
BEYOND = 1 << 20
SYNCHRONIZED_LIVE = [S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT, S.CLOSING,
                     S.LAST_ACK]


def closed(peer: Peer) -> list[ev.ConnectionClosed]:
    return [e for e in peer.events() if isinstance(e, ev.ConnectionClosed)]


def setup(state: State, **config) -> tuple[Peer, object, int, int]:
    stack = new_stack(**config)
    peer = Peer(stack, isn=PEER_ISN)
    conn, snd, rcv = peer.drive_to(state)
    peer.events()
    return peer, conn, snd, rcv


# -- group 1: no connection --------------------------------------------------------------------


def test_ack_to_closed_port_gets_rst_at_seg_ack() -> None:
    peer = Peer(new_stack(), isn=PEER_ISN, stack_iss=0)
    peer.send(".", seq=5, abs_ack=123456)
    peer.expect("R", abs_seq=123456, abs_ack=0, win=0)


@pytest.mark.parametrize("flags,payload,seg_len", [
    ("S", b"", 1), ("S", b"abcde", 6), ("F", b"", 1), ("", b"xyz", 3), ("SF", b"q", 3),
    ("P", b"12", 2),
])
def test_non_ack_to_closed_port_gets_rst_ack(flags: str, payload: bytes, seg_len: int) -> None:
    peer = Peer(new_stack(), isn=PEER_ISN, stack_iss=0)
    peer.send(flags, seq=10, payload=payload)
    peer.expect("R.", abs_seq=0, ack=10 + seg_len, win=0)


def test_rst_ack_at_the_wrap() -> None:
    peer = Peer(new_stack(), isn=2**32 - 3, stack_iss=0)
    peer.send("S", seq=0, payload=b"abcd")
    peer.expect("R.", abs_seq=0, abs_ack=2)        # 2**32 - 3 + 5, modulo 2**32


@pytest.mark.parametrize("flags", ["R", "R.", "RS", "RF."])
def test_rst_to_closed_port_is_not_answered(flags: str) -> None:
    peer = Peer(new_stack(), isn=PEER_ISN, stack_iss=0)
    peer.send(flags, seq=1, abs_ack=77)
    peer.expect_nothing()


def test_segment_from_other_udp_address_belongs_to_no_connection() -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn = peer.stack_connects()
    stranger = Peer(stack, isn=PEER_ISN, remote=("192.0.2.99", 4000), stack_iss=STACK_ISS)
    stranger.send(".", seq=1, ack=1, payload=b"spoof")
    stranger.expect("R", seq=1, abs_ack=0)
    assert conn.state is S.ESTABLISHED and conn.readable() == 0


def test_ack_after_last_ack_completed_meets_no_connection() -> None:
    peer, conn, snd, rcv = setup(S.LAST_ACK)
    peer.send(".", seq=rcv, ack=snd)
    peer.expect_nothing()
    assert conn.state is S.CLOSED
    peer.send(".", seq=rcv, ack=snd)               # conformance 7: rule 1 now
    peer.expect("R", seq=snd, abs_ack=0)


# -- group 2: non-synchronized states -------------------------------------------------------


@pytest.mark.parametrize("flags", [".", "S.", "P.", "F."])
def test_listen_answers_any_ack_with_rst(flags: str) -> None:
    stack = new_stack()
    stack.listen(80)
    peer = Peer(stack, isn=PEER_ISN, stack_iss=0)
    peer.send(flags, seq=0, abs_ack=99, payload=b"x" if "P" in flags else b"")
    peer.expect("R", abs_seq=99, abs_ack=0)
    assert stack.connections == []


@pytest.mark.parametrize("ack", [0, 2, 1000, -1])
def test_syn_received_bad_ack_gets_rst_and_stays(ack: int) -> None:
    peer, conn, snd, rcv = setup(S.SYN_RECEIVED)
    peer.send(".", seq=1, ack=ack)
    peer.expect("R", abs_seq=peer.iss_rel(ack), abs_ack=0)
    assert conn.state is S.SYN_RECEIVED
    peer.send(".", seq=1, ack=1)                   # the right ACK still completes it
    assert conn.state is S.ESTABLISHED


def test_syn_received_rst_with_bad_ack_not_answered() -> None:
    peer, conn, snd, rcv = setup(S.SYN_RECEIVED)
    peer.send("R.", seq=BEYOND, ack=50)            # outside the window: dropped
    peer.expect_nothing()
    peer.send("R.", seq=5, ack=50)                 # in the window: a challenge, not a RST
    peer.expect(".", seq=1, ack=1)
    assert conn.state is S.SYN_RECEIVED


# -- group 3: synchronized states answer with an ACK, never a RST -----------------------------


@pytest.mark.parametrize("state", SYNCHRONIZED_LIVE)
@pytest.mark.parametrize("where", ["below", "beyond"])
def test_unacceptable_segment_gets_ack(state: State, where: str) -> None:
    peer, conn, snd, rcv = setup(state)
    seq = rcv - 100 if where == "below" else rcv + BEYOND
    peer.send("P.", seq=seq, ack=snd, payload=b"junk")
    peer.expect(".", seq=snd, ack=rcv)
    assert conn.state is state
    assert conn.readable() == 0


@pytest.mark.parametrize("state", SYNCHRONIZED_LIVE)
def test_ack_of_unsent_data_gets_ack(state: State) -> None:
    peer, conn, snd, rcv = setup(state, rfc5961=False)
    peer.send(".", seq=rcv, ack=snd + 10)
    peer.expect(".", seq=snd, ack=rcv)
    assert conn.state is state


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("offset", [-1, 0, 1, 100_000])
@pytest.mark.parametrize("flags", ["R", "R."])
def test_rst_is_never_answered(state: State, offset: int, flags: str) -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    if state is S.CLOSED:
        snd = rcv = 0
        peer.stack_iss = STACK_ISS
    else:
        _, snd, rcv = peer.drive_to(state)
    peer.send(flags, seq=rcv + offset, ack=snd + offset, payload=b"")
    assert not [s for s in peer.take() if s.flags & RST]


# -- RFC 5961 3: RST acceptance -------------------------------------------------------------


@pytest.mark.parametrize("state", [S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT])
def test_exact_rst_resets(state: State) -> None:
    peer, conn, snd, rcv = setup(state)
    peer.send("R", seq=rcv)
    peer.expect_nothing()
    assert conn.state is S.CLOSED
    assert peer.stack.connections == [] and peer.stack.time_wait == []
    events = closed(peer)
    assert len(events) == 1 and isinstance(events[0].error, ConnectionResetError)
    with pytest.raises(ConnectionResetError):
        conn.send(b"more", peer.now)


@pytest.mark.parametrize("state", [S.CLOSING, S.LAST_ACK])
def test_exact_rst_closes_closing_states(state: State) -> None:
    peer, conn, snd, rcv = setup(state)
    peer.send("R", seq=rcv)
    peer.expect_nothing()
    assert conn.state is S.CLOSED and peer.stack.connections == []
    assert conn.next_deadline() is None                # every timer stopped


def test_rst_flushes_unread_data() -> None:
    peer, conn, snd, rcv = setup(S.ESTABLISHED)
    peer.send("P.", seq=1, ack=1, payload=b"unread")
    assert conn.readable() == 6
    peer.send("R", seq=7)
    assert conn.readable() == 0 and conn.read(-1, peer.now) == b""


def test_rst_carrying_data_is_accepted() -> None:
    peer, conn, snd, rcv = setup(S.ESTABLISHED)
    peer.send("R.", seq=1, ack=1, payload=b"diagnostic text")
    assert conn.state is S.CLOSED
    assert isinstance(closed(peer)[0].error, ConnectionResetError)


@pytest.mark.parametrize("state", SYNCHRONIZED_LIVE)
def test_in_window_rst_gets_challenge_ack(state: State) -> None:
    peer, conn, snd, rcv = setup(state)
    peer.send("R", seq=rcv + 1)
    peer.expect(".", seq=snd, ack=rcv)
    assert conn.state is state
    peer.send("R", seq=rcv + 30_000)
    peer.expect(".", seq=snd, ack=rcv)
    assert closed(peer) == []


@pytest.mark.parametrize("offset", [-1, -1000, BEYOND, 1 << 31])
def test_rst_outside_window_dropped(offset: int) -> None:
    peer, conn, snd, rcv = setup(S.ESTABLISHED)
    peer.send("R", seq=rcv + offset)
    peer.expect_nothing()
    assert conn.state is S.ESTABLISHED


def test_rfc793_rule_in_window_rst_resets() -> None:
    peer, conn, snd, rcv = setup(S.ESTABLISHED, rfc5961=False)
    peer.send("R", seq=rcv + 1000)
    peer.expect_nothing()
    assert conn.state is S.CLOSED
    assert isinstance(closed(peer)[0].error, ConnectionResetError)


def test_rfc793_rule_outside_window_still_dropped() -> None:
    peer, conn, snd, rcv = setup(S.ESTABLISHED, rfc5961=False)
    peer.send("R", seq=rcv - 1)
    peer.send("R", seq=rcv + BEYOND)
    peer.expect_nothing()
    assert conn.state is S.ESTABLISHED


def test_zero_window_accepts_only_exact_rst() -> None:
    stack = new_stack(recv_buffer=1000, window_scaling=False)
    peer = Peer(stack, isn=PEER_ISN)
    conn = peer.stack_connects(syn_ack_options=Options(mss=1000))
    peer.send("P.", seq=1, ack=1, payload=b"a" * 1000)
    peer.advance(0.2)                              # the delayed ACK
    peer.expect(".", seq=1, ack=1001, win=0)
    assert conn._rcv_wnd() == 0
    peer.send("R", seq=1002)
    peer.send("R", seq=1001 + 500)
    peer.expect_nothing()
    assert conn.state is S.ESTABLISHED
    peer.send("R", seq=1001)
    assert conn.state is S.CLOSED


def test_challenge_ack_rate_limited_per_interval() -> None:
    peer, conn, snd, rcv = setup(S.ESTABLISHED, challenge_ack_limit=10,
                                 challenge_ack_interval=5.0)
    for i in range(25):
        peer.send("R", seq=rcv + 1 + i)
    assert len(peer.take()) == 10
    assert peer.stack.stats["challenge_acks_suppressed"] == 15
    # ACKs owed for data are not rate-limited.
    peer.send("P.", seq=rcv, ack=snd, payload=b"x")
    peer.send("P.", seq=rcv - 1, ack=snd, payload=b"x")   # a duplicate: immediate ACK
    assert [s.ack for s in peer.take()] == [peer.seq(rcv + 1)]
    peer.advance(4.9)                               # delayed ACK for the first byte went
    peer.take()
    peer.send("R", seq=rcv + 5)
    peer.expect_nothing()
    peer.advance(0.1)
    peer.send("R", seq=rcv + 5)
    peer.expect(".", seq=snd, ack=rcv + 1)          # a fresh interval


# -- RFC 5961 4: SYN in a synchronized state ------------------------------------------------


@pytest.mark.parametrize("state", SYNCHRONIZED_LIVE)
@pytest.mark.parametrize("offset", [0, 1, -5, 100_000, BEYOND])
def test_syn_in_synchronized_state_gets_challenge_ack(state: State, offset: int) -> None:
    peer, conn, snd, rcv = setup(state)
    peer.send("S", seq=rcv + offset)
    peer.expect(".", seq=snd, ack=rcv)
    assert conn.state is state


def test_syn_in_window_with_rfc793_rule_resets() -> None:
    peer, conn, snd, rcv = setup(S.ESTABLISHED, rfc5961=False)
    peer.send("S", seq=rcv + 10)
    peer.expect("R.", seq=snd, ack=rcv)           # the form is open; FreeBSD's
    assert conn.state is S.CLOSED
    assert isinstance(closed(peer)[0].error, ConnectionResetError)


def test_syn_received_from_listen_returns_silently_on_rst() -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn, snd, rcv = peer.drive_to(S.SYN_RECEIVED)
    listener = conn.listener
    peer.send("R", seq=1)
    peer.expect_nothing()
    assert peer.events() == []
    assert stack.connections == [] and not listener.syn_queue
    assert listener.state is S.LISTEN
    peer.peer_connects()                           # the port still listens


def test_syn_received_from_listen_returns_silently_on_new_syn() -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn, snd, rcv = peer.drive_to(S.SYN_RECEIVED)
    peer.send("S", seq=10)                          # a different SYN, in the window
    peer.expect_nothing()
    assert stack.connections == [] and peer.events() == []


def test_syn_received_from_active_open_is_refused_on_rst() -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn = stack.connect(peer.remote, peer.port, 0.0, local_port=80)
    peer.expect("S")
    peer.send("S", seq=0)
    peer.expect("S.", ack=1)
    peer.send("R", seq=1)
    assert conn.state is S.CLOSED
    assert isinstance(closed(peer)[0].error, ConnectionRefusedError)


# -- RFC 5961 5: the ACK check --------------------------------------------------------------


def _established_with_acked_data(**config) -> tuple[Peer, object]:
    stack = new_stack(**config)
    peer = Peer(stack, isn=PEER_ISN)
    conn = peer.stack_connects(win=1000)
    conn.send(b"a" * 100, peer.now)
    peer.expect("P.", seq=1, length=100)
    peer.send(".", seq=1, ack=101, win=1000)
    return peer, conn


def test_ack_below_max_window_is_challenged_and_dropped() -> None:
    peer, conn = _established_with_acked_data()
    assert conn.max_snd_wnd == 1000
    peer.send("P.", seq=1, ack=101 - 1001, payload=b"zz")
    peer.expect(".", seq=101, ack=1)
    assert conn.readable() == 0


def test_old_ack_within_max_window_is_accepted() -> None:
    peer, conn = _established_with_acked_data()
    peer.send("P.", seq=1, ack=101 - 1000, payload=b"zz")
    assert conn.readable() == 2


def test_ack_beyond_snd_nxt_is_dropped_with_ack() -> None:
    peer, conn = _established_with_acked_data()
    peer.send("P.", seq=1, ack=102, payload=b"zz")
    peer.expect(".", seq=101, ack=1)
    assert conn.readable() == 0


def test_without_rfc5961_old_ack_is_ignored_but_data_kept() -> None:
    peer, conn = _established_with_acked_data(rfc5961=False)
    peer.send("P.", seq=1, ack=101 - 5000, payload=b"zz")
    assert conn.readable() == 2
    assert conn.snd_una == peer.iss_rel(101)


def test_segment_without_ack_dropped_in_synchronized_state() -> None:
    peer, conn, snd, rcv = setup(S.ESTABLISHED)
    peer.send("P", seq=1, payload=b"no ack bit")
    peer.send("F", seq=1)
    peer.expect_nothing()
    assert conn.readable() == 0 and conn.state is S.ESTABLISHED


# -- ABORT and close with unread data (3.10.5, RFC 1122 4.2.2.13) ----------------------------


@pytest.mark.parametrize("state", [S.SYN_RECEIVED, S.ESTABLISHED, S.FIN_WAIT_1,
                                   S.FIN_WAIT_2, S.CLOSE_WAIT])
def test_abort_sends_rst_at_snd_nxt(state: State) -> None:
    peer, conn, snd, rcv = setup(state)
    conn.abort(peer.now)
    peer.expect("R", seq=snd, abs_ack=0, win=0)
    assert conn.state is S.CLOSED and peer.stack.connections == []
    assert conn.next_deadline() is None                # every timer stopped


def test_abort_with_unsent_and_unacked_data_uses_snd_nxt() -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn = peer.stack_connects(win=500)
    conn.send(b"b" * 2000, peer.now)
    sent = peer.take()
    assert sum(len(s.payload) for s in sent) == 500
    conn.abort(peer.now)
    peer.expect("R", seq=501, abs_ack=0)


@pytest.mark.parametrize("state", [S.SYN_SENT, S.CLOSING, S.LAST_ACK])
def test_abort_sends_nothing(state: State) -> None:
    peer, conn, snd, rcv = setup(state)
    conn.abort(peer.now)
    peer.expect_nothing()
    assert conn.state is S.CLOSED and peer.stack.connections == []


def test_abort_in_time_wait_sends_nothing_and_reports_close_once() -> None:
    peer, conn, snd, rcv = setup(S.TIME_WAIT)
    conn.abort(peer.now)
    peer.expect_nothing()
    assert closed(peer) == []      # the ConnectionClosed came when TIME-WAIT was entered


def test_abort_twice_is_harmless() -> None:
    peer, conn, snd, rcv = setup(S.ESTABLISHED)
    conn.abort(0.0)
    conn.abort(0.0)
    assert len(peer.take()) == 1
    assert len(closed(peer)) == 1


def test_close_with_unread_data_sends_rst() -> None:
    peer, conn, snd, rcv = setup(S.ESTABLISHED)
    peer.send("P.", seq=1, ack=1, payload=b"never read")
    peer.take()
    conn.close(peer.now)
    peer.expect("R", seq=1, abs_ack=0)
    assert conn.state is S.CLOSED


def test_data_after_close_is_answered_with_rst() -> None:
    peer, conn, snd, rcv = setup(S.ESTABLISHED)
    conn.close(peer.now)
    peer.expect("F.", seq=1, ack=1)
    peer.send(".", seq=1, ack=2)
    assert conn.state is S.FIN_WAIT_2
    peer.send("P.", seq=1, ack=2, payload=b"late")
    peer.expect("R", seq=2, abs_ack=0)
    assert conn.state is S.CLOSED


def test_app_tells_reset_from_orderly_close() -> None:
    # Orderly: the peer closes, we close; the event carries no error.
    peer, conn, snd, rcv = setup(S.CLOSE_WAIT)
    assert conn.read(-1, peer.now) == b"" and conn.eof
    conn.close(peer.now)
    peer.expect("F.", seq=1, ack=2)
    peer.send(".", seq=2, ack=2)
    events = closed(peer)
    assert len(events) == 1 and events[0].error is None
    # Reset: the event carries ConnectionResetError, and so do later calls.
    peer2, conn2, snd2, rcv2 = setup(S.ESTABLISHED)
    peer2.send("R", seq=1)
    events2 = closed(peer2)
    assert len(events2) == 1 and isinstance(events2[0].error, ConnectionResetError)
    assert conn2.error is events2[0].error
    with pytest.raises(ConnectionResetError):
        conn2.shutdown(peer2.now)


def test_half_open_recovery() -> None:
    """RFC 9293 3.5.1 / conformance 14: a rebooted peer's SYN draws our challenge ACK; its
    RST at that ACK's value then resets us."""
    peer, conn, snd, rcv = setup(S.ESTABLISHED)
    peer.send("S", seq=400_000)                    # the peer forgot the connection
    ack = peer.expect(".", seq=snd, ack=rcv)
    peer.send(Segment(peer.port, peer.stack_port, ack.ack, 0, RST, 0))
    assert conn.state is S.CLOSED
    assert isinstance(closed(peer)[0].error, ConnectionResetError)


def test_malformed_datagram_counted_not_answered() -> None:
    peer, conn, snd, rcv = setup(S.ESTABLISHED)
    peer.send_raw(b"\x00" * 10)
    bad = bytearray(build(peer.segment(".", seq=1, ack=1, options=Options(ts_val=1))))
    bad[12] = 0x30                                 # data offset 3 words
    peer.send_raw(bytes(bad))
    peer.expect_nothing()
    assert peer.stack.stats["malformed"] == 2
    assert conn.state is S.ESTABLISHED
