"""Structured protocol events (structlog), off until the application turns them on.

atcp never configures logging. It emits nothing at all until `enable()` is called, because
structlog's unconfigured default prints every event to standard output, which a library
must not do on its own. After ``atcp.log.enable()``, events go to
``structlog.get_logger("atcp")`` and therefore through whatever structlog configuration the
application has (or structlog's default console output if it has none); ``enable(logger)``
sends them to a logger of your choice instead (any object with structlog's ``debug``,
``info`` and ``warning`` methods, e.g. a bound logger with context already attached).

Every event carries ``conn`` (the connection id, ``"<local TCP port>-<peer UDP host>:<peer
UDP port>-<peer TCP port>"``, the same for the connection and its TIME-WAIT record) and
``local`` (the endpoint's UDP address). The events:

====================== ======= ==========================================================
event                  level   fields
====================== ======= ==========================================================
state                  debug   old, new: an RFC 9293 state transition
time_wait_entered      debug   expires_in (seconds, 2*MSL)
time_wait_expired      debug
time_wait_fin_reacked  info    the peer's FIN came again and was ACKed again (3.10.7.4)
retransmit             debug   seq, length
rto_expired            info    rto (the backed-off timeout), backoff, retries, syn
fast_recovery          info    ssthresh, recover: a loss detected by RACK or duplicate ACKs
                               (RFC 8985, 6675, 5681, 6582)
loss_probe             debug   retransmission: a tail loss probe went out (RFC 8985 7)
spurious_undo          info    detected_by, cwnd: a loss episode undone (RFC 3522, 2883)
zero_window_probe      debug   backoff
rst_sent               info    rule: the RFC rule that produced it
rst_received           info    verdict: reset, challenge or drop (RFC 5961 3.2); refused
                               or drop in SYN-SENT; keep or close in TIME-WAIT (RFC 1337)
challenge_ack          info    sent: False when rate-limited (RFC 5961 7)
connection_closed      info    error: None, or the error the application sees
send_dropped           warning reason: the socket refused a datagram (no ``conn``)
endpoint_closed        info    the UDP socket was closed (no ``conn``)
====================== ======= ==========================================================

Each endpoint also counts these events by name in ``Endpoint.stats``, enabled or not.
"""

from __future__ import annotations

__all__ = ["enable", "disable", "is_enabled", "emit"]

_LEVELS = {
    "state": "debug",
    "time_wait_entered": "debug",
    "time_wait_expired": "debug",
    "retransmit": "debug",
    "loss_probe": "debug",
    "zero_window_probe": "debug",
    "send_dropped": "warning",
}

_logger = None


def enable(logger=None) -> None:
    """Start emitting atcp's events, to ``logger`` or to ``structlog.get_logger("atcp")``."""
    global _logger
    if logger is None:
        import structlog
        logger = structlog.get_logger("atcp")
    _logger = logger


def disable() -> None:
    """Stop emitting events (the default state)."""
    global _logger
    _logger = None


def is_enabled() -> bool:
    return _logger is not None


def emit(event: str, **fields) -> None:
    """Send one event at its level; does nothing while disabled."""
    logger = _logger
    if logger is not None:
        getattr(logger, _LEVELS.get(event, "info"))(event, **fields)
