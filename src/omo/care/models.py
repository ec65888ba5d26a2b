"""Care tables: teams and their agents, care conversations, notes, canned replies, the
search index and each account's care settings (SLA calendar, CSAT language, bot first)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from omo.core.db import Base, UtcDateTime


class Team(Base):
    """Agents serving some of a brand's official accounts."""

    __tablename__ = "care_teams"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    name: Mapped[str] = mapped_column(String(64))
    strategy: Mapped[str] = mapped_column(String(14))  # round_robin | least_loaded
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TeamAccount(Base):
    __tablename__ = "care_team_accounts"

    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("care_teams.id"), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, index=True)


class Agent(Base):
    """An agent in a team: `load` open conversations assigned, at most `capacity`."""

    __tablename__ = "care_agents"

    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("care_teams.id"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, index=True)
    capacity: Mapped[int] = mapped_column(Integer)
    load: Mapped[int] = mapped_column(Integer, default=0)
    last_assigned_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_care_agents_pick", "team_id", "load", "last_assigned_at"),
        Index("ix_care_agents_turn", "team_id", "last_assigned_at"),
    )


class Conversation(Base):
    """One episode of care for a follower of an account: open → (pending) → resolved."""

    __tablename__ = "care_conversations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    openid: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10))  # open | pending | snoozed | resolved
    held_by_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    team_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    preview: Mapped[str] = mapped_column(String(200), default="")
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_message_at: Mapped[datetime] = mapped_column(UtcDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    first_response_due: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    resolution_due: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    first_response_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    resolution_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    csat_requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    csat_score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    csat_comment: Mapped[str] = mapped_column(String(500), default="")
    # snoozed: out of the inbox views until `snoozed_until` (None: until the customer writes)
    snoozed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    snoozed_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # since when a person (not the bot) has it: a take-over, a reply, a kf session
    human_since: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (
        Index("ix_care_conversations_customer", "account_id", "openid", "opened_at"),
        Index("ix_care_conversations_inbox", "organisation_id", "status", "last_message_at"),
        Index("ix_care_conversations_queue", "team_id", "assignee_id", "status", "opened_at"),
        Index("ix_care_conversations_snoozed", "status", "snoozed_until"),
    )


class Note(Base):
    """A private note of the team on a conversation (never sent to the customer)."""

    __tablename__ = "care_notes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("care_conversations.id"), index=True
    )
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    text: Mapped[str] = mapped_column(Text)
    mentions: Mapped[list[str]] = mapped_column(JSON, default=list)  # omo ids
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CannedReply(Base):
    __tablename__ = "care_canned_replies"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    shortcut: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_care_canned_shortcut", "organisation_id", "shortcut", unique=True),)


class Settings(Base):
    """An account's care settings: SLA targets in business minutes on its own calendar."""

    __tablename__ = "care_settings"

    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    first_response_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    resolution_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    # weekday (0 = Monday) -> [start minute, end minute) of the business day
    hours: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    holidays: Mapped[list[str]] = mapped_column(JSON, default=list)  # ISO dates
    language: Mapped[str] = mapped_column(String(8), default="en")
    bot_first: Mapped[bool] = mapped_column(Boolean, default=False)


class CareSearch(Base):
    """The search index of care messages (terms from `omo.core.search.index_terms`).

    SQLite: an FTS5 virtual table; PostgreSQL: a table with a GIN index on
    `to_tsvector('simple', terms)`; the migration makes the right one."""

    __tablename__ = "care_search"

    message_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    terms: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)  # to confirm CJK runs (`Query.matches`)
