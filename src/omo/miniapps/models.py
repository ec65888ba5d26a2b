"""Mini program tables: apps (appid + hashed secret), versions (the package itself, at most
1 MiB), testers of trial versions, and the URL prefixes a merchant registered for old codes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from omo.core.db import Base, UtcDateTime


class MiniApp(Base):
    __tablename__ = "miniapps_apps"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    appid: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Set by the platform operator: the host's top bar shows a verified badge.
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Version(Base):
    """One uploaded package. state: uploaded | trial | released | superseded | withdrawn."""

    __tablename__ = "miniapps_versions"
    __table_args__ = (
        UniqueConstraint("app_id", "code"),
        Index("ix_miniapps_versions_app_state", "app_id", "state"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("miniapps_apps.id"))
    code: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    package: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    packed_size: Mapped[int] = mapped_column(Integer)
    unpacked_size: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12))
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Tester(Base):
    __tablename__ = "miniapps_testers"

    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("miniapps_apps.id"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)


class UrlPrefix(Base):
    """A link prefix printed on a merchant's old codes; scanning one opens `page` of the mini
    program with the original link as a parameter."""

    __tablename__ = "miniapps_url_prefixes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("miniapps_apps.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(512), unique=True)
    page: Mapped[str] = mapped_column(String(200))
    token: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LoginCode(Base):
    """A one-time code from the bridge's `login` (5 minutes); only its hash is kept. The mini
    program's server exchanges it once, with appid + secret, for the openid."""

    __tablename__ = "miniapps_login_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("miniapps_apps.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Consent(Base):
    """A person's privacy-notice acceptance and permission grants for one mini program;
    grants: permission name -> true (granted) | false (denied). Revocable at any time."""

    __tablename__ = "miniapps_consents"

    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("miniapps_apps.id"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, index=True)
    privacy_accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    grants: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class StorageItem(Base):
    """The `storage` calls: a small key-value store per person per mini program."""

    __tablename__ = "miniapps_storage"

    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("miniapps_apps.id"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)


class Order(Base):
    """A payment order a mini program's server created (through pay); `id` is the prepay id
    the frame passes to requestPayment. It can only be paid inside that mini program."""

    __tablename__ = "miniapps_orders"
    __table_args__ = (UniqueConstraint("app_id", "order_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("miniapps_apps.id"))
    order_id: Mapped[str] = mapped_column(String(32))
    merchant_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    payment_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Subscription(Base):
    """requestSubscribeMessage: how many more messages of one template (an official-account
    template of the mini program's organisation) the person allowed this mini program."""

    __tablename__ = "miniapps_subscriptions"

    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("miniapps_apps.id"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, index=True)
    template_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    remaining: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Recent(Base):
    """The person's recently used mini programs (the consumer app's list)."""

    __tablename__ = "miniapps_recents"
    __table_args__ = (Index("ix_miniapps_recents_user_opened", "user_id", "opened_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("miniapps_apps.id"), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RequestOrigin(Base):
    """A backend origin the organisation registered for its mini program (WeChat's "request
    legal domains"): the host's `request` bridge call fetches only from these."""

    __tablename__ = "miniapps_request_origins"

    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("miniapps_apps.id"), primary_key=True)
    origin: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
