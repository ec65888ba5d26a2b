"""Time-ordered identifiers (UUIDv7, RFC 9562): index-friendly and sortable by creation."""

from __future__ import annotations

import secrets
import time
import uuid

# uuid6.uuid7's algorithm (which this module used before), without its two object
# constructions per id (its own UUID subclass, then a copy as uuid.UUID): ids are made for
# every chat message and outbox event. As there, the millisecond moves on by one when the
# clock has not, so ids of one process are strictly increasing (outbox cursors rely on it).
_VERSION_AND_VARIANT = (7 << 76) | (0x8000 << 48)
_RANDOM_MASK = ((1 << 76) - 1) & ~(0xC000 << 48)
_random_bits = secrets.randbits
_last_ms = 0


def new_id() -> uuid.UUID:
    global _last_ms
    ms = time.time_ns() // 1_000_000
    if ms <= _last_ms:
        ms = _last_ms + 1
    _last_ms = ms
    value = ((ms & 0xFFFFFFFFFFFF) << 80) | _VERSION_AND_VARIANT | (_random_bits(76) & _RANDOM_MASK)
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
    return made
