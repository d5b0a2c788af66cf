"""`atcp serve-echo` and `atcp connect` end to end, `--help` everywhere, the entry points."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import atcp
from atcp.cli import main
from cli_helpers import WAIT, run_atcp

SUBCOMMANDS = ["serve-echo", "connect", "send", "receive", "tunnel"]


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as caught:
        main([*argv, "--help"])
    assert caught.value.code == 0
    return capsys.readouterr().out


def test_help_for_every_subcommand(capsys):
    top = run_atcp("--help")                 # once as a process: python -m atcp
    assert top.returncode == 0
    for name in SUBCOMMANDS:
        assert name in top.stdout.decode()
        text = _help(capsys, name)
        assert text.startswith(f"usage: atcp {name}")
        for flag in ("--loss", "--delay", "--seed", "--pcap", "--log", "--msl",
                     "--congestion", "-v"):
            assert flag in text, (name, flag)


def test_send_help_describes_the_framing(capsys):
    text = _help(capsys, "send")
    assert "SHA-256" in text and "ATCPFILE" in text


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("atcp")
    if not script.exists():
        pytest.skip("the atcp console script is not installed in this environment "
                    "(pip install -e . installs it)")
    result = subprocess.run([str(script), "--version"], capture_output=True, timeout=WAIT)
    assert result.returncode == 0 and result.stdout.startswith(b"atcp ")


def test_echo_through_serve_echo_and_connect(spawn):
    server = spawn("serve-echo", "127.0.0.1:0", "-v", "--msl", "1")
    port = server.port()
    payload = os.urandom(200_000)
    result = run_atcp("connect", f"127.0.0.1:{port}", "-v", input=payload)
    assert result.returncode == 0, result.stderr
    assert result.stdout == payload
    # -v: the client's statistics on exit, TCP_INFO style.
    stats = result.stderr.decode()
    assert "atcp stats" in stats and f"-> 127.0.0.1:{port}" in stats
    assert f"bytes sent {len(payload):,}" in stats
    assert f"received {len(payload):,}" in stats
    # The server reports each connection as it ends, and its totals when stopped.
    server.wait_for(r"atcp stats 127\.0\.0\.1:\d+ -> ")
    status, rest = server.stop()
    assert status == 0
    assert "atcp stats serve-echo  datagrams in" in rest


def test_connect_over_ipv6_with_impairment(spawn):
    server = spawn("serve-echo", "[::1]:0", "--loss", "5%", "--seed", "3")
    port = server.port()
    payload = b"line\n" * 20_000
    result = run_atcp("connect", f"[::1]:{port}", "--loss", "0.05", "--seed", "4",
                      "--delay", "2ms", input=payload)
    assert result.returncode == 0, result.stderr
    assert result.stdout == payload


def test_connect_with_log_json_keeps_stdout_clean(spawn, tmp_path):
    server = spawn("serve-echo", "127.0.0.1:0")
    port = server.port()
    pcap = tmp_path / "client.pcap"
    result = run_atcp("connect", f"127.0.0.1:{port}", "--log", "json", "--pcap", str(pcap),
                      input=b"hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello"
    events = [line for line in result.stderr.decode().splitlines() if line.startswith("{")]
    assert any('"event": "state"' in line and '"new": "ESTABLISHED"' in line
               for line in events)
    assert pcap.stat().st_size > 24   # a pcap header and at least one record


def test_python_dash_m_and_main_agree():
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert run_atcp("--version").stdout.decode().strip() == f"atcp {atcp.__version__}"


def test_common_flags_become_config_and_impairment():
    from atcp.cli import build_parser
    from atcp.cli.common import config_from, impairment_from, numbered_path
    args = build_parser().parse_args([
        "connect", "127.0.0.1:1", "--msl", "500ms", "--congestion", "newreno",
        "--pcap", "c.pcap", "--loss", "5%", "--delay", "20ms", "--seed", "9"])
    config = config_from(args)
    assert (config.msl, config.congestion, config.pcap_path) == (0.5, "newreno", "c.pcap")
    assert impairment_from(args) == atcp.Impairment(loss=0.05, delay=0.02, seed=9)
    plain = build_parser().parse_args(["connect", "127.0.0.1:1"])
    assert impairment_from(plain) is None and config_from(plain) == atcp.Config()
    assert numbered_path("cap.pcap", 3) == "cap-3.pcap" and numbered_path(None, 3) is None
