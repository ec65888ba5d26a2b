"""Domain events of the social context (written to the outbox with the change)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar

from omo.core.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class PostPublished(DomainEvent):
    topic: ClassVar[str] = "social.post_published"
    post_id: uuid.UUID
    author_id: uuid.UUID
    kind: str
    visibility: str


@dataclass(frozen=True, kw_only=True)
class PostLiked(DomainEvent):
    topic: ClassVar[str] = "social.post_liked"
    post_id: uuid.UUID
    author_id: uuid.UUID
    user_id: uuid.UUID


@dataclass(frozen=True, kw_only=True)
class PostCommented(DomainEvent):
    topic: ClassVar[str] = "social.post_commented"
    post_id: uuid.UUID
    author_id: uuid.UUID
    comment_id: uuid.UUID
    user_id: uuid.UUID
    reply_to_id: uuid.UUID | None


@dataclass(frozen=True, kw_only=True)
class PostShared(DomainEvent):
    topic: ClassVar[str] = "social.post_shared"
    post_id: uuid.UUID
    author_id: uuid.UUID
    user_id: uuid.UUID
    to: str


@dataclass(frozen=True, kw_only=True)
class SponsoredShown(DomainEvent):
    """A sponsored post was shown in someone's timeline (an ad seen, for insights)."""

    topic: ClassVar[str] = "social.sponsored_shown"
    sponsored_id: uuid.UUID
    account_id: uuid.UUID
    user_id: uuid.UUID
