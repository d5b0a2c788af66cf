"""Where an echo round trip's time goes: the core's share (`micro.bench_core_echo`) and the
client process's CPU per round trip in the report. No timings are checked: the core
measurement must complete real exchanges, and the report must do its arithmetic on
made-up samples."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import micro, report  # noqa: E402


def test_core_echo_exchanges_every_message():
    result = micro.bench_core_echo(200)
    assert result["round_trips"] == 200
    # Each round trip is one data segment each way; the warm-up's 1,000 come first, and
    # the handshake and the first window update add a few.
    assert 2 * 1_200 <= result["segments"] <= 2 * 1_200 + 4
    assert result["us_per_round_trip"] == pytest.approx(result["us_client"]
                                                        + result["us_server"])
    assert result["us_client"] > 0 and result["us_server"] > 0


def _echo_run(peer: str, rate: float, cpu: float, round_trips: int) -> dict:
    return {"kind": "echo", "peer": peer, "label": f"echo {peer}",
            "result": {"client": {"rate": rate, "cpu": cpu, "round_trips": round_trips},
                       "server": {"bytes": 64 * round_trips}}}


def test_report_shows_the_client_cpu_per_echo_round_trip():
    runs = [_echo_run("atcp/uvloop", 4000.0, 1.2, 12_000),      # 100 us
            _echo_run("atcp/uvloop", 3000.0, 1.08, 9_000),      # 120 us
            _echo_run("atcp/uvloop", 5000.0, 1.35, 15_000)]     # 90 us
    s = report.summarize({"runs": runs})
    echo = s["echo"]["atcp/uvloop"]
    assert echo["median"] == 4000.0
    assert echo["client_cpu_us"] == pytest.approx(100.0)
    s["micro"]["core_echo"] = {"us_per_round_trip": 30.0, "us_client": 16.0,
                               "us_server": 14.0}
    text = repr(report._rows({"runs": runs, "summary": s, "targets": []}))
    assert "client CPU us per round trip" in text
    assert "100.0" in text
    assert "core CPU per 64-byte echo round trip" in text and "16.0 / 14.0 us" in text
