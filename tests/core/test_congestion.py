"""Congestion controllers against their RFC formulas: NewReno (RFC 5681 3.1), CUBIC
(RFC 9438) and HyStart++ (RFC 9406); the pluggable interface and its validation."""

from __future__ import annotations

import math
import random

import pytest

from atcp.config import Config
from atcp.core.congestion import INFINITE_SSTHRESH, CongestionControl, names, resolve
from atcp.core.congestion.cubic import ALPHA, BETA, C, Cubic, cubic_k, w_cubic
from atcp.core.congestion.hystart import (CSS_GROWTH_DIVISOR, CSS_ROUNDS, MAX_RTT_THRESH,
                                          MIN_RTT_THRESH, N_RTT_SAMPLE, HyStartPlusPlus)
from atcp.core.congestion.newreno import NewReno
from atcp.core.info import tcp_info
from atcp.core.stack import Stack
from atcp.testing.link import Link

MSS = 1000


# -- NewReno (RFC 5681 3.1) ------------------------------------------------------------------

def test_newreno_slow_start_adds_at_most_one_smss_per_ack() -> None:
    cc = NewReno(MSS, 10)
    assert (cc.cwnd, cc.ssthresh) == (10 * MSS, INFINITE_SSTHRESH)
    cc.on_ack(3 * MSS, 0.1, 1.0, 10 * MSS, 1)          # equation 2: min(N, SMSS)
    assert cc.cwnd == 11 * MSS
    cc.on_ack(500, 0.1, 1.0, 11 * MSS, 1)
    assert cc.cwnd == 11 * MSS + 500


def test_newreno_congestion_avoidance_adds_one_smss_per_window_acknowledged() -> None:
    cc = NewReno(MSS, 10)
    cc.ssthresh = 10 * MSS
    for _ in range(4):                                  # byte counting (3.1): delayed ACKs
        cc.on_ack(2 * MSS, 0.1, 1.0, 10 * MSS, 1)       # of two segments each
    assert cc.cwnd == 10 * MSS
    cc.on_ack(2 * MSS, 0.1, 1.0, 10 * MSS, 1)           # a whole window acknowledged
    assert cc.cwnd == 11 * MSS and cc.bytes_acked == 0


def test_newreno_loss_halves_the_flight_with_a_floor_of_two_segments() -> None:
    cc = NewReno(MSS, 10)
    cc.on_congestion(1.0, 9 * MSS)                      # equation 4
    assert cc.ssthresh == 4500 and cc.cwnd == 4500
    cc.on_congestion(1.0, MSS)
    assert cc.ssthresh == 2 * MSS


def test_newreno_timeout_sets_ssthresh_once_and_cwnd_to_the_loss_window() -> None:
    cc = NewReno(MSS, 10)
    cc.on_rto(1.0, 8 * MSS, first=True)
    assert (cc.cwnd, cc.ssthresh) == (MSS, 4 * MSS)
    cc.on_rto(2.0, 8 * MSS, first=False)               # a backed-off repeat keeps ssthresh
    assert (cc.cwnd, cc.ssthresh) == (MSS, 4 * MSS)


def test_window_does_not_grow_while_application_limited() -> None:
    for cc in (NewReno(MSS, 10), Cubic(MSS, 10)):
        cc.on_ack(MSS, 0.1, 1.0, 2 * MSS, 1)            # 2 segments in flight of 10 allowed
        assert cc.cwnd == 10 * MSS


def test_recovery_end_caps_cwnd_at_flight_plus_one_segment() -> None:
    cc = NewReno(MSS, 10)
    cc.on_congestion(1.0, 20 * MSS)
    cc.on_recovery_end(2.0, 3 * MSS)                   # RFC 6582 3.2 step 3, option 1
    assert cc.cwnd == 4 * MSS


def test_undo_restores_window_and_threshold() -> None:
    cc = NewReno(MSS, 10)
    cc.on_congestion(1.0, 10 * MSS)
    cc.undo()
    assert (cc.cwnd, cc.ssthresh) == (10 * MSS, INFINITE_SSTHRESH)
    cc.undo()                                          # nothing saved any more
    assert cc.cwnd == 10 * MSS


# -- CUBIC (RFC 9438) ------------------------------------------------------------------------

def test_cubic_constants() -> None:
    assert (C, BETA) == (0.4, 0.7)
    assert ALPHA == pytest.approx(3 * (1 - 0.7) / (1 + 0.7))   # 4.3


def test_cubic_k_and_curve_meet_w_max() -> None:
    w_max, cwnd_epoch = 100.0, 70.0
    k = cubic_k(w_max, cwnd_epoch)
    assert k == pytest.approx(((w_max - cwnd_epoch) / C) ** (1 / 3))   # equation 2
    assert w_cubic(0.0, k, w_max) == pytest.approx(cwnd_epoch)       # starts at cwnd_epoch
    assert w_cubic(k, k, w_max) == pytest.approx(w_max)             # plateau at W_max
    assert w_cubic(k + 2, k, w_max) == pytest.approx(w_max + C * 8)  # convex beyond it
    assert cubic_k(50.0, 60.0) == 0.0


def test_cubic_multiplicative_decrease_and_fast_convergence() -> None:
    cc = Cubic(MSS, 10)
    cc.cwnd = 100 * MSS
    cc.on_congestion(1.0, 100 * MSS)                   # 4.6
    assert cc.ssthresh == cc.cwnd == 70 * MSS
    assert cc.w_max == pytest.approx(100.0)
    cc.cwnd = 90 * MSS                                 # a second loss below W_max
    cc.on_congestion(2.0, 90 * MSS)
    assert cc.w_max == pytest.approx(90 * (1 + BETA) / 2)   # 4.7: release bandwidth
    assert cc.ssthresh == 63 * MSS


def test_cubic_congestion_avoidance_step_follows_the_target() -> None:
    cc = Cubic(MSS, 10)
    cc.cwnd = 100 * MSS
    cc.on_congestion(0.0, 100 * MSS)
    rtt = 0.1
    cc.on_ack(MSS, rtt, 1.0, 70 * MSS, 1)              # epoch starts at t = 1.0
    k = cubic_k(100.0, 70.0)
    assert cc.epoch_start == 1.0 and cc.k == pytest.approx(k)
    before = cc.cwnd / MSS
    cc.on_ack(MSS, rtt, 3.0, 70 * MSS, 2)              # t = 2 s into the epoch
    srtt = rtt                                          # both samples equal
    target = min(max(w_cubic(2.0 + srtt, k, 100.0), before), 1.5 * before)
    w_est = 70.0 + ALPHA * (1 / 70.0) + ALPHA * (1 / before)
    expected = w_est if w_cubic(2.0, k, 100.0) < w_est else before + (target - before) / before
    assert cc.cwnd / MSS == pytest.approx(expected, abs=1 / MSS)


def test_cubic_reno_friendly_region_wins_when_the_curve_is_slower() -> None:
    cc = Cubic(MSS, 10)
    cc.cwnd = 20 * MSS
    cc.on_congestion(0.0, 20 * MSS)                     # W_max 20, cwnd 14: K is 2.47 s
    for i in range(400):                               # many ACKs early in the epoch
        cc.on_ack(MSS, 0.01, 0.001 * i, cc.cwnd, 1)
    t = 0.399
    assert w_cubic(t, cc.k, cc.w_max) < cc.w_est
    assert cc.cwnd / MSS == pytest.approx(cc.w_est, abs=0.01)


def test_cubic_timeout_restarts_the_curve_flat() -> None:
    cc = Cubic(MSS, 10)
    cc.cwnd = 50 * MSS
    cc.on_rto(1.0, 50 * MSS, first=True)               # 4.8
    assert cc.cwnd == MSS and cc.ssthresh == 35 * MSS
    cc.cwnd = 35 * MSS                                 # slow start got back to ssthresh
    cc.on_ack(MSS, 0.05, 2.0, 35 * MSS, 3)
    assert cc.k == 0.0 and cc.w_max == pytest.approx(35.0)


def test_cubic_undo_restores_the_curve() -> None:
    cc = Cubic(MSS, 10)
    cc.cwnd = 100 * MSS
    cc.on_congestion(0.0, 100 * MSS)
    state = (cc.w_max, cc.k, cc.epoch_start)
    cc.cwnd = 80 * MSS
    cc.on_congestion(5.0, 80 * MSS)
    cc.undo()                                           # 4.9
    assert (cc.w_max, cc.k, cc.epoch_start) == state and cc.cwnd == 80 * MSS


# -- HyStart++ (RFC 9406) ------------------------------------------------------------------

def _round(hs: HyStartPlusPlus, rnd: int, rtt: float, acks: int = N_RTT_SAMPLE) -> float:
    return sum(hs.on_ack(MSS, MSS, rtt, rnd) for _ in range(acks))


def test_hystart_rtt_threshold_is_clamped() -> None:
    # 4.2: RttThresh = max(4 ms, min(lastRoundMinRTT / 8, 16 ms)).
    for base, thresh in ((0.010, MIN_RTT_THRESH), (0.080, 0.010), (0.400, MAX_RTT_THRESH)):
        hs = HyStartPlusPlus(paced=True)
        _round(hs, 1, base)
        _round(hs, 2, base + thresh * 0.99)
        assert not hs.in_css
        hs = HyStartPlusPlus(paced=True)
        _round(hs, 1, base)
        _round(hs, 2, base + thresh * 1.01)
        assert hs.in_css


def test_hystart_css_grows_a_quarter_and_ends_after_css_rounds() -> None:
    hs = HyStartPlusPlus(paced=True)
    assert _round(hs, 1, 0.050) == N_RTT_SAMPLE * MSS
    _round(hs, 2, 0.060)                                # +10 ms > 6.25 ms: CSS
    assert hs.in_css
    grown = _round(hs, 3, 0.060)
    assert grown == pytest.approx(N_RTT_SAMPLE * MSS / CSS_GROWTH_DIVISOR)
    for rnd in range(4, 3 + CSS_ROUNDS):
        _round(hs, rnd, 0.060)
    assert hs.done and not hs.in_css


def test_hystart_resumes_slow_start_when_rtt_falls_back() -> None:
    hs = HyStartPlusPlus(paced=True)
    _round(hs, 1, 0.050)
    _round(hs, 2, 0.060)
    assert hs.in_css
    _round(hs, 3, 0.055)                                # below the CSS baseline (60 ms)
    assert not hs.in_css and not hs.done


def test_hystart_limits_growth_per_ack_when_not_paced() -> None:
    assert HyStartPlusPlus(paced=False).on_ack(20 * MSS, MSS, 0.05, 1) == 8 * MSS   # L = 8
    assert HyStartPlusPlus(paced=True).on_ack(20 * MSS, MSS, 0.05, 1) == 20 * MSS


def test_cubic_leaves_slow_start_by_hystart_with_ssthresh_at_cwnd() -> None:
    cc = Cubic(MSS, 10)
    rnd = 0
    for rtt in [0.050] * 3 + [0.070] * (CSS_ROUNDS + 2):
        rnd += 1
        for _ in range(N_RTT_SAMPLE):
            cc.on_ack(MSS, rtt, float(rnd), cc.cwnd, rnd)
    assert cc.hystart.done
    assert MSS * 10 < cc.ssthresh <= cc.cwnd < INFINITE_SSTHRESH   # congestion avoidance


# -- the interface ---------------------------------------------------------------------------

def test_registry_and_validation() -> None:
    assert names() == ["bbr", "cubic", "newreno"]
    assert resolve("cubic") is Cubic and resolve(NewReno) is NewReno
    assert Config().congestion == "cubic"
    with pytest.raises(ValueError):
        Config(congestion="vegas")
    for bad in (3, None, object, CongestionControl):
        with pytest.raises(TypeError):
            Config(congestion=bad)


class FixedWindow(CongestionControl):
    """A user's controller: a fixed window of 8 segments, whatever happens."""

    name = "fixed8"

    def __init__(self, mss: int, initial_window: int, *, paced: bool = False) -> None:
        super().__init__(mss, 8, paced=paced)
        self.acks = 0

    def on_ack(self, acked, rtt, now, in_flight, round_trip) -> None:
        self.acks += 1

    def on_congestion(self, now, in_flight) -> None:
        pass

    def on_rto(self, now, in_flight, first) -> None:
        pass

    def on_recovery_end(self, now, in_flight) -> None:
        pass


def test_a_user_controller_drives_the_connection() -> None:
    config = Config(congestion=FixedWindow)
    a = Stack(config, rng=random.Random(1), secret=b"a" * 32)
    b = Stack(config, rng=random.Random(2), secret=b"b" * 32)
    link = Link(a, b, delay=0.01, loss=0.02, seed=3)
    ca, cb = link.open()
    data = random.Random(3).randbytes(200_000)
    sent, got = 0, bytearray()
    for _ in range(100_000):
        if sent < len(data):
            sent += ca.send(data[sent:sent + 50_000], link.now)
        got += cb.read(-1, link.now)
        if len(got) == len(data) or not link.step():
            break
        # In flight never beyond the window, but for the one segment recovery may always
        # resend (RFC 6675 4.2) or probe with (RFC 8985 7.3).
        assert ca._in_flight() <= 9 * ca.snd_mss
    assert bytes(got) == data
    assert isinstance(ca.cc, FixedWindow) and ca.cc.acks > 0
    info = tcp_info(ca)
    assert info.congestion == "fixed8" and info.cwnd == 8 * ca.snd_mss
    assert math.isfinite(info.delivery_rate) and info.delivery_rate > 0


# -- restarting from idle (RFC 5681 4.1) ----------------------------------------------------

def test_restart_after_more_than_an_rto_starts_from_the_restart_window() -> None:
    cc = NewReno(MSS, 10)
    cc.cwnd, cc.ssthresh = 40 * MSS, 20 * MSS
    cc.on_restart(5.0, 1.0, 1.0)                       # idle exactly one RTO: no restart
    assert (cc.cwnd, cc.ssthresh) == (40 * MSS, 20 * MSS)
    cc.on_restart(5.0, 1.5, 1.0)
    # RW = min(IW, cwnd); ssthresh keeps 3/4 of the old window (RFC 2861 2).
    assert (cc.cwnd, cc.ssthresh) == (10 * MSS, 30 * MSS)
    small = NewReno(MSS, 10)
    small.cwnd = 4 * MSS                               # below the IW: stays
    small.on_restart(5.0, 3.0, 1.0)
    assert small.cwnd == 4 * MSS and small.ssthresh == INFINITE_SSTHRESH


def test_cubic_restart_starts_a_new_epoch_from_the_restart_window() -> None:
    cc = Cubic(MSS, 10)
    cc.cwnd = 50 * MSS
    cc.on_congestion(1.0, 50 * MSS)                    # into congestion avoidance
    cc.on_ack(MSS, 0.05, 1.1, cc.cwnd, 2)
    assert cc.epoch_start == 1.1
    cc.on_restart(1.2, 0.5, 1.0)                       # a short pause changes nothing
    assert cc.epoch_start == 1.1 and cc.cwnd > 10 * MSS
    cc.on_restart(30.0, 28.0, 1.0)
    assert cc.cwnd == 10 * MSS and cc.epoch_start is None
    # Slow start back to ssthresh, then the curve counts from its new epoch, not from
    # 1.1 s: 28 s of idling would otherwise put W_cubic far above W_max.
    cc.cwnd = cc.ssthresh
    cc.on_ack(MSS, 0.05, 30.5, cc.cwnd, 3)
    assert cc.epoch_start == 30.5 and cc.cwnd <= cc.w_max * MSS + MSS


def _idle_then_write(restart: bool) -> tuple[int, int]:
    """Segments sent at once by a write of 40 segments after 3 s of idling (RTO 1 s), with
    the window grown to more than the initial one first; and the cwnd before the write."""
    cfg = Config(congestion="newreno", restart_after_idle=restart, pacing=False)
    a = Stack(cfg, rng=random.Random(3), secret=b"a" * 32)
    b = Stack(cfg, rng=random.Random(4), secret=b"b" * 32)
    link = Link(a, b, delay=0.01, seed=3)
    ca, cb = link.open()
    data = bytes(200_000)
    sent = 0
    for _ in range(100_000):
        if sent < len(data):
            sent += ca.send(data[sent:], link.now)
        cb.read(-1, link.now)
        if (sent == len(data) and ca.snd_una == ca.snd_nxt) or not link.step():
            break
    grown = ca.cc.cwnd
    until = link.now + 3.0
    link.run(until=until)
    link.now = until   # run stops early once no timer is left
    out = ca.segs_out
    ca.send(bytes(40 * ca.snd_mss), link.now)
    return ca.segs_out - out, grown


def test_idle_restart_on_a_connection_and_its_switch() -> None:
    sent, grown = _idle_then_write(True)
    assert grown > 20 * 1452
    assert sent == 10                                  # the restart window, RFC 6928's IW
    sent_off, grown_off = _idle_then_write(False)
    assert grown_off >= 40 * 1452 and sent_off == 40   # the window survived the idling
