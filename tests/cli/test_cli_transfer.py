"""`atcp send` / `atcp receive`: a file over a lossy link, checked with SHA-256; the framing
and the progress bar as units."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os

import pytest

from atcp.cli import transfer
from atcp.cli.progress import Progress, human_bytes, render
from cli_helpers import run_atcp, one_line


def test_send_and_receive_over_a_lossy_link(spawn, tmp_path):
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(600_000))
    out = tmp_path / "out"
    out.mkdir()
    receiver = spawn("receive", "127.0.0.1:0", "-o", str(out), "--loss", "3%", "--seed",
                     "1", "--progress", "-v")
    port = receiver.port()
    result = run_atcp("send", str(source), f"127.0.0.1:{port}", "--loss", "3%", "--seed",
                      "2", "--progress")
    assert result.returncode == 0, result.stderr
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    sent = result.stderr.decode()
    assert f"SHA-256 {digest} confirmed by the receiver" in sent
    assert "100% [" in sent and "/s" in sent            # the progress bar's last frame
    status, rest = receiver.stop(terminate=False)    # it exits after one file
    assert status == 0, rest
    assert f"SHA-256 {digest} ok" in rest
    assert "atcp stats" in rest                         # -v
    assert (out / "data.bin").read_bytes() == source.read_bytes()
    assert not (out / "data.bin.part").exists()


def test_receive_to_stdout_and_empty_file(spawn, tmp_path):
    source = tmp_path / "empty"
    source.write_bytes(b"")
    receiver = spawn("receive", "127.0.0.1:0", "-o", "-")
    port = receiver.port()
    result = run_atcp("send", str(source), f"127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr
    assert receiver.proc.wait(timeout=20) == 0
    assert receiver.proc.stdout.read() == ""


def test_send_to_nobody_fails_in_one_line(tmp_path):
    source = tmp_path / "f"
    source.write_bytes(b"x")
    result = run_atcp("send", str(source), "127.0.0.1:9")
    assert result.returncode == 1
    assert one_line(result.stderr) == ("atcp: error: connection refused by 127.0.0.1:9 "
                                       "(nothing listens there)")


def test_send_missing_file_fails_in_one_line(tmp_path):
    result = run_atcp("send", str(tmp_path / "nope"), "127.0.0.1:9")
    assert result.returncode == 1
    assert "No such file" in one_line(result.stderr)


# ---------------------------------------------------------------------- framing units
def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


@pytest.mark.asyncio
async def test_header_round_trip_and_rejections():
    header = transfer.encode_header("résumé.pdf", 123_456)
    assert header[:8] == b"ATCPFILE" and len(header) == 20 + len("résumé.pdf".encode())
    assert await transfer.read_header(_reader(header)) == ("résumé.pdf", 123_456)
    with pytest.raises(transfer.CliError, match="framing"):
        await transfer.read_header(_reader(b"GET / HTTP/1.1\r\n\r\n" + b"x" * 8))
    with pytest.raises(transfer.CliError, match="version 2"):
        await transfer.read_header(_reader(b"ATCPFILE\x02" + header[9:]))
    with pytest.raises(transfer.CliError, match="complete header"):
        await transfer.read_header(_reader(header[:10]))


@pytest.mark.asyncio
async def test_receiver_refuses_a_corrupted_body(tmp_path):
    """A body whose SHA-256 is not the trailer's: nothing is written, and the receiver
    answers with the digest it computed so the sender learns it too."""
    body = b"hello world"
    wrong = hashlib.sha256(b"something else").digest()
    reader = _reader(transfer.encode_header("a.txt", len(body)) + body + wrong)
    replies = io.BytesIO()

    class Writer:
        def write(self, data):
            replies.write(data)

        def write_eof(self):
            pass

    class Args:
        output = str(tmp_path)
        progress = False

    with pytest.raises(transfer.CliError, match="SHA-256 mismatch"):
        await transfer._receive(Args, reader, Writer())
    assert replies.getvalue() == hashlib.sha256(body).digest()
    assert list(tmp_path.iterdir()) == []


def test_safe_name_and_output_path(tmp_path):
    assert transfer.safe_name("../../etc/passwd") == "passwd"
    assert transfer.safe_name("dir\\evil.txt") == "evil.txt"
    assert transfer.safe_name("..") == "received.bin"
    assert transfer.output_path(None, "x/y.bin") == "y.bin"
    assert transfer.output_path("-", "y.bin") is None
    assert transfer.output_path(str(tmp_path), "y.bin") == str(tmp_path / "y.bin")
    assert transfer.output_path(str(tmp_path / "z"), "y.bin") == str(tmp_path / "z")


# ---------------------------------------------------------------------- progress units
def test_render_shows_fraction_rate_and_eta():
    line = render("send f", 512 * 1024, 1024 * 1024, 256 * 1024)
    assert line.startswith("send f   50% [============>")
    assert "512.0 KiB / 1.0 MiB" in line and "256.0 KiB/s" in line and "ETA 00:02" in line
    assert "ETA --:--" in render("f", 0, 100, None)
    done = render("f", 100, 100, 50.0, elapsed=2.0)
    assert "100% [========================]" in done and "in 2.0 s" in done
    assert human_bytes(1023) == "1023 B" and human_bytes(3 * 1024 ** 3) == "3.0 GiB"


def test_progress_rate_follows_recent_samples_and_redraws_sparingly():
    now = [0.0]
    stream = io.StringIO()
    progress = Progress("x", 10_000, stream, enabled=True, clock=lambda: now[0])
    for step in range(1, 101):              # 100 bytes every 10 ms: 10 kB/s
        now[0] = step * 0.01
        progress.update(step * 100)
    assert progress.rate() == pytest.approx(10_000)
    assert 5 <= stream.getvalue().count("\r") <= 12     # at most ~10 redraws a second
    progress.finish()
    assert stream.getvalue().endswith("\n")
    assert stream.getvalue().rstrip().endswith("in 1.0 s")
    quiet = io.StringIO()
    silent = Progress("x", 10, quiet, enabled=False)
    silent.update(5)
    silent.finish()
    assert quiet.getvalue() == ""
