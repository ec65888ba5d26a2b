"""Messaging tables. Only this context reads them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from omo.core.db import Base, UtcDateTime


class Contact(Base):
    """One side of a relationship: `outgoing` request, `incoming` request, or `friend`."""

    __tablename__ = "messaging_contacts"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    peer_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    status: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Block(Base):
    __tablename__ = "messaging_blocks"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    blocked_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Conversation(Base):
    __tablename__ = "messaging_conversations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    # "<smaller user id>:<larger user id>" for 1:1 chats, so there is one per pair.
    direct_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    announcement: Mapped[str] = mapped_column(Text, default="")
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Member(Base):
    __tablename__ = "messaging_members"
    __table_args__ = (Index("ix_messaging_members_user_active", "user_id", "active"),)

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messaging_conversations.id"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    role: Mapped[str] = mapped_column(String(10))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    muted: Mapped[bool] = mapped_column(Boolean, default=False)
    joined_seq: Mapped[int] = mapped_column(Integer, default=0)
    read_seq: Mapped[int] = mapped_column(Integer, default=0)
    joined_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Message(Base):
    __tablename__ = "messaging_messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_messaging_messages_seq"),
        UniqueConstraint(
            "conversation_id", "sender_id", "client_id", name="uq_messaging_messages_client_id"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messaging_conversations.id"))
    seq: Mapped[int] = mapped_column(Integer)
    sender_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    client_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(Text, default="")
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recalled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Hidden(Base):
    """Delete-for-me: the message stays for everyone else."""

    __tablename__ = "messaging_hidden"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messaging_messages.id"), primary_key=True
    )


class Media(Base):
    """An uploaded file of a conversation; the bytes live in the media storage."""

    __tablename__ = "messaging_media"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messaging_conversations.id"), index=True
    )
    uploader_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(10))
    content_type: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200), default="")
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    has_thumbnail: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MessageSearch(Base):
    """The search index of messages (terms from `omo.core.search.index_terms`).

    On SQLite this is an FTS5 virtual table, on PostgreSQL a table with a GIN index on
    `to_tsvector('simple', terms)`; the migration makes the right one. A recalled message
    leaves the index in the same transaction.
    """

    __tablename__ = "messaging_search"

    message_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    terms: Mapped[str] = mapped_column(Text)
