"""Timestamps in the connection (RFC 7323): RTT samples from every ACK, the 24-day rule of
PAWS, and spurious-timeout detection from an echoed timestamp (Eifel, RFC 3522)."""

from __future__ import annotations

import pytest

from atcp.core.acceptance import PAWS_IDLE
from atcp.testing.peer import Peer, new_stack
from atcp.wire import Options

PEER_ISN = 7_000_000


def connected(**config):
    stack = new_stack(pacing=False, **config)
    peer = Peer(stack, isn=PEER_ISN)
    conn = peer.stack_connects(syn_ack_options=Options(ts_val=100, ts_ecr=0, sack_permitted=True))
    assert conn.ts_enabled and conn.sack_permitted
    return peer, conn


def ts(val: int, conn, sent_at: float) -> Options:
    """A peer timestamp option echoing what the stack sent at ``sent_at``."""
    return Options(ts_val=val, ts_ecr=conn._ts_of(sent_at))


def test_every_ack_that_advances_gives_an_rtt_sample() -> None:
    peer, conn = connected()
    m = conn.snd_mss
    conn.send(b"x" * 4 * m, peer.now)
    assert len(peer.take()) == 4
    srtt = conn.rto.srtt                   # from the handshake, which took no time
    assert srtt == 0.0
    # RFC 7323 Appendix G: FlightSize / (2 SMSS) = 2 samples expected per RTT, so each
    # sample moves SRTT by 1/8 / 2 of the difference.
    for rtt, acked in ((0.050, 1), (0.060, 2)):
        peer.at(rtt)
        peer.send(".", seq=1, ack=1 + acked * m, options=ts(100 + acked, conn, 0.0))
        srtt += (rtt - srtt) / 8 / 2
        assert conn.rto.srtt == pytest.approx(srtt)


def test_paws_forgets_ts_recent_after_24_days_of_silence() -> None:
    peer, conn = connected()
    peer.send("P.", seq=1, ack=1, payload=b"a", options=Options(ts_val=5000, ts_ecr=0))
    assert conn.read(-1, peer.now) == b"a"
    peer.advance(1.0)
    peer.take()
    # A peer that rebooted long ago restarted its clock: older TSval, valid TS.Recent.
    peer.send("P.", seq=2, ack=1, payload=b"b", options=Options(ts_val=10, ts_ecr=0))
    assert conn.read(-1, peer.now) == b"" and conn.paws_rejected == 1
    peer.take()
    peer.at(peer.now + PAWS_IDLE + 1)      # RFC 7323 5.5: TS.Recent has gone stale
    peer.take()
    peer.send("P.", seq=2, ack=1, payload=b"b", options=Options(ts_val=10, ts_ecr=0))
    assert conn.read(-1, peer.now) == b"b"
    assert conn.ts_recent == 10 and conn.paws_rejected == 1


def test_spurious_timeout_is_undone_by_the_echoed_timestamp() -> None:
    peer, conn = connected(congestion="newreno")
    peer.advance(0.1)
    conn.send(b"x" * 10_000, peer.now)
    peer.take()
    before = (conn.cwnd, conn.ssthresh)
    peer.run_timers_until(conn.t_rexmt)    # the ACKs are late, not lost: a timeout
    assert conn.retransmits == 1 and conn.cwnd == conn.snd_mss
    # The ACK for the first segment echoes its original transmission's TSval (sent at
    # 0.1), older than the retransmission's: the original arrived (RFC 3522).
    peer.send(".", seq=1, ack=1 + conn.snd_mss, options=ts(101, conn, 0.1))
    assert conn.spurious_retransmits == 1
    assert (conn.cwnd, conn.ssthresh) == before and conn.sb.lost == 0
