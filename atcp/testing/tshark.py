"""Reading captures back with tshark (Wireshark's command-line dissector), for tests.

`frames` runs tshark once over a pcap file and returns, per frame, the fields the tests look
at, with TCP and IPv4 checksum validation and TCP sequence analysis on. `problems` lists the
frames Wireshark would not show as clean TCP; `resent` the segments it flags as sent again.
tshark is a Debian package (``apt-get install tshark``); `find_tshark` says where it is.
"""

from __future__ import annotations

import shutil
import subprocess

__all__ = ["FIELDS", "find_tshark", "frames", "problems", "resent"]

#: The fields `frames` reads (one tshark run per capture: it is slow to start).
FIELDS = ("ip.src", "ip.dst", "ip.proto", "ip.checksum.status", "tcp.srcport", "tcp.dstport",
          "tcp.seq", "tcp.flags.syn", "tcp.flags.ack", "tcp.flags.fin", "tcp.flags.reset",
          "tcp.checksum.status", "_ws.malformed", "_ws.expert.severity",
          "tcp.analysis.retransmission", "tcp.analysis.out_of_order")
#: Wireshark's expert severity for errors (PI_ERROR); warnings and notes are below it.
_ERROR_SEVERITY = 0x00800000
_GOOD = "1"   # checksum status: 0 bad, 1 good, 2 unverified


def find_tshark() -> str | None:
    return shutil.which("tshark")


def frames(tshark: str, path) -> list[dict[str, str]]:
    """Every frame of the capture at ``path`` as tshark dissects it: a dict of `FIELDS`
    (empty string where absent; repeated values joined with commas)."""
    cmd = [tshark, "-n", "-r", str(path), "-o", "tcp.check_checksum:TRUE",
           "-o", "ip.check_checksum:TRUE", "-o", "tcp.analyze_sequence_numbers:TRUE",
           # The payloads are arbitrary bytes: now and then a heuristic dissector (LBMSRS,
           # for one) takes a segment for its protocol and has TCP reassemble the rest, and
           # a resend overlapping that "message" then reads as malformed -- a guess about
           # the application, not a TCP fault. Without reassembly, payloads stay data.
           "-o", "tcp.desegment_tcp_streams:FALSE",
           "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"]
    for name in FIELDS:
        cmd += ["-e", name]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    return [dict(zip(FIELDS, line.split("\t"))) for line in out.splitlines()]


def problems(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Frames that are not TCP over IPv4, are malformed, carry an error-level expert note,
    or have a bad or unverified checksum."""
    bad = []
    for row in rows:
        severities = [int(v, 0) for v in row["_ws.expert.severity"].split(",") if v]
        if (row["ip.proto"] != "6" or not row["tcp.srcport"] or row["_ws.malformed"]
                or any(v >= _ERROR_SEVERITY for v in severities)
                or row["tcp.checksum.status"] != _GOOD or row["ip.checksum.status"] != _GOOD):
            bad.append(row)
    return bad


def resent(rows: list[dict[str, str]], port: int, *, sent_from: bool = True):
    """Non-SYN segments from (or, with ``sent_from=False``, not from) TCP port ``port`` that
    Wireshark flags as retransmissions (fast ones included) or out-of-order.

    In a capture taken at the sender a segment is out of order only because it is resent:
    Wireshark calls a resend "out-of-order" when it comes within about an RTT of the
    highest segment sent, as NewReno's partial-ACK resends do.
    """
    return [r for r in rows
            if (r["tcp.srcport"] == str(port)) == sent_from and r["tcp.flags.syn"] != "1"
            and (r["tcp.analysis.retransmission"] or r["tcp.analysis.out_of_order"])]
