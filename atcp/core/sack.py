"""The receiver's side of SACK (RFC 2018) and D-SACK (RFC 2883): which blocks to report.

`SackReport` keeps the out-of-order data held by reassembly as merged ranges of stream
offsets, and remembers which ranges were reported most recently. The blocks of each ACK
(section 4) start with the range holding the segment that triggered it, then repeat the
most recently reported ranges, so that a block lost with one ACK is seen again in the next
ones. A duplicate segment is reported once, as the first block of the next ACK (RFC 2883
4), which is how the sender learns that a retransmission was unnecessary.

The sender side (which records the blocks mark) is `atcp.core.recovery`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

__all__ = ["SackReport"]

#: How many recently reported ranges to remember: at most 4 blocks fit in an ACK.
_RECENT = 4


class SackReport:
    __slots__ = ("_starts", "_ends", "_recent", "dsack")

    def __init__(self) -> None:
        # Empty tuples until out-of-order data arrives (most connections never see any):
        # three empty lists would cost 168 bytes per connection.
        self._starts: list[int] | tuple = ()
        self._ends: list[int] | tuple = ()
        self._recent: list[int] | tuple = ()   # an offset inside each recently reported range, newest first
        self.dsack: tuple[int, int] | None = None

    def __bool__(self) -> bool:
        return bool(self._starts) or self.dsack is not None

    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self._starts, self._ends))

    def held(self, start: int, end: int) -> None:
        """Out-of-order data ``[start, end)`` is now held; it triggers the next ACK."""
        if not self._starts:
            self._starts, self._ends, self._recent = [], [], list(self._recent)
        starts, ends = self._starts, self._ends
        i = bisect_left(ends, start)
        j = bisect_right(starts, end)
        if i < j:
            start = min(start, starts[i])
            end = max(end, ends[j - 1])
            del starts[i:j]
            del ends[i:j]
        starts.insert(i, start)
        ends.insert(i, end)
        recent = self._recent
        recent.insert(0, start)
        del recent[_RECENT:]

    def delivered(self, rcv_off: int) -> None:
        """Data up to ``rcv_off`` went to the application: its ranges are not reported."""
        starts, ends = self._starts, self._ends
        while starts and starts[0] <= rcv_off:
            if ends[0] > rcv_off:
                starts[0] = rcv_off
                break
            del starts[0]
            del ends[0]

    def duplicate(self, start: int, end: int) -> None:
        """``[start, end)`` arrived again: report it in the next ACK (RFC 2883)."""
        self.dsack = (start, end)

    def blocks(self, limit: int) -> list[tuple[int, int]]:
        """At most ``limit`` blocks for the ACK being sent now, as stream offsets."""
        out = []
        if self.dsack is not None:
            out.append(self.dsack)
            self.dsack = None
        starts, ends = self._starts, self._ends
        chosen = set()
        for point in self._recent:
            if len(out) >= limit:
                return out
            i = bisect_right(starts, point) - 1
            if i >= 0 and ends[i] > point and i not in chosen:
                chosen.add(i)
                out.append((starts[i], ends[i]))
        for i in range(len(starts)):
            if len(out) >= limit:
                break
            if i not in chosen:
                out.append((starts[i], ends[i]))
        return out

    def clear(self) -> None:
        self._starts = self._ends = self._recent = ()
        self.dsack = None
