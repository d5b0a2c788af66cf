"""From raw reports to figures: the summary, the targets, the table and the plots.

    python -m benchmarks.report [results.json] [--markdown]   # print the table again

Every figure is computed from the raw client/server/proxy reports kept in the JSON, so a
reader can check any number against its source.

* goodput = bytes the server received / (time of the last byte at the server - time the
  client started writing, just after the connection was set up), in MB/s (10**6 bytes/s).
* a run cut short by its time budget is marked ``partial``: its goodput is still what it
  moved in that time.
* CPU per segment end to end = a process's CPU time / the data datagrams the proxy counted
  in the client-to-server direction (loss 0, RTT 0 through the proxy).
* Mathis bound = MSS / RTT * sqrt(3/2) / sqrt(p) (Mathis et al., 1997), with MSS 1452, the
  RTT the proxy adds, and p the loss rate it applies.
* fairness: flows told "go" together share one rate-limited proxy for D seconds; a flow's
  bytes are its server's count at go + D (interpolated between its 0.1 s samples), its
  goodput those bytes / D, and its share of the link that goodput / the limiter's rate
  (which counts whole UDP payloads, headers included, so two flows together reach a little
  under 1). Jain's index = (sum x)**2 / (n * sum x**2) over the flows' goodputs.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

__all__ = ["summarize", "targets", "table", "markdown", "plots"]

MSS = 1452
UDP_DATAGRAM = 1400
LABELS = {"atcp/asyncio": "atcp (asyncio)", "atcp/uvloop": "atcp (uvloop)",
          "atcp-pd/asyncio": "atcp per-datagram (asyncio)",
          "atcp-pd/uvloop": "atcp per-datagram (uvloop)",
          "atcp-bbr/asyncio": "atcp BBR (asyncio)", "atcp-bbr/uvloop": "atcp BBR (uvloop)",
          "quic/asyncio": "aioquic (asyncio)", "quic/uvloop": "aioquic (uvloop)",
          "tcp/asyncio": "kernel TCP (asyncio)", "tcp/uvloop": "kernel TCP (uvloop)",
          "udp/asyncio": "raw UDP (asyncio)", "udp/uvloop": "raw UDP (uvloop)",
          "udpstreams/asyncio": "UDP streams, no protocol (asyncio)",
          "udpstreams/uvloop": "UDP streams, no protocol (uvloop)"}
CONGESTION_LABELS = {"bbr": "BBR", "cubic": "CUBIC", "newreno": "NewReno"}


def mathis(rtt: float, loss: float, mss: int = MSS) -> float | None:
    """The Mathis et al. bound on loss-based TCP throughput, in MB/s."""
    if rtt <= 0 or loss <= 0:
        return None
    return mss / rtt * math.sqrt(1.5) / math.sqrt(loss) / 1e6


# ------------------------------------------------------------------ summary
def _ok(run: dict) -> dict | None:
    result = run.get("result")
    if not result:
        return None
    for side in ("client", "server"):
        if side in result and result[side] and "error" in result[side]:
            return None
    return result


def _problem(run: dict) -> str | None:
    if "skipped" in run:
        return "skipped: " + run["skipped"]
    if "error" in run:
        return run["error"]
    result = run.get("result") or {}
    for side in ("client", "server"):
        report = result.get(side) or {}
        if "error" in report:
            return f"{side}: {report['error']}"
    return None


def _goodput(result: dict) -> tuple[float | None, bool]:
    client, server = result["client"], result["server"]
    if not server.get("bytes") or server.get("t_last") is None:
        return None, False
    elapsed = server["t_last"] - client["t0"]
    return (server["bytes"] / elapsed / 1e6 if elapsed > 0 else None,
            bool(server.get("complete")))


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(results: dict) -> dict:
    runs = results["runs"]
    out: dict = {"loopback_bulk": {}, "echo": {}, "grid": [], "conns": {}, "churn": {},
                 "micro": {}, "proxy_ceiling": None, "e2e_cpu": {}, "fairness": [],
                 "problems": []}
    samples: dict = {}
    for run in runs:
        problem = _problem(run)
        if problem:
            out["problems"].append({"label": run["label"], "problem": problem})
        result = _ok(run)
        kind = run.get("kind")
        if kind == "bulk" and run.get("path") == "loopback":
            entry = samples.setdefault(("bulk", run["peer"]), [])
            if result:
                entry.append(_goodput(result)[0])
        elif kind == "echo":
            entry = samples.setdefault(("echo", run["peer"]), [])
            if result:
                client = result["client"]
                entry.append(client.get("rate"))
                if client.get("cpu") is not None and client.get("round_trips"):
                    samples.setdefault(("echo_cpu", run["peer"]), []).append(
                        client["cpu"] / client["round_trips"] * 1e6)
        elif kind == "bulk":
            out["grid"].append(_grid_cell(run, result, problem))
        elif kind == "proxy_ceiling" and result:
            out["proxy_ceiling"] = _proxy_ceiling(result)
        elif kind == "conns":
            key = run["peer"] + ("/trace" if run.get("trace") else "")
            out["conns"][key] = _conns(result, problem, run)
        elif kind == "churn":
            out["churn"][run["peer"]] = ({k: result["client"].get(k) for k in
                                          ("rate", "cycles", "failures", "fds_held",
                                           "rss_delta")}
                                         if result else {"problem": problem})
        elif kind == "fairness":
            out["fairness"].append(_fairness(run, result, problem))
        elif kind == "micro":
            out["micro"][run["name"]] = result if result else {"problem": problem}
    for (kind, peer), values in samples.items():
        if kind == "echo_cpu":
            continue
        target = out["loopback_bulk"] if kind == "bulk" else out["echo"]
        target[peer] = {"median": _median(values), "samples": values}
    for (kind, peer), values in samples.items():
        if kind == "echo_cpu" and peer in out["echo"]:
            out["echo"][peer]["client_cpu_us"] = _median(values)
    for cell in out["grid"]:
        if cell["loss"] == 0 and cell["rtt"] == 0 and cell.get("cpu_us_per_segment"):
            out["e2e_cpu"][cell["peer"]] = cell["cpu_us_per_segment"]
    return out


def _grid_cell(run: dict, result: dict | None, problem: str | None) -> dict:
    cell = {"peer": run["peer"], "loss": run["loss"], "rtt": run["rtt"],
            "mathis": mathis(run["rtt"], run["loss"])}
    if result is None:
        cell["problem"] = problem
        return cell
    goodput, complete = _goodput(result)
    cell.update(goodput=goodput, complete=complete)
    proxy = result.get("proxy") or {}
    if proxy:
        fwd = proxy["forwarded"]["fwd"]
        cell["proxy"] = {"cpu_share": proxy["cpu"] / proxy["wall"] if proxy.get("wall") else None,
                         "lost_fwd": proxy["fwd"]["lost"], "lost_rev": proxy["rev"]["lost"],
                         "datagrams_fwd": fwd, "datagrams_rev": proxy["forwarded"]["rev"],
                         "us_per_datagram": proxy["cpu"] / max(1, fwd + proxy["forwarded"]["rev"])
                         * 1e6}
        if fwd:
            cell["cpu_us_per_segment"] = {
                "sender": result["client"]["cpu"] / fwd * 1e6,
                "receiver": result["server"]["cpu"] / fwd * 1e6,
                "acks_per_segment": proxy["forwarded"]["rev"] / fwd}
    return cell


_BIN = 0.5   # seconds per point of a fairness flow's goodput timeline


def _bytes_at(samples: list, t: float) -> float:
    """A flow's bytes at the server at time ``t``, linear between its (time, bytes)
    samples; ``samples`` starts with (go, 0)."""
    prev_t, prev_b = samples[0]
    for ts, b in samples[1:]:
        if ts >= t:
            return prev_b + (b - prev_b) * (t - prev_t) / (ts - prev_t) if ts > prev_t else b
        prev_t, prev_b = ts, b
    return prev_b


def _fairness(run: dict, result: dict | None, problem: str | None) -> dict:
    entry = {"pair": " + ".join(CONGESTION_LABELS.get(c, c) for c in run["flows"]),
             "congestions": run["flows"], "rate": run["rate"], "rtt": run["rtt"],
             "queue": run["queue"], "duration": run["duration"]}
    flows = (result or {}).get("flows") or []
    if problem or not flows or any("error" in f["server"] or "samples" not in f["server"]
                                   for f in flows):
        entry["problem"] = problem or "a flow did not report"
        return entry
    duration, rate = run["duration"], run["rate"]
    go = min(f["client"]["t0"] for f in flows)
    end, middle = go + duration, go + duration / 2
    entry["skew"] = max(f["client"]["t0"] for f in flows) - go
    out = []
    for name, flow in zip(run["flows"], flows):
        samples = [(go, 0)] + [tuple(x) for x in flow["server"]["samples"] if x[0] > go]
        total, half = _bytes_at(samples, end), _bytes_at(samples, middle)
        edges = [_bytes_at(samples, go + i * _BIN) for i in range(int(duration / _BIN) + 1)]
        out.append({"congestion": name, "bytes": total,
                    "goodput": total / duration / 1e6, "share": total / duration / rate,
                    "share_second_half": (total - half) / (duration / 2) / rate,
                    "timeline": [(b - a) / _BIN / 1e6 for a, b in zip(edges, edges[1:])]})
    both = sum(f["bytes"] for f in out)
    for f in out:
        f["share_of_total"] = f["bytes"] / both if both else None
    rates = [f["goodput"] for f in out]
    squares = sum(x * x for x in rates)
    entry.update(flows=out, utilization=sum(f["share"] for f in out),
                 jain=sum(rates) ** 2 / (len(rates) * squares) if squares else None)
    proxy = result.get("proxy") or {}
    if proxy:
        entry["queue_dropped"] = proxy["fwd"]["queue_dropped"]
        entry["datagrams_fwd"] = proxy["forwarded"]["fwd"]
    return entry


def _proxy_ceiling(result: dict) -> dict:
    sink, proxy = result["sink"], result["proxy"]
    forwarded = sum(proxy["forwarded"].values())
    elapsed = (sink["t_last"] - sink["t_first"]) if sink.get("t_first") else None
    us = proxy["cpu"] / forwarded * 1e6 if forwarded else None
    return {"forwarded_per_s": sink["datagrams"] / elapsed if elapsed else None,
            "offered_per_s": result["blast"]["sent"] / (result["blast"]["t1"]
                                                        - result["blast"]["t0"]),
            "us_cpu_per_datagram": us,
            "ceiling_per_core": 1e6 / us if us else None,
            "ceiling_mb_s": 1e6 / us * UDP_DATAGRAM / 1e6 if us else None}


def _conns(result: dict | None, problem: str | None, run: dict) -> dict:
    if result is None:
        return {"problem": problem}
    client, server = result["client"], result["server"]
    return {"count": run["count"], "opened": client["opened"], "failures": client["failures"],
            "setup_rate": client["setup_rate"], "close_rate": client.get("close_rate"),
            "client_rss_per_conn": client["rss_per_conn"],
            "client_traced_per_conn": client.get("traced_per_conn"),
            "server_rss_per_conn": server.get("rss_per_conn"),
            "server_traced_per_conn": server.get("traced_per_conn")}


# ------------------------------------------------------------------ targets
def _best(entries: dict, keys: tuple) -> tuple[float | None, str | None]:
    best = None, None
    for key in keys:
        value = (entries.get(key) or {}).get("median")
        if value is not None and (best[0] is None or value > best[0]):
            best = value, key
    return best


def _target(name, measured, reference, goal, unit, note="", lower_is_better=False):
    ratio = None
    if measured is not None and reference not in (None, 0):
        ratio = measured / reference
    status = "n/a" if ratio is None else ("PASS" if ratio >= goal else "MISS")
    if lower_is_better and measured is not None and reference is not None:
        # Figures whose goal is a ceiling (bytes): the ratio is budget / measured.
        ratio = reference / measured if measured else None
        status = "PASS" if ratio is not None and ratio >= goal else "MISS"
    return {"target": name, "measured": measured, "reference": reference, "ratio": ratio,
            "goal": goal, "unit": unit, "status": status, "note": note}


def targets(results: dict) -> list[dict]:
    s = results["summary"]
    out = []
    atcp_bulk = (s["loopback_bulk"].get("atcp/uvloop") or {}).get("median")
    quic_bulk, quic_key = _best(s["loopback_bulk"], ("quic/asyncio", "quic/uvloop"))
    udp_bulk = (s["loopback_bulk"].get("udp/uvloop") or {}).get("median")
    out.append(_target("bulk, no loss: atcp (uvloop) / best aioquic", atcp_bulk, quic_bulk, 4.0,
                       "MB/s", f"aioquic on {quic_key}" if quic_key else ""))
    out.append(_target("bulk, no loss: atcp (uvloop) / raw UDP window (uvloop)", atcp_bulk,
                       udp_bulk, 0.4, "MB/s"))
    per_datagram = (s["loopback_bulk"].get("atcp-pd/uvloop") or {}).get("median")
    out.append(_target("bulk, no loss: atcp (uvloop) / atcp per-datagram I/O (uvloop)",
                       atcp_bulk, per_datagram, 2.0, "MB/s",
                       "batched UDP I/O (GSO/GRO) against Config(udp_offload=False)"))
    atcp_echo = (s["echo"].get("atcp/uvloop") or {}).get("median")
    quic_echo, quic_echo_key = _best(s["echo"], ("quic/asyncio", "quic/uvloop"))
    udp_echo = (s["echo"].get("udp/uvloop") or {}).get("median")
    out.append(_target("64-byte echo: atcp (uvloop) / best aioquic", atcp_echo, quic_echo, 2.5,
                       "round trips/s", f"aioquic on {quic_echo_key}" if quic_echo_key else ""))
    out.append(_target("64-byte echo: atcp (uvloop) / raw UDP ping-pong (uvloop)", atcp_echo,
                       udp_echo, 0.75, "round trips/s"))
    cells = {(c["peer"], c["loss"], c["rtt"]): c for c in s["grid"]}
    atcp_lossy = (cells.get(("atcp/uvloop", 0.01, 0.02)) or {}).get("goodput")
    quic_lossy = max((c.get("goodput") or 0 for k, c in cells.items()
                      if k[0].startswith("quic/") and k[1:] == (0.01, 0.02)), default=None) or None
    out.append(_target("1% loss, 20 ms RTT: atcp (uvloop) / best aioquic", atcp_lossy,
                       quic_lossy, 1.5, "MB/s"))
    out.append(_target("1% loss, 20 ms RTT: atcp (uvloop) / Mathis bound", atcp_lossy,
                       mathis(0.02, 0.01), 1.0, "MB/s",
                       "atcp's default Config, so CUBIC: issue 9's CUBIC target too"))
    bbr_lossy = (cells.get(("atcp-bbr/uvloop", 0.01, 0.02)) or {}).get("goodput")
    out.append(_target("1% loss, 20 ms RTT: atcp BBR (uvloop) / best aioquic", bbr_lossy,
                       quic_lossy, 10.0, "MB/s"))
    fair = next((f for f in s.get("fairness", []) if f["congestions"] == ["bbr", "cubic"]
                 and "flows" in f), None)
    cubic_share = fair["flows"][1]["goodput"] if fair else None
    out.append(_target("fairness: CUBIC beside BBR / link rate", cubic_share,
                       fair["rate"] / 1e6 if fair else None, 0.25, "MB/s",
                       f"ratio = CUBIC's share of the link; BBR's is "
                       f"{fair['flows'][0]['share']:.2f}" if fair else ""))
    timers = s["micro"].get("timers") or {}
    wheel = timers.get("wheel_schedule_ns")
    call_later = min((v for k, v in timers.items() if k.startswith("call_later_")), default=None)
    # Two rows, both judged against the goal: what re-arming the RTO on an ACK costs a
    # connection (a compare and a field write while the wheel's entry is earlier, the
    # design of style.md), and what moving an entry inside the wheel itself costs (the
    # rarer case of a deadline that moves earlier).
    out.append(_target("timer re-arm: cheapest cancel()+call_later / connection RTO re-arm",
                       call_later, timers.get("connection_lazy_rearm_ns"), 10.0, "ns",
                       "ratio = how many times cheaper; the re-arm every ACK makes"))
    out.append(_target("timer move: cheapest cancel()+call_later / TimingWheel.schedule",
                       call_later, wheel, 10.0, "ns",
                       "ratio = how many times cheaper; an entry moved to a random new slot"))
    conns = s["conns"].get("atcp/uvloop/trace") or {}
    out.append(_target("memory per idle connection, client side <= 8 KiB",
                       conns.get("client_traced_per_conn"), 8192, 1.0, "bytes",
                       "open_connection: UDP endpoint, stack, transport, StreamReader/Writer; "
                       "tracemalloc", lower_is_better=True))
    out.append(_target("memory per idle connection, server side <= 8 KiB",
                       conns.get("server_traced_per_conn"), 8192, 1.0, "bytes",
                       "accepted connection incl. the benchmark's idle handler task; "
                       "tracemalloc", lower_is_better=True))
    tw = (s["micro"].get("time_wait") or {}).get("bytes_per_entry")
    out.append(_target("memory per TIME-WAIT entry <= 300 bytes", tw, 300, 1.0, "bytes",
                       "tracemalloc, 100,000 records made through the core",
                       lower_is_better=True))
    return out


# ------------------------------------------------------------------ table
def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _rows(results: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """Sections of the table, as (title, header, rows)."""
    s = results["summary"]
    sections = []
    peers = sorted(set(s["loopback_bulk"]) | set(s["echo"]), key=_peer_order)
    rows = []
    for peer in peers:
        bulk = s["loopback_bulk"].get(peer) or {}
        echo = s["echo"].get(peer) or {}
        rows.append([LABELS.get(peer, peer), _fmt(bulk.get("median")),
                     _fmt(echo.get("median"), 0), _fmt(echo.get("client_cpu_us"))])
    if rows:
        sections.append(("Loopback, no proxy (median of repeats)",
                         ["peer", "bulk MB/s", "64-byte echo round trips/s",
                          "echo: client CPU us per round trip"], rows))
    grid = s["grid"]
    if grid:
        gpeers = sorted({c["peer"] for c in grid}, key=_peer_order)
        rows = []
        for rtt in sorted({c["rtt"] for c in grid}):
            for loss in sorted({c["loss"] for c in grid}):
                row = [f"{loss:.1%}", f"{rtt * 1000:.0f}"]
                for peer in gpeers:
                    cell = next((c for c in grid if c["peer"] == peer and c["loss"] == loss
                                 and c["rtt"] == rtt), None)
                    if cell is None:
                        row.append("")
                    elif cell.get("goodput") is None:
                        row.append("error" if cell.get("problem") else "-")
                    else:
                        row.append(_fmt(cell["goodput"], 2) + ("" if cell["complete"] else "*"))
                row.append(_fmt(mathis(rtt, loss), 2))
                rows.append(row)
        sections.append(("Bulk through the impairment proxy, MB/s (* = cut at the time budget)",
                         ["loss", "RTT ms"] + [LABELS.get(p, p) for p in gpeers]
                         + ["Mathis bound"], rows))
    rows = []
    pc = s.get("proxy_ceiling")
    if pc:
        rows.append(["proxy: CPU per forwarded datagram", _fmt(pc["us_cpu_per_datagram"], 2)
                     + " us", f"ceiling {_fmt(pc['ceiling_per_core'])} datagrams/s per core "
                     f"({_fmt(pc['ceiling_mb_s'])} MB/s at 1400 B); forwarded "
                     f"{_fmt(pc['forwarded_per_s'])}/s under flood"])
    for peer, cpu in s["e2e_cpu"].items():
        rows.append([f"end to end CPU per data segment, {LABELS.get(peer, peer)}",
                     f"{_fmt(cpu['sender'])} / {_fmt(cpu['receiver'])} us",
                     f"sender / receiver process; {cpu['acks_per_segment']:.2f} "
                     "ACK datagrams per data datagram"])
    core = s["micro"].get("core_segments") or {}
    if "us_per_segment_total" in core:
        rows.append(["core CPU per data segment (Link)",
                     f"{_fmt(core['us_per_segment_sender'])} / "
                     f"{_fmt(core['us_per_segment_receiver'])} us",
                     f"sender / receiver side; link simulation "
                     f"{_fmt(core['us_per_segment_link'])} us; total "
                     f"{_fmt(core['us_per_segment_total'])} us"])
    echo = s["micro"].get("core_echo") or {}
    if "us_per_round_trip" in echo:
        rows.append(["core CPU per 64-byte echo round trip",
                     f"{_fmt(echo['us_client'])} / {_fmt(echo['us_server'])} us",
                     "client / server side, two Stacks handing datagrams to each other "
                     "(no link, no I/O); the protocol's share of an echo round trip"])
    timers = s["micro"].get("timers") or {}
    if "wheel_schedule_ns" in timers:
        rows.append(["timer re-arm at 10,000 timers",
                     f"{_fmt(timers['wheel_schedule_ns'], 0)} ns",
                     f"TimingWheel.schedule; connection lazy re-arm "
                     f"{_fmt(timers['connection_lazy_rearm_ns'], 0)} ns; cancel+call_later "
                     f"{_fmt(timers['call_later_asyncio_ns'], 0)} ns (asyncio), "
                     f"{_fmt(timers['call_later_uvloop_ns'], 0)} ns (uvloop)"])
    for key, c in s["conns"].items():
        if "problem" in c:
            rows.append([f"idle connections {key}", "error", c["problem"][:80]])
            continue
        if key.endswith("/trace"):
            rows.append([f"{c['opened']:,} idle connections, {LABELS.get(key[:-6], key)}",
                         f"{_fmt(c['client_traced_per_conn'], 0)} B/conn",
                         f"tracemalloc; server side {_fmt(c['server_traced_per_conn'], 0)} "
                         "B/conn (incl. its handler task)"])
        else:
            rows.append([f"{c['opened']:,} connections set up, {LABELS.get(key, key)}",
                         f"{_fmt(c['setup_rate'], 0)}/s",
                         f"100 opens in flight; RSS {_fmt(c['client_rss_per_conn'], 0)} B/conn "
                         f"client, {_fmt(c['server_rss_per_conn'], 0)} B/conn server; "
                         f"{c['failures']} failed"])
    mem = s["micro"].get("core_memory") or {}
    if "bytes_per_connection" in mem:
        rows.append(["core alone, per established connection",
                     f"{_fmt(mem['bytes_per_connection'], 0)} B",
                     f"tracemalloc, {mem['connections']:,} connections (both ends) over Link"])
    tw = s["micro"].get("time_wait") or {}
    if "bytes_per_entry" in tw:
        rows.append(["TIME-WAIT record", f"{_fmt(tw['bytes_per_entry'], 0)} B",
                     f"tracemalloc, {tw['entries']:,} records"])
        for key, what in (("churn_empty", "none waiting"),
                          ("churn_full", f"{tw['entries']:,} waiting, spread over 2*MSL"),
                          ("churn_burst", f"{tw['entries']:,} waiting, all from one instant")):
            if key in tw:
                rows.append([f"core open/close cycles, {what}", f"{_fmt(tw[key]['rate'], 0)}/s",
                             f"{_fmt(tw[key]['us_per_cycle'], 0)} us per cycle over Link"])
    for peer, c in s["churn"].items():
        if "problem" in c:
            rows.append([f"open/close churn end to end, {LABELS.get(peer, peer)}", "error",
                         c["problem"][:80]])
            continue
        held = ""
        if c.get("fds_held") is not None and c.get("cycles"):
            held = (f"; afterwards the client holds {c['fds_held']:,} more fds and "
                    f"{_fmt(c['rss_delta'] / c['cycles'], 0)} B RSS per closed connection")
        rows.append([f"open/close churn end to end, {LABELS.get(peer, peer)}",
                     f"{_fmt(c.get('rate'), 0)}/s",
                     f"sequential, client closes first; {c['cycles']:,} cycles{held}"])
    if rows:
        sections.append(("Scale, timers and CPU", ["measure", "value", "detail"], rows))
    rows = []
    for f in s.get("fairness", []):
        if "problem" in f:
            rows.append([f["pair"], "", "error", "", "", f["problem"][:80]])
            continue
        for flow in f["flows"]:
            name = CONGESTION_LABELS.get(flow["congestion"], flow["congestion"])
            rows.append([f["pair"], name, _fmt(flow["goodput"], 2), _fmt(flow["share"], 2),
                         _fmt(flow["share_second_half"], 2), ""])
        rows.append([f["pair"], "both", _fmt(sum(x["goodput"] for x in f["flows"]), 2),
                     _fmt(f["utilization"], 2),
                     _fmt(sum(x["share_second_half"] for x in f["flows"]), 2),
                     f"Jain index {_fmt(f['jain'], 3)}; {f.get('queue_dropped', 0):,} of "
                     f"{f.get('datagrams_fwd', 0):,} data datagrams dropped at the queue"])
    if rows:
        f = s["fairness"][0]
        sections.append((f"Fairness: two flows sharing one link of {f['rate'] * 8 / 1e6:g} "
                         f"Mbit/s, {f['rtt'] * 1000:g} ms RTT, {f['queue'] / 1000:g} kB queue, "
                         f"{f['duration']:g} s (uvloop)",
                         ["flows", "flow", "goodput MB/s", "share of link",
                          "share, second half", "detail"], rows))
    rows = []
    for t in results["targets"]:
        rows.append([t["target"], _fmt(t["measured"]), _fmt(t["reference"]),
                     _fmt(t["ratio"], 2), f">= {t['goal']:g}", t["status"]])
    sections.append(("Targets (ratios measured in this run)",
                     ["target", "measured", "reference", "ratio", "goal", "status"], rows))
    return sections


def _notes(results: dict) -> list[str]:
    notes = [f"{t['target']}: {t['note']}" for t in results["targets"] if t.get("note")]
    loads = [run["load"][0] for run in results["runs"] if run.get("load")]
    if loads:
        notes.append(f"1-minute load average during the run: {min(loads):.2f} to "
                     f"{max(loads):.2f} on {results['meta']['machine']['cores']} cores")
    return notes


def _peer_order(peer: str) -> tuple:
    order = ["atcp", "atcp-bbr", "atcp-pd", "quic", "tcp", "udp", "udpstreams"]
    transport, _, loop = peer.partition("/")
    return (order.index(transport) if transport in order else 9, loop != "asyncio", peer)


def _header(results: dict) -> str:
    m = results["meta"]
    mach = m["machine"]
    load = m.get("load_before")
    return (f"atcp benchmarks, {m['mode']} mode, {m['date']}: {mach['cpu']}, "
            f"{mach['cores']} cores, Python {mach['python']}, kernel {mach['kernel']}, "
            f"uvloop {mach.get('uvloop')}, aioquic {mach.get('aioquic')}; load average "
            f"before {load[0]:.2f}" if load else "")


def table(results: dict) -> str:
    lines = [_header(results)]
    for title, header, rows in _rows(results):
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
        lines += ["", title, "  ".join(h.ljust(w) for h, w in zip(header, widths)),
                  "  ".join("-" * w for w in widths)]
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines += [""] + [f"- {note}" for note in _notes(results)]
    problems = results["summary"]["problems"]
    if problems:
        lines += ["", "Runs that did not complete:"]
        lines += [f"  {p['label']}: {p['problem'][:300]}" for p in problems]
    return "\n".join(lines)


def markdown(results: dict) -> str:
    lines = [_header(results)]
    for title, header, rows in _rows(results):
        lines += ["", f"**{title}**", "", "| " + " | ".join(header) + " |",
                  "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    lines += [""] + [f"- {note}" for note in _notes(results)]
    problems = results["summary"]["problems"]
    if problems:
        lines += ["", "Runs that did not complete:", ""]
        lines += [f"- {p['label']}: {p['problem'][:300]}" for p in problems]
    return "\n".join(lines)


# ------------------------------------------------------------------ plots
def plots(results: dict, folder: Path) -> list[Path]:
    """PNG plots next to the JSON; none (and a note on stderr) without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install -e '.[bench]')",
              file=sys.stderr)
        return []
    s = results["summary"]
    written = []
    stamp = f"{results['meta']['mode']} run, {results['meta']['date']}"
    grid = [c for c in s["grid"] if c.get("goodput") is not None]
    if grid:
        rtts = sorted({c["rtt"] for c in grid})
        fig, axes = plt.subplots(1, len(rtts), figsize=(6 * len(rtts), 4.5), squeeze=False)
        for ax, rtt in zip(axes[0], rtts):
            losses = sorted({c["loss"] for c in grid if c["rtt"] == rtt})
            xs = list(range(len(losses)))
            for peer in sorted({c["peer"] for c in grid}, key=_peer_order):
                ys = []
                for loss in losses:
                    cell = next((c for c in grid if c["peer"] == peer and c["rtt"] == rtt
                                 and c["loss"] == loss), None)
                    ys.append(cell["goodput"] if cell else float("nan"))
                ax.plot(xs, ys, marker="o", label=LABELS.get(peer, peer))
            bound = [mathis(rtt, loss) or float("nan") for loss in losses]
            if any(not math.isnan(b) for b in bound):
                ax.plot(xs, bound, "k--x", label="Mathis bound")
            ax.set_xticks(xs, [f"{loss:.1%}" for loss in losses])
            ax.set_yscale("log")
            _plain_log_labels(ax.yaxis)
            ax.set_xlabel("loss each way")
            ax.set_ylabel("goodput, MB/s")
            ax.set_title(f"bulk through the proxy, RTT {rtt * 1000:.0f} ms")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(stamp, fontsize=9)
        fig.tight_layout()
        written.append(_save(fig, folder / "bulk_loss.png", plt))
    peers = sorted(set(s["loopback_bulk"]) | set(s["echo"]), key=_peer_order)
    if peers:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        for ax, (data, title, unit) in zip(axes, (
                (s["loopback_bulk"], "bulk over loopback", "MB/s"),
                (s["echo"], "64-byte echo over loopback", "round trips/s"))):
            names = [p for p in peers if (data.get(p) or {}).get("median")]
            values = [data[p]["median"] for p in names]
            ax.barh([LABELS.get(p, p) for p in names], values,
                    color=[_colour(p) for p in names])
            ax.set_xscale("log")
            # Over more than two decades, 1-2-5 labels run into each other.
            wide = bool(values) and max(values) > 100 * min(values)
            _plain_log_labels(ax.xaxis, subs=(1.0,) if wide else (1.0, 2.0, 5.0))
            if values:
                ax.set_xlim(min(values) / 3, max(values) * 4)
            ax.set_xlabel(unit)
            ax.set_title(title)
            ax.grid(True, axis="x", which="both", alpha=0.3)
            for y, v in enumerate(values):
                ax.text(v, y, f" {v:,.1f}" if v < 1000 else f" {v:,.0f}", va="center",
                        fontsize=8)
        fig.suptitle(stamp, fontsize=9)
        fig.tight_layout()
        written.append(_save(fig, folder / "loopback.png", plt))
    fair = [f for f in s.get("fairness", []) if "flows" in f]
    if fair:
        fig, axes = plt.subplots(1, len(fair), figsize=(5 * len(fair), 3.8), squeeze=False,
                                 sharey=True)
        for ax, f in zip(axes[0], fair):
            for i, flow in enumerate(f["flows"]):
                xs = [(k + 1) * _BIN for k in range(len(flow["timeline"]))]
                name = CONGESTION_LABELS.get(flow["congestion"], flow["congestion"])
                ax.plot(xs, flow["timeline"], label=f"{name} (flow {i + 1})")
            ax.axhline(f["rate"] / 1e6, color="k", linestyle="--", linewidth=0.8,
                       label="link rate")
            ax.set_xlabel("seconds since go")
            ax.set_ylim(bottom=0)
            ax.set_title(f"{f['pair']}: {f['rate'] * 8 / 1e6:g} Mbit/s, "
                         f"{f['rtt'] * 1000:g} ms", fontsize=10)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
        axes[0][0].set_ylabel(f"goodput, MB/s ({_BIN:g} s bins)")
        fig.suptitle(stamp, fontsize=9)
        fig.tight_layout()
        written.append(_save(fig, folder / "fairness.png", plt))
    timers = s["micro"].get("timers") or {}
    if "wheel_schedule_ns" in timers:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        names = ["TimingWheel.schedule", "Connection lazy re-arm",
                 "cancel + call_later (asyncio)", "cancel + call_later (uvloop)"]
        values = [timers["wheel_schedule_ns"], timers["connection_lazy_rearm_ns"],
                  timers["call_later_asyncio_ns"], timers["call_later_uvloop_ns"]]
        ax.barh(names, values, color=["C0", "C0", "C7", "C7"])
        ax.set_xlim(0, max(values) * 1.18)
        ax.set_xlabel("ns per re-arm, 10,000 timers")
        ax.set_title(stamp, fontsize=9)
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:,.0f}", va="center", fontsize=8)
        fig.tight_layout()
        written.append(_save(fig, folder / "timers.png", plt))
    return written


def _plain_log_labels(axis, subs=(1.0, 2.0, 5.0)) -> None:
    """Label a log axis 1, 10, 100... rather than 10^0 (and 2, 5, 20... with the default
    ``subs``), and leave minor ticks unlabelled."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    axis.set_major_locator(LogLocator(subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.10g}"))
    axis.set_minor_formatter(NullFormatter())


def _colour(peer: str) -> str:
    return {"atcp": "C0", "quic": "C1", "tcp": "C2", "udp": "C7",
            "udpstreams": "C8"}.get(peer.split("/")[0], "C3")


def _save(fig, path: Path, plt) -> Path:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    folder = Path(__file__).resolve().parent / "results"
    p = argparse.ArgumentParser(description="Print the table of a results file again.")
    p.add_argument("results", type=Path, nargs="?",
                   help="a results file (default: the last run's, else the published run's)")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)
    path = args.results
    if path is None:
        path = folder / "latest.json"
        if not path.exists():
            path = folder / "published" / "latest.json"
    results = json.loads(path.read_text())
    # Recomputed from the raw reports, so the figures always match this module's rules.
    results["summary"] = summarize(results)
    results["targets"] = targets(results)
    print(markdown(results) if args.markdown else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
