"""The ``kernel_peer`` fixture: Linux's own TCP as atcp's peer (atcp/testing/kernel_peer.py).

Each test gets a fresh network namespace with ``tun0`` and a gateway thread; it is removed
afterwards. Without root, /dev/net/tun or ``ip``, the tests are skipped with the reason,
except on CI (``CI == "true"``), where that is a failure: CI runs as root and must run them.

Set ``ATCP_KERNEL_PEER_PCAP_DIR`` to keep, per test, a capture of what the gateway delivered
each way (after its drops and impairment; virtual addresses) for a look in Wireshark.
"""

from __future__ import annotations

import os
import re

import pytest

from atcp.testing.kernel_peer import KernelPeer, unavailable_reason
from atcp.testing.tshark import find_tshark


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI runs as root and must run the kernel interop tests")
    pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.kernel_peer_failed = report.failed


def _diagnose(peer: KernelPeer) -> str:
    """What the gateway saw last, and the kernel's sockets: printed when a test fails."""
    lines = [f"gateway stats: {dict(peer.gateway.stats)}"]
    lines += [f"  {r.time:.4f} {r.direction:9} {r.segment} +{r.length}"
              for r in peer.gateway.records()[-25:]]
    try:
        lines.append(peer.ns.run("ss", "-tani"))
    except OSError as exc:
        lines.append(f"ss failed: {exc}")
    return "\n".join(lines)


@pytest.fixture
def kernel_peer(request):
    """A `KernelPeer`: ``.name`` (namespace), ``.socket()`` (a kernel socket inside it),
    ``.address`` (the UDP address atcp talks to), ``.sysctl(...)``, ``.gateway`` (drops,
    impairment, the segment log) and ``.tcp_sockets()`` (``ss -tan`` inside)."""
    reason = unavailable_reason()
    if reason is not None:
        _skip_or_fail(reason)
    pcap = None
    pcap_dir = os.environ.get("ATCP_KERNEL_PEER_PCAP_DIR")
    if pcap_dir:
        os.makedirs(pcap_dir, exist_ok=True)
        pcap = os.path.join(pcap_dir, re.sub(r"[^\w.-]+", "_", request.node.name) + ".pcap")
    try:
        peer = KernelPeer(pcap_path=pcap)
    except OSError as exc:   # e.g. root in a container without CAP_NET_ADMIN
        _skip_or_fail(f"cannot make a network namespace with a TUN device: {exc}")
    try:
        yield peer
        if getattr(request.node, "kernel_peer_failed", False):
            print(_diagnose(peer))
        peer.check()
    finally:
        peer.close()


@pytest.fixture(scope="session")
def tshark() -> str:
    """tshark's path (``.ci/run`` installs it from Debian's packages)."""
    path = find_tshark()
    if path is None:
        _skip_or_fail("tshark is not installed (Debian: apt-get install tshark)")
    return path
