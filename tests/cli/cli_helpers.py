"""Helpers for the CLI tests: the ``atcp`` command as a subprocess, with bounded waits."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading

ATCP = [sys.executable, "-m", "atcp"]
#: Every wait in these tests is bounded by this (seconds).
WAIT = 20.0


def run_atcp(*args: str, input: bytes = b"", timeout: float = WAIT, **kwds):
    """Run ``atcp ARGS`` to completion; return the CompletedProcess (bytes output)."""
    return subprocess.run([*ATCP, *args], input=input, capture_output=True,
                          timeout=timeout, **kwds)


class Server:
    """A long-running ``atcp`` subprocess, its stderr read line by line in a thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([*ATCP, *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern: str, timeout: float = WAIT) -> re.Match:
        """The first stderr line (from now on) matching ``pattern``."""
        regex = re.compile(pattern)
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s; "
                                     f"saw {self.seen!r}") from None
            if line is None:
                raise AssertionError(f"atcp exited ({self.proc.wait()}) before printing "
                                     f"{pattern!r}; saw {self.seen!r}")
            self.seen.append(line)
            match = regex.search(line)
            if match:
                return match

    def port(self) -> int:
        """The port of the first "listening on HOST:PORT" line."""
        return int(self.wait_for(r"listening on (?:TCP |atcp )?\S*:(\d+)").group(1))

    def stop(self, *, terminate: bool = True) -> tuple[int, str]:
        """SIGTERM (unless ``terminate`` is False: the command ends by itself), then the
        exit status and the rest of stderr."""
        if terminate and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            status = self.proc.wait()
        rest = []
        while (line := self.lines.get(timeout=WAIT)) is not None:
            rest.append(line)
        self.seen.extend(rest)
        return status, "".join(rest)


def one_line(stderr: bytes) -> str:
    """Assert stderr is exactly one line, and return it."""
    text = stderr.decode()
    lines = text.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {text!r}"
    assert "Traceback" not in text
    return lines[0]


