"""Starting the processes of one measurement and collecting their JSON reports.

A measurement is a server process, optionally the impairment proxy in front of it, and a
client process. Each prints JSON lines on stdout (see `benchmarks.peer`); this module starts
them in that order, waits for the reports with bounded timeouts, and stops everything it
started, whatever happens. `run_flows` does the same for several client/server pairs that
share one proxy (one bottleneck) and start sending at the same moment.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["Proc", "run_pair", "run_flows", "ROOT"]

ROOT = Path(__file__).resolve().parent.parent


class ProcError(RuntimeError):
    pass


class Proc:
    """A child process speaking JSON lines on stdout; stderr goes to a temporary file."""

    def __init__(self, argv: list[str], name: str) -> None:
        self.name = name
        self._stderr = tempfile.TemporaryFile()
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("PYTHONHASHSEED", "0")
        self.popen = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr)
        self._buffer = b""

    def read_json(self, timeout: float) -> dict:
        """The next JSON line, waiting at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        fd = self.popen.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ProcError(f"{self.name}: no report within {timeout:.0f} s"
                                    f"{self._stderr_tail()}")
                if not sel.select(left):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.popen.wait(timeout=5)
                    raise ProcError(f"{self.name}: exited ({self.popen.returncode}) "
                                    f"without a report{self._stderr_tail()}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            return json.loads(line)
        except ValueError:
            raise ProcError(f"{self.name}: not JSON: {line[:200]!r}") from None

    def write_line(self, text: str) -> None:
        self.popen.stdin.write(text.encode() + b"\n")
        self.popen.stdin.flush()

    def close_stdin(self) -> None:
        try:
            self.popen.stdin.close()
        except OSError:
            pass

    def stop(self, timeout: float = 3.0) -> None:
        """Close stdin (the polite stop), then terminate, then kill."""
        self.close_stdin()
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        self._stderr.close()

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return ("\n  stderr: " + text[-1500:]) if text else ""


def _peer_argv(role: str, spec: dict, port: int, deadline: float) -> list[str]:
    argv = ["-m", "benchmarks.peer", "--role", role, "--port", str(port),
            "--deadline", repr(deadline)]
    for key, value in spec.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not False and value is not None:
            argv += [flag, str(value)]
    return argv


def _proxy_argv(upstream_ports: int | list[int], link: dict) -> list[str]:
    argv = ["-m", "benchmarks.proxy"]
    for port in upstream_ports if isinstance(upstream_ports, list) else [upstream_ports]:
        argv += ["--upstream", f"127.0.0.1:{port}"]
    for key, value in link.items():
        argv += ["--" + key.replace("_", "-"), str(value)]
    return argv


def run_pair(spec: dict, *, link: dict | None, budget: float) -> dict:
    """Run one client/server measurement, through the proxy when ``link`` is given.

    ``spec`` holds the peer options shared by both sides (transport, loop, scenario, size,
    ...); ``budget`` is the most seconds the work may take before both sides stop and report
    what they did. Returns {"client", "server", "proxy"} reports (proxy None without one).
    """
    started = []
    try:
        deadline = time.monotonic() + budget + 10.0   # start-up (imports, certificate)
        server = Proc(_peer_argv("server", spec, 0, deadline), "server")
        started.append(server)
        port = server.read_json(30.0)["ready"]
        proxy = None
        if link is not None:
            proxy = Proc(_proxy_argv(port, link), "proxy")
            started.append(proxy)
            port = proxy.read_json(10.0)["ready"]
        # The client's deadline counts from now: its imports are done before it starts work.
        deadline = time.monotonic() + budget + 3.0
        client = Proc(_peer_argv("client", spec, port, deadline), "client")
        started.append(client)
        client_report = client.read_json(budget + 40.0)
        server.close_stdin()
        server_report = server.read_json(15.0)
        proxy_report = None
        if proxy is not None:
            proxy.close_stdin()
            proxy_report = proxy.read_json(5.0)
        return {"client": client_report, "server": server_report, "proxy": proxy_report}
    finally:
        for proc in reversed(started):
            proc.stop()


def run_flows(specs: list[dict], *, link: dict, duration: float) -> dict:
    """Run one "flow" client/server pair per spec, all through one proxy (one front port per
    server, one shared rate limiter and queue), sending for ``duration`` seconds from the
    same moment: every client connects first, then all are told "go" together.

    Returns {"flows": [{"connected", "client", "server"}, ...], "proxy"}.
    """
    started = []
    try:
        deadline = time.monotonic() + duration + 60.0
        servers = []
        for i, spec in enumerate(specs):
            servers.append(Proc(_peer_argv("server", {**spec, "scenario": "flow"}, 0, deadline),
                                f"server {i + 1}"))
            started.append(servers[-1])
        ports = [server.read_json(30.0)["ready"] for server in servers]
        proxy = Proc(_proxy_argv(ports, link), "proxy")
        started.append(proxy)
        fronts = proxy.read_json(10.0)["ports"]
        deadline = time.monotonic() + duration + 45.0
        clients = []
        for i, (spec, port) in enumerate(zip(specs, fronts)):
            clients.append(Proc(_peer_argv("client", {**spec, "scenario": "flow"}, port,
                                           deadline), f"client {i + 1}"))
            started.append(clients[-1])
        connected = []
        for client in clients:
            report = client.read_json(30.0)
            if "connected" not in report:
                raise ProcError(f"{client.name}: {report.get('error', report)}")
            connected.append(report["connected"])
        for client in clients:
            client.write_line("go")
        client_reports = [client.read_json(duration + 40.0) for client in clients]
        for server in servers:
            server.close_stdin()
        server_reports = [server.read_json(15.0) for server in servers]
        proxy.close_stdin()
        proxy_report = proxy.read_json(5.0)
        return {"flows": [{"connected": t, "client": c, "server": s}
                          for t, c, s in zip(connected, client_reports, server_reports)],
                "proxy": proxy_report}
    finally:
        for proc in reversed(started):
            proc.stop()


def run_proxy_ceiling(duration: float, size: int = 1400, link: dict | None = None) -> dict:
    """Flood the proxy from one process into a sink in another: how much it can forward."""
    started = []
    try:
        sink = Proc(["-m", "benchmarks.flood", "sink", "--timeout", str(duration + 10)], "sink")
        started.append(sink)
        port = sink.read_json(10.0)["ready"]
        proxy = Proc(_proxy_argv(port, link or {}), "proxy")
        started.append(proxy)
        port = proxy.read_json(10.0)["ready"]
        blaster = Proc(["-m", "benchmarks.flood", "blast", str(port), "--duration",
                        str(duration), "--size", str(size)], "blast")
        started.append(blaster)
        blast_report = blaster.read_json(duration + 15.0)
        sink_report = sink.read_json(15.0)
        proxy.close_stdin()
        proxy_report = proxy.read_json(5.0)
        return {"blast": blast_report, "sink": sink_report, "proxy": proxy_report}
    finally:
        for proc in reversed(started):
            proc.stop()
