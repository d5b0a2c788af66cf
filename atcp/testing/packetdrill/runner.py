"""Play packetdrill-syntax scripts against atcp's sans-I/O core on a fake clock.

Theory of operation
-------------------
A `Runner` walks the events of one parsed `Script` in order. Each event has a script time
(absolute, or relative to the previous event's script time; a ``*`` event happens whenever
its segment shows up, and later relative times count from then). Before an event at time T
the clock jumps to T, but not blindly: the stack's timers are run in order of their
deadlines (``Stack.poll`` at each ``Stack.next_deadline()`` up to T), so every segment a
timer sends is stamped with the time it left.

Everything the stack sends goes into one queue. A ``>`` line takes the oldest segment in the
queue (running timers up to its time plus the tolerance if the queue is empty) and requires
it to match: sent within ``--tolerance_usecs`` (default 4000) of the line's time, to the
right remote (plain TCP, or the UDP port of ``/udp(...)``), with the flags, numbers, window,
length and options the line gives (see `packets`). So a segment the script did not expect
fails the script at the next ``>`` line, as in packetdrill; at the end of the script, a
segment still queued that was sent before the time of the last event fails it too; what is
sent at that time or later is not judged, as no line could expect it.

``<`` lines are built into datagrams and handed to ``Stack.receive``; one addressed to a
UDP port other than the host's tunneling port never reaches the stack (nothing listens
there). System calls, shell commands, sockets and tunables are the emulated host's
business (`host`). A blocking call that cannot complete is retried whenever time passes or
a segment arrives, and the script goes on meanwhile, as packetdrill runs blocking calls in
a thread; one still blocked at the end fails the script.

``%{ assert tcpi_state == TCPI_X }%`` checks the state of the socket used last; any other
inline code, and ICMP messages, fail the script as unsupported.
"""

from __future__ import annotations

import collections
import re
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ...wire import MalformedSegment, Segment, parse
from .host import REMOTE_PORT, Blocked, Host, Outcome, ScriptError, errno_name
from .packets import SeqSpace, build_inbound, describe, mismatch
from .script import (Code, Command, Event, Icmp, Packet, Script, ScriptSyntaxError, SysCall,
                     parse_file)

__all__ = ["Runner", "Result", "ScriptFailure", "run_file", "find_scripts", "REMOTE_ISN"]

#: The remote's ISN: 4096 below the wrap, so that scripts cross it (RFC 9293 3.4).
REMOTE_ISN = 0xFFFFF000
DEFAULT_TOLERANCE_US = 4000
#: How long a ``*`` line waits for its segment, in script seconds.
WILDCARD_WAIT = 600.0
#: Bound on timer expiries per jump of the clock: a stack that keeps its wheel busy
#: without making progress fails the script instead of hanging the runner.
MAX_TIMER_STEPS = 100_000

_TCPI_ASSERT = re.compile(r"assert\s+tcpi_state\s*==\s*TCPI_([A-Z0-9_]+)\s*$")


class ScriptFailure(Exception):
    """The script failed at a line: a check did not hold or a feature is unsupported."""

    def __init__(self, line: int | None, reason: str) -> None:
        self.line = line
        self.reason = reason
        super().__init__(f"line {line}: {reason}" if line is not None else reason)


@dataclass
class Result:
    path: str
    passed: bool
    reason: str = ""

    def __str__(self) -> str:
        return f"PASS {self.path}" if self.passed else f"FAIL {self.path}: {self.reason}"


@dataclass
class _Sent:
    """A segment the stack sent and no ``>`` line has taken yet."""

    time: float
    seg: Segment
    remote: object


class Runner:
    """Plays one script. `run` returns normally when it passes, else raises ScriptFailure."""

    def __init__(self, script: Script, *, verbose: bool = False,
                 out: Callable[[str], None] = print) -> None:
        self.script = script
        self.verbose = verbose
        self.out = out
        self.source = _source_lines(script.path)
        options = dict(script.options)
        tolerance = options.pop("tolerance_usecs", str(DEFAULT_TOLERANCE_US))
        if not tolerance.isdigit():
            raise ScriptFailure(None, f"--tolerance_usecs={tolerance} is not a number")
        self.tolerance = int(tolerance) / 1e6
        ip_version = options.pop("ip_version", "ipv4")
        # Segments without /udp(...) are plain TCP with or without this option.
        options.pop("udp_encapsulation", None)
        if options:
            raise ScriptFailure(None, f"unsupported script option(s): {', '.join(options)}")
        try:
            self.host = Host(ip_version)
        except ScriptError as exc:
            raise ScriptFailure(None, str(exc)) from None
        self.stack = self.host.stack
        self.space = SeqSpace(REMOTE_ISN)
        self.now = 0.0
        self.sent: collections.deque[_Sent] = collections.deque()
        self.line: int | None = None
        self.blocked: tuple[SysCall, Blocked, int] | None = None

    # ------------------------------------------------------------------ the timeline
    def run(self) -> None:
        events = self.script.events
        base = 0.0
        last_start = 0.0
        for event in events:
            self.line = event.line
            start, end = _event_times(event, base)
            last_start = start if start is not None else self.now
            self._say(f"{self._at(start)} {self._text(event)}")
            try:
                happened = self._play(event.action, start, end)
            except ScriptError as exc:
                raise ScriptFailure(event.line, str(exc)) from None
            base = start if start is not None else happened
        self.line = None
        self._finish(last_start)

    def _play(self, action, start: float | None, end: float | None) -> float:
        """Play one event; returns when it happened."""
        if isinstance(action, Packet) and action.direction == ">":
            return self._expect(action, start, end)
        self._advance(start if start is not None else self.now)
        if isinstance(action, Packet):
            self._inject(action)
        elif isinstance(action, SysCall):
            self._syscall(action)
        elif isinstance(action, Command):
            self.host.command(action.text, self.now)
            self._collect()
        elif isinstance(action, Code):
            self._code(action)
        elif isinstance(action, Icmp):
            self._fail("unsupported: icmp (atcp has no ICMP handling)")
        else:   # pragma: no cover - the parser makes no other actions
            self._fail(f"unsupported event {action!r}")
        return self.now

    def _advance(self, until: float) -> None:
        """Run every timer due up to ``until``, then set the clock there."""
        for _ in range(MAX_TIMER_STEPS):
            deadline = self.stack.next_deadline()
            if deadline is None or deadline > until:
                break
            self._tick(deadline)
        else:
            self._fail(f"the stack's timers did not settle before {until:.3f}s")
        self.now = max(self.now, until)

    def _advance_until_sent(self, until: float) -> None:
        """Run timers up to ``until`` but stop at the first segment sent."""
        for _ in range(MAX_TIMER_STEPS):
            if self.sent:
                return
            deadline = self.stack.next_deadline()
            if deadline is None or deadline > until:
                return
            self._tick(deadline)
        self._fail(f"the stack's timers did not settle before {until:.3f}s")

    def _tick(self, deadline: float) -> None:
        self.now = max(self.now, deadline)
        self.stack.poll(self.now)
        self._collect()

    def _collect(self) -> None:
        """Queue what the stack sent, drop its events (the host polls state instead), and
        retry a blocked call."""
        for raw, remote in self.stack.datagrams_to_send():
            try:
                seg = parse(raw)
            except MalformedSegment as exc:
                self._fail(f"the stack sent a malformed segment ({exc.reason}): {raw.hex()}")
            self.sent.append(_Sent(self.now, seg, remote))
            self._say(f"{self._at(self.now)}   sent {self._describe_out(seg, remote)}")
        while self.stack.next_event() is not None:
            pass
        if self.blocked is not None:
            call, blocked, line = self.blocked
            outcome = blocked.attempt(self.now)
            if outcome is not None:
                self.blocked = None
                self._say(f"{self._at(self.now)}   {call.name}() returned {outcome.value}")
                self._check_outcome(call, outcome, line)

    # ------------------------------------------------------------------ segments
    def _expect(self, pkt: Packet, start: float | None, end: float | None) -> float:
        if start is None:
            low, high = float("-inf"), self.now + WILDCARD_WAIT
        else:
            low = start - self.tolerance
            high = (end if end is not None else start) + self.tolerance
        self._advance_until_sent(high)
        if not self.sent:
            self._fail(f"expected segment was not sent (waited until {high:.3f}s)")
        sent = self.sent.popleft()
        got = self._describe_out(sent.seg, sent.remote)
        if not low <= sent.time <= high:
            self._fail(f"`{got}` sent at {sent.time:.3f}s, expected at {start:.3f}s "
                       f"(tolerance {self.tolerance * 1e6:.0f} us)")
        problem = mismatch(pkt, sent.seg, self.space) or self._route_mismatch(pkt, sent)
        if problem:
            self._fail(f"unexpected segment `{got}`: {problem}")
        self.now = max(self.now, sent.time)
        return sent.time

    def _route_mismatch(self, pkt: Packet, sent: _Sent) -> str | None:
        want = self.host.remote(pkt.udp[1] if pkt.udp else None)
        if sent.remote != want:
            return f"sent {_route(sent.remote)}, expected {_route(want)}"
        if pkt.udp and pkt.udp[0] != self.host.tunnel_port:
            return f"sent from UDP port {self.host.tunnel_port}, expected {pkt.udp[0]}"
        seg = sent.seg
        if (seg.src_port, seg.dst_port) != (self.host.flow_port, REMOTE_PORT):
            return (f"TCP ports {seg.src_port} > {seg.dst_port}, expected "
                    f"{self.host.flow_port} > {REMOTE_PORT}")
        return None

    def _inject(self, pkt: Packet) -> None:
        try:
            raw = build_inbound(pkt, self.space, REMOTE_PORT, self.host.flow_port)
        except ValueError as exc:
            self._fail(str(exc))
        if pkt.udp is not None:
            src, dst = pkt.udp
            if not self.host.tunnel_port or dst != self.host.tunnel_port:
                self._say(f"{self._at(self.now)}   (no UDP socket at port {dst}: dropped)")
                return
            remote = self.host.remote(src)
        else:
            remote = self.host.remote(None)
        self.stack.receive(raw, remote, self.now)
        self._collect()

    def _describe_out(self, seg: Segment, remote) -> str:
        udp = None if remote[1] is None else (self.host.tunnel_port, remote[1])
        return describe(seg, self.space, outbound=True, udp=udp)

    # ------------------------------------------------------------------ system calls
    def _syscall(self, call: SysCall) -> None:
        if self.blocked is not None:
            self._fail(f"{call.name}() while {self.blocked[0].name}() (line "
                       f"{self.blocked[2]}) is still blocked")
        outcome = self.host.syscall(call.name, call.args, self.now)
        if isinstance(outcome, Blocked):
            self._say(f"{self._at(self.now)}   {call.name}() blocks")
            self.blocked = (call, outcome, self.line)
            self._collect()
            return
        self._collect()
        self._check_outcome(call, outcome, self.line)

    def _check_outcome(self, call: SysCall, outcome: Outcome, line: int | None) -> None:
        got = f"{outcome.value}" + (f" {outcome.errno}" if outcome.errno else "")
        if call.result is not ... and outcome.value != call.result:
            raise ScriptFailure(line, f"{call.name}() returned {got}, expected {call.result}"
                                f"{' ' + call.errno if call.errno else ''}")
        if call.errno is not None and outcome.errno != errno_name(call.errno):
            raise ScriptFailure(line, f"{call.name}() returned {got}, expected errno "
                                f"{call.errno}")
        for index, actual in outcome.outputs.items():
            expected = call.args[index] if index < len(call.args) else ...
            if not _same(expected, actual):
                raise ScriptFailure(line, f"{call.name}() gave {_show(actual)}, expected "
                                    f"{_show(expected)}")

    def _code(self, code: Code) -> None:
        m = _TCPI_ASSERT.match(code.text)
        if not m:
            self._fail("unsupported: inline code (only 'assert tcpi_state == TCPI_X')")
        state = self.host.current_state().value.replace("-", "_")
        if state != m.group(1):
            self._fail(f"tcpi_state is TCPI_{state}, expected TCPI_{m.group(1)}")

    # ------------------------------------------------------------------ the end
    def _finish(self, last_start: float) -> None:
        if self.blocked is not None:
            call, _, line = self.blocked
            raise ScriptFailure(line, f"blocking {call.name}() never returned")
        for sent in self.sent:
            if sent.time < last_start:
                self._fail(f"unexpected segment `{self._describe_out(sent.seg, sent.remote)}`"
                           f" sent at {sent.time:.3f}s; no line expects it")

    # ------------------------------------------------------------------ reporting
    def _fail(self, reason: str):
        raise ScriptFailure(self.line, reason)

    def _say(self, text: str) -> None:
        if self.verbose:
            self.out(text)

    def _at(self, t: float | None) -> str:
        return f"{t:9.3f}" if t is not None else "        *"

    def _text(self, event: Event) -> str:
        if 0 < event.line <= len(self.source):
            return f"{event.line:4d}| {self.source[event.line - 1].strip()}"
        return f"{event.line:4d}| {event.action!r}"


def _event_times(event: Event, base: float) -> tuple[float | None, float | None]:
    if event.wildcard_time:
        return None, None
    start = base + event.time if event.relative else event.time
    end = None
    if event.time_end is not None:
        end = base + event.time_end if event.time_end_relative else event.time_end
    return start, end


def _route(remote) -> str:
    return "as plain TCP" if remote[1] is None else f"to UDP port {remote[1]}"


def _same(expected, actual) -> bool:
    if expected is ...:
        return True
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(_same(e, a) for e, a in zip(expected, actual)))
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and set(expected) == set(actual)
                and all(_same(expected[k], actual[k]) for k in expected))
    if isinstance(expected, str) and isinstance(actual, str):
        return errno_name(expected) == errno_name(actual)
    return expected == actual and type(expected) is type(actual)


def _show(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_show(v)}" for k, v in value.items()) + "}"
    return "..." if value is ... else str(value)


def _source_lines(path: str | None) -> list[str]:
    if path is None:
        return []
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []


# --------------------------------------------------------------------------- entry points


def run_file(path, *, verbose: bool = False, out: Callable[[str], None] = print,
             name: str | None = None) -> Result:
    """Parse and play one script file; never raises for anything the script or the stack
    does (a crash of the core is a failure with its traceback in verbose mode)."""
    label = name if name is not None else str(path)
    try:
        script = parse_file(path)
    except ScriptSyntaxError as exc:
        return Result(label, False, f"syntax error at line {exc.line}: {exc.reason}")
    except OSError as exc:
        return Result(label, False, f"cannot read: {exc}")
    try:
        Runner(script, verbose=verbose, out=out).run()
    except ScriptFailure as exc:
        return Result(label, False, str(exc))
    except Exception as exc:   # the core crashed: report it as the script's failure
        if verbose:
            out(traceback.format_exc())
        return Result(label, False, f"internal error: {type(exc).__name__}: {exc}")
    return Result(label, True)


def find_scripts(paths: Iterable) -> list[Path]:
    """The ``*.pkt`` files named, or found below the directories named, in order."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(path.rglob("*.pkt")))
        else:
            found.append(path)
    return found
