"""Tests for the packetdrill-syntax script parser (atcp.testing.packetdrill.script)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from atcp.testing.packetdrill.script import (
    Code,
    Command,
    Event,
    Icmp,
    Packet,
    Script,
    ScriptSyntaxError,
    StrLit,
    SysCall,
    TcpOption,
    parse_file,
    parse_script,
)


def one(line: str) -> Event:
    """Parse a script holding a single event line and return that event."""
    script = parse_script(line)
    assert len(script.events) == 1, script.events
    return script.events[0]


def action(line: str):
    return one(line).action


def syntax_error(text: str) -> ScriptSyntaxError:
    with pytest.raises(ScriptSyntaxError) as info:
        parse_script(text)
    return info.value


# ---------------------------------------------------------------- options, layout


def test_options_before_first_event():
    script = parse_script(
        "--ip_version=ipv6\n"
        "--tolerance_usecs=50000\n"
        "--udp_encapsulation=tcp\n"
        "0 close(3) = 0\n"
    )
    assert script.options == {
        "ip_version": "ipv6",
        "tolerance_usecs": "50000",
        "udp_encapsulation": "tcp",
    }
    assert len(script.events) == 1


def test_option_without_value_and_trailing_comment():
    script = parse_script("--dry_run   // no value\n--mtu=1500// trailing\n")
    assert script.options == {"dry_run": "true", "mtu": "1500"}
    assert script.events == []


def test_option_after_first_event_is_an_error():
    err = syntax_error("0 close(3) = 0\n--ip_version=ipv4\n")
    assert err.line == 2


def test_empty_script():
    script = parse_script("")
    assert script == Script(path=None, options={}, events=[])


def test_comments_and_blank_lines_are_ignored():
    text = (
        "// header comment\n"
        "\n"
        "   // indented comment\n"
        "/* a block\n"
        "   comment over lines */\n"
        " 0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3 // trailing comment\n"
        "\t\n"
        "+0.00 close(3) = 0// trailing comment without a space\n"
        "+0.00 /* inline */ `true` /* after */\n"
    )
    script = parse_script(text)
    assert [e.line for e in script.events] == [6, 8, 9]
    assert [type(e.action) for e in script.events] == [SysCall, SysCall, Command]
    assert script.events[2].action == Command("true")


def test_crlf_line_endings_and_no_final_newline():
    script = parse_script("--ip_version=ipv4\r\n 0.00 close(3) = 0\r\n+0.1 close(4) = 0")
    assert script.options == {"ip_version": "ipv4"}
    assert [e.action.args for e in script.events] == [[3], [4]]
    assert [e.line for e in script.events] == [2, 3]


def test_unterminated_block_comment():
    err = syntax_error("0 close(3) = 0\n/* never closed\n")
    assert err.line == 2
    assert "comment" in str(err)


# ------------------------------------------------------------------------- times


def test_absolute_time():
    ev = one(" 1.50 close(3) = 0")
    assert (ev.time, ev.relative, ev.wildcard_time, ev.time_end) == (1.5, False, False, None)


def test_integer_time():
    ev = one("0 close(3) = 0")
    assert (ev.time, ev.relative) == (0.0, False)


def test_relative_time():
    ev = one("+0.10 close(3) = 0")
    assert (ev.time, ev.relative, ev.wildcard_time) == (0.1, True, False)


def test_wildcard_time():
    ev = one("*     > P. 1:101(100) ack 1 win 65535")
    assert ev.wildcard_time is True
    assert ev.relative is False
    assert ev.time == 0.0
    assert isinstance(ev.action, Packet)


@pytest.mark.parametrize(
    ("line", "start", "rel", "end", "end_rel"),
    [
        ("0.1~0.2 > . 1:1(0) ack 1 win 100", 0.1, False, 0.2, False),
        ("+0.1~+0.3 > . 1:1(0) ack 1 win 100", 0.1, True, 0.3, True),
    ],
)
def test_time_range(line, start, rel, end, end_rel):
    ev = one(line)
    assert (ev.time, ev.relative, ev.time_end, ev.time_end_relative) == (start, rel, end, end_rel)


@pytest.mark.parametrize("line", ["close(3) = 0", "-0.1 close(3) = 0", "+x close(3) = 0", "0.1~ close(3) = 0"])
def test_bad_or_missing_time(line):
    err = syntax_error(line)
    assert err.line == 1


def test_time_without_action():
    err = syntax_error("+0.10\n")
    assert "action" in str(err)


# ------------------------------------------------------------------------ packets


def test_inbound_synack_with_options():
    pkt = action("+0.10 < S. 0:0(0) ack 1 win 32767 <mss 1460,sackOK,eol,eol>")
    assert pkt == Packet(
        direction="<",
        flags="S.",
        seq_start=0,
        seq_end=0,
        length=0,
        seq_absolute=False,
        ack=1,
        win=32767,
        options=[
            TcpOption("mss", (1460,)),
            TcpOption("sackOK", ()),
            TcpOption("eol", ()),
            TcpOption("eol", ()),
        ],
        udp=None,
    )


def test_outbound_syn_with_all_common_options():
    pkt = action("+0.00 > S  0:0(0)       win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0>")
    assert pkt.direction == ">"
    assert pkt.flags == "S"
    assert pkt.ack is None
    assert pkt.win == 65535
    assert pkt.options == [
        TcpOption("mss", (1460,)),
        TcpOption("nop", ()),
        TcpOption("wscale", (6,)),
        TcpOption("sackOK", ()),
        TcpOption("TS", (100, 0)),
    ]
    assert pkt.udp is None


def test_unspecified_sequence_with_udp():
    pkt = action("+0.00 > S. ...(0) ack 4 win 65535 <mss 1452>/udp(9811 > 2)")
    assert (pkt.seq_start, pkt.seq_end, pkt.length) == (None, None, 0)
    assert pkt.ack == 4
    assert pkt.options == [TcpOption("mss", (1452,))]
    assert pkt.udp == (9811, 2)


def test_absolute_sequence_marker():
    pkt = action("+0.00 > R. 0:0(0)! ack 3 win 0")
    assert pkt.seq_absolute is True
    assert (pkt.flags, pkt.seq_start, pkt.ack, pkt.win) == ("R.", 0, 3, 0)


def test_udp_directly_after_window():
    pkt = action("+0.00 > . 1:1(0) ack 1 win 65535/udp(9811 > 1)")
    assert (pkt.flags, pkt.win, pkt.udp, pkt.options) == (".", 65535, (9811, 1), None)


def test_udp_with_extra_spaces():
    pkt = action("+0.00 > . 1:1(0) ack 1 win 65535 / udp ( 9811>1 )")
    assert pkt.udp == (9811, 1)


def test_rst_with_data_and_no_ack():
    pkt = action("+0.10 < R 0:3(3) win 32767")
    assert (pkt.flags, pkt.seq_start, pkt.seq_end, pkt.length, pkt.ack, pkt.win) == ("R", 0, 3, 3, None, 32767)


def test_syn_fin_with_data():
    pkt = action("+0.10 < SF 17:20(3) win 32767 <mss 1460,sackOK,eol,eol>")
    assert (pkt.flags, pkt.seq_start, pkt.seq_end, pkt.length) == ("SF", 17, 20, 3)


@pytest.mark.parametrize("flags", ["S", "S.", ".", "F.", "F", "R", "R.", "P.", "SF", "SEW", "SE.", "U."])
def test_flags_kept_as_written(flags):
    pkt = action(f"+0 < {flags} 1:1(0) win 100")
    assert pkt.flags == flags


@pytest.mark.parametrize("flags", ["X", "S..", "SS", "s"])
def test_bad_flags(flags):
    err = syntax_error(f"+0 < {flags} 1:1(0) win 100")
    assert "flag" in str(err)


def test_spaces_between_direction_and_flags():
    pkt = action("+0.10 <  . 1:1(0) ack 1433 win 32767")
    assert (pkt.direction, pkt.flags, pkt.ack) == ("<", ".", 1433)


def test_no_window_clause():
    pkt = action("+0.00 > S. 0:0(0) ack 1 <mss 1432,sackOK,eol,eol>/udp(9811 > 1)")
    assert pkt.win is None
    assert pkt.ack == 1
    assert len(pkt.options) == 4
    pkt = action("+0.00 > F. 1:1(0) ack 1/udp(9811 > 1)")
    assert (pkt.win, pkt.udp) == (None, (9811, 1))


def test_empty_option_list():
    pkt = action("+0 < S 0:0(0) win 1000 <>")
    assert pkt.options == []


def test_sack_option():
    pkt = action("+0 < . 1:1(0) ack 1 win 1000 <nop,nop,sack 1:2 3:4>")
    assert pkt.options == [TcpOption("nop", ()), TcpOption("nop", ()), TcpOption("sack", ((1, 2), (3, 4)))]


def test_large_sequence_numbers():
    pkt = action("+0 < . 4294967295:9(10)! ack 4294967295 win 65535")
    assert (pkt.seq_start, pkt.seq_end, pkt.length, pkt.ack) == (4294967295, 9, 10, 4294967295)


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("+0 < . 1:5(3) win 100", "does not match length"),
        ("+0 < S 0:0(0) win 65536", "out of range"),
        ("+0 < S 0:0(0) win 100 <mss 70000>", "out of range"),
        ("+0 < S 0:0(0) win 100 <foo 1>", "unknown TCP option"),
        ("+0 < S 0:0(0) win 100 <TS val 1>", "ecr"),
        ("+0 < S 0:0(0) win 100 <sack>", "sack"),
        ("+0 < S 0:0(0) win 100 <mss 1460", "'>'"),
        ("+0 < S 0:0(0) win 100 <mss 1460,>", "option name"),
        ("+0 < S 0:0(0) win 100/tcp(1 > 2)", "udp"),
        ("+0 < S 0:0(0) win 100/udp(1 2)", "'>'"),
        ("+0 < S 0:0 win 100", "'('"),
        ("+0 < S win 100", "sequence number"),
        ("+0 < S 0:0(0) win", "window"),
        ("+0 < S 0:0(0) win 100 foo", "unexpected"),
        ("+0 < S 0:0(0) win 100 ack 1", "unexpected"),
        ("+0 < S 0:0(0) win 100 <mss 1460> extra", "unexpected"),
    ],
)
def test_bad_packets(line, fragment):
    err = syntax_error(line)
    assert err.line == 1
    assert fragment in str(err)


def test_packet_must_not_continue_on_next_line():
    # A clause on the following line is not part of the packet (it has no time).
    err = syntax_error("+0 < . 1:1(0) ack 1\n win 100\n")
    assert err.line == 2


# --------------------------------------------------------------------------- ICMP


def test_icmp_with_code_and_udp():
    msg = action("+0.05 < icmp unreachable host_prohibited [0:0(0)/udp(9812 > 1)]")
    assert msg == Icmp(
        direction="<",
        icmp_type="unreachable",
        code="host_prohibited",
        mtu=None,
        seq_start=0,
        seq_end=0,
        length=0,
        seq_absolute=False,
        udp=(9812, 1),
    )


def test_icmp_with_mtu_and_no_space_after_direction():
    msg = action("+0.00 <icmp unreachable frag_needed mtu 1300 [1:1001(1000)/udp(9811 > 1)]")
    assert (msg.icmp_type, msg.code, msg.mtu) == ("unreachable", "frag_needed", 1300)
    assert (msg.seq_start, msg.seq_end, msg.length) == (1, 1001, 1000)


def test_icmp_type_only_without_udp():
    msg = action("+0 <icmp packet_too_big mtu 1280 [5:10(5)]")
    assert (msg.icmp_type, msg.code, msg.mtu, msg.udp) == ("packet_too_big", None, 1280, None)


def test_icmp_without_quoted_segment_is_an_error():
    err = syntax_error("+0 < icmp unreachable port_unreachable")
    assert "'['" in str(err)


# ---------------------------------------------------------------------- syscalls


def test_socket_call():
    call = action(" 0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3")
    assert call == SysCall(
        name="socket", args=[..., "SOCK_STREAM", "IPPROTO_TCP"], result=3, errno=None, note=None
    )


@pytest.mark.parametrize(
    ("line", "name", "args", "result"),
    [
        ("bind(3, ..., ...) = 0", "bind", [3, ..., ...], 0),
        ("listen(3, 1) = 0", "listen", [3, 1], 0),
        ("accept(3, ..., ...) = 4", "accept", [3, ..., ...], 4),
        ("read(3, ..., 100) = 3", "read", [3, ..., 100], 3),
        ("write(4, ..., 1452) = 1452", "write", [4, ..., 1452], 1452),
        ("send(3, ..., 1452, 0) = 1452", "send", [3, ..., 1452, 0], 1452),
        ("recv(3, ..., 10, 0) = ...", "recv", [3, ..., 10, 0], ...),
        ("shutdown(3, SHUT_WR) = 0", "shutdown", [3, "SHUT_WR"], 0),
        ("close(3) = 0", "close", [3], 0),
        ("getpid() = 77", "getpid", [], 77),
        ("setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0", "setsockopt", [3, "SOL_SOCKET", "SO_REUSEADDR", [1], 4], 0),
        ("getsockopt(3, SOL_SOCKET, SO_RCVBUF, [65536], [4]) = 0", "getsockopt", [3, "SOL_SOCKET", "SO_RCVBUF", [65536], [4]], 0),
    ],
)
def test_simple_syscalls(line, name, args, result):
    call = action("+0.00 " + line)
    assert (call.name, call.args, call.result, call.errno, call.note) == (name, args, result, None, None)


def test_error_result_with_errno_and_note():
    call = action("+0.00 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)")
    assert (call.result, call.errno, call.note) == (-1, "EINPROGRESS", "(Operation now in progress)")


def test_negative_list_argument_and_einval():
    call = action(
        "+0.00 setsockopt(3, IPPROTO_TCP, TCP_REMOTE_UDP_ENCAPS_PORT, [-2147483648], 4) = -1 EINVAL (Invalid argument)"
    )
    assert call.args == [3, "IPPROTO_TCP", "TCP_REMOTE_UDP_ENCAPS_PORT", [-2147483648], 4]
    assert (call.result, call.errno, call.note) == (-1, "EINVAL", "(Invalid argument)")


def test_large_integer_argument():
    call = action("+0 setsockopt(3, IPPROTO_TCP, TCP_REMOTE_UDP_ENCAPS_PORT, [18446744073709551615], 4) = 0")
    assert call.args[3] == [18446744073709551615]


def test_hex_result_with_note():
    call = action("+0.00 fcntl(3, F_GETFL) = 0x02 (flags O_RDWR)")
    assert (call.name, call.args, call.result, call.errno, call.note) == ("fcntl", [3, "F_GETFL"], 2, None, "(flags O_RDWR)")


def test_bitwise_or_argument():
    call = action("+0.00 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0")
    assert call.args == [3, "F_SETFL", "O_RDWR|O_NONBLOCK"]


def test_errno_in_list_argument():
    call = action("+0.10 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNRESET], [4]) = 0")
    assert call.args == [3, "SOL_SOCKET", "SO_ERROR", ["ECONNRESET"], [4]]
    assert call.result == 0


def test_struct_argument():
    call = action("+0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0")
    assert call.args[3] == {"onoff": 1, "linger": 0}


def test_struct_with_string_field():
    call = action('+0 setsockopt(4, IPPROTO_TCP, TCP_FUNCTION_BLK, {function_set_name="rack", pcbcnt=0}, 36) = 0')
    struct = call.args[3]
    assert struct == {"function_set_name": "rack", "pcbcnt": 0}
    assert isinstance(struct["function_set_name"], StrLit)
    assert not isinstance(call.args[1], StrLit)


def test_nested_brackets():
    call = action('+0 ioctl(3, X, [[1, -2], {a=[3], b={c=D|E}}, []], "s\\"q") = 0')
    assert call.args == [3, "X", [[1, -2], {"a": [3], "b": {"c": "D|E"}}, []], 's"q']


def test_note_with_nested_parentheses():
    call = action("+0 read(3, ..., 1) = -1 EAGAIN (Resource (temporarily) unavailable)")
    assert call.note == "(Resource (temporarily) unavailable)"


def test_syscall_arguments_may_span_lines():
    script = parse_script("+0 setsockopt(3, SOL_SOCKET,\n   SO_LINGER, {onoff=1,\n linger=0}, 8) = 0\n+0 close(3) = 0\n")
    assert [e.line for e in script.events] == [1, 4]
    assert script.events[0].action.args[3] == {"onoff": 1, "linger": 0}


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("+0 close(3)", "'='"),
        ("+0 close(3) =", "expected return value"),
        ("+0 close(3 = 0", "')'"),
        ("+0 close(3,) = 0", "argument"),
        ("+0 bind(3, htons(80)) = 0", "function-call"),
        ("+0 setsockopt(3, {a=1, a=2}) = 0", "duplicate"),
        ("+0 setsockopt(3, {1}) = 0", "field name"),
        ("+0 fcntl(3, [1] | 2) = 0", "'|'"),
        ('+0 x(3, "abc) = 0', "unterminated string"),
        ("+0 read(3, ..., 1) = -1 EAGAIN (unbalanced", "unbalanced"),
        ("+0 close(3) = 0 EBADF extra", "unexpected"),
        ("+0 close(12abc) = 0", "argument"),
    ],
)
def test_bad_syscalls(line, fragment):
    err = syntax_error(line)
    assert err.line == 1
    assert fragment in str(err)


def test_unclosed_syscall_reports_end_of_file():
    err = syntax_error("+0 close(3,\n 4\n")
    assert "end of file" in str(err)


# ----------------------------------------------------- shell commands, code blocks


def test_shell_command():
    ev = one(" 0.00 `sysctl -w net.inet.tcp.insecure_rst=0`")
    assert ev.action == Command("sysctl -w net.inet.tcp.insecure_rst=0")


def test_shell_command_with_pipes_and_slashes():
    cmd = action("+0 `sockstat -4 -P tcp -s | grep -c TIME_WAIT | grep 1 // not a comment` // comment")
    assert cmd == Command("sockstat -4 -P tcp -s | grep -c TIME_WAIT | grep 1 // not a comment")


def test_unterminated_command():
    err = syntax_error("+0 `sysctl -w x=1\n")
    assert "unterminated" in str(err)


def test_code_block():
    ev = one("+0.00 %{ assert tcpi_state == TCPI_SYN_RECEIVED }%")
    assert ev.action == Code("assert tcpi_state == TCPI_SYN_RECEIVED")


def test_multiline_code_block():
    script = parse_script("+0 %{\nx = 1\nassert x == 1\n}%\n+0 close(3) = 0\n")
    assert script.events[0].action == Code("x = 1\nassert x == 1")
    assert [e.line for e in script.events] == [1, 5]


# ------------------------------------------------------------------------- errors


def test_error_carries_line_number_and_text():
    text = "--ip_version=ipv4\n 0.00 close(3) = 0\n+0.10 frobnicate the stack\n"
    err = syntax_error(text)
    assert err.line == 3
    assert err.text == "+0.10 frobnicate the stack"
    message = str(err)
    assert "3" in message
    assert "+0.10 frobnicate the stack" in message
    assert isinstance(err, ValueError)


def test_error_message_includes_path(tmp_path):
    path = tmp_path / "bad.pkt"
    path.write_text("0 close(3) = 0\n+0 ? \n")
    with pytest.raises(ScriptSyntaxError) as info:
        parse_file(path)
    assert info.value.path == str(path)
    assert f"{path}:2" in str(info.value)


def test_two_events_on_one_line_are_rejected():
    err = syntax_error("+0 close(3) = 0 +0 close(4) = 0\n")
    assert err.line == 1


@pytest.mark.parametrize(
    "line",
    [
        "+0 ! S 0:0(0) win 1",
        "+0 [ect0] < S 0:0(0) win 1",
        "+0 some words",
        "+0 42",
        "+0 \"string\"",
    ],
)
def test_unknown_constructs_raise(line):
    err = syntax_error("// comment\n" + line + "\n")
    assert err.line == 2


def test_parse_file_reads_path(tmp_path):
    path = tmp_path / "ok.pkt"
    path.write_text("--ip_version=ipv4\n 0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    script = parse_file(path)
    assert script.path == str(path)
    assert script.options == {"ip_version": "ipv4"}
    assert script.events[0].action.name == "socket"


def test_full_small_script():
    text = """\
--ip_version=ipv4
--udp_encapsulation=tcp

// passive open, one byte of data, then a reset
 0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.00 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0.00 bind(3, ..., ...) = 0
+0.00 listen(3, 1) = 0
+0.10 < S 0:0(0) win 65535 <mss 1452,sackOK,eol,eol>/udp(1 > 9811)
+0.00 > S. 0:0(0) ack 1 win 65535 <mss 1452,sackOK,eol,eol>/udp(9811 > 1)
+0.10 < . 1:1(0) ack 1 win 65535/udp(1 > 9811)
+0.00 accept(3, ..., ...) = 4
+0.00 < P. 1:2(1) ack 1 win 65535/udp(1 > 9811)
+0.00 > . 1:1(0) ack 2 win 65535/udp(9811 > 1)
+0.00 < R. 2:2(0) ack 1 win 65535/udp(1 > 9811)
+0.00 getsockopt(4, SOL_SOCKET, SO_ERROR, [ECONNRESET], [4]) = 0
+0.00 close(4) = 0
+0.00 close(3) = 0
"""
    script = parse_script(text, path="inline.pkt")
    assert script.path == "inline.pkt"
    assert script.options == {"ip_version": "ipv4", "udp_encapsulation": "tcp"}
    kinds = [type(e.action).__name__ for e in script.events]
    assert kinds.count("Packet") == 6
    assert kinds.count("SysCall") == 8
    assert script.events[0].line == 5
    assert script.events[-1].line == 18
    packets = [e.action for e in script.events if isinstance(e.action, Packet)]
    assert [p.direction for p in packets] == ["<", ">", "<", "<", ">", "<"]
    assert all(p.udp is not None for p in packets)


# ------------------------------------------------------------ the external suite

_EVENT_LINE = re.compile(r"^\s*(?:\+?[0-9.]|\*)")


def test_parses_every_script_of_the_shared_suite(shared_dir: Path):
    suite = shared_dir / "tcp-testsuite"
    if not suite.is_dir():
        reason = f"packetdrill suite not found at {suite}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; it is required when CI=true")
        pytest.skip(reason)
    files = sorted(suite.rglob("*.pkt"))
    assert files, f"no *.pkt files under {suite}"

    failures = []
    totals: dict[str, int] = {}
    for path in files:
        try:
            script = parse_file(path)
        except ScriptSyntaxError as exc:
            failures.append(str(exc))
            continue
        text = path.read_text(encoding="utf-8")
        # Every line that starts with a time must have become exactly one event.
        expected = sum(1 for line in text.splitlines() if _EVENT_LINE.match(line))
        if not script.events:
            failures.append(f"{path}: no events")
        if len(script.events) != expected:
            failures.append(f"{path}: {len(script.events)} events, expected {expected}")
        if "ip_version" not in script.options:
            failures.append(f"{path}: no --ip_version option")
        lines = [e.line for e in script.events]
        if lines != sorted(set(lines)):
            failures.append(f"{path}: event lines not strictly increasing")
        for event in script.events:
            name = type(event.action).__name__
            totals[name] = totals.get(name, 0) + 1
    assert not failures, "\n".join(failures[:20])
    # Every kind of action occurs in the suite; syscalls and packets dominate.
    assert set(totals) == {"Packet", "SysCall", "Command", "Icmp", "Code"}, totals
    assert totals["Packet"] >= len(files)
    assert totals["SysCall"] >= len(files)


def test_missing_flags():
    err = syntax_error("+0 < ...(0) win 1")
    assert "expected TCP flags" in str(err)
