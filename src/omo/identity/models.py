"""Identity tables. Only this context reads them: phone numbers never leave it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from omo.core.db import Base, UtcDateTime


class User(Base):
    __tablename__ = "identity_users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    phone_e164: Mapped[str] = mapped_column(String(20), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    phone_verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    display_name: Mapped[str] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(2))
    locale: Mapped[str | None] = mapped_column(String(16))
    time_zone: Mapped[str | None] = mapped_column(String(64))  # IANA name; None: deployment's
    omo_id: Mapped[str] = mapped_column(String(20), unique=True)
    omo_id_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    avatar_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Set when the person erased their account: the row stays as a tombstone with no personal
    # data, because the audit log and brands' pseudonyms refer to its id.
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Avatar(Base):
    __tablename__ = "identity_avatars"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identity_users.id"), index=True)
    content_type: Mapped[str] = mapped_column(String(40))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class VerificationCode(Base):
    __tablename__ = "identity_verification_codes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    phone_e164: Mapped[str] = mapped_column(String(20), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    consumed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class DeviceSession(Base):
    __tablename__ = "identity_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identity_users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    device_name: Mapped[str] = mapped_column(String(80))
    user_agent: Mapped[str] = mapped_column(String(300))
    client_address: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class QrLoginTicket(Base):
    __tablename__ = "identity_qr_tickets"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    scan_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    poll_token_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12))
    browser_user_agent: Mapped[str] = mapped_column(String(300))
    browser_address: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("identity_users.id"))
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class Pseudonym(Base):
    """Remembers which person an openid/unionid stands for, so it can be resolved back."""

    __tablename__ = "identity_pseudonyms"
    __table_args__ = (UniqueConstraint("kind", "scope", "user_id"),)

    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identity_users.id"))
