"""BBR v1 (draft-cardwell-iccrg-bbr-congestion-control-00) driven with hand-made rate
samples on a fake clock: the filters, the state machine (STARTUP -> DRAIN -> PROBE_BW ->
PROBE_RTT), the window and pacing rate it sets, loss; then whole connections over the
simulated link against CUBIC."""

from __future__ import annotations

import math
import random

import pytest

from atcp.config import Config
from atcp.core.congestion import names, resolve
from atcp.core.congestion.bbr import (BTL_BW_FILTER_LEN, DRAIN, HIGH_GAIN, MIN_PIPE_CWND,
                                      PACING_GAIN_CYCLE, PROBE_BW, PROBE_RTT,
                                      PROBE_RTT_DURATION, RT_PROP_FILTER_LEN, STARTUP, Bbr,
                                      WindowedMax)
from atcp.core.delivery import DeliveryRate
from atcp.core.info import tcp_info
from atcp.core.stack import Stack
from atcp.testing.link import Link

MSS = 1000
RTT = 0.1


class Feeder:
    """Hands one BBR the samples a path would: each `ack` is one ACK's `RateSample`."""

    def __init__(self, cc: Bbr, now: float = 1.0) -> None:
        self.cc = cc
        self.est = DeliveryRate()
        self.now = now

    def ack(self, rate: float, *, in_flight: int = 0, new_round: bool = True,
            app_limited: bool = False, acked: int = MSS, rtt: float | None = RTT,
            losses: int = 0, prior_in_flight: int | None = None, dt: float = 0.0):
        self.now += dt
        est, rs = self.est, self.est.rs
        # A new round: the sampled transmission left after the round began.
        rs.prior_delivered = est.delivered if new_round else -1
        est.delivered += acked
        rs.delivered = acked
        rs.newly_acked = acked
        rs.interval = RTT if rate > 0 else 0.0
        rs.delivery_rate = rate
        rs.is_app_limited = app_limited
        rs.rtt = rtt
        rs.losses = losses
        rs.prior_in_flight = in_flight + acked if prior_in_flight is None else prior_in_flight
        self.cc.on_rate_sample(rs, self.now, in_flight)
        return self.cc

    def to_probe_bw(self, bw: float = 1e6) -> Bbr:
        """STARTUP at a steady ``bw`` until the pipe is full, then drained."""
        for _ in range(4):
            self.ack(bw, in_flight=10 * MSS, dt=RTT)
        assert self.cc.state is PROBE_BW
        return self.cc


# -- the bandwidth filter (4.1.1.5) ------------------------------------------------------

def test_windowed_max_matches_a_brute_force_window() -> None:
    rng = random.Random(7)
    f = WindowedMax(BTL_BW_FILTER_LEN)
    history: list[tuple[int, float]] = []
    rnd = 0
    for _ in range(2000):
        rnd += rng.choice((0, 0, 1, 1, 2))
        value = rng.uniform(0, 100)
        history.append((rnd, value))
        got = f.update(value, rnd)
        want = max(v for r, v in history if r > rnd - BTL_BW_FILTER_LEN)
        assert got == want == f.get()


def test_windowed_max_forgets_a_peak_after_ten_rounds() -> None:
    f = WindowedMax(10)
    f.update(50.0, 1)
    assert f.update(10.0, 10) == 50.0        # round 1 is still within rounds 1..10
    assert f.update(10.0, 11) == 10.0        # now it is not
    f.reset()
    assert f.get() == 0.0


# -- STARTUP, DRAIN, PROBE_BW (4.3) -----------------------------------------------------

def test_startup_uses_the_high_gain_and_grows_the_window_by_what_is_acked() -> None:
    cc = Bbr(MSS, 10)
    assert cc.state is STARTUP and cc.pacing_gain == cc.cwnd_gain == HIGH_GAIN
    assert abs(HIGH_GAIN - 2 / math.log(2)) < 1e-12
    feed = Feeder(cc)
    feed.ack(1e5, in_flight=9 * MSS, acked=MSS)
    assert cc.btl_bw == 1e5 and cc.rt_prop == RTT
    assert cc.cwnd == 11 * MSS                           # below target: + acked (4.2.3.5)
    assert cc.pacing_rate(None) == pytest.approx(HIGH_GAIN * 10 * MSS / RTT)


def test_startup_ends_after_three_rounds_without_a_quarter_more_bandwidth() -> None:
    cc = Bbr(MSS, 10)
    feed = Feeder(cc)
    for bw in (1e5, 2e5, 4e5):                          # doubling: the pipe is not full
        feed.ack(bw, in_flight=100 * MSS, dt=RTT)
    assert cc.state is STARTUP and cc.full_bw == 4e5
    for i in range(3):                                  # +10% is not +25%
        assert cc.state is STARTUP and cc.full_bw_count == i
        feed.ack(4.4e5, in_flight=100 * MSS, dt=RTT)
    assert cc.filled_pipe and cc.state is DRAIN
    assert cc.pacing_gain == pytest.approx(1 / HIGH_GAIN) and cc.cwnd_gain == HIGH_GAIN
    # Samples inside a round do not count rounds.
    feed.ack(4.4e5, in_flight=100 * MSS, new_round=False)
    assert cc.state is DRAIN
    # DRAIN ends once what is in flight is down to one BDP (plus the quanta).
    bdp = int(4.4e5 * RTT)
    feed.ack(4.4e5, in_flight=bdp + 3 * cc.send_quantum, new_round=False)
    assert cc.state is PROBE_BW and cc.cwnd_gain == 2
    assert cc.pacing_gain == PACING_GAIN_CYCLE[cc.cycle_index]
    assert cc.cycle_index != 1                          # never starts by draining


def test_application_limited_samples_count_only_when_higher() -> None:
    cc = Bbr(MSS, 10)
    feed = Feeder(cc)
    feed.ack(1e6, in_flight=10 * MSS, dt=RTT)
    feed.ack(5e5, app_limited=True, dt=RTT)
    assert cc.btl_bw == 1e6                             # lower and limited: ignored
    for _ in range(5):                                  # limited rounds never fill the pipe
        feed.ack(1e6, app_limited=True, dt=RTT)
    assert cc.state is STARTUP and cc.full_bw_count == 0
    feed.ack(2e6, app_limited=True, dt=RTT)
    assert cc.btl_bw == 2e6                             # higher: the path can do at least this


def test_bandwidth_estimate_decays_after_ten_rounds() -> None:
    cc = Feeder(Bbr(MSS, 10)).to_probe_bw(1e6)
    feed = Feeder(cc, now=10.0)
    feed.est.delivered = cc.next_round_delivered
    for _ in range(BTL_BW_FILTER_LEN):
        feed.ack(5e5, in_flight=20 * MSS, dt=RTT)
    assert cc.btl_bw == 5e5


def test_probe_bw_cycles_through_the_eight_gains() -> None:
    cc = Feeder(Bbr(MSS, 10)).to_probe_bw(1e6)
    feed = Feeder(cc, now=5.0)
    feed.est.delivered = cc.next_round_delivered
    bdp = int(1e6 * RTT)
    quanta = 3 * cc.send_quantum
    seen = []
    for _ in range(40):
        idx = cc.cycle_index
        if cc.pacing_gain > 1:
            # 5/4 probes until 1.25 BDP is in flight, however long that takes.
            feed.ack(1e6, in_flight=bdp, prior_in_flight=bdp, dt=2 * RTT)
            assert cc.cycle_index == idx
            feed.ack(1e6, in_flight=bdp, prior_in_flight=int(1.25 * bdp) + quanta, dt=0.001)
        elif cc.pacing_gain < 1:
            # 3/4 ends early, as soon as the queue is gone (one BDP in flight).
            feed.ack(1e6, in_flight=bdp, prior_in_flight=bdp + quanta, dt=0.01)
        else:
            feed.ack(1e6, in_flight=bdp, prior_in_flight=bdp, dt=RTT / 2)
            assert cc.cycle_index == idx                # a phase lasts an rt_prop
            feed.ack(1e6, in_flight=bdp, prior_in_flight=bdp, dt=RTT / 2 + 0.001)
        assert cc.cycle_index == (idx + 1) % len(PACING_GAIN_CYCLE)
        assert cc.pacing_gain == PACING_GAIN_CYCLE[cc.cycle_index]
        seen.append(cc.pacing_gain)
        assert cc.pacing_rate(RTT) == pytest.approx(cc.pacing_gain * 1e6)
    assert seen.count(1.25) == seen.count(0.75) == 5 and seen.count(1) == 30


def test_probe_bw_window_is_twice_the_bdp_plus_quanta() -> None:
    cc = Feeder(Bbr(MSS, 10)).to_probe_bw(1e6)
    feed = Feeder(cc, now=5.0)
    feed.est.delivered = cc.next_round_delivered
    for _ in range(400):
        feed.ack(1e6, in_flight=cc.cwnd, acked=MSS, new_round=False, dt=0.0001)
    target = int(2 * 1e6 * RTT) + 3 * cc.send_quantum
    assert cc.target_cwnd == target and cc.cwnd == target


def test_probe_rtt_after_ten_seconds_without_a_new_minimum() -> None:
    cc = Feeder(Bbr(MSS, 10)).to_probe_bw(1e6)
    feed = Feeder(cc, now=1.4)
    feed.est.delivered = cc.next_round_delivered
    for _ in range(300):
        feed.ack(1e6, in_flight=cc.cwnd, rtt=2 * RTT, new_round=False, dt=0.001)
    before = cc.cwnd
    assert cc.state is PROBE_BW and cc.rt_prop == RTT
    feed.now = cc.rt_prop_stamp + RT_PROP_FILTER_LEN + 0.001
    feed.ack(1e6, in_flight=50 * MSS, rtt=2 * RTT, new_round=False)
    assert cc.state is PROBE_RTT and cc.cwnd == MIN_PIPE_CWND * MSS
    assert cc.rt_prop == 2 * RTT                        # the expired minimum gave way
    assert feed.est.app_limited != 0                    # its low rate is not the path's
    assert cc.probe_rtt_done_stamp is None              # still draining to four segments
    feed.ack(1e6, in_flight=MIN_PIPE_CWND * MSS, rtt=RTT, new_round=False, dt=0.01)
    start = feed.now
    assert cc.probe_rtt_done_stamp == pytest.approx(start + PROBE_RTT_DURATION)
    assert cc.rt_prop == RTT                            # the queue is gone: true minimum
    feed.ack(1e6, in_flight=2 * MSS, new_round=True, dt=0.05)     # a round trip passed,
    assert cc.state is PROBE_RTT                        # but not 200 ms
    feed.ack(1e6, in_flight=2 * MSS, new_round=False, dt=PROBE_RTT_DURATION)
    assert cc.state is PROBE_BW and cc.cwnd >= before   # the window from before
    assert cc.rt_prop_stamp == feed.now


def test_probe_rtt_from_startup_goes_back_to_startup() -> None:
    cc = Bbr(MSS, 10)
    feed = Feeder(cc)
    feed.ack(1e5, in_flight=5 * MSS, dt=RTT)
    feed.now += RT_PROP_FILTER_LEN + 0.001
    feed.ack(1e5, in_flight=3 * MSS, rtt=0.2, new_round=False)
    assert cc.state is PROBE_RTT
    feed.ack(1e5, in_flight=3 * MSS, new_round=False, dt=0.01)   # <= 4 segments: 200 ms
    feed.ack(1e5, in_flight=3 * MSS, dt=PROBE_RTT_DURATION + 0.01)
    assert cc.state is STARTUP and cc.pacing_gain == HIGH_GAIN


# -- pacing (4.2.1) ----------------------------------------------------------------------

def test_pacing_rate_before_and_after_the_first_sample() -> None:
    cc = Bbr(MSS, 10)
    assert cc.pacing_rate(None) is None                 # no RTT yet: the IW goes at once
    assert cc.pacing_rate(0.05) == pytest.approx(HIGH_GAIN * 10 * MSS / 0.05)
    feed = Feeder(cc)
    feed.ack(1e6, in_flight=10 * MSS)
    assert cc.pacing_rate(0.05) == pytest.approx(HIGH_GAIN * 1e6)
    feed.ack(1e5, in_flight=10 * MSS)                   # STARTUP never paces slower
    assert cc.pacing_rate(0.05) == pytest.approx(HIGH_GAIN * 1e6)


# -- loss (4.2.3.4) ----------------------------------------------------------------------

def test_a_loss_episode_conserves_packets_for_a_round_then_restores() -> None:
    cc = Feeder(Bbr(MSS, 10)).to_probe_bw(1e6)
    feed = Feeder(cc, now=5.0)
    feed.est.delivered = cc.next_round_delivered
    for _ in range(400):
        feed.ack(1e6, in_flight=cc.cwnd, new_round=False, dt=0.0001)
    full, bw, rt_prop = cc.cwnd, cc.btl_bw, cc.rt_prop
    feed.ack(0, in_flight=150 * MSS, acked=0, losses=1, new_round=False)
    assert cc.cwnd == full - MSS                        # minus what was marked lost
    cc.on_congestion(feed.now, 160 * MSS)
    assert cc.cwnd == 150 * MSS                         # in flight + delivered (none)
    assert cc.packet_conservation and (cc.btl_bw, cc.rt_prop) == (bw, rt_prop)
    feed.ack(1e6, in_flight=150 * MSS, acked=MSS, new_round=False)
    assert cc.cwnd == 151 * MSS                         # one out per one delivered
    feed.ack(1e6, in_flight=140 * MSS, acked=MSS, new_round=True)
    assert not cc.packet_conservation and cc.cwnd == 152 * MSS   # grows again
    cc.on_recovery_end(feed.now, 140 * MSS)
    assert cc.cwnd == full - MSS and not cc.in_loss_recovery   # saved on entering
    assert (cc.btl_bw, cc.rt_prop, cc.state) == (bw, rt_prop, PROBE_BW)


def test_a_timeout_restarts_from_one_segment_and_restores_after_a_round() -> None:
    cc = Feeder(Bbr(MSS, 10)).to_probe_bw(1e6)
    feed = Feeder(cc, now=5.0)
    feed.est.delivered = cc.next_round_delivered
    full = cc.cwnd
    cc.on_rto(feed.now, 50 * MSS, first=True)
    assert cc.cwnd == MSS and cc.packet_conservation
    cc.on_rto(feed.now + 1, 50 * MSS, first=False)     # a repeat keeps the saved window
    feed.ack(1e6, in_flight=0, acked=MSS, new_round=False, dt=1.1)
    assert cc.cwnd == MSS
    feed.ack(1e6, in_flight=0, acked=MSS, new_round=True)
    assert cc.cwnd == full + MSS and not cc.packet_conservation   # restored, then + acked


def test_undo_ends_conservation_and_restores_the_window() -> None:
    cc = Feeder(Bbr(MSS, 10)).to_probe_bw(1e6)
    full = cc.cwnd
    cc._in_flight, cc._acked = 2 * MSS, 0
    cc.on_congestion(6.0, 10 * MSS)
    assert cc.cwnd == 2 * MSS
    cc.undo()
    assert cc.cwnd == full and not cc.packet_conservation and not cc.in_loss_recovery


# -- registration -------------------------------------------------------------------------

def test_bbr_is_registered_and_selectable() -> None:
    assert "bbr" in names() and resolve("bbr") is Bbr
    assert Config(congestion="bbr").congestion == "bbr"
    assert Bbr.wants_rate_samples and not resolve("cubic").wants_rate_samples


def test_cli_offers_bbr() -> None:
    from atcp.cli.common import congestion_names
    assert "bbr" in congestion_names()


# -- whole connections over the simulated link --------------------------------------------

def _transfer(congestion: str, size: int, *, loss: float = 0.01, seed: int = 4,
              **config) -> tuple[float, object]:
    cfg = Config(congestion=congestion, **config)
    a = Stack(cfg, rng=random.Random(seed), secret=b"a" * 32)
    b = Stack(cfg, rng=random.Random(seed + 1), secret=b"b" * 32)
    link = Link(a, b, delay=0.01, loss=loss, seed=seed)
    ca, cb = link.open()
    data = random.Random(seed).randbytes(size)
    sent, got = 0, bytearray()
    start = link.now
    for _ in range(2_000_000):
        if sent < size:
            sent += ca.send(data[sent:sent + 65536], link.now)
        got += cb.read(-1, link.now)
        if len(got) == size or not link.step():
            break
    assert bytes(got) == data
    return link.now - start, ca


def test_bbr_outruns_cubic_at_one_percent_random_loss() -> None:
    # 1% loss each way, 20 ms RTT, the same seed: CUBIC sits near the Mathis bound,
    # BBR's model does not take random loss for congestion. (Simulated time, not wall.)
    size = 3 << 20
    t_cubic, cubic = _transfer("cubic", size)
    t_bbr, bbr = _transfer("bbr", size)
    assert t_cubic / t_bbr > 3
    info = tcp_info(bbr)
    assert info.congestion == "bbr" and info.lost > 0


def test_tcp_info_shows_the_model() -> None:
    link, conn, peer = _moved_200_kb("bbr")
    state = tcp_info(conn).congestion_state
    assert state["state"] in (STARTUP, DRAIN, PROBE_BW) and state["btl_bw"] > 0
    assert state["rt_prop"] is not None and 0.019 < state["rt_prop"] < 0.05
    assert set(state) == {"state", "btl_bw", "rt_prop", "pacing_gain", "cwnd_gain"}
    _, cubic, _ = _moved_200_kb("cubic")
    assert tcp_info(cubic).congestion_state == {}


def _moved_200_kb(congestion: str):
    """A connection over a 20 ms link that has sent 200 kB and had it acknowledged."""
    cfg = Config(congestion=congestion)
    a = Stack(cfg, rng=random.Random(1), secret=b"a" * 32)
    b = Stack(cfg, rng=random.Random(2), secret=b"b" * 32)
    link = Link(a, b, delay=0.01, seed=1)
    conn, peer = link.open()
    conn.send(b"z" * 200_000, link.now)
    for _ in range(100_000):
        peer.read(-1, link.now)
        if conn.snd_una == conn.snd_nxt and not len(conn.sndbuf) or not link.step():
            break
    return link, conn, peer


# -- restarting from idle (4.3.4.4) -------------------------------------------------------

def test_restart_in_probe_bw_paces_at_the_bandwidth_estimate() -> None:
    cc = Feeder(Bbr(MSS, 10)).to_probe_bw(1e6)
    feed = Feeder(cc, now=5.0)
    feed.est.delivered = cc.next_round_delivered
    while cc.pacing_gain <= 1:                          # find the probing phase
        feed.ack(1e6, in_flight=int(1e6 * RTT), prior_in_flight=int(1e6 * RTT),
                 new_round=False, dt=RTT + 0.001)
    assert cc.pacing_rate(RTT) == pytest.approx(1.25e6)
    window = cc.cwnd
    cc.on_restart(feed.now + 0.5, 0.5, 1.0)
    assert cc.idle_restart and cc.cwnd == window        # the window stays
    assert cc.pacing_rate(RTT) == pytest.approx(1e6)    # gain 1: refill at the drain rate


def test_no_probe_rtt_on_the_ack_after_a_restart() -> None:
    cc = Feeder(Bbr(MSS, 10)).to_probe_bw(1e6)
    feed = Feeder(cc, now=1.4)
    feed.est.delivered = cc.next_round_delivered
    feed.now = cc.rt_prop_stamp + RT_PROP_FILTER_LEN + 0.001
    cc.on_restart(feed.now, 10.0, 1.0)
    # 4.3.5: the expired minimum takes this ACK's sample, as without the restart, but
    # PROBE_RTT is not entered: the idle pipe already showed the propagation time.
    feed.ack(1e6, in_flight=MSS, rtt=2 * RTT, new_round=False)
    assert cc.state is PROBE_BW and not cc.idle_restart
    assert cc.rt_prop == 2 * RTT and cc.rt_prop_stamp == feed.now
    feed.ack(1e6, in_flight=MSS, rtt=2 * RTT, new_round=False, dt=0.001)
    assert cc.state is PROBE_BW                             # a fresh ten seconds


def test_restart_ends_a_probe_rtt_whose_time_ran_out_while_idle() -> None:
    cc = Feeder(Bbr(MSS, 10)).to_probe_bw(1e6)
    before = cc.cwnd
    feed = Feeder(cc, now=1.4)
    feed.est.delivered = cc.next_round_delivered
    feed.now = cc.rt_prop_stamp + RT_PROP_FILTER_LEN + 0.001
    feed.ack(1e6, in_flight=MIN_PIPE_CWND * MSS, rtt=2 * RTT, new_round=False)
    feed.ack(1e6, in_flight=MIN_PIPE_CWND * MSS, rtt=RTT, new_round=False, dt=0.01)
    assert cc.state is PROBE_RTT and cc.probe_rtt_done_stamp is not None
    cc.on_restart(cc.probe_rtt_done_stamp - 0.01, 0.1, 1.0)  # too early: stays
    assert cc.state is PROBE_RTT
    cc.on_restart(cc.probe_rtt_done_stamp + 1.0, 1.0, 1.0)
    assert cc.state is PROBE_BW and cc.cwnd >= before        # the full window, at once
