"""The eleven connection states of RFC 9293 section 3.3.2 and the transitions between them.

``TRANSITIONS`` is the single table of allowed moves; `Connection` refuses any other, and the
state diagram in the documentation is generated from it: ``python -m atcp.core.states``
prints it as Mermaid (what docs/states.md embeds, checked by a test), ``--dot`` as Graphviz.
Each row is (from, to, what causes it).
"""

from __future__ import annotations

import enum

__all__ = ["State", "SYNCHRONIZED", "TRANSITIONS", "ALLOWED", "diagram", "mermaid"]


class State(enum.Enum):
    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"

    def __str__(self) -> str:
        return self.value


S = State

#: The synchronized states (RFC 9293 3.5.2): both sides know each other's ISN.
SYNCHRONIZED = frozenset({
    S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK,
    S.TIME_WAIT,
})

TRANSITIONS: tuple[tuple[State, State, str], ...] = (
    (S.CLOSED, S.SYN_SENT, "connect: send SYN"),
    (S.CLOSED, S.LISTEN, "listen"),
    (S.LISTEN, S.SYN_RECEIVED, "rcv SYN: send SYN,ACK"),
    (S.SYN_SENT, S.SYN_RECEIVED, "rcv SYN (simultaneous open): send SYN,ACK"),
    (S.SYN_SENT, S.ESTABLISHED, "rcv SYN,ACK: send ACK"),
    (S.SYN_SENT, S.CLOSED, "close, timeout, or rcv RST,ACK (refused)"),
    (S.SYN_RECEIVED, S.ESTABLISHED, "rcv ACK of SYN"),
    (S.SYN_RECEIVED, S.FIN_WAIT_1, "close: send FIN"),
    (S.SYN_RECEIVED, S.CLOSE_WAIT, "rcv FIN"),
    (S.SYN_RECEIVED, S.LISTEN, "rcv RST (passive open)"),
    (S.SYN_RECEIVED, S.CLOSED, "rcv RST, abort or timeout"),
    (S.ESTABLISHED, S.FIN_WAIT_1, "close: send FIN"),
    (S.ESTABLISHED, S.CLOSE_WAIT, "rcv FIN: send ACK"),
    (S.ESTABLISHED, S.CLOSED, "rcv RST, abort or timeout"),
    (S.FIN_WAIT_1, S.FIN_WAIT_2, "rcv ACK of FIN"),
    (S.FIN_WAIT_1, S.CLOSING, "rcv FIN: send ACK"),
    (S.FIN_WAIT_1, S.TIME_WAIT, "rcv FIN and ACK of FIN: send ACK"),
    (S.FIN_WAIT_1, S.CLOSED, "rcv RST, abort or timeout"),
    (S.FIN_WAIT_2, S.TIME_WAIT, "rcv FIN: send ACK"),
    (S.FIN_WAIT_2, S.CLOSED, "rcv RST, abort or timeout"),
    (S.CLOSE_WAIT, S.LAST_ACK, "close: send FIN"),
    (S.CLOSE_WAIT, S.CLOSED, "rcv RST, abort or timeout"),
    (S.CLOSING, S.TIME_WAIT, "rcv ACK of FIN"),
    (S.CLOSING, S.CLOSED, "rcv RST, abort or timeout"),
    (S.LAST_ACK, S.CLOSED, "rcv ACK of FIN, RST, abort or timeout"),
    (S.TIME_WAIT, S.CLOSED, "2*MSL timeout, or RST with rfc1337 off"),
    (S.LISTEN, S.CLOSED, "close"),
)

ALLOWED = frozenset((a, b) for a, b, _ in TRANSITIONS)


def diagram() -> str:
    """The transition table as a Graphviz digraph (``dot -Tsvg`` draws it)."""
    lines = ["digraph tcp {", "  rankdir=TB;", '  node [shape=box, fontname="Helvetica"];']
    for a, b, why in TRANSITIONS:
        lines.append(f'  "{a}" -> "{b}" [label="{why}", fontsize=10];')
    lines.append("}")
    return "\n".join(lines)


def mermaid() -> str:
    """The transition table as a Mermaid state diagram (embedded in docs/states.md).

    Mermaid ends a transition's label at a colon, so "event: action" is written
    "event / action", the usual notation for state machines."""
    lines = ["stateDiagram-v2"]
    lines += [f'    state "{s.value}" as {s.name}' for s in State if s.value != s.name]
    lines.append("    [*] --> CLOSED")
    lines += [f"    {a.name} --> {b.name}: {why.replace(': ', ' / ')}"
              for a, b, why in TRANSITIONS]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - documentation helper
    import sys
    print(diagram() if "--dot" in sys.argv[1:] else mermaid())
