"""Parser for test scripts written in packetdrill syntax.

The parser turns a script into a plain AST (dataclasses below); it knows
nothing about how the events are executed.  A runner walks
:attr:`Script.events` and plays them against the TCP core.

Grammar accepted (informally; ``[x]`` is optional, ``x*`` repeats)::

    script   := option* event*
    option   := "--" NAME ["=" VALUE]                 (only before the first event)
    event    := time action                          (each event starts on a new line)
    time     := "*" | ["+"] NUM ["~" ["+"] NUM]
    action   := packet | icmp | syscall | command | code
    packet   := ("<" | ">") FLAGS seq ["!"] ["ack" INT] ["win" INT]
                ["<" [tcpopt ("," tcpopt)*] ">"] [udp]
    seq      := INT ":" INT "(" INT ")" | "..." "(" INT ")"
    udp      := "/" "udp" "(" INT ">" INT ")"
    icmp     := ("<" | ">") "icmp" TYPE [CODE] ["mtu" INT] "[" seq ["!"] [udp] "]"
    syscall  := NAME "(" [expr ("," expr)*] ")" "=" (INT | "...") [ERRNO] ["(" text ")"]
    expr     := term ("|" term)*
    term     := INT | "..." | NAME | STRING | "[" [expr ("," expr)*] "]"
                | "{" [NAME "=" expr ("," NAME "=" expr)*] "}"
    command  := "`" text "`"
    code     := "%{" text "}%"

``//`` line comments and ``/* */`` block comments are whitespace.  An event
occupies one line, except that it may continue over line breaks inside
brackets (``(...)``, ``[...]``, ``{...}``, ``<...>``), inside a backquoted
command and inside a ``%{ }%`` block.  Anything that does not fit the grammar
raises :class:`ScriptSyntaxError`; nothing is silently skipped.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "Code",
    "Command",
    "Event",
    "Icmp",
    "Options",
    "Packet",
    "Script",
    "ScriptSyntaxError",
    "StrLit",
    "SysCall",
    "TcpOption",
    "parse_file",
    "parse_script",
]

U8 = 0xFF
U16 = 0xFFFF
U32 = 0xFFFFFFFF

#: Letters allowed in the flags column of a TCP packet line (plus ".").
TCP_FLAG_LETTERS = "FSRPEWU"


# --------------------------------------------------------------------------- AST


class ScriptSyntaxError(ValueError):
    """A script does not follow the grammar.

    ``line`` is the 1-based line number, ``text`` the source line and
    ``path`` the script path (``None`` when parsing a string).
    """

    def __init__(
        self,
        message: str,
        *,
        line: int,
        column: int = 0,
        text: str = "",
        path: str | None = None,
    ) -> None:
        self.reason = message
        self.line = line
        self.column = column
        self.text = text
        self.path = path
        where = f"{path}:" if path else "line "
        caret = " " * (4 + column) + "^"
        super().__init__(f"{where}{line}: {message}\n    {text}\n{caret}")


class StrLit(str):
    """A double-quoted string literal in a syscall argument.

    It compares equal to the plain ``str`` with the same contents; the
    subclass only lets a runner tell ``"freebsd"`` apart from an identifier
    such as ``SOCK_STREAM`` (which is a plain ``str``).
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"StrLit({str.__repr__(self)})"


@dataclass(frozen=True)
class Options:
    """Script options (``--name=value`` lines before the first event)."""

    values: dict[str, str]


@dataclass(frozen=True)
class TcpOption:
    """One TCP option inside ``<...>``.

    ``values`` by kind: ``mss`` -> ``(1460,)``, ``wscale`` -> ``(6,)``,
    ``sack`` -> ``((a, b), (c, d))``, ``TS`` -> ``(val, ecr)``,
    ``nop`` / ``eol`` / ``sackOK`` -> ``()``.
    """

    kind: str
    values: tuple


@dataclass(frozen=True)
class Packet:
    """A TCP segment to inject (``<``) or to expect from the stack (``>``)."""

    direction: str
    flags: str
    seq_start: int | None
    seq_end: int | None
    length: int | None
    seq_absolute: bool
    ack: int | None
    win: int | None
    options: list[TcpOption] | None
    udp: tuple[int, int] | None


@dataclass(frozen=True)
class Icmp:
    """An ICMP message quoting a TCP segment, e.g.
    ``< icmp unreachable port_unreachable [0:0(0)/udp(9812 > 1)]`` or
    ``< icmp packet_too_big mtu 1300 [1433:2865(1432)/udp(9811 > 1)]``.

    ``icmp_type`` / ``code`` are the names as written (``code`` is ``None``
    when only a type is given); ``seq_*``, ``length``, ``seq_absolute`` and
    ``udp`` describe the quoted segment like the fields of :class:`Packet`.
    """

    direction: str
    icmp_type: str
    code: str | None
    mtu: int | None
    seq_start: int | None
    seq_end: int | None
    length: int
    seq_absolute: bool
    udp: tuple[int, int] | None


@dataclass(frozen=True)
class SysCall:
    """A socket API call and its expected outcome.

    Argument values: ``int``; ``Ellipsis`` for ``...``; ``str`` for an
    identifier; :class:`StrLit` for a quoted string; ``list`` for
    ``[...]``; ``dict`` for ``{name=value, ...}``; and for a bitwise or such
    as ``O_RDWR | O_NONBLOCK`` the ``str`` ``"O_RDWR|O_NONBLOCK"`` (the
    operands joined by ``|`` without spaces).
    """

    name: str
    args: list
    result: Any  # int, or Ellipsis for "= ..."
    errno: str | None
    note: str | None  # including the parentheses, e.g. "(flags O_RDWR)"


@dataclass(frozen=True)
class Command:
    """A shell command in backquotes (text without the quotes, stripped)."""

    text: str


@dataclass(frozen=True)
class Code:
    """An inline ``%{ ... }%`` block (text between the markers, stripped)."""

    text: str


Action = Packet | Icmp | SysCall | Command | Code


@dataclass(frozen=True)
class Event:
    """One timed line of the script.

    ``time`` is the number as written (seconds), relative to the previous
    event when ``relative``.  For ``*`` (any time) ``wildcard_time`` is True,
    ``time`` is 0.0 and ``relative`` False.  For a range ``a~b``,
    ``time_end`` is ``b`` and ``time_end_relative`` tells whether ``b`` was
    written with ``+``.
    """

    line: int
    time: float
    relative: bool
    time_end: float | None
    wildcard_time: bool
    action: Action
    time_end_relative: bool = False


@dataclass(frozen=True)
class Script:
    path: str | None
    options: dict[str, str]
    events: list[Event]


# ------------------------------------------------------------------------ parser

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# An integer must not run into letters, digits or a decimal point.
_INT = re.compile(r"-?(?:0[xX][0-9A-Fa-f]+|[0-9]+)(?![A-Za-z0-9_.])")
_TIME = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?![A-Za-z0-9_])")
_OPTION = re.compile(r"--([A-Za-z_][A-Za-z0-9_-]*)(?:=((?:(?!//)\S)*))?")
_FLAGS = re.compile(r"[A-Za-z.]+")

_OPEN_TO_CLOSE = {"(": ")", "[": "]", "{": "}", "<": ">"}


class _Parser:
    def __init__(self, text: str, path: str | None) -> None:
        self.text = text
        self.n = len(text)
        self.path = path
        self.pos = 0
        # Newlines are whitespace only while inside brackets.
        self.depth = 0
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    # ---- positions and errors

    def line_of(self, pos: int) -> int:
        return bisect.bisect_right(self.line_starts, pos)

    def error(self, message: str, pos: int | None = None) -> NoReturn:
        if pos is None:
            pos = self.pos
        pos = min(pos, self.n)
        line = self.line_of(pos)
        start = self.line_starts[line - 1]
        end = self.text.find("\n", start)
        if end < 0:
            end = self.n
        text = self.text[start:end].rstrip("\r")
        raise ScriptSyntaxError(
            message, line=line, column=max(0, min(pos - start, len(text))), text=text, path=self.path
        )

    def describe_here(self) -> str:
        if self.pos >= self.n:
            return "end of file"
        if self.text[self.pos] == "\n":
            return "end of line"
        m = re.compile(r"\S{1,20}").match(self.text, self.pos)
        return repr(m.group(0)) if m else repr(self.text[self.pos])

    # ---- low-level scanning

    def skip_ws(self, newlines: bool = False) -> None:
        text, n = self.text, self.n
        allow_nl = newlines or self.depth > 0
        while self.pos < n:
            c = text[self.pos]
            if c in " \t\r\f\v":
                self.pos += 1
            elif c == "\n":
                if not allow_nl:
                    return
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    self.error("unterminated /* comment")
                self.pos = end + 2
            else:
                return

    def at_end_of_line(self) -> bool:
        return self.pos >= self.n or self.text[self.pos] == "\n"

    def peek(self, literal: str) -> bool:
        self.skip_ws()
        return self.text.startswith(literal, self.pos)

    def accept(self, literal: str) -> bool:
        if self.peek(literal):
            self.pos += len(literal)
            return True
        return False

    def expect(self, literal: str, context: str) -> None:
        if not self.accept(literal):
            self.error(f"expected {literal!r} {context}, found {self.describe_here()}")

    def open(self, bracket: str, context: str) -> None:
        self.expect(bracket, context)
        self.depth += 1

    def close(self, bracket: str, context: str) -> None:
        self.skip_ws()
        if not self.text.startswith(bracket, self.pos):
            self.error(f"expected {bracket!r} {context}, found {self.describe_here()}")
        self.pos += len(bracket)
        self.depth -= 1

    def match(self, regex: re.Pattern[str]) -> re.Match[str] | None:
        self.skip_ws()
        m = regex.match(self.text, self.pos)
        if m:
            self.pos = m.end()
        return m

    def peek_word(self) -> str | None:
        self.skip_ws()
        m = _WORD.match(self.text, self.pos)
        return m.group(0) if m else None

    def accept_word(self, word: str) -> bool:
        if self.peek_word() == word:
            self.pos += len(word)
            return True
        return False

    def word(self, what: str) -> str:
        m = self.match(_WORD)
        if not m:
            self.error(f"expected {what}, found {self.describe_here()}")
        return m.group(0)

    def integer(self, what: str, lo: int | None = None, hi: int | None = None) -> int:
        self.skip_ws()
        start = self.pos
        m = self.match(_INT)
        if not m:
            self.error(f"expected {what} (an integer), found {self.describe_here()}")
        value = int(m.group(0), 0)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self.error(f"{what} {m.group(0)} is out of range [{lo}, {hi}]", start)
        return value

    # ---- script structure

    def parse(self) -> Script:
        options: dict[str, str] = {}
        events: list[Event] = []
        while True:
            self.skip_ws(newlines=True)
            if self.pos >= self.n:
                break
            if self.text.startswith("--", self.pos):
                if events:
                    self.error("script options must come before the first event")
                m = _OPTION.match(self.text, self.pos)
                if not m:
                    self.error("malformed option, expected --name=value")
                self.pos = m.end()
                value = m.group(2)
                options[m.group(1)] = "true" if value is None else value
            else:
                events.append(self.event())
            self.skip_ws()
            if not self.at_end_of_line():
                self.error(f"unexpected {self.describe_here()} after the end of the event")
        return Script(path=self.path, options=options, events=events)

    def event(self) -> Event:
        start = self.pos
        line = self.line_of(start)
        time = 0.0
        relative = wildcard = end_relative = False
        time_end: float | None = None
        if self.accept("*"):
            wildcard = True
        else:
            relative = self.accept("+")
            m = self.match(_TIME)
            if not m:
                self.error(f"expected an event time (e.g. 0.00, +0.10 or *), found {self.describe_here()}")
            time = float(m.group(0))
            if self.accept("~"):
                end_relative = self.accept("+")
                m = self.match(_TIME)
                if not m:
                    self.error(f"expected the end of the time range after '~', found {self.describe_here()}")
                time_end = float(m.group(0))
        action = self.action()
        assert self.depth == 0
        return Event(
            line=line,
            time=time,
            relative=relative,
            time_end=time_end,
            wildcard_time=wildcard,
            action=action,
            time_end_relative=end_relative,
        )

    def action(self) -> Action:
        self.skip_ws()
        text, pos = self.text, self.pos
        if self.at_end_of_line():
            self.error("expected an action after the event time")
        c = text[pos]
        if c in "<>":
            self.pos += 1
            if self.accept_word("icmp"):
                return self.icmp(c)
            return self.packet(c)
        if c == "`":
            end = text.find("`", pos + 1)
            if end < 0:
                self.error("unterminated backquoted command")
            self.pos = end + 1
            return Command(text[pos + 1 : end].strip())
        if text.startswith("%{", pos):
            end = text.find("}%", pos + 2)
            if end < 0:
                self.error("unterminated %{ code block (missing }%)")
            self.pos = end + 2
            return Code(text[pos + 2 : end].strip())
        m = _WORD.match(text, pos)
        if m:
            after = m.end()
            while after < self.n and text[after] in " \t":
                after += 1
            if after < self.n and text[after] == "(":
                return self.syscall()
        self.error(f"unknown action {self.describe_here()}")

    # ---- packets

    def flags(self) -> str:
        self.skip_ws()
        start = self.pos
        m = self.match(_FLAGS)
        if not m:
            self.error(f"expected TCP flags, found {self.describe_here()}")
        flags = m.group(0)
        if flags.startswith(".."):
            self.error("expected TCP flags before the sequence numbers", start)
        letters = flags.replace(".", "")
        bad = sorted(set(letters) - set(TCP_FLAG_LETTERS))
        if bad:
            self.error(f"unknown TCP flag(s) {''.join(bad)!r} in {flags!r}", start)
        if flags.count(".") > 1 or len(set(letters)) != len(letters):
            self.error(f"repeated TCP flag in {flags!r}", start)
        return flags

    def seq(self) -> tuple[int | None, int | None, int, bool]:
        """``start:end(len)[!]`` or ``...(len)[!]``."""
        self.skip_ws()
        begin = self.pos
        if self.accept("..."):
            start = end = None
        else:
            start = self.integer("sequence number", 0, U32)
            self.expect(":", "between sequence numbers")
            end = self.integer("end sequence number", 0, U32)
        self.open("(", "before the segment length")
        length = self.integer("segment length", 0, U32)
        self.close(")", "after the segment length")
        if start is not None and end is not None and (end - start) & U32 != length:
            self.error(f"sequence range {start}:{end} does not match length {length}", begin)
        absolute = self.accept("!")
        return start, end, length, absolute

    def udp(self) -> tuple[int, int] | None:
        if not self.accept("/"):
            return None
        if not self.accept_word("udp"):
            self.error(f"expected 'udp' after '/', found {self.describe_here()}")
        self.open("(", "after /udp")
        src = self.integer("UDP source port", 0, U16)
        self.expect(">", "between UDP ports")
        dst = self.integer("UDP destination port", 0, U16)
        self.close(")", "after the UDP ports")
        return src, dst

    def packet(self, direction: str) -> Packet:
        flags = self.flags()
        start, end, length, absolute = self.seq()
        ack = self.integer("ack number", 0, U32) if self.accept_word("ack") else None
        win = self.integer("window", 0, U16) if self.accept_word("win") else None
        options = self.tcp_options() if self.peek("<") else None
        udp = self.udp()
        return Packet(
            direction=direction,
            flags=flags,
            seq_start=start,
            seq_end=end,
            length=length,
            seq_absolute=absolute,
            ack=ack,
            win=win,
            options=options,
            udp=udp,
        )

    def tcp_options(self) -> list[TcpOption]:
        self.open("<", "before TCP options")
        options: list[TcpOption] = []
        if self.peek(">"):
            self.close(">", "after TCP options")
            return options
        while True:
            options.append(self.tcp_option())
            if self.accept(","):
                continue
            self.close(">", "or ',' after a TCP option")
            return options

    def tcp_option(self) -> TcpOption:
        self.skip_ws()
        start = self.pos
        kind = self.word("a TCP option name")
        if kind in ("nop", "eol", "sackOK"):
            return TcpOption(kind, ())
        if kind == "mss":
            return TcpOption(kind, (self.integer("MSS", 0, U16),))
        if kind == "wscale":
            return TcpOption(kind, (self.integer("window scale", 0, U8),))
        if kind == "TS":
            if not self.accept_word("val"):
                self.error(f"expected 'val' in TS option, found {self.describe_here()}")
            val = self.integer("TS value", 0, U32)
            if not self.accept_word("ecr"):
                self.error(f"expected 'ecr' in TS option, found {self.describe_here()}")
            ecr = self.integer("TS echo reply", 0, U32)
            return TcpOption(kind, (val, ecr))
        if kind == "sack":
            blocks = []
            while True:
                self.skip_ws()
                if not _INT.match(self.text, self.pos):
                    break
                left = self.integer("SACK block start", 0, U32)
                self.expect(":", "in SACK block")
                right = self.integer("SACK block end", 0, U32)
                blocks.append((left, right))
            if not blocks:
                self.error("sack option needs at least one block start:end")
            return TcpOption(kind, tuple(blocks))
        self.error(f"unknown TCP option {kind!r}", start)

    def icmp(self, direction: str) -> Icmp:
        icmp_type = self.word("an ICMP type")
        code = None
        word = self.peek_word()
        if word is not None and word != "mtu":
            code = self.word("an ICMP code")
        mtu = self.integer("MTU", 0, U32) if self.accept_word("mtu") else None
        self.open("[", "before the quoted segment of an ICMP message")
        start, end, length, absolute = self.seq()
        udp = self.udp()
        self.close("]", "after the quoted segment of an ICMP message")
        return Icmp(
            direction=direction,
            icmp_type=icmp_type,
            code=code,
            mtu=mtu,
            seq_start=start,
            seq_end=end,
            length=length,
            seq_absolute=absolute,
            udp=udp,
        )

    # ---- system calls

    def syscall(self) -> SysCall:
        name = self.word("a system call name")
        self.open("(", f"after {name}")
        args: list = []
        if not self.peek(")"):
            while True:
                args.append(self.expr())
                if self.accept(","):
                    continue
                break
        self.close(")", f"or ',' in the arguments of {name}")
        self.expect("=", f"before the expected result of {name}")
        if self.accept("..."):
            result: Any = ...
        else:
            result = self.integer("expected return value")
        errno = None
        word = self.peek_word()
        if word is not None:
            errno = self.word("an errno name")
        note = self.note() if self.peek("(") else None
        return SysCall(name=name, args=args, result=result, errno=errno, note=note)

    def note(self) -> str:
        """Free text in balanced parentheses on the rest of the line."""
        start = self.pos
        level = 0
        while self.pos < self.n and self.text[self.pos] != "\n":
            c = self.text[self.pos]
            self.pos += 1
            if c == "(":
                level += 1
            elif c == ")":
                level -= 1
                if level == 0:
                    return self.text[start : self.pos]
        self.error("unbalanced parentheses in the trailing note", start)

    def expr(self) -> Any:
        self.skip_ws()
        start = self.pos
        terms = [self.term()]
        while self.accept("|"):
            terms.append(self.term())
        if len(terms) == 1:
            return terms[0]
        for t in terms:
            if not isinstance(t, (int, str)) or isinstance(t, (bool, StrLit)):
                self.error("only identifiers and integers can be combined with '|'", start)
        return "|".join(str(t) for t in terms)

    def term(self) -> Any:
        self.skip_ws()
        text, pos = self.text, self.pos
        if text.startswith("...", pos):
            self.pos += 3
            return ...
        if text.startswith("[", pos):
            self.open("[", "")
            items: list = []
            if not self.peek("]"):
                while True:
                    items.append(self.expr())
                    if self.accept(","):
                        continue
                    break
            self.close("]", "or ',' in a list")
            return items
        if text.startswith("{", pos):
            self.open("{", "")
            fields: dict[str, Any] = {}
            if not self.peek("}"):
                while True:
                    self.skip_ws()
                    key_pos = self.pos
                    key = self.word("a field name in '{...}'")
                    if key in fields:
                        self.error(f"duplicate field {key!r}", key_pos)
                    self.expect("=", f"after field name {key!r}")
                    fields[key] = self.expr()
                    if self.accept(","):
                        continue
                    break
            self.close("}", "or ',' in a struct")
            return fields
        if text.startswith('"', pos):
            return self.string()
        if _INT.match(text, pos):
            return self.integer("argument")
        m = _WORD.match(text, pos)
        if m:
            self.pos = m.end()
            if self.peek("("):
                self.error(f"function-call arguments such as {m.group(0)}(...) are not supported", pos)
            return m.group(0)
        self.error(f"expected an argument, found {self.describe_here()}")

    def string(self) -> StrLit:
        start = self.pos
        self.pos += 1  # opening quote
        out: list[str] = []
        escapes = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", '"': '"', "\\": "\\"}
        while self.pos < self.n:
            c = self.text[self.pos]
            if c == '"':
                self.pos += 1
                return StrLit("".join(out))
            if c == "\n":
                break
            if c == "\\" and self.pos + 1 < self.n and self.text[self.pos + 1] in escapes:
                out.append(escapes[self.text[self.pos + 1]])
                self.pos += 2
                continue
            out.append(c)
            self.pos += 1
        self.error("unterminated string literal", start)


def parse_script(text: str, path: str | None = None) -> Script:
    """Parse the text of a packetdrill-syntax script."""
    return _Parser(text, path).parse()


def parse_file(path: str | PathLike[str]) -> Script:
    """Read and parse a script file."""
    p = Path(path)
    return parse_script(p.read_text(encoding="utf-8"), str(p))
