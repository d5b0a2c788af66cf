"""The benchmark runner: every scenario, every peer, one run, one table.

    python -m benchmarks [--quick | --smoke] [--only REGEX] [--out FILE] [--no-plots]

Each measurement runs in fresh processes (see `harness`); this module only decides what to
run, shows progress, and hands the raw reports to `report` for the summary, the targets,
the table and the plots. Nothing here retries or discards a measurement: a run that fails
is recorded with its error and shown as such.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import harness, report

__all__ = ["main", "Plan", "PLANS"]

RESULTS = Path(__file__).resolve().parent / "results"
#: The full run that benchmarks/README.md reports; the only results kept in git.
PUBLISHED = RESULTS / "published"


# ------------------------------------------------------------------ peers
@dataclasses.dataclass(frozen=True)
class Peer:
    key: str            # "atcp/uvloop"
    label: str          # "atcp (uvloop)"
    transport: str      # atcp | tcp | quic | udp | udpstreams
    loop: str           # asyncio | uvloop
    udp: bool           # carried in UDP, so it can go through the proxy
    atcp_config: str | None = None   # atcp Config overrides, JSON (peer --atcp-config)


def _peer(transport: str, loop: str) -> Peer:
    names = {"atcp": "atcp", "tcp": "kernel TCP", "quic": "aioquic", "udp": "raw UDP",
             "udpstreams": "UDP streams, no protocol"}
    return Peer(f"{transport}/{loop}", f"{names[transport]} ({loop})", transport, loop,
                transport != "tcp")


ATCP = _peer("atcp", "asyncio")
ATCP_UV = _peer("atcp", "uvloop")
# atcp without batched UDP I/O (no GSO/GRO): the reference for the batched path's gain.
ATCP_PD = Peer("atcp-pd/asyncio", "atcp per-datagram (asyncio)", "atcp", "asyncio", True,
               '{"udp_offload": false}')
ATCP_PD_UV = Peer("atcp-pd/uvloop", "atcp per-datagram (uvloop)", "atcp", "uvloop", True,
                  '{"udp_offload": false}')
# atcp with BBR (Config(congestion="bbr")) instead of the default CUBIC.
ATCP_BBR = Peer("atcp-bbr/asyncio", "atcp BBR (asyncio)", "atcp", "asyncio", True,
                '{"congestion": "bbr"}')
ATCP_BBR_UV = Peer("atcp-bbr/uvloop", "atcp BBR (uvloop)", "atcp", "uvloop", True,
                   '{"congestion": "bbr"}')
QUIC = _peer("quic", "asyncio")
QUIC_UV = _peer("quic", "uvloop")
TCP = _peer("tcp", "asyncio")
TCP_UV = _peer("tcp", "uvloop")
UDP = _peer("udp", "asyncio")
UDP_UV = _peer("udp", "uvloop")
# asyncio streams straight over asyncio UDP (benchmarks.streams.UdpStreams): echo only.
UDPS = _peer("udpstreams", "asyncio")
UDPS_UV = _peer("udpstreams", "uvloop")

# The fairness link: two flows share one proxy whose rate limiter is the bottleneck.
# 40 Mbit/s and 20 ms make a BDP of 100 kB; the tail-drop queue holds 1.5 BDP (30 ms),
# between the one-BDP rule of thumb and a deep buffer. Each direction is limited (the
# reverse one carries only ACKs). atcp's 1 MiB windows exceed BDP + queue, so the link,
# not the receive window, limits each flow.
FAIR_RATE = 5_000_000      # bytes/s
FAIR_RTT = 0.02            # seconds
FAIR_QUEUE = 150_000       # bytes
CONGESTION_NAMES = {"bbr": "BBR", "cubic": "CUBIC", "newreno": "NewReno"}


# ------------------------------------------------------------------ plans
@dataclasses.dataclass(frozen=True)
class Plan:
    """What one mode runs. README's "What --quick runs" is this table in prose."""

    name: str
    loopback_size: int              # bytes, bulk over plain loopback (no proxy)
    loopback_peers: tuple
    echo_peers: tuple
    echo_duration: float
    repeats: int                    # loopback bulk and echo: median of this many runs
    grid_size: int                  # bytes, bulk through the impairment proxy
    grid_losses: tuple
    grid_rtts: tuple                # seconds, round trip added by the proxy (half each way)
    grid_peers: tuple
    grid_ceiling_peers: tuple       # raw UDP window, through the proxy, loss 0 only
    budget: float                   # seconds one transfer may take before it is cut short
    conns_count: int
    conns_trace_count: int
    conns_peers: tuple
    churn_duration: float
    proxy_flood: float              # seconds of flood for the proxy ceiling
    micro: tuple                    # names in benchmarks.micro
    quick_micro: bool
    fairness_pairs: tuple = ()      # (congestion, congestion) flows sharing the FAIR_ link
    fairness_duration: float = 0.0  # seconds each flow sends


FULL = Plan(
    name="full",
    loopback_size=32 << 20,
    loopback_peers=(ATCP, ATCP_UV, ATCP_PD, ATCP_PD_UV, QUIC, QUIC_UV, TCP, TCP_UV, UDP,
                    UDP_UV),
    echo_peers=(ATCP, ATCP_UV, QUIC, QUIC_UV, TCP, TCP_UV, UDP, UDP_UV, UDPS, UDPS_UV),
    echo_duration=3.0,
    repeats=5,
    grid_size=32 << 20,
    grid_losses=(0.0, 0.001, 0.01, 0.02, 0.05),
    grid_rtts=(0.0, 0.02),
    grid_peers=(ATCP, ATCP_UV, ATCP_BBR, ATCP_BBR_UV, QUIC, QUIC_UV),
    grid_ceiling_peers=(UDP_UV,),
    budget=30.0,
    conns_count=10_000,
    conns_trace_count=10_000,
    conns_peers=(ATCP_UV, ATCP, TCP_UV),
    churn_duration=5.0,
    proxy_flood=3.0,
    micro=("timers", "core_segments", "core_echo", "core_memory", "time_wait"),
    quick_micro=False,
    fairness_pairs=(("bbr", "cubic"), ("bbr", "bbr"), ("cubic", "cubic")),
    fairness_duration=20.0,
)

QUICK = Plan(
    name="quick",
    loopback_size=8 << 20,
    loopback_peers=(ATCP, ATCP_UV, ATCP_PD_UV, QUIC, TCP_UV, UDP_UV),
    # aioquic on both loops, as in the full run: "best aioquic" must mean the same.
    echo_peers=(ATCP, ATCP_UV, QUIC, QUIC_UV, TCP_UV, UDP_UV, UDPS_UV),
    echo_duration=2.0,
    repeats=1,
    grid_size=4 << 20,
    grid_losses=(0.0, 0.01),
    grid_rtts=(0.0, 0.02),
    grid_peers=(ATCP_UV, ATCP_BBR_UV, QUIC),
    grid_ceiling_peers=(UDP_UV,),
    budget=10.0,
    conns_count=2_000,
    conns_trace_count=2_000,
    conns_peers=(ATCP_UV, TCP_UV),
    churn_duration=2.0,
    proxy_flood=1.5,
    micro=("timers", "core_segments", "core_echo", "core_memory", "time_wait"),
    quick_micro=True,
    fairness_pairs=(("bbr", "cubic"),),
    fairness_duration=8.0,
)

SMOKE = Plan(
    name="smoke",
    loopback_size=256 << 10,
    loopback_peers=(TCP, UDP),
    echo_peers=(UDP, UDPS),
    echo_duration=0.2,
    repeats=1,
    grid_size=256 << 10,
    grid_losses=(0.0,),
    grid_rtts=(0.0,),
    grid_peers=(),
    grid_ceiling_peers=(UDP,),
    budget=5.0,
    conns_count=0,
    conns_trace_count=0,
    conns_peers=(),
    churn_duration=0.0,
    proxy_flood=0.0,
    micro=(),
    quick_micro=True,
)

PLANS = {"full": FULL, "quick": QUICK, "smoke": SMOKE}


# ------------------------------------------------------------------ tasks
@dataclasses.dataclass
class Task:
    label: str
    fn: Callable[[], dict]
    meta: dict


def _atcp_available() -> str | None:
    """None when atcp's asyncio API can be used, else why not."""
    try:
        import atcp
    except Exception as exc:   # pragma: no cover - an import error is reported, not raised
        return f"import atcp failed: {exc}"
    missing = [name for name in ("open_connection", "start_server", "Config")
               if not hasattr(atcp, name)]
    return f"atcp does not export {', '.join(missing)} yet" if missing else None


def _aioquic_available() -> str | None:
    try:
        import aioquic.asyncio  # noqa: F401
        import cryptography  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install -e '.[bench]')"
    return None


def _link(loss: float, rtt: float, seed: int) -> dict:
    return {"loss": loss, "delay": rtt / 2, "seed": seed}


def build_tasks(plan: Plan) -> list[Task]:
    tasks: list[Task] = []

    def add(label, fn, **meta):
        tasks.append(Task(label, fn, meta))

    # Repeats go round the peers in turn, so a busy spell on the machine (other jobs) falls
    # on several peers rather than on all the runs of one.
    for rep in range(plan.repeats):
        for peer in plan.loopback_peers:
            spec = {"transport": peer.transport, "loop": peer.loop, "scenario": "bulk",
                    "size": plan.loopback_size, "atcp_config": peer.atcp_config}
            add(f"loopback bulk {peer.label} #{rep + 1}",
                _pair_runner(spec, None, plan.budget), kind="bulk", path="loopback",
                peer=peer.key, transport=peer.transport, repeat=rep, size=plan.loopback_size)
    for rep in range(plan.repeats):
        for peer in plan.echo_peers:
            spec = {"transport": peer.transport, "loop": peer.loop, "scenario": "echo",
                    "duration": plan.echo_duration, "msg": 64}
            add(f"loopback echo {peer.label} #{rep + 1}",
                _pair_runner(spec, None, plan.echo_duration + 10),
                kind="echo", path="loopback", peer=peer.key, transport=peer.transport,
                repeat=rep)
    if plan.proxy_flood:
        add("proxy ceiling (flood)", lambda: harness.run_proxy_ceiling(plan.proxy_flood),
            kind="proxy_ceiling")
    seed = 1
    for rtt in plan.grid_rtts:
        for loss in plan.grid_losses:
            peers = plan.grid_peers + (plan.grid_ceiling_peers if loss == 0 else ())
            for peer in peers:
                spec = {"transport": peer.transport, "loop": peer.loop, "scenario": "bulk",
                        "size": plan.grid_size, "atcp_config": peer.atcp_config}
                link = _link(loss, rtt, seed)
                add(f"proxy bulk loss {loss:.1%} rtt {rtt * 1000:.0f} ms {peer.label}",
                    _pair_runner(spec, link, plan.budget), kind="bulk", path="proxy",
                    peer=peer.key, transport=peer.transport, loss=loss, rtt=rtt,
                    size=plan.grid_size)
            seed += 1
    for pair in plan.fairness_pairs:
        add(f"fairness {' + '.join(CONGESTION_NAMES[c] for c in pair)} (uvloop), "
            f"{FAIR_RATE * 8 / 1e6:.0f} Mbit/s, {FAIR_RTT * 1000:.0f} ms",
            _flows_runner(pair, plan.fairness_duration, seed), kind="fairness",
            transport="atcp", loop="uvloop", flows=list(pair), rate=FAIR_RATE, rtt=FAIR_RTT,
            queue=FAIR_QUEUE, duration=plan.fairness_duration)
        seed += 1
    for peer in plan.conns_peers:
        for trace in (False, True):
            count = plan.conns_trace_count if trace else plan.conns_count
            spec = {"transport": peer.transport, "loop": peer.loop, "scenario": "conns",
                    "count": count, "parallel": 100, "trace": trace}
            add(f"{count:,} idle connections {peer.label}{' (tracemalloc)' if trace else ''}",
                _pair_runner(spec, None, 120.0), kind="conns", peer=peer.key,
                transport=peer.transport, trace=trace, count=count)
    if plan.churn_duration:
        for peer in plan.conns_peers:
            spec = {"transport": peer.transport, "loop": peer.loop, "scenario": "churn",
                    "duration": plan.churn_duration}
            add(f"open/close churn {peer.label}",
                _pair_runner(spec, None, plan.churn_duration + 20), kind="churn",
                peer=peer.key, transport=peer.transport)
    for name in plan.micro:
        add(f"core: {name}", _micro_runner(name, plan.quick_micro), kind="micro", name=name)
    return tasks


def _pair_runner(spec: dict, link: dict | None, budget: float) -> Callable[[], dict]:
    return lambda: harness.run_pair(spec, link=link, budget=budget)


def _flows_runner(congestions: tuple, duration: float, seed: int) -> Callable[[], dict]:
    specs = [{"transport": "atcp", "loop": "uvloop", "duration": duration,
              "atcp_config": json.dumps({"congestion": name})} for name in congestions]
    link = {"rate": FAIR_RATE, "queue": FAIR_QUEUE, "delay": FAIR_RTT / 2, "seed": seed}
    return lambda: harness.run_flows(specs, link=link, duration=duration)


def _micro_runner(name: str, quick: bool) -> Callable[[], dict]:
    def run() -> dict:
        proc = harness.Proc(["-m", "benchmarks.micro", name] + (["--quick"] if quick else []),
                            f"micro {name}")
        try:
            return proc.read_json(600.0)
        finally:
            proc.stop()
    return run


def _skip_reason(task: Task, atcp_missing: str | None, quic_missing: str | None) -> str | None:
    transport = task.meta.get("transport")
    if atcp_missing and (transport == "atcp" or task.meta.get("kind") == "micro"):
        if transport == "atcp" or not _core_available():
            return atcp_missing
    if quic_missing and transport == "quic":
        return quic_missing
    return None


def _core_available() -> bool:
    try:
        import atcp.core.stack  # noqa: F401
        import atcp.testing.link  # noqa: F401
    except Exception:
        return False
    return True


# ------------------------------------------------------------------ machine
def _machine() -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for name in ("uvloop", "aioquic", "cryptography"):
        try:
            from importlib.metadata import version
            versions[name] = version(name)
        except Exception:
            versions[name] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "kernel": platform.release(), "system": platform.system(), **versions}


def _source_state() -> dict:
    """Which atcp code was measured: the commit, and the files changed since (others may be
    editing the working tree while the suite runs)."""
    import subprocess
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=harness.ROOT,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--", "atcp"],
                                cwd=harness.ROOT, capture_output=True, text=True,
                                timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": head, "uncommitted_atcp_files": [line[3:] for line in status]}


def _loadavg() -> list[float] | None:
    try:
        return list(os.getloadavg())
    except OSError:
        return None


# ------------------------------------------------------------------ progress
class _Progress:
    """tqdm when it is installed, one line per task otherwise."""

    def __init__(self, total: int) -> None:
        try:
            from tqdm import tqdm
            self._bar = tqdm(total=total, unit="run", dynamic_ncols=True, file=sys.stderr)
        except ImportError:
            self._bar = None
        self.total, self.done = total, 0

    def start(self, label: str) -> None:
        if self._bar is not None:
            self._bar.set_description_str(label[:60])
        else:
            print(f"[{self.done + 1}/{self.total}] {label}", file=sys.stderr, flush=True)

    def advance(self) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# ------------------------------------------------------------------ main
def run(plan: Plan, only: str | None = None) -> dict:
    tasks = build_tasks(plan)
    if only:
        pattern = re.compile(only, re.IGNORECASE)
        tasks = [t for t in tasks if pattern.search(t.label)]
    atcp_missing, quic_missing = _atcp_available(), _aioquic_available()
    started = time.monotonic()
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "mode": plan.name, "machine": _machine(), "load_before": _loadavg(),
            "source": _source_state(),
            "plan": {k: (v if not isinstance(v, tuple) else
                         [p.key if isinstance(p, Peer) else p for p in v])
                     for k, v in dataclasses.asdict(plan).items()}}
    runs = []
    progress = _Progress(len(tasks))
    try:
        for task in tasks:
            progress.start(task.label)
            entry = {"label": task.label, **task.meta, "load": _loadavg()}
            reason = _skip_reason(task, atcp_missing, quic_missing)
            if reason:
                entry["skipped"] = reason
            else:
                t0 = time.monotonic()
                try:
                    entry["result"] = task.fn()
                except Exception as exc:   # recorded and shown, never hidden
                    entry["error"] = f"{type(exc).__name__}: {exc}"
                entry["seconds"] = round(time.monotonic() - t0, 2)
            runs.append(entry)
            progress.advance()
    finally:
        progress.close()
    meta["load_after"] = _loadavg()
    meta["seconds"] = round(time.monotonic() - started, 1)
    results = {"meta": meta, "runs": runs}
    results["summary"] = report.summarize(results)
    results["targets"] = report.targets(results)
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="a smaller grid and sizes; under 3 minutes on 2 cores")
    mode.add_argument("--smoke", action="store_true",
                      help="a trivial run that checks the harness (no atcp, no aioquic)")
    p.add_argument("--only", metavar="REGEX", help="run only the scenarios whose label matches")
    p.add_argument("--out", type=Path, default=RESULTS / "latest.json", help="JSON results file")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--publish", action="store_true",
                   help=f"also copy the results and plots of a full run to {PUBLISHED}, the "
                        "run benchmarks/README.md reports (kept in git)")
    args = p.parse_args(argv)
    if args.publish and (args.quick or args.smoke or args.only or args.no_plots):
        p.error("--publish takes a full run with its plots: no --quick, --smoke, --only "
                "or --no-plots")
    plan = SMOKE if args.smoke else QUICK if args.quick else FULL
    results = run(plan, args.only)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    if not args.no_plots:
        written = report.plots(results, args.out.parent)
        results["meta"]["plots"] = [str(p.name) for p in written]
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(report.table(results))
    print(f"\nresults: {args.out}  ({results['meta']['seconds']} s)")
    if args.publish:
        PUBLISHED.mkdir(parents=True, exist_ok=True)
        shutil.copy2(args.out, PUBLISHED / "latest.json")
        for name in results["meta"]["plots"]:
            shutil.copy2(args.out.parent / name, PUBLISHED / name)
        print(f"published: {PUBLISHED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
