"""Domain events of the messaging context (written to the outbox with the change)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar

from omo.core.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class FriendAdded(DomainEvent):
    topic: ClassVar[str] = "messaging.friend_added"
    user_id: uuid.UUID
    friend_id: uuid.UUID


@dataclass(frozen=True, kw_only=True)
class MessageSent(DomainEvent):
    topic: ClassVar[str] = "messaging.message_sent"
    conversation_id: uuid.UUID
    seq: int
    sender_id: uuid.UUID
    kind: str


@dataclass(frozen=True, kw_only=True)
class GroupCreated(DomainEvent):
    topic: ClassVar[str] = "messaging.group_created"
    conversation_id: uuid.UUID
    owner_id: uuid.UUID
