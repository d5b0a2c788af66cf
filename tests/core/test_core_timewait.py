"""TIME-WAIT (RFC 9293 3.6.1, 3.10.7.4; RFC 1337; RFC 6191): how it is entered, how long it
lasts, what each kind of segment gets, SYN reuse, and the compact record."""

from __future__ import annotations

import errno
import gc

import pytest

from atcp.core import events as ev
from atcp.core.connection import Connection
from atcp.core.states import State
from atcp.core.timewait import TimeWait
from atcp.testing.peer import STACK_ISS, Peer, new_stack
from atcp.wire import Options

S = State
PEER_ISN = 9_000_000
MSL = 30.0


def closed(peer: Peer) -> list[ev.ConnectionClosed]:
    return [e for e in peer.events() if isinstance(e, ev.ConnectionClosed)]


def active_time_wait(**config) -> tuple[Peer, Connection]:
    """The stack opened and closed first; it is in TIME-WAIT at t=1 with snd=2, rcv=2."""
    stack = new_stack(**config)
    peer = Peer(stack, isn=PEER_ISN)
    conn, snd, rcv = peer.drive_to(S.FIN_WAIT_2)
    peer.at(1.0)
    peer.send("F.", seq=1, ack=2)
    peer.expect(".", seq=2, ack=2)
    return peer, conn


def passive_time_wait(syn_options: Options = Options(), **config) -> tuple[Peer, Connection]:
    """The stack accepted on port 80 and closed first; TIME-WAIT at t=1, snd=2, rcv=2."""
    stack = new_stack(**config)
    peer = Peer(stack, isn=PEER_ISN)
    ts = syn_options.ts_val is not None
    conn = peer.peer_connects(syn_options=syn_options)
    peer.at(1.0)
    conn.close(peer.now)
    peer.expect("F.", seq=1, ack=1)
    opts = Options(ts_val=syn_options.ts_val + 10, ts_ecr=0) if ts else Options()
    peer.send(".", seq=1, ack=2, options=opts)
    peer.send("F.", seq=1, ack=2, options=opts)
    peer.expect(".", seq=2, ack=2)
    assert conn.state is S.TIME_WAIT
    return peer, conn


def _assert_in_time_wait(peer: Peer, conn: Connection) -> TimeWait:
    stack = peer.stack
    assert conn.state is S.TIME_WAIT and stack.state_of(conn) is S.TIME_WAIT
    assert stack.connections == []
    (record,) = stack.time_wait
    return record


# -- entry -------------------------------------------------------------------------------------


def test_entered_from_fin_wait_2() -> None:
    peer, conn = active_time_wait()
    record = _assert_in_time_wait(peer, conn)
    assert record.expires == 1.0 + 2 * MSL
    events = closed(peer)
    assert len(events) == 1 and events[0].error is None


def test_entered_from_fin_wait_1_on_fin_acking_our_fin() -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn, snd, rcv = peer.drive_to(S.FIN_WAIT_1)
    peer.send("F.", seq=1, ack=2)
    peer.expect(".", seq=2, ack=2)
    _assert_in_time_wait(peer, conn)


def test_entered_from_closing_on_ack_of_our_fin() -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn, snd, rcv = peer.drive_to(S.CLOSING)
    peer.send(".", seq=2, ack=2)
    peer.expect_nothing()
    _assert_in_time_wait(peer, conn)


def test_simultaneous_close_enters_time_wait_on_both_sides() -> None:
    from atcp.testing.link import Link
    a, b = new_stack(100), new_stack(200)
    link = Link(a, b)
    b.listen(80)
    ca = a.connect(link.addr_b, 80, 0.0)
    link.run(until=1.0)
    cb = b.connections[0]
    ca.close(link.now)
    cb.close(link.now)                              # both FINs cross on the wire
    link.run(until=2.0)
    assert ca.state is S.TIME_WAIT and cb.state is S.TIME_WAIT
    assert len(a.time_wait) == 1 and len(b.time_wait) == 1


def test_only_the_time_wait_timer_runs() -> None:
    peer, conn = active_time_wait()
    assert conn.next_deadline() is None
    assert peer.stack.next_deadline() is not None
    assert peer.stack.next_deadline() <= 1.0 + 2 * MSL


# -- duration ----------------------------------------------------------------------------------


def test_lasts_exactly_two_msl() -> None:
    peer, conn = active_time_wait()
    peer.run_timers_until(1.0 + 2 * MSL - 1e-6)
    _assert_in_time_wait(peer, conn)
    peer.send(".", seq=2, ack=2, payload=b"?")       # still answered by the record
    peer.expect(".", seq=2, ack=2)
    peer.run_timers_until(1.0 + 2 * MSL)
    assert peer.stack.time_wait == []
    assert peer.stack.state_of(conn) is S.CLOSED
    assert peer.stack.next_deadline() is None
    peer.send(".", seq=2, ack=2)                     # rule 1 from now on (conformance 20)
    peer.expect("R", seq=2, abs_ack=0)
    assert peer.stack.stats["time_wait_expired"] == 1


@pytest.mark.parametrize("msl", [0.5, 2.0, 120.0])
def test_msl_configurable(msl: float) -> None:
    peer, conn = active_time_wait(msl=msl)
    peer.run_timers_until(1.0 + 2 * msl - 1e-6)
    assert len(peer.stack.time_wait) == 1
    peer.run_timers_until(1.0 + 2 * msl)
    assert peer.stack.time_wait == []


def test_retransmitted_fin_is_acked_and_restarts_timer() -> None:
    peer, conn = active_time_wait()
    peer.run_timers_until(41.0)
    peer.send("F.", seq=1, ack=2)                    # our last ACK was lost
    peer.expect(".", seq=2, ack=2)
    peer.run_timers_until(41.0 + 2 * MSL - 1e-6)
    assert len(peer.stack.time_wait) == 1            # would have expired at 61 otherwise
    peer.run_timers_until(41.0 + 2 * MSL)
    assert peer.stack.time_wait == []


# -- segments in TIME-WAIT --------------------------------------------------------------------


def test_data_is_acked_and_never_delivered() -> None:
    peer, conn = active_time_wait()
    peer.events()
    peer.send("P.", seq=2, ack=2, payload=b"ghost data")
    peer.expect(".", seq=2, ack=2)
    assert conn.readable() == 0 and peer.events() == []
    assert peer.stack.time_wait[0].rcv_nxt == peer.seq(2)


def test_empty_ack_at_rcv_nxt_gets_nothing() -> None:
    peer, conn = active_time_wait()
    peer.send(".", seq=2, ack=2)
    peer.expect_nothing()


@pytest.mark.parametrize("seq", [-50, 100_000])
def test_out_of_window_segment_gets_ack(seq: int) -> None:
    peer, conn = active_time_wait()
    peer.send(".", seq=seq, ack=2)
    peer.expect(".", seq=2, ack=2)


def test_segment_without_ack_dropped() -> None:
    peer, conn = active_time_wait()
    peer.send("P", seq=2, payload=b"x")
    peer.send("F", seq=1)
    peer.expect_nothing()
    assert len(peer.stack.time_wait) == 1


@pytest.mark.parametrize("offset", [0, 1, -1, 100_000])
def test_rst_ignored_rfc1337(offset: int) -> None:
    peer, conn = active_time_wait()
    peer.send("R", seq=2 + offset)
    peer.send("R.", seq=2 + offset, ack=2)
    peer.expect_nothing()
    assert len(peer.stack.time_wait) == 1


def test_rst_accepted_when_rfc1337_off() -> None:
    peer, conn = active_time_wait(rfc1337=False)
    peer.send("R", seq=100_000)                       # outside: dropped
    peer.expect_nothing()
    peer.send("R", seq=3)                             # in window, not exact: challenge ACK
    peer.expect(".", seq=2, ack=2)
    assert len(peer.stack.time_wait) == 1
    peer.send("R", seq=2)
    peer.expect_nothing()
    assert peer.stack.time_wait == []
    peer.send(".", seq=2, ack=2)
    peer.expect("R", seq=2, abs_ack=0)


def test_rst_off_rfc1337_and_rfc5961_closes_in_window() -> None:
    peer, conn = active_time_wait(rfc1337=False, rfc5961=False)
    peer.send("R", seq=50)
    assert peer.stack.time_wait == []


def test_ack_carries_timestamps_when_in_use() -> None:
    peer, conn = passive_time_wait(Options(ts_val=1000))
    peer.send("P.", seq=2, ack=2, payload=b"x", options=Options(ts_val=1020, ts_ecr=0))
    seg = peer.expect(".", seq=2, ack=2)
    assert seg.options.ts_val is not None
    assert seg.options.ts_ecr == 1010                # TS.Recent from the FIN


# -- SYN in TIME-WAIT: RFC 6191 reuse ---------------------------------------------------------


def _reopened(peer: Peer, syn_seq: int, syn_options: Options = Options()):
    """Send a SYN to the record; return the SYN,ACK the listener answered with, or None."""
    peer.send("S", seq=syn_seq, options=syn_options)
    got = peer.take()
    assert len(got) <= 1
    return got[0] if got else None


def test_newer_syn_without_timestamps_reopens_with_iss_above_old_snd_nxt() -> None:
    peer, conn = passive_time_wait()
    old_snd_nxt = peer.stack.time_wait[0].snd_nxt
    syn_ack = _reopened(peer, 50_000)
    assert syn_ack is not None and syn_ack.flags == 0x12
    assert syn_ack.ack == peer.seq(50_001)
    # The pinned ISN (STACK_ISS) is below the old SND.NXT: the new ISS jumps past it.
    assert syn_ack.seq == (old_snd_nxt + (1 << 17)) & 0xFFFFFFFF
    assert peer.stack.time_wait == []
    assert peer.stack.stats["time_wait_reopened"] == 1
    # The new incarnation completes normally.
    peer.stack_iss = syn_ack.seq
    peer.isn = peer.seq(50_000)
    peer.send(".", seq=1, ack=1)
    new = peer.stack._listeners[80].accept()
    assert new is not None and new is not conn and new.state is S.ESTABLISHED


def test_reopen_uses_a_fresh_isn_when_it_is_already_newer() -> None:
    stack_isn = [STACK_ISS]
    peer, conn = passive_time_wait()
    peer.stack._isn = lambda key, now: stack_isn[0]
    stack_isn[0] = STACK_ISS + 10_000_000
    syn_ack = _reopened(peer, 50_000)
    assert syn_ack.seq == STACK_ISS + 10_000_000


@pytest.mark.parametrize("rel", [2, 1, 0, -1000])
def test_old_syn_without_timestamps_is_dropped(rel: int) -> None:
    peer, conn = passive_time_wait()
    assert _reopened(peer, rel) is None
    assert len(peer.stack.time_wait) == 1


def test_newer_timestamp_reopens_even_with_old_seq() -> None:
    peer, conn = passive_time_wait(Options(ts_val=1000))
    assert peer.stack.time_wait[0].ts_recent == 1010
    syn_ack = _reopened(peer, -500, Options(ts_val=1011))
    assert syn_ack is not None and syn_ack.ack == peer.seq(-499)


def test_older_timestamp_dropped_even_with_new_seq() -> None:
    peer, conn = passive_time_wait(Options(ts_val=1000))
    assert _reopened(peer, 50_000, Options(ts_val=1009)) is None
    assert len(peer.stack.time_wait) == 1


@pytest.mark.parametrize("rel,reopens", [(50_000, True), (2, False)])
def test_equal_timestamp_decided_by_seq(rel: int, reopens: bool) -> None:
    peer, conn = passive_time_wait(Options(ts_val=1000))
    assert (_reopened(peer, rel, Options(ts_val=1010)) is not None) is reopens


def test_reuse_disabled_drops_newer_syn() -> None:
    peer, conn = passive_time_wait(time_wait_reuse=False)
    assert _reopened(peer, 50_000) is None
    assert len(peer.stack.time_wait) == 1


def test_newer_syn_with_no_listener_meets_no_connection() -> None:
    peer, conn = active_time_wait()
    peer.send("S", seq=50_000)
    peer.expect("R.", abs_seq=0, ack=50_001)
    assert peer.stack.time_wait == []


def test_syn_ack_in_time_wait_gets_ack() -> None:
    peer, conn = active_time_wait()
    peer.send("S.", seq=0, ack=1)
    peer.expect(".", seq=2, ack=2)


# -- local identity, compactness --------------------------------------------------------------


def test_local_connect_to_same_identity_is_eaddrinuse() -> None:
    peer, conn = active_time_wait()
    with pytest.raises(OSError) as info:
        peer.stack.connect(peer.remote, peer.port, peer.now, local_port=80)
    assert info.value.errno == errno.EADDRINUSE
    other = peer.stack.connect(peer.remote, peer.port, peer.now, local_port=81)
    assert other.state is S.SYN_SENT
    # After 2*MSL the identity is free again.
    peer.run_timers_until(1.0 + 2 * MSL)
    again = peer.stack.connect(peer.remote, peer.port, peer.now, local_port=80)
    assert again.state is S.SYN_SENT


def test_ephemeral_port_choice_skips_time_wait_identities() -> None:
    peer, conn = active_time_wait()
    stack = peer.stack
    stack._rng.choice = lambda ports: 80             # the RNG keeps proposing port 80
    new = stack.connect(peer.remote, peer.port, peer.now)
    assert new.local_port == 49152                    # the scan's first free port


def test_record_is_compact() -> None:
    peer, conn = active_time_wait()
    stack = peer.stack
    # The table keeps one int per record, filed under the remote address alone.
    assert list(stack._time_wait) == [peer.remote]
    (packed,) = stack._time_wait.values()
    assert type(packed) is int
    (record,) = stack.time_wait
    assert type(record) is TimeWait and not isinstance(record, Connection)
    assert "__slots__" in TimeWait.__dict__ and not hasattr(record, "__dict__")
    assert record.key == conn.key and record.pack() == packed
    # The unpacked view holds no reference to the connection or its buffers.
    assert not any(isinstance(r, Connection) for r in gc.get_referents(record))


def test_time_wait_in_state_of_and_abort_keeps_record() -> None:
    peer, conn = active_time_wait()
    conn.abort(peer.now)                              # the app has nothing left to abort
    peer.expect_nothing()
    assert len(peer.stack.time_wait) == 1
    peer.send("F.", seq=1, ack=2)
    peer.expect(".", seq=2, ack=2)


@pytest.mark.parametrize("rfc5961", [True, False])
def test_ack_of_unsent_data_in_time_wait_gets_ack(rfc5961: bool) -> None:
    peer, conn = active_time_wait(rfc5961=rfc5961)
    peer.send(".", seq=2, ack=50)
    peer.expect(".", seq=2, ack=2)
    assert len(peer.stack.time_wait) == 1


# -- the table: packed records, expiry queue, no timer in the wheel ----------------------------


def _waiting(stack, i: int, now: float, remote=None) -> Connection:
    """A connection built directly and put in TIME-WAIT at ``now`` (as benchmarks/ does)."""
    remote = remote or (f"10.0.{i // 256}.{i % 256}", 4000)
    conn = Connection(stack, stack.config, remote, 5000 + i, 80, 1000, now)
    conn.snd_nxt = conn.snd_una = 1000 + i
    conn.rcv_nxt = 7000 + i
    conn.state = S.TIME_WAIT
    stack._enter_time_wait(conn, now)
    return conn


def test_fresh_stack_keeps_nothing_for_time_wait() -> None:
    stack = new_stack()
    assert len(stack._wheel) == 0 and stack._tw_queue is None
    assert stack.next_deadline() is None


def test_time_wait_records_are_not_in_the_wheel() -> None:
    stack = new_stack()
    conns = [_waiting(stack, i, float(i)) for i in range(5)]
    assert len(stack._wheel) == 0
    assert not any(c in stack._wheel for c in conns)
    assert stack.next_deadline() == 2 * MSL          # the first record's end


def test_records_expire_in_order_each_at_its_deadline() -> None:
    stack = new_stack()
    for i in range(5):
        _waiting(stack, i, float(i))
    assert [tw.local_port for tw in stack.time_wait] == [5000, 5001, 5002, 5003, 5004]
    assert [tw.expires for tw in stack.time_wait] == [2 * MSL + i for i in range(5)]
    expired = []
    for _ in range(10):
        deadline = stack.next_deadline()
        if deadline is None:
            break
        stack.poll(deadline - 1e-6)
        assert len(stack.time_wait) == 5 - len(expired)      # never early
        stack.poll(deadline)
        left = {tw.local_port for tw in stack.time_wait}
        expired += sorted({5000 + i for i in range(5)} - left - set(expired))
    assert expired == [5000, 5001, 5002, 5003, 5004]
    assert stack.stats["time_wait_expired"] == 5 and stack.next_deadline() is None


def test_a_burst_of_records_expires_in_one_poll() -> None:
    stack = new_stack(max_time_wait=1000)
    for i in range(1000):
        _waiting(stack, i, 0.0)
    stack.poll(2 * MSL)
    assert stack.time_wait == [] and stack.stats["time_wait_expired"] == 1000
    assert not stack._tw_queue and stack.next_deadline() is None


def test_restart_moves_the_record_to_the_end() -> None:
    stack = new_stack()
    peers = [Peer(stack, isn=PEER_ISN, port=4000 + i, stack_port=80 + i, now=float(i))
             for i in range(3)]
    for peer in peers:
        peer.drive_to(S.TIME_WAIT)
    assert [tw.local_port for tw in stack.time_wait] == [80, 81, 82]
    peers[0].now = 10.0
    peers[0].send("F.", seq=1, ack=2)                # its 2*MSL starts over
    peers[0].expect(".", seq=2, ack=2)
    assert [tw.local_port for tw in stack.time_wait] == [81, 82, 80]
    assert stack.time_wait[-1].expires == 10.0 + 2 * MSL
    assert stack.next_deadline() == stack.time_wait[0].expires
    stack.poll(2 + 2 * MSL)
    assert [tw.local_port for tw in stack.time_wait] == [80]
    stack.poll(10.0 + 2 * MSL)
    assert stack.time_wait == []


def test_repeated_restarts_do_not_grow_the_queue() -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    peer.drive_to(S.TIME_WAIT)
    for i in range(500):
        peer.now = 1.0 + i * 0.01
        peer.send("F.", seq=1, ack=2)
        peer.expect(".", seq=2, ack=2)
    assert len(stack.time_wait) == 1
    assert len(stack._tw_queue) <= 2 * (2 * len(stack._time_wait) + 32 + 1)
    assert stack.next_deadline() == peer.now + 2 * MSL


def test_records_sharing_a_remote_are_told_apart_by_their_ports() -> None:
    stack = new_stack()
    remote = ("10.9.9.9", 4000)
    a, b, c = (_waiting(stack, i, 0.0, remote) for i in range(3))
    # The first is filed under the remote alone, the others under their whole key.
    assert list(stack._time_wait) == [remote, b.key, c.key]
    for conn in (a, b, c):
        assert stack.time_wait_record(conn.key).local_port == conn.local_port
        assert stack.state_of(conn) is S.TIME_WAIT
    assert stack.time_wait_record((remote, 1, 80)) is None
    stack._forget_time_wait(stack.time_wait_record(a.key))
    assert stack.state_of(a) is S.CLOSED and stack.time_wait_record(b.key) is not None
    d = _waiting(stack, 3, 1.0, remote)               # the remote alone is free again
    assert list(stack._time_wait) == [b.key, c.key, remote]
    assert [tw.local_port for tw in stack.time_wait] == [5001, 5002, 5003]
    assert stack.time_wait_record(d.key).rcv_nxt == 7003


def test_forgetting_the_front_record_moves_the_next_deadline() -> None:
    stack = new_stack()
    first, second = _waiting(stack, 0, 0.0), _waiting(stack, 1, 5.0)
    assert stack.next_deadline() == 2 * MSL
    stack._forget_time_wait(stack.time_wait_record(first.key))
    assert stack.next_deadline() == 5.0 + 2 * MSL
    stack._forget_time_wait(stack.time_wait_record(second.key))
    assert stack.next_deadline() is None and stack.time_wait == []


def test_cap_recycles_the_front_of_the_queue() -> None:
    stack = new_stack(max_time_wait=3)
    for i in range(3):
        _waiting(stack, i, float(i))
    _waiting(stack, 3, 3.0)
    assert [tw.local_port for tw in stack.time_wait] == [5001, 5002, 5003]
    assert stack.stats["time_wait_recycled"] == 1
    assert stack.next_deadline() == 1.0 + 2 * MSL


@pytest.mark.parametrize("ts", [False, True])
def test_packed_record_round_trips(ts: bool) -> None:
    peer, conn = passive_time_wait(Options(ts_val=1000) if ts else Options())
    (record,) = peer.stack.time_wait
    again = TimeWait.unpack(record.remote, record.pack())
    assert all(getattr(again, name) == getattr(record, name) for name in TimeWait.__slots__)
    assert record.snd_nxt == conn.snd_nxt and record.rcv_nxt == conn.rcv_nxt
    assert record.ts_enabled is ts and record.max_snd_wnd == conn.max_snd_wnd
    if ts:
        assert record.ts_recent == conn.ts_recent and record.ts_offset == conn.ts_offset
