"""The benchmark harness runs end to end and writes valid results (no timings checked).

``python -m benchmarks --smoke`` runs kernel TCP and raw UDP over loopback, the echo of
asyncio streams over plain UDP, and raw UDP through the impairment proxy, each side in its
own process, with tiny sizes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_run_writes_results(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out), "--no-plots"],
        cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(out.read_text())
    assert set(results) >= {"meta", "runs", "summary", "targets"}
    assert results["meta"]["mode"] == "smoke"
    labels = [run["label"] for run in results["runs"]]
    assert any("kernel TCP" in label for label in labels)
    assert any(label.startswith("proxy bulk") for label in labels)
    for run in results["runs"]:
        assert "error" not in run, run
        for side in ("client", "server"):
            assert "error" not in run["result"][side], run
    bulk = [r for r in results["runs"] if r["kind"] == "bulk"]
    for run in bulk:
        assert run["result"]["server"]["bytes"] >= run["size"]
        assert run["result"]["server"]["complete"] is True
    streams_echo = next(r for r in results["runs"]
                        if r["kind"] == "echo" and r["transport"] == "udpstreams")
    assert streams_echo["result"]["client"]["round_trips"] > 0
    assert streams_echo["result"]["server"]["accepted"] == 1
    proxied = next(r for r in bulk if r["path"] == "proxy")
    forwarded = proxied["result"]["proxy"]["forwarded"]
    assert forwarded["fwd"] >= proxied["size"] // 1400
    assert forwarded["rev"] > 0
    # Every target is reported, with a status, even when its peers did not run.
    assert all(t["status"] in ("PASS", "MISS", "n/a") for t in results["targets"])
    assert "Targets" in proc.stdout


def test_publish_takes_only_a_full_run():
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--publish"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--publish takes a full run" in proc.stderr


def test_the_published_run_is_the_one_the_readme_reports():
    published = ROOT / "benchmarks" / "results" / "published" / "latest.json"
    results = json.loads(published.read_text())
    assert results["meta"]["mode"] == "full"
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    # The README's tables are this file's, as `benchmarks.report --markdown` prints them.
    proc = subprocess.run([sys.executable, "-m", "benchmarks.report", str(published),
                           "--markdown"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    targets = proc.stdout[proc.stdout.index("**Targets"):].split("\n\n")[1]
    assert targets in readme
