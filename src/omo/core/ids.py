"""Time-ordered identifiers (UUIDv7, RFC 9562): index-friendly and sortable by creation."""

from __future__ import annotations

import uuid

import uuid6


def new_id() -> uuid.UUID:
    return uuid.UUID(bytes=uuid6.uuid7().bytes)
