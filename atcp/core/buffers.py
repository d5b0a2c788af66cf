"""The byte stores of a connection: the send buffer, the receive buffer and reassembly.

Sequence numbers wrap at 2**32; these classes work in unwrapped stream offsets (a Python int
that only grows), and `Connection` converts at its edge. Every store has a hard size limit, so
a peer cannot make a connection hold more than its configuration allows.
"""

from __future__ import annotations

import bisect

__all__ = ["SendBuffer", "ReceiveBuffer", "Reassembly"]


class SendBuffer:
    """Unacknowledged and unsent data; offset 0 of the stream is the byte after the SYN.

    ``start`` is the stream offset of the oldest byte still held (everything before it has
    been acknowledged); ``end`` is one past the newest byte the application wrote.
    """

    __slots__ = ("_buf", "start", "end", "limit")

    def __init__(self, limit: int) -> None:
        self._buf = bytearray()
        self.start = 0
        self.end = 0   # kept equal to start + len(_buf): read on every segment sent
        self.limit = limit

    def __len__(self) -> int:
        return len(self._buf)

    def free(self) -> int:
        return self.limit - len(self._buf)

    def append(self, data) -> int:
        """Take as much of ``data`` as fits; return how many bytes were taken."""
        room = self.limit - len(self._buf)
        if room <= 0:
            return 0
        if len(data) > room:
            data = memoryview(data)[:room]
        self._buf += data
        n = len(data)
        self.end += n
        return n

    def view(self) -> memoryview:
        """The buffer's bytes, from stream offset `start`, without a copy. Release it
        (``view.release()``) before the buffer changes: a bytearray with a live view
        cannot grow or shrink."""
        return memoryview(self._buf)

    def peek(self, offset: int, size: int) -> bytes:
        """``size`` bytes (or fewer, at the end) from stream offset ``offset``."""
        i = offset - self.start
        return bytes(self._buf[i:i + size])

    def release(self, offset: int) -> int:
        """Drop everything before stream offset ``offset`` (it was acknowledged)."""
        n = offset - self.start
        if n <= 0:
            return 0
        del self._buf[:n]  # CPython trims a bytearray's head without moving the rest
        self.start = offset
        return n


class ReceiveBuffer:
    """In-order data waiting for the application to read it.

    Bytes are read from ``_pos`` on; the bytes before it are dropped only once they are
    half the buffer. Trimming a bytearray's head on every partial read, with appends in
    between, makes CPython copy what is left again and again.

    A segment that arrives while the buffer is empty is kept as it came (``_one``) until
    more arrives or part of it is read: a request/response exchange then hands each
    payload to the application without copying it in and out of the bytearray.
    """

    __slots__ = ("_buf", "_pos", "_one", "limit")

    def __init__(self, limit: int) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._one: bytes | None = None   # the whole content, when it is one bytes object
        self.limit = limit

    def __len__(self) -> int:
        one = self._one
        if one is not None:
            return len(one)
        return len(self._buf) - self._pos

    def free(self) -> int:
        one = self._one
        if one is not None:
            return self.limit - len(one)
        return self.limit - len(self._buf) + self._pos

    def append(self, data) -> None:
        if self._one is not None:
            self._buf += self._one
            self._one = None
        elif not self._buf and type(data) is bytes:
            self._one = data
            return
        self._buf += data

    def read(self, n: int = -1) -> bytes:
        one = self._one
        if one is not None:
            if n < 0 or n >= len(one):
                self._one = None
                return one
            self._buf += one
            self._one = None
        buf = self._buf
        pos = self._pos
        if n < 0 or n >= len(buf) - pos:
            if pos:
                with memoryview(buf) as view:
                    data = view[pos:].tobytes()
                self._pos = 0
            else:
                data = bytes(buf)
            buf.clear()
            return data
        with memoryview(buf) as view:
            data = view[pos:pos + n].tobytes()
        pos += n
        if 2 * pos >= len(buf):
            del buf[:pos]
            pos = 0
        self._pos = pos
        return data

    def clear(self) -> int:
        n = len(self)
        self._one = None
        self._buf.clear()
        self._pos = 0
        return n


class Reassembly:
    """Out-of-order data held until the hole before it fills (RFC 9293 3.10.7.4, seventh).

    Holds non-overlapping runs sorted by stream offset. A byte already held, or already
    delivered, is never stored twice; the caller trims incoming data to the receive window
    first, so the total held stays under the receive buffer's size. At most ``max_runs``
    runs are held (``Config.max_out_of_order``): a peer sending tiny scattered segments
    would otherwise make the bookkeeping cost many times the data. What does not fit is
    not kept; the peer sends it again.
    """

    __slots__ = ("_starts", "_runs", "held", "max_runs", "refused")

    def __init__(self, max_runs: int | None = None) -> None:
        self._starts: list[int] = []
        self._runs: list[bytes] = []
        self.held = 0
        self.max_runs = max_runs
        self.refused = 0   # pieces not kept because ``max_runs`` were held

    def __len__(self) -> int:
        return len(self._runs)

    def add(self, start: int, data: bytes) -> int:
        """Store ``data`` at stream offset ``start``; return how many new bytes were kept."""
        end = start + len(data)
        kept = 0
        i = bisect.bisect_right(self._starts, start) - 1
        if i >= 0:
            prev_end = self._starts[i] + len(self._runs[i])
            if prev_end >= end:
                return 0
            if prev_end > start:
                data = data[prev_end - start:]
                start = prev_end
        i += 1
        # Fill the gaps between the runs that follow, up to the end of the new data.
        while start < end:
            if self.max_runs is not None and len(self._starts) >= self.max_runs:
                self.refused += 1
                break
            if i < len(self._starts) and self._starts[i] < end:
                gap_end = self._starts[i]
                if gap_end > start:
                    piece = data[:gap_end - start]
                    self._starts.insert(i, start)
                    self._runs.insert(i, piece)
                    kept += len(piece)
                    i += 1
                run_end = self._starts[i] + len(self._runs[i])
                data = data[run_end - start:] if run_end < end else b""
                start = run_end
                i += 1
            else:
                self._starts.insert(i, start)
                self._runs.insert(i, data)
                kept += len(data)
                break
        self.held += kept
        return kept

    def pop_ready(self, offset: int) -> list[bytes]:
        """Remove and return the runs that continue the stream at ``offset``, in order."""
        out = []
        while self._starts and self._starts[0] <= offset:
            start = self._starts.pop(0)
            run = self._runs.pop(0)
            self.held -= len(run)
            skip = offset - start
            if skip < len(run):
                piece = run[skip:]
                out.append(piece)
                offset += len(piece)
        return out

    def blocks(self, limit: int = 4) -> list[tuple[int, int]]:
        """The held ranges as merged (start, end) stream offsets, lowest first."""
        merged: list[list[int]] = []
        for start, run in zip(self._starts, self._runs):
            end = start + len(run)
            if merged and merged[-1][1] == start:
                merged[-1][1] = end
            else:
                merged.append([start, end])
        return [(a, b) for a, b in merged[:limit]]

    def clear(self) -> None:
        self._starts.clear()
        self._runs.clear()
        self.held = 0
