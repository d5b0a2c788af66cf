"""Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation) on a real
`Scoreboard`: the per-transmission snapshot, the per-ACK sample, application-limited
marking, and the connection's wiring (only for controllers that want samples)."""

from __future__ import annotations

import random

from atcp.config import Config
from atcp.core.delivery import DeliveryRate
from atcp.core.recovery import Scoreboard
from atcp.core.stack import Stack
from atcp.testing.link import Link

MSS = 1000


def _board() -> tuple[Scoreboard, DeliveryRate]:
    sb = Scoreboard()
    sb.rate = DeliveryRate()
    return sb, sb.rate


def _ack(sb: Scoreboard, rate: DeliveryRate, una: int, now: float, *, sack=None,
         rtt=None, min_rtt=None):
    sb.begin_ack()
    sb.ack(una)
    if sack:
        sb.sack(sack)
    return rate.on_ack(sb, now, rtt, min_rtt, 0)


def test_first_flight_rate_is_bytes_over_the_round_trip() -> None:
    sb, rate = _board()
    for i in range(4):
        sb.add(i * MSS, (i + 1) * MSS, 1.0)
    rs = _ack(sb, rate, 2 * MSS, 1.1)
    # Nothing was outstanding when the flight left: both clocks start at 1.0 (3.2).
    assert rs.prior_delivered == 0 and rs.prior_time == 1.0
    assert rs.send_elapsed == 0.0 and abs(rs.ack_elapsed - 0.1) < 1e-12
    assert rs.delivered == 2 * MSS
    assert abs(rs.delivery_rate - 2 * MSS / 0.1) < 1e-6
    assert rate.delivered == 2 * MSS and rate.delivered_time == 1.1


def test_the_newest_transmission_delivered_gives_the_sample() -> None:
    sb, rate = _board()
    sb.add(0, MSS, 1.0)
    sb.add(MSS, 2 * MSS, 1.0)
    _ack(sb, rate, MSS, 1.1)                     # C.delivered = 1000 at 1.1
    sb.add(2 * MSS, 3 * MSS, 1.1)                # snapshot: delivered 1000, time 1.1
    sb.add(3 * MSS, 4 * MSS, 1.15)
    # One ACK delivers the older and the newer: the newer one's snapshot counts.
    rs = _ack(sb, rate, 4 * MSS, 1.25)
    assert rs.prior_delivered == MSS and rs.prior_time == 1.1
    assert rs.delivered == 3 * MSS
    # Send interval 1.15 - 1.0 (first_sent_time became the sampled packet's send time of
    # the previous ACK: 1.0); ACK interval 1.25 - 1.1; the longer one wins.
    assert abs(rs.send_elapsed - 0.15) < 1e-12 and abs(rs.ack_elapsed - 0.15) < 1e-12
    assert abs(rs.interval - 0.15) < 1e-12


def test_ack_compression_cannot_inflate_the_rate() -> None:
    sb, rate = _board()
    sb.add(0, MSS, 1.0)
    sb.add(MSS, 2 * MSS, 1.0)
    _ack(sb, rate, MSS, 1.1)                     # the next interval starts at 1.0
    for i in range(10):                          # sent over 90 ms from 1.1 ...
        sb.add((i + 2) * MSS, (i + 3) * MSS, 1.1 + i * 0.01)
    rs = _ack(sb, rate, 12 * MSS, 1.2)           # ... ACKed together 100 ms after 1.1
    # The ACK interval (0.1 s) would say 110 KB/s; the send interval (1.19 - 1.0) is
    # longer and wins (3.3): the rate cannot exceed what the sender put out.
    assert abs(rs.ack_elapsed - 0.1) < 1e-12 and abs(rs.send_elapsed - 0.19) < 1e-12
    assert rs.delivered == 11 * MSS
    assert abs(rs.delivery_rate - 11 * MSS / 0.19) < 1e-6


def test_sack_delivers_and_samples_like_a_cumulative_ack() -> None:
    sb, rate = _board()
    for i in range(4):
        sb.add(i * MSS, (i + 1) * MSS, 1.0)
    rs = _ack(sb, rate, 0, 1.1, sack=[(2 * MSS, 4 * MSS)])
    assert rs.newly_acked == 2 * MSS and rs.delivered == 2 * MSS
    # The cumulative ACK for what SACK already delivered adds nothing and samples the
    # one record that is new.
    rs = _ack(sb, rate, 4 * MSS, 1.2)
    assert rs.newly_acked == 2 * MSS and rate.delivered == 4 * MSS


def test_an_ack_without_a_whole_record_gives_no_sample() -> None:
    sb, rate = _board()
    sb.add(0, 2 * MSS, 1.0)
    rs = _ack(sb, rate, MSS, 1.1)                # trims the record, delivers no record
    assert rs.delivered == -1 and rs.interval == 0.0 and rs.delivery_rate == 0.0
    assert rate.delivered == MSS


def test_an_interval_below_the_minimum_rtt_is_not_a_sample() -> None:
    sb, rate = _board()
    sb.add(0, MSS, 1.0)
    rs = _ack(sb, rate, MSS, 1.05, min_rtt=0.1)
    assert rs.delivered == MSS and rs.interval == 0.0 and rs.delivery_rate == 0.0
    sb.add(MSS, 2 * MSS, 2.0)
    rs = _ack(sb, rate, 2 * MSS, 2.1, min_rtt=0.1)   # exactly the minimum: plausible
    assert rs.interval > 0 and rs.delivery_rate > 0


def test_a_retransmission_takes_a_fresh_snapshot() -> None:
    sb, rate = _board()
    rec = sb.add(0, MSS, 1.0)
    sb.add(MSS, 2 * MSS, 1.0)
    _ack(sb, rate, 0, 1.1, sack=[(MSS, 2 * MSS)])     # C.delivered = 1000 at 1.1
    sb.mark_lost(rec)
    sb.retransmitted(rec, 1.2)
    assert rec.d_delivered == MSS and rec.d_time == 1.1
    rs = _ack(sb, rate, 2 * MSS, 1.3)
    assert rs.prior_delivered == MSS and abs(rs.ack_elapsed - 0.2) < 1e-12


def test_an_idle_connection_restarts_both_clocks() -> None:
    sb, rate = _board()
    sb.add(0, MSS, 1.0)
    _ack(sb, rate, MSS, 1.1)
    sb.add(MSS, 2 * MSS, 5.0)                    # nothing outstanding: the idle 3.9 s is
    rs = _ack(sb, rate, 2 * MSS, 5.1)            # in neither interval (draft 3.2)
    assert abs(rs.interval - 0.1) < 1e-12 and abs(rs.delivery_rate - MSS / 0.1) < 1e-6


def test_application_limited_marks_transmissions_until_delivered() -> None:
    sb, rate = _board()
    sb.add(0, MSS, 1.0)
    rate.check_app_limited(in_flight=MSS, cwnd=10 * MSS, lost=0)
    assert rate.app_limited == MSS                # C.delivered + in flight
    sb.add(MSS, 2 * MSS, 1.01)                    # sent while limited
    rs = _ack(sb, rate, MSS, 1.1)
    assert not rs.is_app_limited and rate.app_limited == MSS   # not yet past the mark
    sb.add(2 * MSS, 3 * MSS, 1.1)                 # still limited: the mark is not passed
    rs = _ack(sb, rate, 2 * MSS, 1.2)
    assert rs.is_app_limited and rate.app_limited == 0         # delivered past it: cleared
    sb.add(3 * MSS, 4 * MSS, 1.2)
    rs = _ack(sb, rate, 3 * MSS, 1.25)
    assert rs.is_app_limited                      # the one sent at 1.1
    rs = _ack(sb, rate, 4 * MSS, 1.3)
    assert not rs.is_app_limited


def test_not_application_limited_when_the_window_or_a_loss_is_the_limit() -> None:
    rate = DeliveryRate()
    rate.check_app_limited(in_flight=10 * MSS, cwnd=10 * MSS, lost=0)
    assert rate.app_limited == 0
    rate.check_app_limited(in_flight=MSS, cwnd=10 * MSS, lost=MSS)
    assert rate.app_limited == 0
    rate.mark_app_limited(0)
    assert rate.app_limited == 1                  # "or 1": zero would mean not limited


def _connect(congestion: str, **config):
    cfg = Config(congestion=congestion, **config)
    a = Stack(cfg, rng=random.Random(1), secret=b"a" * 32)
    b = Stack(cfg, rng=random.Random(2), secret=b"b" * 32)
    link = Link(a, b, delay=0.01, seed=1)
    return (link, *link.open())


def test_only_controllers_that_want_samples_get_an_estimator() -> None:
    _, cubic, _ = _connect("cubic")
    assert cubic.sb.rate is None
    link, bbr, peer = _connect("bbr")
    assert isinstance(bbr.sb.rate, DeliveryRate)
    bbr.send(b"x" * 50_000, link.now)
    link.run(until=link.now + 1)
    assert peer.read(-1, link.now) == b"x" * 50_000
    assert bbr.sb.rate.delivered == 50_000
    # Then the application stopped writing with the window open: application-limited,
    # until everything in flight now (nothing) has been delivered.
    assert bbr.sb.rate.app_limited == 50_000


def test_a_full_send_buffer_is_not_application_limited() -> None:
    # Everything the send buffer holds is in flight and the window has room: the writer is
    # waiting for buffer space, not out of data, so the samples count (else BBR, seeing
    # every sample application-limited, would never find the pipe full).
    link, bbr, peer = _connect("bbr", send_buffer=8_000, recv_buffer=64_000)
    assert bbr.send(b"y" * 20_000, link.now) == 8_000
    assert bbr.sndbuf.free() == 0 and bbr.cc.cwnd > 8_000
    # Not marked: a mark would be delivered + in flight (8,000); at most the handshake's
    # idle mark (1) remains, which the first delivery clears.
    assert bbr.sb.rate.app_limited <= 1
