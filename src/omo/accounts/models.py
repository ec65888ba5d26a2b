"""Official account tables: organisations and members, accounts, follows, quotas, messages,
broadcasts, automation, developer credentials and webhook deliveries."""

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
    LargeBinary,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from omo.core.db import Base, UtcDateTime


class Organisation(Base):
    """A brand: owns official accounts, has members with roles."""

    __tablename__ = "accounts_organisations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Member(Base):
    __tablename__ = "accounts_members"

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts_organisations.id"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(10))  # owner | admin | agent
    joined_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OfficialAccount(Base):
    __tablename__ = "accounts_accounts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts_organisations.id"), index=True
    )
    kind: Mapped[str] = mapped_column(String(12))  # subscription | service
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(500), default="")
    avatar_url: Mapped[str] = mapped_column(String(2048), default="")
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    app_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    welcome: Mapped[str] = mapped_column(Text, default="")
    default_reply: Mapped[str] = mapped_column(Text, default="")
    menu: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    webhook_url: Mapped[str] = mapped_column(String(2048), default="")
    webhook_token: Mapped[str] = mapped_column(String(64), default="")
    quota_override: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The brand's own content per language: {locale: {description, welcome, default_reply,
    # menu}}; a follower gets their language's variant of each field, else the default above.
    translations: Mapped[dict[str, dict[str, Any]]] = mapped_column(JSON, default=dict)


class Quota(Base):
    """Broadcasts used in one period ("2026-11-25" for a day, "2026-11" for a month).

    Taken with one conditional UPDATE (... WHERE used < allowed), so racing requests on any
    number of nodes can never exceed it."""

    __tablename__ = "accounts_quotas"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts_accounts.id"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)
    allowed: Mapped[int] = mapped_column(Integer)


class Follow(Base):
    """Follow = consent. A row stays after unfollow (following=False) to keep the history."""

    __tablename__ = "accounts_follows"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts_accounts.id"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, index=True)
    openid: Mapped[str] = mapped_column(String(64))
    following: Mapped[bool] = mapped_column(Boolean)
    followed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    scene: Mapped[str] = mapped_column(String(64), default="")
    last_interaction_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_accounts_follows_account_openid", "account_id", "openid", unique=True),
        # Covers the broadcast push's pages of followers (no table lookups at 1M rows).
        Index("ix_accounts_follows_push", "account_id", "following", "user_id"),
    )


class Tag(Base):
    __tablename__ = "accounts_tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts_accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(30))


class FollowerTag(Base):
    __tablename__ = "accounts_follower_tags"

    tag_id: Mapped[int] = mapped_column(ForeignKey("accounts_tags.id"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)


class AccountMessage(Base):
    """One message of a user↔account conversation (seam: moves into messaging later)."""

    __tablename__ = "accounts_messages"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts_accounts.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    direction: Mapped[str] = mapped_column(String(3))  # in (user → account) | out
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_accounts_messages_thread", "account_id", "user_id", "id"),)


class Broadcast(Base):
    """Stored once; followers read it by reference (joined at read time, never copied)."""

    __tablename__ = "accounts_broadcasts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts_accounts.id"))
    tag_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_accounts_broadcasts_account", "account_id", "created_at"),)


class KeywordRule(Base):
    __tablename__ = "accounts_keyword_rules"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts_accounts.id"), index=True)
    match: Mapped[str] = mapped_column(String(8))  # exact | contains
    keyword: Mapped[str] = mapped_column(String(100))
    reply: Mapped[str] = mapped_column(Text)
    translations: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # locale -> reply


class AccessToken(Base):
    __tablename__ = "accounts_access_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts_accounts.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WebhookDelivery(Base):
    """One event pushed to a brand's server: retried, then visible as failed."""

    __tablename__ = "accounts_webhook_deliveries"

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts_accounts.id"), index=True)
    status: Mapped[str] = mapped_column(String(10))  # delivered | failed
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Template(Base):
    """A notification template of the account ("{{first.DATA}} ... {{remark.DATA}}")."""

    __tablename__ = "accounts_templates"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts_accounts.id"), index=True)
    title: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Added from the platform's library: its short id and industry (copied, so the account's
    # template stays when the operator retires the library's).
    library_id: Mapped[str] = mapped_column(String(32), default="")
    primary_industry: Mapped[str] = mapped_column(String(40), default="")
    deputy_industry: Mapped[str] = mapped_column(String(40), default="")
    example: Mapped[str] = mapped_column(Text, default="")


class TemplateSubscription(Base):
    """A follower's consent to receive a template: each acceptance is one message (taken with
    one conditional UPDATE, like the broadcast quota)."""

    __tablename__ = "accounts_template_subscriptions"

    template_id: Mapped[str] = mapped_column(
        ForeignKey("accounts_templates.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, index=True)
    remaining: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Media(Base):
    """Temporary media uploaded by the brand's server (kept 3 days, as WeChat does)."""

    __tablename__ = "accounts_media"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts_accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # image | voice | video | thumb
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LibraryTemplate(Base):
    """The platform's template library (WeChat's 模板库): the operator curates it, accounts
    browse it and add a template to their own (`template/api_add_template`)."""

    __tablename__ = "accounts_template_library"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # short id, e.g. "TM00015"
    title: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    example: Mapped[str] = mapped_column(Text, default="")
    primary_industry: Mapped[str] = mapped_column(String(40))
    deputy_industry: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class KindQuota(Base):
    """The operator's broadcasts per period for every account of a kind (an account's own
    `quota_override` comes first; without a row, the deployment's default)."""

    __tablename__ = "accounts_kind_quotas"

    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    allowed: Mapped[int] = mapped_column(Integer)
