"""The pure parts of batched UDP I/O (`atcp.aio.udp_batch`): run grouping, the GSO control
message, GRO splitting, the probe; and one GSO send into a GRO socket on this kernel."""

from __future__ import annotations

import socket
import struct
import sys

import pytest

from atcp.aio import udp_batch
from atcp.aio.udp_batch import (GSO_MAX_BYTES, GSO_MAX_SEGMENTS, SOL_UDP, UDP_GRO, UDP_SEGMENT,
                                gro_segment_size, io_path, run_end, segment_cmsg,
                                split_coalesced)

A = ("127.0.0.1", 5000)
B = ("127.0.0.1", 5001)
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux GSO/GRO")


def runs(out, **limits):
    """Every run of ``out`` as (start, end) pairs."""
    result, i = [], 0
    while i < len(out):
        j = run_end(out, i, **limits)
        assert j > i
        result.append((i, j))
        i = j
    return result


def test_constants_are_linuxs():
    assert (SOL_UDP, UDP_SEGMENT, UDP_GRO) == (17, 103, 104)


def test_equal_sizes_to_one_address_form_one_run():
    out = [(b"x" * 100, A)] * 5
    assert runs(out) == [(0, 5)]


def test_a_shorter_datagram_ends_a_run_and_belongs_to_it():
    out = [(b"x" * 100, A)] * 3 + [(b"y" * 40, A)] + [(b"x" * 100, A)] * 2
    assert runs(out) == [(0, 4), (4, 6)]


def test_a_longer_datagram_starts_a_new_run():
    out = [(b"x" * 40, A), (b"x" * 100, A), (b"x" * 100, A)]
    assert runs(out) == [(0, 1), (1, 3)]


def test_another_address_starts_a_new_run():
    out = [(b"x" * 100, A)] * 2 + [(b"x" * 100, B)] * 2 + [(b"x" * 100, A)]
    assert runs(out) == [(0, 2), (2, 4), (4, 5)]


def test_equal_addresses_need_not_be_the_same_object():
    out = [(b"x" * 10, ("::1", 7, 0, 0)), (b"x" * 10, ("::1", 7, 0, 0))]
    assert runs(out) == [(0, 2)]


def test_a_run_stops_at_the_segment_limit():
    out = [(b"x" * 10, A)] * (GSO_MAX_SEGMENTS * 2 + 1)
    assert runs(out) == [(0, 64), (64, 128), (128, 129)]
    assert runs(out, max_segments=3)[:2] == [(0, 3), (3, 6)]


def test_a_run_stops_at_the_byte_limit():
    size = 1484
    out = [(b"x" * size, A)] * 50
    first = runs(out)[0]
    assert (first[1] - first[0]) * size <= GSO_MAX_BYTES
    assert (first[1] - first[0] + 1) * size > GSO_MAX_BYTES
    assert runs(out, max_bytes=3000) == [(i, i + 2) for i in range(0, 50, 2)]


def test_segment_cmsg_carries_the_size_as_a_u16():
    [(level, kind, data)] = segment_cmsg(1484)
    assert (level, kind) == (SOL_UDP, UDP_SEGMENT)
    assert struct.unpack("=H", data) == (1484,)
    assert segment_cmsg(1484) is segment_cmsg(1484)    # cached, no allocation per send


def test_gro_segment_size_reads_the_int_control_message():
    assert gro_segment_size([]) == 0
    assert gro_segment_size([(SOL_UDP, UDP_GRO, struct.pack("=i", 1232))]) == 1232
    assert gro_segment_size([(0, 1, b"\0" * 4), (SOL_UDP, UDP_GRO, struct.pack("=i", 9))]) == 9
    assert gro_segment_size([(SOL_UDP, UDP_SEGMENT, b"\1\0\0\0")]) == 0


def test_split_coalesced_cuts_at_multiples_of_the_size():
    data = bytes(range(250))
    assert split_coalesced(data, 100) == [data[:100], data[100:200], data[200:]]
    assert split_coalesced(data[:200], 100) == [data[:100], data[100:200]]


def test_split_coalesced_single_datagram():
    data = b"abcdef"
    assert split_coalesced(data, 0) == [data]
    assert split_coalesced(data, 6) == [data]
    assert split_coalesced(data, 10) == [data]


def test_io_path_names():
    assert io_path(True, True) == "gso+gro"
    assert io_path(True, False) == "gso"
    assert io_path(False, True) == "gro"
    assert io_path(False, False) == "per-datagram"


def test_probe_reports_nothing_when_the_options_are_refused(monkeypatch):
    def refuse(self, level, option, value):
        if level == SOL_UDP:
            raise OSError(92, "Protocol not available")   # ENOPROTOOPT
        return original(self, level, option, value)

    original = socket.socket.setsockopt
    monkeypatch.setattr(socket.socket, "setsockopt", refuse)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        assert udp_batch.enable_offload(sock) == (False, False)


def test_probe_reports_nothing_off_linux(monkeypatch):
    monkeypatch.setattr(udp_batch.sys, "platform", "darwin")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        assert udp_batch.enable_offload(sock) == (False, False)


@linux_only
@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"),
                                         (socket.AF_INET6, "::1")])
def test_a_gso_run_arrives_whole_at_a_gro_socket_and_splits_back(family, host):
    """On this kernel (CI runs it): one sendmsg of a run, one recvmsg of the coalesced
    datagrams with their size, split back to exactly what was sent."""
    with socket.socket(family, socket.SOCK_DGRAM) as rx, \
            socket.socket(family, socket.SOCK_DGRAM) as tx:
        rx.bind((host, 0))
        assert udp_batch.enable_offload(rx) == (True, True)
        assert udp_batch.enable_offload(tx) == (True, True)
        rx.settimeout(5)
        sent = [bytes([i]) * 1000 for i in range(5)] + [b"tail" * 10]
        out = [(d, rx.getsockname()) for d in sent]
        assert run_end(out, 0) == len(sent)
        tx.sendmsg([d for d, _ in out], segment_cmsg(1000), 0, rx.getsockname())
        data, ancdata, _flags, _addr = rx.recvmsg(65535, udp_batch.GRO_CMSG_SPACE)
        assert len(data) == sum(map(len, sent))      # one receive: coalesced
        assert gro_segment_size(ancdata) == 1000
        assert split_coalesced(data, gro_segment_size(ancdata)) == sent
