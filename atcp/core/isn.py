"""Initial sequence numbers per RFC 6528: ISN = M + F(connection identity, secret).

M is a clock ticking every 4 microseconds (RFC 9293 3.4.1), so successive incarnations of one
connection start ever higher; F is a keyed hash of the identity, so an off-path attacker
cannot predict another connection's ISN. BLAKE2s in keyed mode is the pseudorandom function.
"""

from __future__ import annotations

import hashlib

__all__ = ["IsnGenerator"]

_MASK = 0xFFFFFFFF


class IsnGenerator:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the ISN secret must be at least 16 bytes (RFC 6528 3)")
        self._key = secret[:32]

    def __call__(self, identity: tuple, now: float) -> int:
        digest = hashlib.blake2s(repr(identity).encode(), key=self._key, digest_size=4).digest()
        clock = int(now * 250_000)  # 4 us ticks
        return (clock + int.from_bytes(digest, "big")) & _MASK
