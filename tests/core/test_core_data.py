"""Data transfer (RFC 9293 3.8, 3.10.7.4 seventh check; RFC 6298; RFC 5681): reliability
under loss, duplication and reordering, the sequence-number wrap, ACK policy, Nagle, flow
control both ways, zero-window probing, retransmission timing and limits, fast retransmit,
half-close."""

from __future__ import annotations

import hashlib
import random

import pytest

from atcp.core import events as ev
from atcp.core.states import State
from atcp.testing.link import Link
from atcp.testing.peer import Peer, new_stack
from atcp.wire import Options

S = State
PEER_ISN = 11_000_000


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def linked_pair(iss_a: int = 1_000, iss_b: int = 2_000, *, seed: int = 1, loss: float = 0.0,
                duplicate: float = 0.0, reorder: float = 0.0, **config):
    a, b = new_stack(iss_a, seed=seed, **config), new_stack(iss_b, seed=seed + 1, **config)
    link = Link(a, b, loss=loss, duplicate=duplicate, reorder=reorder, seed=seed)
    return (link, *link.open())


def transfer(link: Link, sender, receiver, data: bytes, *, chunk: int = 50_000,
             max_steps: int = 400_000) -> bytes:
    """Write ``data`` into ``sender`` as space allows and read ``receiver`` dry each step."""
    sent = 0
    got = bytearray()
    for _ in range(max_steps):
        if sent < len(data):
            sent += sender.send(data[sent:sent + chunk], link.now)
        got += receiver.read(-1, link.now)
        if len(got) >= len(data):
            break
        if not link.step():
            break
    return bytes(got)


# -- reliability -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bulk_transfer_survives_loss_duplication_reordering(seed: int) -> None:
    link, ca, cb = linked_pair(seed=seed, loss=0.05, duplicate=0.05, reorder=0.2)
    data = random.Random(seed).randbytes(300_000)
    got = transfer(link, ca, cb, data)
    assert sha(got) == sha(data)
    assert link.dropped > 0 and ca.retransmits > 0
    assert ca.state is S.ESTABLISHED and cb.state is S.ESTABLISHED


def test_bulk_transfer_both_directions_at_once() -> None:
    link, ca, cb = linked_pair(seed=9, loss=0.03, reorder=0.1)
    rng = random.Random(9)
    up, down = rng.randbytes(120_000), rng.randbytes(90_000)
    sent_up = sent_down = 0
    got_up, got_down = bytearray(), bytearray()
    for _ in range(200_000):
        if sent_up < len(up):
            sent_up += ca.send(up[sent_up:sent_up + 30_000], link.now)
        if sent_down < len(down):
            sent_down += cb.send(down[sent_down:sent_down + 30_000], link.now)
        got_up += cb.read(-1, link.now)
        got_down += ca.read(-1, link.now)
        if len(got_up) == len(up) and len(got_down) == len(down):
            break
        link.step()
    assert sha(bytes(got_up)) == sha(up) and sha(bytes(got_down)) == sha(down)


@pytest.mark.parametrize("iss_a,iss_b", [(2**32 - 50_000, 2**32 - 1), (2**32 - 1, 5)])
def test_transfer_across_the_sequence_wrap(iss_a: int, iss_b: int) -> None:
    link, ca, cb = linked_pair(iss_a, iss_b, seed=4, loss=0.02, reorder=0.1)
    data = random.Random(4).randbytes(200_000)
    assert sha(transfer(link, ca, cb, data)) == sha(data)
    assert ca.snd_nxt < iss_a                       # SND.NXT wrapped past 2**32
    back = random.Random(5).randbytes(20_000)
    assert sha(transfer(link, cb, ca, back)) == sha(back)
    ca.shutdown(link.now)
    link.run(until=link.now + 5.0, stop=lambda: cb.eof)
    cb.shutdown(link.now)
    link.run(until=link.now + 5.0)
    assert ca.state is S.TIME_WAIT and cb.state is S.CLOSED


def test_transfer_with_small_buffers_and_slow_start() -> None:
    link, ca, cb = linked_pair(seed=6, loss=0.02, recv_buffer=3000, send_buffer=5000)
    data = random.Random(6).randbytes(60_000)
    assert sha(transfer(link, ca, cb, data, chunk=7000)) == sha(data)


# -- ACK policy (RFC 9293 3.8.6.3, RFC 5681 4.2) ------------------------------------------------


def scripted(**config) -> tuple[Peer, object]:
    stack = new_stack(**config)
    peer = Peer(stack, isn=PEER_ISN)
    conn = peer.stack_connects(syn_ack_options=Options(mss=1000))
    return peer, conn


def test_ack_every_second_full_segment() -> None:
    peer, conn = scripted()
    peer.send("P.", seq=1, ack=1, payload=b"a" * 1000)
    peer.expect_nothing()
    peer.send("P.", seq=1001, ack=1, payload=b"b" * 1000)
    peer.expect(".", seq=1, ack=2001)
    peer.send("P.", seq=2001, ack=1, payload=b"c" * 1000)
    peer.expect_nothing()
    peer.send("P.", seq=3001, ack=1, payload=b"d" * 1000)
    peer.expect(".", seq=1, ack=4001)


@pytest.mark.parametrize("delay", [0.04, 0.2])
def test_delayed_ack_timer(delay: float) -> None:
    peer, conn = scripted(delayed_ack=delay)
    peer.at(1.0)
    peer.send("P.", seq=1, ack=1, payload=b"a" * 10)
    peer.run_timers_until(1.0 + delay - 1e-6)
    peer.expect_nothing()
    peer.run_timers_until(1.0 + delay)
    peer.expect(".", seq=1, ack=11)


def test_delayed_ack_limit_enforced_by_config() -> None:
    from atcp.config import Config
    with pytest.raises(ValueError):
        Config(delayed_ack=0.6)


def test_out_of_order_gets_immediate_dup_ack_and_hole_fill_one_ack() -> None:
    peer, conn = scripted()
    peer.send("P.", seq=1001, ack=1, payload=b"b" * 1000)
    peer.expect(".", seq=1, ack=1)
    peer.send("P.", seq=3001, ack=1, payload=b"d" * 1000)
    peer.expect(".", seq=1, ack=1)
    assert conn.readable() == 0 and conn.reasm.held == 2000
    peer.send("P.", seq=2001, ack=1, payload=b"c" * 500)
    peer.expect(".", seq=1, ack=1)
    peer.send("P.", seq=1, ack=1, payload=b"a" * 1000)   # fills the first hole only
    peer.expect(".", seq=1, ack=2501)
    peer.send("P.", seq=2501, ack=1, payload=b"C" * 500)
    peer.expect(".", seq=1, ack=4001)                     # one cumulative ACK
    assert conn.read(-1, peer.now) == b"a" * 1000 + b"b" * 1000 + b"c" * 500 + b"C" * 500 \
        + b"d" * 1000
    assert conn.reasm.held == 0


def test_overlapping_and_duplicate_segments_deliver_each_byte_once() -> None:
    peer, conn = scripted()
    stream = bytes(range(256)) * 20                        # 5120 bytes
    pieces = [(0, 700), (500, 1500), (1500, 1500), (3000, 5120), (100, 4000), (2900, 3100),
              (0, 5120), (5000, 5120)]
    for start, end in pieces:
        peer.send("P.", seq=1 + start, ack=1, payload=stream[start:end])
    assert conn.read(-1, peer.now) == stream
    assert conn.rcv_nxt == peer.seq(1 + len(stream))


def test_out_of_order_fin_waits_for_the_hole() -> None:
    peer, conn = scripted()
    peer.send("FP.", seq=6, ack=1, payload=b"world")
    peer.expect(".", seq=1, ack=1)
    assert conn.state is S.ESTABLISHED and not conn.eof
    peer.send("P.", seq=1, ack=1, payload=b"hello")
    peer.expect(".", seq=1, ack=12)
    assert conn.state is S.CLOSE_WAIT and conn.read(-1, peer.now) == b"helloworld"


def test_data_beyond_window_is_trimmed_and_buffer_never_overflows() -> None:
    peer, conn = scripted(recv_buffer=3000, window_scaling=False)
    for i in range(3):
        peer.send("P.", seq=1 + 1000 * i, ack=1, payload=b"x" * 1000)
    peer.take()
    peer.send("P.", seq=3001, ack=1, payload=b"y" * 1000)   # window is 0 now
    peer.expect(".", seq=1, ack=3001, win=0)
    assert conn.readable() == 3000
    peer2, conn2 = scripted(recv_buffer=3000, window_scaling=False)
    peer2.send("P.", seq=1, ack=1, payload=b"z" * 4000)      # straddles the right edge
    assert conn2.readable() == 3000


def test_out_of_order_memory_bounded_by_window() -> None:
    peer, conn = scripted(recv_buffer=4000, window_scaling=False)
    for i in range(200):
        peer.send("P.", seq=2 + 37 * i, ack=1, payload=b"q" * 30)
    assert conn.reasm.held <= 4000
    assert conn.readable() == 0


# -- Nagle (RFC 9293 3.7.4) --------------------------------------------------------------------


def test_nagle_holds_small_segment_until_ack() -> None:
    peer, conn = scripted()
    conn.send(b"a", peer.now)
    peer.expect("P.", seq=1, payload=b"a")
    conn.send(b"b", peer.now)
    conn.send(b"c", peer.now)
    peer.expect_nothing()                                  # one small segment in flight
    peer.send(".", seq=1, ack=2)
    peer.expect("P.", seq=2, payload=b"bc")


def test_nagle_sends_full_segments_at_once() -> None:
    peer, conn = scripted()
    conn.send(b"a", peer.now)
    peer.take()
    conn.send(b"x" * 2500, peer.now)
    assert [len(s.payload) for s in peer.take()] == [1000, 1000]


def test_nodelay_sends_every_write() -> None:
    peer, conn = scripted(nodelay=True)
    for ch in b"abc":
        conn.send(bytes([ch]), peer.now)
    assert [s.payload for s in peer.take()] == [b"a", b"b", b"c"]


# -- flow control: our window (RFC 9293 3.8.6.2.2) ----------------------------------------------


def test_advertised_window_is_free_receive_buffer() -> None:
    peer, conn = scripted(recv_buffer=6000, window_scaling=False)
    windows = []
    for i in range(6):
        peer.send("P.", seq=1 + 1000 * i, ack=1, payload=b"x" * 1000)
        windows += [s.window for s in peer.take()]
    assert windows == [4000, 2000, 0]
    conn.read(6000, peer.now)
    peer.expect(".", seq=1, ack=6001, win=6000)           # window update when read


def test_receiver_sws_opens_in_steps_of_min_half_buffer_and_mss() -> None:
    peer, conn = scripted(recv_buffer=4000, window_scaling=False)
    for i in range(4):
        peer.send("P.", seq=1 + 1000 * i, ack=1, payload=b"x" * 1000)
    assert peer.take()[-1].window == 0
    conn.read(600, peer.now)
    peer.expect_nothing()                                  # 600 < min(2000, 1000)
    conn.read(399, peer.now)
    peer.expect_nothing()
    conn.read(1, peer.now)
    peer.expect(".", seq=1, ack=4001, win=1000)
    # A window probe meanwhile is answered with the window actually offered.
    peer.send(".", seq=4001, ack=1)
    peer.expect_nothing()


def test_window_never_shrinks_the_offered_right_edge() -> None:
    peer, conn = scripted(recv_buffer=4000, window_scaling=False)
    peer.send("P.", seq=1, ack=1, payload=b"x" * 500)
    peer.send("P.", seq=501, ack=1, payload=b"x" * 500)
    seg = peer.expect(".", seq=1, ack=1001)
    assert seg.window == 3000
    assert conn._rcv_wnd() == 3000


def test_slow_reader_closes_window_over_link() -> None:
    link, ca, cb = linked_pair(seed=3, recv_buffer=8000, send_buffer=64_000)
    data = random.Random(3).randbytes(40_000)
    assert ca.send(data, link.now) == 40_000
    link.run(until=link.now + 5.0)
    assert cb.readable() == 8000                           # full, and no more
    assert ca.snd_wnd == 0
    got = bytearray()
    for _ in range(200):                                   # read 1000 bytes every 10 ms
        got += cb.read(1000, link.now)
        link.run(until=link.now + 0.01)
        if len(got) == len(data):
            break
    got += cb.read(-1, link.now)
    assert sha(bytes(got)) == sha(data)


# -- flow control: the peer's window, zero-window probing (3.8.6.1) -----------------------------


def test_never_sends_beyond_peer_window() -> None:
    peer, conn = scripted(nodelay=True)
    peer.send(".", seq=1, ack=1, win=2500)
    conn.send(b"y" * 10_000, peer.now)
    segs = peer.take()
    assert sum(len(s.payload) for s in segs) <= 2500
    assert all(s.seq + len(s.payload) <= peer.iss_rel(1 + 2500) for s in segs)


def test_old_segment_does_not_update_send_window() -> None:
    peer, conn = scripted(nodelay=True)
    peer.send("P.", seq=1, ack=1, payload=b"n" * 10, win=3000)
    peer.send(".", seq=1, ack=1, win=100)                  # older than the last update
    assert conn.snd_wnd == 3000


def _zero_window(peer: Peer, conn, nbytes: int = 500) -> None:
    peer.send(".", seq=1, ack=1, win=0)
    conn.send(b"z" * nbytes, peer.now)
    peer.expect_nothing()


def test_zero_window_probes_back_off_and_never_time_out() -> None:
    peer, conn = scripted(data_retries=3)
    peer.at(1.0)
    _zero_window(peer, conn)
    probe_times = []
    for _ in range(25):
        deadline = conn.t_persist
        assert deadline is not None
        peer.run_timers_until(deadline)
        probes = peer.take()
        assert len(probes) == 1 and len(probes[0].payload) == 1
        probe_times.append(peer.now)
        peer.send(".", seq=1, ack=1, win=0)                # answered: still closed
        peer.expect_nothing()
    gaps = [round(b - a, 6) for a, b in zip(probe_times, probe_times[1:])]
    assert gaps[1:4] == [gaps[0] * 2, gaps[0] * 4, gaps[0] * 8]
    assert max(gaps) == 60.0 and gaps[-1] == 60.0          # capped at rto_max
    assert conn.state is S.ESTABLISHED                      # far more than data_retries


def test_window_reopening_resumes_from_snd_una() -> None:
    peer, conn = scripted()
    peer.at(1.0)
    _zero_window(peer, conn)
    for _ in range(3):
        peer.run_timers_until(conn.t_persist)
        peer.take()
        peer.send(".", seq=1, ack=1, win=0)
    peer.send(".", seq=1, ack=1, win=5000)                 # the window opens
    segs = peer.take()
    assert segs and segs[0].seq == peer.iss_rel(1)         # nothing skipped
    covered = b"".join(s.payload for s in segs)
    assert covered == b"z" * 500


def test_unanswered_probes_end_in_timeout() -> None:
    peer, conn = scripted(data_retries=3)
    _zero_window(peer, conn)
    for _ in range(20):
        if conn.state is S.CLOSED:
            break
        peer.run_timers_until(conn.next_deadline())
    closed = [e for e in peer.events() if isinstance(e, ev.ConnectionClosed)]
    assert len(closed) == 1 and isinstance(closed[0].error, TimeoutError)


def test_probe_ack_gives_no_rtt_sample() -> None:
    """Karn (RFC 6298 3): the probe byte is sent again and again, and its ACK waits for the
    reader, not the path; timing it would blow the RTO up to the length of the stall."""
    peer, conn = _rtt_100ms()
    _zero_window(peer, conn, 10)
    for _ in range(5):
        peer.run_timers_until(conn.t_persist)
        peer.take()
        peer.send(".", seq=1, ack=1, win=0)
    peer.send(".", seq=1, ack=2, win=5000)                # the probe byte accepted at last
    assert conn.rto.srtt == pytest.approx(0.1)
    assert conn.rto.rto < 1.0


def test_probe_accepted_when_window_opens_by_one() -> None:
    peer, conn = scripted()
    _zero_window(peer, conn, 3)
    peer.run_timers_until(conn.t_persist)
    probe = peer.expect(".", seq=1, length=1)
    peer.send(".", seq=1, ack=2, win=10)
    rest = peer.expect("P.", seq=2)
    assert probe.payload + rest.payload == b"zzz"


# -- retransmission (RFC 6298) -----------------------------------------------------------------


def _rtt_100ms(**config) -> tuple[Peer, object]:
    stack = new_stack(**config)
    peer = Peer(stack, isn=PEER_ISN)
    conn = stack.connect(peer.remote, peer.port, 0.0, local_port=80)
    peer.expect("S")
    peer.at(0.1)
    peer.send("S.", seq=0, ack=1)
    peer.expect(".")
    assert conn.rto.rto == pytest.approx(0.3)
    return peer, conn


def test_rto_backoff_doubles_and_retries_end_in_timeout() -> None:
    peer, conn = _rtt_100ms(data_retries=5)
    peer.at(1.0)
    conn.send(b"r" * 100, peer.now)
    peer.expect("P.", seq=1, length=100)
    times = []
    for _ in range(10):
        if conn.t_rexmt is None:
            break
        peer.run_timers_until(conn.t_rexmt)
        for seg in peer.take():
            if seg.flags & 0x04:
                assert seg.seq == peer.iss_rel(101) and seg.ack == 0
            else:
                assert seg.seq == peer.iss_rel(1) and len(seg.payload) == 100
                times.append(round(peer.now - 1.0, 6))
    assert times == [0.3, 0.9, 2.1, 4.5, 9.3]
    closed = [e for e in peer.events() if isinstance(e, ev.ConnectionClosed)]
    assert len(closed) == 1 and isinstance(closed[0].error, TimeoutError)
    assert peer.now == pytest.approx(1.0 + 9.3 + 9.6)
    assert conn.state is S.CLOSED
    with pytest.raises(TimeoutError):
        conn.send(b"x", peer.now)


def test_rto_capped_at_max() -> None:
    peer, conn = _rtt_100ms(data_retries=15, rto_max=5.0)
    conn.send(b"r", peer.now)
    peer.take()
    for _ in range(8):
        peer.run_timers_until(conn.t_rexmt)
    assert conn.rto.rto == 5.0


def test_karn_no_rtt_sample_from_retransmission() -> None:
    peer, conn = _rtt_100ms()
    srtt = conn.rto.srtt
    peer.at(1.0)
    conn.send(b"k" * 100, peer.now)
    peer.take()
    peer.run_timers_until(1.3)
    peer.expect("P.", seq=1, length=100)                   # retransmitted
    assert conn.rto.rto == pytest.approx(0.6)
    peer.at(1.5)
    peer.send(".", seq=1, ack=101)                         # ambiguous: which copy?
    assert conn.rto.srtt == srtt                           # no sample taken
    assert conn.rto.rto == pytest.approx(0.6)              # backed-off value kept (5.7)
    conn.send(b"k" * 100, peer.now)
    peer.take()
    peer.at(1.7)
    peer.send(".", seq=1, ack=201)                         # a clean sample
    assert conn.rto.srtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.2)


def test_ack_restarts_timer_and_all_acked_stops_it() -> None:
    peer, conn = _rtt_100ms(nodelay=True)
    conn.send(b"a" * 100, peer.now)
    conn.send(b"b" * 100, peer.now)
    peer.take()
    peer.at(0.2)
    peer.send(".", seq=1, ack=101)
    assert conn.t_rexmt == pytest.approx(0.2 + conn.rto.rto)
    peer.send(".", seq=1, ack=201)
    assert conn.t_rexmt is None


def test_fast_retransmit_after_three_dup_acks() -> None:
    peer, conn = scripted()
    conn.send(b"f" * 5000, peer.now)
    assert len(peer.take()) == 5
    peer.send(".", seq=1, ack=1001)
    peer.expect_nothing()
    for _ in range(2):
        peer.send(".", seq=1, ack=1001)
        peer.expect_nothing()
    peer.send(".", seq=1, ack=1001)                        # the third duplicate
    peer.expect(".", seq=1001, length=1000)
    assert conn.retransmits == 1 and conn.in_recovery
    peer.send(".", seq=1, ack=1001)                        # more dups: no more resends
    peer.expect_nothing()
    peer.send(".", seq=1, ack=5001)                        # full ACK ends recovery
    assert not conn.in_recovery


def test_dup_ack_with_data_or_window_change_does_not_count() -> None:
    peer, conn = scripted()
    conn.send(b"f" * 5000, peer.now)
    peer.take()
    peer.send(".", seq=1, ack=1001)
    peer.send("P.", seq=1, ack=1001, payload=b"1")
    peer.send("P.", seq=2, ack=1001, payload=b"2")
    peer.send(".", seq=3, ack=1001, win=60000)
    assert conn.dupacks <= 1 and conn.retransmits == 0


# -- half-close ---------------------------------------------------------------------------------


def test_we_half_close_and_keep_receiving() -> None:
    peer, conn = scripted()
    conn.send(b"request", peer.now)
    conn.shutdown(peer.now)
    data, fin = peer.take()
    peer.check(data, "P.", seq=1, payload=b"request")
    peer.check(fin, "F.", seq=8)
    peer.send(".", seq=1, ack=9)
    assert conn.state is S.FIN_WAIT_2
    with pytest.raises(OSError):
        conn.send(b"more", peer.now)
    peer.send("P.", seq=1, ack=9, payload=b"response " * 300)
    assert conn.read(-1, peer.now) == b"response " * 300
    peer.take()
    peer.send("F.", seq=2701, ack=9)
    peer.expect(".", seq=9, ack=2702)
    assert conn.state is S.TIME_WAIT and conn.eof


def test_peer_half_closes_and_we_keep_sending() -> None:
    peer, conn = scripted()
    peer.send("F.", seq=1, ack=1)
    peer.expect(".", seq=1, ack=2)
    assert conn.state is S.CLOSE_WAIT
    assert [type(e) for e in peer.events()] == [ev.Connected, ev.EofReceived]
    assert conn.read(-1, peer.now) == b""
    conn.send(b"still talking", peer.now)
    peer.expect("P.", seq=1, ack=2, payload=b"still talking")
    peer.send(".", seq=2, ack=14)
    conn.shutdown(peer.now)
    peer.expect("F.", seq=14, ack=2)
    assert conn.state is S.LAST_ACK
    peer.send(".", seq=2, ack=15)
    assert conn.state is S.CLOSED
    closed = [e for e in peer.events() if isinstance(e, ev.ConnectionClosed)]
    assert len(closed) == 1 and closed[0].error is None


def test_half_close_over_link_both_ways() -> None:
    link, ca, cb = linked_pair(seed=8, loss=0.05)
    ca.send(b"question", link.now)
    ca.shutdown(link.now)
    link.run(until=link.now + 10, stop=lambda: cb.eof)
    assert cb.read(-1, link.now) == b"question" and cb.state is S.CLOSE_WAIT
    answer = random.Random(8).randbytes(50_000)
    got = transfer(link, cb, ca, answer)
    assert sha(got) == sha(answer)
    cb.close(link.now)
    link.run(until=link.now + 20)
    assert ca.state is S.TIME_WAIT and cb.state is S.CLOSED
    assert ca.eof


def test_data_queued_behind_fin_still_flows_in_last_ack() -> None:
    """Our FIN waits behind data the window could not take yet; ACKs in LAST-ACK must keep
    sending it (found by the two-stack property test: the connection stalled)."""
    peer, conn = scripted(nodelay=True)
    peer.send("F.", seq=1, ack=1, win=1000)
    peer.expect(".", seq=1, ack=2)
    conn.send(b"L" * 2500, peer.now)
    conn.shutdown(peer.now)
    peer.expect(".", seq=1, ack=2, length=1000)
    assert conn.state is S.LAST_ACK
    peer.send(".", seq=2, ack=1001, win=1000)
    peer.expect(".", seq=1001, ack=2, length=1000)
    peer.send(".", seq=2, ack=2001, win=1000)
    peer.expect("FP.", seq=2001, ack=2, length=500)
    peer.send(".", seq=2, ack=2502)
    assert conn.state is S.CLOSED


def test_data_queued_behind_fin_still_flows_in_closing() -> None:
    peer, conn = scripted(nodelay=True)
    peer.send(".", seq=1, ack=1, win=1000)
    conn.send(b"C" * 1500, peer.now)
    conn.shutdown(peer.now)
    peer.expect(".", seq=1, length=1000)
    peer.send("F.", seq=1, ack=1, win=1000)                # the peer closes too
    peer.expect(".", seq=1001, ack=2)
    assert conn.state is S.CLOSING
    peer.send(".", seq=2, ack=1001, win=1000)
    peer.expect("FP.", seq=1001, ack=2, length=500)
    peer.send(".", seq=2, ack=1502)
    assert conn.state is S.TIME_WAIT


def test_fin_wait_2_timeout_after_close() -> None:
    peer, conn = scripted(fin_wait_2_timeout=10.0)
    conn.close(peer.now)
    peer.expect("F.", seq=1, ack=1)
    peer.send(".", seq=1, ack=2)
    assert conn.state is S.FIN_WAIT_2
    peer.run_timers_until(9.999)
    assert conn.state is S.FIN_WAIT_2
    peer.run_timers_until(10.0)
    assert conn.state is S.CLOSED
    peer.expect_nothing()


def test_send_space_event_when_acked() -> None:
    peer, conn = scripted(send_buffer=2000, nodelay=True)
    assert conn.send(b"s" * 5000, peer.now) == 2000
    assert conn.send(b"s", peer.now) == 0
    peer.take()
    peer.events()
    peer.send(".", seq=1, ack=1001)
    assert [type(e) for e in peer.events()] == [ev.SendSpace]
    assert conn.send(b"s" * 5000, peer.now) == 1000


def test_timestamps_echo_recent() -> None:
    stack = new_stack()
    peer = Peer(stack, isn=PEER_ISN)
    conn = peer.stack_connects(syn_ack_options=Options(ts_val=100, ts_ecr=0))
    peer.send("P.", seq=1, ack=1, payload=b"a" * 1000, options=Options(ts_val=200, ts_ecr=1))
    peer.send("P.", seq=1001, ack=1, payload=b"a" * 1000, options=Options(ts_val=201, ts_ecr=1))
    ack = peer.expect(".", seq=1, ack=2001)
    assert ack.options.ts_ecr == 200                      # RFC 7323 4.3: the first unACKed


def test_data_after_peers_fin_is_acked_not_delivered() -> None:
    peer, conn = scripted()
    peer.send("FP.", seq=1, ack=1, payload=b"last")
    peer.expect(".", seq=1, ack=6)
    assert conn.state is S.CLOSE_WAIT
    peer.send("P.", seq=6, ack=1, payload=b"impossible")   # 3.10.7.4: should not occur
    peer.expect(".", seq=1, ack=6)
    assert conn.read(-1, peer.now) == b"last"


def test_retransmitted_data_with_fin_adds_only_the_fin() -> None:
    peer, conn = scripted()
    peer.send("P.", seq=1, ack=1, payload=b"abc")
    peer.send("FP.", seq=1, ack=1, payload=b"abc")         # the same bytes, now with FIN
    assert conn.state is S.CLOSE_WAIT
    assert conn.read(-1, peer.now) == b"abc"
    assert conn.rcv_nxt == peer.seq(5)


# -- keep-alive (RFC 9293 3.8.4) ----------------------------------------------------------------


def test_keepalive_probes_idle_connection_and_times_out() -> None:
    peer, conn = scripted(keepalive=True, keepalive_idle=100.0, keepalive_interval=10.0,
                          keepalive_probes=3)
    peer.run_timers_until(99.99)
    peer.expect_nothing()
    peer.run_timers_until(100.0)
    peer.expect(".", seq=0, ack=1, length=0)                # <SEQ=SND.UNA-1><ACK=RCV.NXT>
    peer.send(".", seq=1, ack=1)                           # answered: idle again
    peer.run_timers_until(199.99)
    peer.expect_nothing()
    for t in (200.0, 210.0, 220.0):                        # unanswered from now on
        peer.run_timers_until(t)
        peer.expect(".", seq=0, ack=1)
    peer.run_timers_until(230.0)
    peer.expect("R", seq=1, abs_ack=0)
    closed = [e for e in peer.events() if isinstance(e, ev.ConnectionClosed)]
    assert len(closed) == 1 and isinstance(closed[0].error, TimeoutError)


def test_no_keepalive_by_default() -> None:
    peer, conn = scripted()
    assert conn.t_keep is None
    peer.run_timers_until(10_000.0)
    peer.expect_nothing()
    assert conn.state is S.ESTABLISHED


def test_second_shutdown_sends_nothing_more() -> None:
    peer, conn = scripted()
    conn.shutdown(peer.now)
    peer.expect("F.", seq=1, ack=1)
    conn.shutdown(peer.now)
    peer.expect_nothing()
    peer.send(".", seq=1, ack=2)
    conn.shutdown(peer.now)                                # FIN-WAIT-2: nothing to do
    peer.expect_nothing()
    assert conn.t_finwait2 is None                         # half-closed: may wait forever


def test_close_after_shutdown_arms_fin_wait_2_timer() -> None:
    peer, conn = scripted(fin_wait_2_timeout=5.0)
    conn.shutdown(peer.now)
    peer.expect("F.", seq=1, ack=1)
    peer.send(".", seq=1, ack=2)
    peer.at(1.0)
    conn.close(peer.now)
    assert conn.t_finwait2 == 6.0
    peer.run_timers_until(6.0)
    assert conn.state is S.CLOSED
    conn.close(peer.now)                                   # closing a closed one: no-op
    peer.expect_nothing()
