"""BBR v1 (draft-cardwell-iccrg-bbr-congestion-control-00; Cardwell et al., "BBR:
Congestion-Based Congestion Control", ACM Queue 14(5), 2016).

Theory of operation
-------------------
Loss-based controllers take every loss for a full queue and halve their window, so on a
path that drops 1% of packets at random they never get far above the Mathis bound. BBR
instead keeps a model of the path: its bottleneck bandwidth ``btl_bw`` (the highest
delivery rate measured over the last ten round trips, `WindowedMax`) and its round-trip
propagation time ``rt_prop`` (the lowest RTT of the last ten seconds). It sends at
``pacing_gain * btl_bw`` and keeps at most ``cwnd_gain * BDP`` in flight (BDP =
``btl_bw * rt_prop``, plus a few pacing bursts of allowance), and varies the gains to
probe:

* STARTUP: gains of 2/ln 2, which double the sending rate every round trip, until three
  rounds in a row fail to raise ``btl_bw`` by a quarter: the pipe is full (4.3.2).
* DRAIN: pacing gain ln 2 / 2, to empty the queue STARTUP built, until what is in flight
  is down to one BDP (4.3.3).
* PROBE_BW: cwnd gain 2 and a cycle of eight pacing gains, one per ``rt_prop``: 5/4 to
  probe for more bandwidth, 3/4 to drain what that probe queued, then six rounds at 1
  (4.3.4). The cycle starts at a varying phase so that flows desynchronize.
* PROBE_RTT: when ``rt_prop`` has not been re-measured for ten seconds, the window drops
  to four segments for 200 ms and a round trip, so the queue empties and the true
  propagation time shows (4.3.5).

The bandwidth comes from the delivery-rate samples of `atcp.core.delivery` (the class sets
``wants_rate_samples``, and all the work happens in `on_rate_sample`). Samples taken while
the application was the limit only count when they show more than the model holds.

Loss does not change the model. On a loss episode (``on_congestion``) the window follows
the draft's packet conservation for one round trip (4.2.3.4: no more in flight than was
just delivered, so the repair is not added to a queue), and the window from before comes
back when the episode ends; after a retransmission timeout the window restarts from one
segment, conserving for a round trip, and is then restored. Rates are bytes per second,
times seconds, windows bytes.

Restarting from idle (4.3.4.4) is `on_restart`, which the sender calls whenever data goes
out with nothing in flight. Not implemented: the long-term bandwidth sampling for policers
that Linux added later.
"""

from __future__ import annotations

import math

from ..pacing import QUANTUM
from . import CongestionControl

__all__ = ["Bbr", "WindowedMax", "STARTUP", "DRAIN", "PROBE_BW", "PROBE_RTT", "HIGH_GAIN",
           "PACING_GAIN_CYCLE", "BTL_BW_FILTER_LEN", "RT_PROP_FILTER_LEN",
           "PROBE_RTT_DURATION", "MIN_PIPE_CWND"]

STARTUP = "STARTUP"
DRAIN = "DRAIN"
PROBE_BW = "PROBE_BW"
PROBE_RTT = "PROBE_RTT"

#: 2/ln 2: the smallest gain that doubles the delivery rate every round (4.3.2).
HIGH_GAIN = 2 / math.log(2)
PACING_GAIN_CYCLE = (5 / 4, 3 / 4, 1, 1, 1, 1, 1, 1)   # 4.3.4.3
PROBE_BW_CWND_GAIN = 2
BTL_BW_FILTER_LEN = 10            # round trips (4.1.1.5)
RT_PROP_FILTER_LEN = 10.0         # seconds (4.1.2.3)
PROBE_RTT_DURATION = 0.2          # seconds (4.3.5)
MIN_PIPE_CWND = 4                 # segments (4.2.3.1)
FULL_BW_THRESH = 1.25             # growth that still counts as "not full" (4.3.2.2)
FULL_BW_COUNT = 3                 # rounds without it that make the pipe full
#: 4.2.2 send quantum: one segment below 1.2 Mbit/s, two below 24 Mbit/s, else one
#: timer tick's worth (atcp paces in bursts per millisecond tick), at most 64 KB.
_QUANTUM_ONE_SEGMENT = 1.2e6 / 8
_QUANTUM_TWO_SEGMENTS = 24e6 / 8
_QUANTUM_MAX = 65536


class WindowedMax:
    """The largest value seen over the last ``length`` rounds: a deque of candidates
    with values decreasing from the front, each the largest of the values after it, so
    the front is the maximum and an update is amortized O(1). Exact, unlike the
    three-sample estimate the draft suggests, and as cheap."""

    __slots__ = ("length", "_rounds", "_values")

    def __init__(self, length: int) -> None:
        self.length = length
        self._rounds: list[int] = []
        self._values: list[float] = []

    def update(self, value: float, round_count: int) -> float:
        """Add ``value`` measured in round ``round_count``; return the window's maximum."""
        rounds, values = self._rounds, self._values
        while values and values[-1] <= value:
            values.pop()
            rounds.pop()
        rounds.append(round_count)
        values.append(value)
        horizon = round_count - self.length
        drop = 0
        while rounds[drop] <= horizon:
            drop += 1
        if drop:
            del rounds[:drop], values[:drop]
        return values[0]

    def get(self) -> float:
        return self._values[0] if self._values else 0.0

    def reset(self) -> None:
        self._rounds.clear()
        self._values.clear()


class Bbr(CongestionControl):
    name = "bbr"
    wants_rate_samples = True

    def __init__(self, mss: int, initial_window: int, *, paced: bool = True) -> None:
        super().__init__(mss, initial_window, paced=paced)
        self.bw_filter = WindowedMax(BTL_BW_FILTER_LEN)
        self.btl_bw = 0.0                 # bytes/s
        self.rt_prop = math.inf           # seconds
        self.rt_prop_stamp: float | None = None
        self.rt_prop_expired = False
        self.probe_rtt_done_stamp: float | None = None
        self.probe_rtt_round_done = False
        self.packet_conservation = False
        self.in_loss_recovery = False
        self._restore_after_round = False  # a timeout's conservation round ends in restore
        self.prior_cwnd = 0
        self.next_round_delivered = 0
        self.round_start = False
        self.round_count = 0
        self.filled_pipe = False
        self.full_bw = 0.0
        self.full_bw_count = 0
        self.cycle_index = 0
        self.cycle_stamp = 0.0
        self.rate: float | None = None    # pacing rate, bytes/s; None until an RTT is known
        self.send_quantum = 2 * mss
        self.target_cwnd = self.cwnd
        self.state = STARTUP
        self.pacing_gain = HIGH_GAIN
        self.cwnd_gain = HIGH_GAIN
        # The latest ACK's numbers, for the loss events that follow it.
        self._in_flight = 0
        self._acked = 0
        self._delivered = 0
        self.idle_restart = False         # sending restarted from an empty pipe (4.3.4.4)

    # -- the per-ACK update (4.1, 4.2) ---------------------------------------------------
    def on_ack(self, acked: int, rtt: float | None, now: float, in_flight: int,
               round_trip: int) -> None:
        """Everything happens in `on_rate_sample`, which comes on every ACK."""

    def on_rate_sample(self, rs, now: float, in_flight: int) -> None:
        self._in_flight = in_flight
        self._acked = rs.newly_acked
        self._delivered = rs.estimator.delivered
        if self.rt_prop_stamp is None:
            self.rt_prop_stamp = now
        self._update_btl_bw(rs)
        self._check_cycle_phase(rs, now)
        self._check_full_pipe(rs)
        self._check_drain(now, in_flight)
        self._update_rt_prop(rs, now)
        self._check_probe_rtt(rs, now, in_flight)
        self._set_pacing_rate()
        self._set_send_quantum()
        self._set_cwnd(rs, in_flight)

    def _update_btl_bw(self, rs) -> None:
        """4.1.1.5: count rounds by delivery, and feed the bandwidth filter."""
        self.round_start = False
        if rs.delivered >= 0 and rs.prior_delivered >= self.next_round_delivered:
            # The sampled transmission left after the current round began: a new round.
            self.next_round_delivered = self._delivered
            self.round_count += 1
            self.round_start = True
            self.packet_conservation = False
            if self._restore_after_round:
                self._restore_after_round = False
                self._restore_cwnd()
        if rs.interval > 0 and (rs.delivery_rate >= self.btl_bw or not rs.is_app_limited):
            self.btl_bw = self.bw_filter.update(rs.delivery_rate, self.round_count)

    def _update_rt_prop(self, rs, now: float) -> None:
        """4.1.2.3: the minimum RTT, refreshed when ten seconds old."""
        self.rt_prop_expired = now > self.rt_prop_stamp + RT_PROP_FILTER_LEN
        rtt = rs.rtt
        if rtt is not None and rtt >= 0 and (rtt <= self.rt_prop or self.rt_prop_expired):
            self.rt_prop = rtt
            self.rt_prop_stamp = now

    def _inflight(self, gain: float) -> int:
        """4.2.3.2: ``gain`` times the BDP, plus three send quanta for the bursts pacing
        and delayed ACKs make; the initial window while no RTT is known."""
        if self.rt_prop == math.inf:
            return self.initial_cwnd
        return int(gain * self.btl_bw * self.rt_prop) + 3 * self.send_quantum

    # -- state machine (4.3) --------------------------------------------------------------
    def _enter_startup(self) -> None:
        self.state = STARTUP
        self.pacing_gain = HIGH_GAIN
        self.cwnd_gain = HIGH_GAIN

    def _check_full_pipe(self, rs) -> None:
        """4.3.2.2: three rounds without 25% more bandwidth (not application-limited)."""
        if self.filled_pipe or not self.round_start or rs.is_app_limited:
            return
        if self.btl_bw >= self.full_bw * FULL_BW_THRESH:
            self.full_bw = self.btl_bw
            self.full_bw_count = 0
            return
        self.full_bw_count += 1
        if self.full_bw_count >= FULL_BW_COUNT:
            self.filled_pipe = True

    def _check_drain(self, now: float, in_flight: int) -> None:
        """4.3.3: STARTUP -> DRAIN once the pipe is full; DRAIN -> PROBE_BW once what is
        in flight is down to one BDP."""
        if self.state is STARTUP and self.filled_pipe:
            self.state = DRAIN
            self.pacing_gain = 1 / HIGH_GAIN
            self.cwnd_gain = HIGH_GAIN
        if self.state is DRAIN and in_flight <= self._inflight(1.0):
            self._enter_probe_bw(now)

    def _enter_probe_bw(self, now: float) -> None:
        """4.3.4.3: start the gain cycle at a varying phase other than the 3/4 one. The
        draft draws it at random; the clock's microseconds serve (deterministic under a
        fake clock, varied in real use)."""
        self.state = PROBE_BW
        self.pacing_gain = 1
        self.cwnd_gain = PROBE_BW_CWND_GAIN
        offset = int(now * 1_000_000) % (len(PACING_GAIN_CYCLE) - 1)
        self.cycle_index = len(PACING_GAIN_CYCLE) - 1 - offset
        self._advance_cycle_phase(now)

    def _check_cycle_phase(self, rs, now: float) -> None:
        if self.state is PROBE_BW and self._is_next_cycle_phase(rs, now):
            self._advance_cycle_phase(now)

    def _is_next_cycle_phase(self, rs, now: float) -> bool:
        """4.3.4.3: each phase lasts about ``rt_prop``; the probing phase longer, until
        its extra data is in flight (or a loss says the queue is full); the draining
        phase shorter, once the queue is gone."""
        full_length = now - self.cycle_stamp > self.rt_prop
        gain = self.pacing_gain
        if gain == 1:
            return full_length
        if gain > 1:
            return full_length and (rs.losses > 0
                                    or rs.prior_in_flight >= self._inflight(gain))
        return full_length or rs.prior_in_flight <= self._inflight(1.0)

    def _advance_cycle_phase(self, now: float) -> None:
        self.cycle_stamp = now
        self.cycle_index = (self.cycle_index + 1) % len(PACING_GAIN_CYCLE)
        self.pacing_gain = PACING_GAIN_CYCLE[self.cycle_index]

    def _check_probe_rtt(self, rs, now: float, in_flight: int) -> None:
        """4.3.5: every ten seconds without a new minimum, four segments for 200 ms and a
        round trip."""
        if self.state is not PROBE_RTT and self.rt_prop_expired and not self.idle_restart:
            self.state = PROBE_RTT
            self.pacing_gain = 1
            self.cwnd_gain = 1
            self.prior_cwnd = self._save_cwnd()
            self.probe_rtt_done_stamp = None
        if self.state is PROBE_RTT:
            self._handle_probe_rtt(rs, now, in_flight)
        self.idle_restart = False

    def _handle_probe_rtt(self, rs, now: float, in_flight: int) -> None:
        # The low rate of this state is chosen, not measured: keep it out of the model.
        rs.estimator.mark_app_limited(in_flight)
        if self.probe_rtt_done_stamp is None and in_flight <= MIN_PIPE_CWND * self.mss:
            self.probe_rtt_done_stamp = now + PROBE_RTT_DURATION
            self.probe_rtt_round_done = False
            self.next_round_delivered = self._delivered
        elif self.probe_rtt_done_stamp is not None:
            if self.round_start:
                self.probe_rtt_round_done = True
            if self.probe_rtt_round_done and now > self.probe_rtt_done_stamp:
                self._exit_probe_rtt(now)

    def _exit_probe_rtt(self, now: float) -> None:
        self.rt_prop_stamp = now
        self._restore_cwnd()
        if self.filled_pipe:
            self._enter_probe_bw(now)
        else:
            self._enter_startup()

    def on_restart(self, now: float, idle: float, rto: float) -> None:
        """4.3.4.4: sending restarts from an empty pipe (the application was the limit).
        The window stays; in PROBE_BW the pacing rate drops to the bandwidth estimate
        itself, to refill the pipe at the rate it drains. A PROBE_RTT whose time ran out
        while idle ends now, so the new flight has the full window; and PROBE_RTT is not
        entered on the ACK that follows a restart (4.3.5)."""
        self.idle_restart = True
        if self.state is PROBE_BW:
            self._set_pacing_rate(1.0)
        elif (self.state is PROBE_RTT and self.probe_rtt_done_stamp is not None
              and now > self.probe_rtt_done_stamp):
            self._exit_probe_rtt(now)

    # -- control parameters (4.2) ---------------------------------------------------------
    def _set_pacing_rate(self, gain: float | None = None) -> None:
        """4.2.1: pacing_gain (or ``gain``) * btl_bw; in STARTUP only ever upward. Before
        the first bandwidth sample, the initial window over the first RTT, with the high
        gain."""
        if self.rate is None and self.rt_prop != math.inf:
            self.rate = HIGH_GAIN * self.initial_cwnd / self.rt_prop
        rate = (self.pacing_gain if gain is None else gain) * self.btl_bw
        if rate > 0 and (self.filled_pipe or self.rate is None or rate > self.rate):
            self.rate = rate

    def _set_send_quantum(self) -> None:
        rate = self.rate or 0.0
        mss = self.mss
        if rate < _QUANTUM_ONE_SEGMENT:
            self.send_quantum = mss
        elif rate < _QUANTUM_TWO_SEGMENTS:
            self.send_quantum = 2 * mss
        else:
            self.send_quantum = min(int(rate * QUANTUM), _QUANTUM_MAX)

    def _set_cwnd(self, rs, in_flight: int) -> None:
        """4.2.3: toward cwnd_gain * BDP, growing by what each ACK delivered; packet
        conservation during a loss episode's first round; four segments in PROBE_RTT."""
        mss = self.mss
        self.target_cwnd = target = self._inflight(self.cwnd_gain)
        cwnd = self.cwnd
        acked = rs.newly_acked
        if rs.losses > 0:
            cwnd = max(cwnd - rs.losses * mss, mss)
        if self.packet_conservation:
            cwnd = max(cwnd, in_flight + acked)
        else:
            if self.filled_pipe:
                cwnd = min(cwnd + acked, target)
            elif cwnd < target or self._delivered < self.initial_cwnd:
                cwnd += acked
            cwnd = max(cwnd, MIN_PIPE_CWND * mss)
        if self.state is PROBE_RTT:
            cwnd = min(cwnd, MIN_PIPE_CWND * mss)
        self.cwnd = int(cwnd)

    def _save_cwnd(self) -> int:
        """4.2.3.4: the window to come back to; during recovery or PROBE_RTT the one saved
        before, if larger."""
        if not self.in_loss_recovery and self.state is not PROBE_RTT:
            return self.cwnd
        return max(self.prior_cwnd, self.cwnd)

    def _restore_cwnd(self) -> None:
        self.cwnd = max(self.cwnd, self.prior_cwnd)

    def info(self) -> dict:
        return {"state": self.state, "btl_bw": self.btl_bw,
                "rt_prop": None if self.rt_prop == math.inf else self.rt_prop,
                "pacing_gain": self.pacing_gain, "cwnd_gain": self.cwnd_gain}

    def pacing_rate(self, srtt: float | None) -> float | None:
        if self.rate is not None:
            return self.rate
        return HIGH_GAIN * self.initial_cwnd / srtt if srtt else None

    # -- loss (4.2.3.4) ---------------------------------------------------------------------
    def on_congestion(self, now: float, in_flight: int) -> None:
        """A loss episode: the model stays; one round of packet conservation, starting
        now, from what is in flight after this ACK plus what it delivered."""
        self.prior_cwnd = self._save_cwnd()
        self.in_loss_recovery = True
        self.packet_conservation = True
        self.next_round_delivered = self._delivered
        self.cwnd = max(self._in_flight + self._acked, self.mss)

    def on_recovery_end(self, now: float, in_flight: int) -> None:
        self.in_loss_recovery = False
        self.packet_conservation = False
        self._restore_cwnd()

    def on_rto(self, now: float, in_flight: int, first: bool) -> None:
        """Everything is presumed lost, so nothing is in flight: one segment, conserving
        until a round trip has passed, then the window from before the timeout."""
        if first:
            self.prior_cwnd = self._save_cwnd()
        self.in_loss_recovery = True
        self.packet_conservation = True
        self._restore_after_round = True
        self.next_round_delivered = self._delivered
        self.full_bw = 0.0
        self.full_bw_count = 0
        self.cwnd = self.mss

    def undo(self) -> None:
        """A spurious episode: conservation stops and the window before it returns."""
        self.in_loss_recovery = False
        self.packet_conservation = False
        self._restore_after_round = False
        self._restore_cwnd()

    def save(self) -> None:
        self.prior_cwnd = self._save_cwnd()

    def __repr__(self) -> str:
        return (f"<Bbr {self.state} cwnd={self.cwnd} btl_bw={self.btl_bw:.0f} "
                f"rt_prop={self.rt_prop:.6f} pacing_gain={self.pacing_gain:.3f}>")
