"""The packetdrill-syntax runner: it must pass what matches and fail, with a useful reason,
everything that does not (a runner that passes anything would make every script test a
lie)."""

from __future__ import annotations

import pytest

from atcp.testing.packetdrill.__main__ import main
from atcp.testing.packetdrill.packets import SeqSpace, build_inbound
from atcp.testing.packetdrill.runner import REMOTE_ISN, Runner, ScriptFailure, run_file
from atcp.testing.packetdrill.script import parse_script
from atcp.wire import parse

ACTIVE_OPEN = """
 0.000 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.000 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0
+0.000 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0.000 > S 0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 1 ecr 0>
+0.100 < S. 0:0(0) ack 1 win 32767 <mss 1460>
+0.000 > . 1:1(0) ack 1 win 65535
"""

LISTENER = """
 0.000 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.000 bind(3, ..., ...) = 0
+0.000 listen(3, 1) = 0
"""

UDP = """--udp_encapsulation=tcp
 0.000 `sysctl -w net.inet.tcp.udp_tunneling_port=9811`
"""


def play(text: str) -> Runner:
    runner = Runner(parse_script(text))
    runner.run()
    return runner


def failure(text: str) -> ScriptFailure:
    with pytest.raises(ScriptFailure) as info:
        play(text)
    return info.value


# -- passing -------------------------------------------------------------------------------


def test_handshake_and_close_pass() -> None:
    runner = play(ACTIVE_OPEN + """
+0.000 close(3) = 0
+0.000 > F. 1:1(0) ack 1 win 65535
+0.100 < F. 1:1(0) ack 2 win 32767
+0.000 > . 2:2(0) ack 2 win 65535
""")
    assert len(runner.stack.time_wait) == 1
    assert not runner.sent


def test_remote_isn_is_relative_and_wraps() -> None:
    # The remote's ISN sits 4096 below the wrap: relative 5000 is an absolute 904.
    runner = play(ACTIVE_OPEN + "+0.000 < P. 1:5001(5000) ack 1 win 32767\n")
    conn = runner.stack.connections[0]
    assert conn.rcv_nxt == (REMOTE_ISN + 5001) % 2**32 == 905
    assert conn.readable() == 5000


def test_closed_port_reset_uses_iss_zero_before_any_syn() -> None:
    play(LISTENER.replace("listen(3, 1) = 0", "getsockopt(3, SOL_SOCKET, SO_RCVBUF, [65536], [4]) = 0")
         + "+0.100 < . 17:17(0) ack 34 win 100\n+0.000 > R 34:34(0) win 0\n")


def test_timer_segments_are_matched_at_their_time() -> None:
    play(""" 0.000 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.000 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0
+0.000 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0.000 > S 0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 1 ecr 0>
 1.000 > S 0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 1 ecr 0>
 3.000 > S 0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 1 ecr 0>
""")


def test_blocking_accept_returns_when_the_handshake_completes() -> None:
    play(LISTENER + """
+0.000 accept(3, ..., ...) = 4
+0.100 < S 0:0(0) win 32767 <mss 1460>
+0.000 > S. 0:0(0) ack 1 win 65535 <mss 1460>
+0.100 < . 1:1(0) ack 1 win 32767
+0.000 getsockopt(4, SOL_SOCKET, SO_ERROR, [0], [4]) = 0
""")


def test_udp_encapsulated_peer() -> None:
    runner = play(UDP + """
+0.000 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.000 setsockopt(3, IPPROTO_TCP, TCP_REMOTE_UDP_ENCAPS_PORT, [7], 4) = 0
+0.000 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0
+0.000 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0.000 > S 0:0(0) win 65535 <mss 1452,nop,wscale 6,sackOK,TS val 1 ecr 0>/udp(9811 > 7)
+0.100 < S. 0:0(0) ack 1 win 32767 <mss 1452>/udp(7 > 9999)
+0.100 < S. 0:0(0) ack 1 win 32767 <mss 1452>/udp(7 > 9811)
+0.000 > . 1:1(0) ack 1 win 65535/udp(9811 > 7)
+0.000 getsockopt(3, IPPROTO_TCP, TCP_MAXSEG, [1452], [4]) = 0
""")
    assert runner.stack.connections[0].remote == ("192.0.2.1", 7)


def test_tcpdrop_and_sockstat() -> None:
    play(ACTIVE_OPEN + """
+0.000 close(3) = 0
+0.000 > F. 1:1(0) ack 1 win 65535
+0.100 < F. 1:1(0) ack 2 win 32767
+0.000 > . 2:2(0) ack 2 win 65535
+0.000 `sockstat -4 -P tcp -s | grep -c TIME_WAIT | grep 1`
+0.000 `tcpdrop -s TIME_WAIT`
+0.000 `sockstat -4 -P tcp -s | grep -c TIME_WAIT | grep 0`
+0.100 < F. 1:1(0) ack 2 win 32767
+0.000 > R 2:2(0) win 0
""")


def test_socket_options_and_abortive_close() -> None:
    play(""" 0.000 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.000 getsockopt(3, SOL_SOCKET, SO_SNDBUF, [32768], [4]) = 0
+0.000 setsockopt(3, SOL_SOCKET, SO_RCVBUF, [10000], 4) = 0
+0.000 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0
+0.000 fcntl(3, F_GETFL) = 0x6
+0.000 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0
+0.000 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0.000 > S 0:0(0) win 10000 <mss 1460,nop,wscale 6,sackOK,TS val 1 ecr 0>
+0.100 < S. 0:0(0) ack 1 win 32767 <mss 1460>
+0.000 > . 1:1(0) ack 1 win 10220
+0.000 getsockopt(3, SOL_SOCKET, SO_RCVBUF, [10220], [4]) = 0
+0.000 close(3) = 0
+0.000 > R 1:1(0) win 0
""")


def test_inbound_options_keep_the_script_order() -> None:
    pkt = parse_script("0 < S 0:0(0) win 100 <nop,mss 1460,sackOK,eol,eol>").events[0].action
    raw = build_inbound(pkt, SeqSpace(0), 1, 2)
    assert raw[20:28] == bytes([1, 2, 4, 0x05, 0xB4, 4, 2, 0])
    assert parse(raw).options.mss == 1460


# -- failing -------------------------------------------------------------------------------


@pytest.mark.parametrize("line,reason", [
    ("+0.000 > S. 1:1(0) ack 1 win 65535", "flags ., expected S."),
    ("+0.000 > . 1:1(0) ack 1 win 1000", "window 65535, expected 1000"),
    ("+0.000 > . 1:1(0) ack 2 win 65535", "ack 1, expected 2"),
    ("+0.000 > . 2:2(0) ack 1 win 65535", "sequence number 1, expected 2"),
    ("+0.000 > . 1:2(1) ack 1 win 65535", "payload length 0, expected 1"),
    ("+0.000 > . 1:1(0) ack 1 win 65535 <nop,nop,TS val 1 ecr 1>", "options none, expected <TS>"),
    ("+0.000 > . 1:1(0) ack 1 win 65535/udp(9811 > 1)", "as plain TCP, expected to UDP port 1"),
])
def test_mismatching_segment_fails(line: str, reason: str) -> None:
    exc = failure(ACTIVE_OPEN.rsplit("\n", 2)[0] + "\n" + line + "\n")
    assert exc.line == 7
    assert "unexpected segment `. 1:1(0) ack 1 win 65535`" in exc.reason
    assert reason in exc.reason


def test_options_must_match_by_kind_and_value() -> None:
    exc = failure(ACTIVE_OPEN.replace("sackOK,TS val 1 ecr 0", "TS val 1 ecr 0"))
    assert "options <mss 1460,wscale 6,sackOK,TS>, expected <mss 1460,wscale 6,TS>" in exc.reason


def test_segment_never_sent_fails() -> None:
    exc = failure(ACTIVE_OPEN + "+0.000 > . 1:1(0) ack 1 win 65535\n")
    assert exc.line == 8 and "was not sent" in exc.reason


def test_segment_outside_the_tolerance_fails() -> None:
    syn = "> S 0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 1 ecr 0>"
    opening = ACTIVE_OPEN.split("+0.000 > S")[0] + f"+0.000 {syn}\n"
    late = failure(opening + f" 1.100 {syn}\n")                 # it comes at 1.000
    assert "sent at 1.000s, expected at 1.100s" in late.reason
    early = failure(opening + f" 0.900 {syn}\n")               # waits only to 0.904
    assert "was not sent (waited until 0.904s)" in early.reason


def test_unexpected_segment_before_an_expected_one_fails() -> None:
    exc = failure(ACTIVE_OPEN + """
+0.100 < P. 1:1001(1000) ack 1 win 32767
+0.000 close(3) = 0
+0.000 > F. 1:1(0) ack 1001 win 65535
""")
    assert exc.line == 11
    assert "unexpected segment `R 1:1(0) win 0`" in exc.reason   # unread data: abort


def test_unexpected_segment_left_at_the_end_fails() -> None:
    exc = failure(LISTENER.replace("+0.000 listen(3, 1) = 0\n", "")
                  + "+0.100 < S 0:0(0) win 100\n+0.100 close(3) = 0\n")
    assert "unexpected segment `R. 0:0(0) ack 1 win 0` sent at 0.100s" in exc.reason


def test_segments_sent_by_the_last_event_are_not_judged() -> None:
    play(ACTIVE_OPEN + "+0.100 close(3) = 0\n")


@pytest.mark.parametrize("line,reason", [
    ("+0.000 getsockopt(3, SOL_SOCKET, SO_RCVBUF, [1], [4]) = 0",
     "getsockopt() gave [65700], expected [1]"),
    ("+0.000 read(3, ..., 10) = 0", "read() returned -1 EAGAIN, expected 0"),
    ("+0.000 read(3, ..., 10) = -1 ECONNRESET", "expected errno ECONNRESET"),
    ("+0.000 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0",
     "gave [0], expected [ECONNREFUSED]"),
    ("+0.000 %{ assert tcpi_state == TCPI_SYN_SENT }%",
     "tcpi_state is TCPI_ESTABLISHED, expected TCPI_SYN_SENT"),
    ("+0.000 `sysctl -w net.inet.tcp.no_such_thing=1`", "unsupported sysctl"),
    ("+0.000 `sysctl -w net.inet.tcp.blackhole=1`", "atcp always answers with RSTs"),
    ("+0.000 `ls /`", "unsupported shell command"),
    ("+0.000 `sockstat -4 -P tcp -s | grep -c ESTABLISHED | grep 2`",
     "1 connection(s) in ESTABLISHED, expected 2"),
    ("+0.000 < icmp unreachable port_unreachable [0:0(0)]", "unsupported: icmp"),
    ("+0.000 %{ print(tcpi_rto) }%", "unsupported: inline code"),
    ("+0.000 frobnicate(3) = 0", "unsupported system call frobnicate()"),
])
def test_failing_calls_and_checks(line: str, reason: str) -> None:
    exc = failure(ACTIVE_OPEN + line + "\n")
    assert exc.line == 8
    assert reason in exc.reason


def test_blocked_call_that_never_returns_fails() -> None:
    exc = failure(LISTENER + "+0.000 accept(3, ..., ...) = 4\n"
                  "+1.000 `sysctl -w net.inet.tcp.sack.enable=1`\n")
    assert exc.line == 5 and "blocking accept() never returned" in exc.reason
    exc = failure(LISTENER + "+0.000 accept(3, ..., ...) = 4\n+1.000 close(3) = 0\n")
    assert exc.line == 6 and "close() while accept() (line 5) is still blocked" in exc.reason


def test_unknown_script_option_fails() -> None:
    with pytest.raises(ScriptFailure, match="unsupported script option"):
        Runner(parse_script("--frobnicate=1\n0 close(3) = 0\n"))
    with pytest.raises(ScriptFailure, match="is not a number"):
        Runner(parse_script("--tolerance_usecs=x\n0 close(3) = 0\n"))
    with pytest.raises(ScriptFailure, match="unsupported --ip_version=ipv5"):
        Runner(parse_script("--ip_version=ipv5\n0 close(3) = 0\n"))


def test_run_file_reports_syntax_errors_and_core_crashes(tmp_path, monkeypatch) -> None:
    bad = tmp_path / "bad.pkt"
    bad.write_text("0 > Q 0:0(0)\n")
    result = run_file(bad)
    assert not result.passed and "syntax error at line 1" in result.reason
    good = tmp_path / "good.pkt"
    good.write_text(ACTIVE_OPEN)

    def crash(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr("atcp.core.stack.Stack.receive", crash)
    result = run_file(good, name="good")
    assert str(result) == "FAIL good: internal error: RuntimeError: boom"


def test_command_line(tmp_path, capsys) -> None:
    (tmp_path / "a.pkt").write_text(ACTIVE_OPEN)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.pkt").write_text(ACTIVE_OPEN.replace("win 65535\n", "win 1\n"))
    assert main([str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"PASS {tmp_path / 'a.pkt'}"
    assert lines[1].startswith(f"FAIL {tmp_path / 'sub' / 'b.pkt'}: line 7: ")
    assert lines[-1] == "1 passed, 1 failed"
    assert main([str(tmp_path / "a.pkt"), "-v"]) == 0
    out = capsys.readouterr().out
    assert "   sent S 0:0(0) win 65535" in out and out.endswith("1 passed, 0 failed\n")
