"""The fairness plumbing: several flows through one proxy, and the report's per-flow shares.

No timings are checked: the proxy test checks where datagrams go, the end-to-end test that
two atcp flows both move data through one rate-limited proxy and are both reported, and the
report test the arithmetic on made-up samples.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import harness, report  # noqa: E402
from benchmarks.proxy import Impairment, Proxy  # noqa: E402


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5.0)
    return sock


def test_proxy_gives_each_server_its_own_front_port_and_one_shared_link():
    servers = [_udp(), _udp()]
    fwd, rev = Impairment(rate=10_000_000, queue=1 << 20, seed=2), Impairment(seed=3)
    proxy = Proxy([s.getsockname() for s in servers], fwd, rev)
    thread = threading.Thread(target=proxy.run, kwargs={"until": time.monotonic() + 20})
    thread.start()
    clients = [_udp(), _udp()]
    try:
        assert len(set(proxy.ports)) == 2 and proxy.ports[0] == proxy.port
        for i in range(3):
            for n, (client, port) in enumerate(zip(clients, proxy.ports)):
                client.sendto(b"flow %d #%d" % (n, i), ("127.0.0.1", port))
        for n, server in enumerate(servers):
            for i in range(3):
                data, back = server.recvfrom(2048)
                assert data == b"flow %d #%d" % (n, i)   # only its own flow, in order
                server.sendto(b"reply " + data, back)
        for n, client in enumerate(clients):
            for i in range(3):
                data, source = client.recvfrom(2048)
                assert data == b"reply flow %d #%d" % (n, i)
                assert source[1] == proxy.ports[n]      # from the front it sent to
    finally:
        proxy.stop()
        thread.join(10)
        stats = proxy.stats()
        proxy.close()
        for sock in servers + clients:
            sock.close()
    assert not thread.is_alive()
    assert stats["clients"] == 2
    assert stats["fwd"]["passed"] == 6 and stats["rev"]["passed"] == 6   # one limiter


def test_two_atcp_flows_share_one_rate_limited_proxy():
    specs = [{"transport": "atcp", "loop": "asyncio", "duration": 0.5,
              "atcp_config": json.dumps({"congestion": name})} for name in ("cubic", "newreno")]
    link = {"rate": 2_000_000, "queue": 40_000, "delay": 0.002, "seed": 1}
    result = harness.run_flows(specs, link=link, duration=0.5)
    flows = result["flows"]
    assert len(flows) == 2
    for flow in flows:
        assert "error" not in flow["client"] and "error" not in flow["server"], flow
        assert flow["client"]["t0"] >= flow["connected"]          # it waited for "go"
        assert flow["server"]["bytes"] == flow["client"]["sent"] > 0
        assert flow["client"]["reply"] == str(flow["client"]["sent"])
        assert flow["server"]["samples"][-1][1] == flow["server"]["bytes"]
    assert result["proxy"]["clients"] == 2
    run = {"label": "fairness", "kind": "fairness", "flows": ["cubic", "newreno"],
           "rate": link["rate"], "rtt": 2 * link["delay"], "queue": link["queue"],
           "duration": 0.5, "result": result}
    entry = report.summarize({"runs": [run]})["fairness"][0]
    assert [f["congestion"] for f in entry["flows"]] == ["cubic", "newreno"]
    assert all(f["goodput"] > 0 for f in entry["flows"])
    assert sum(f["share_of_total"] for f in entry["flows"]) == pytest.approx(1.0)


def _fairness_run(samples_a, samples_b, t0=100.0):
    flows = [{"connected": t0 - 1, "client": {"t0": t0}, "server": {"samples": samples}}
             for samples in (samples_a, samples_b)]
    return {"label": "fairness BBR + CUBIC", "kind": "fairness", "flows": ["bbr", "cubic"],
            "rate": 1_000_000, "rtt": 0.02, "queue": 30_000, "duration": 10.0,
            "result": {"flows": flows, "proxy": None}}


def test_report_takes_each_flows_bytes_at_go_plus_duration():
    # Flow A: 700 kB/s steadily; flow B: 300 kB/s; both run on past the window's end.
    a = [(100.0 + t, 700_000 * t) for t in range(1, 13)]
    b = [(100.0 + t + 0.5, 300_000 * (t + 0.5)) for t in range(0, 13)]
    s = report.summarize({"runs": [_fairness_run(a, b)]})
    entry = s["fairness"][0]
    bbr, cubic = entry["flows"]
    assert bbr["bytes"] == pytest.approx(7_000_000)
    assert cubic["bytes"] == pytest.approx(3_000_000)
    assert (bbr["share"], cubic["share"]) == (pytest.approx(0.7), pytest.approx(0.3))
    assert cubic["share_of_total"] == pytest.approx(0.3)
    assert cubic["share_second_half"] == pytest.approx(0.3)
    assert cubic["timeline"] == pytest.approx([0.3] * 20)      # MB/s per 0.5 s bin
    assert bbr["timeline"] == pytest.approx([0.7] * 20)
    assert entry["utilization"] == pytest.approx(1.0)
    assert entry["jain"] == pytest.approx(1.0 ** 2 / (2 * (0.7 ** 2 + 0.3 ** 2)))
    target = next(t for t in report.targets({"runs": [], "summary": s})
                  if t["target"].startswith("fairness"))
    assert target["ratio"] == pytest.approx(0.3)
    assert target["status"] == "PASS"


def test_report_shows_a_fairness_run_that_failed():
    run = _fairness_run([], [])
    run["result"] = None
    run["error"] = "ProcError: client 2: exited"
    entry = report.summarize({"runs": [run]})["fairness"][0]
    assert entry["problem"].startswith("ProcError")
    assert "flows" not in entry
