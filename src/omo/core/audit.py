"""The audit log: security-relevant actions on a person's account, append-only.

Written in the same transaction as the action (so it cannot claim what did not happen, nor
miss what did), shown to the account's owner, and protected by database triggers against
UPDATE and DELETE on every backend.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Uuid, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from omo.core.db import Base, UtcDateTime
from omo.core.ids import new_id

# Actions, so the owner's view and any export read the same words.
LOGIN = "login"
LOGIN_FAILED = "login_failed"
QR_LOGIN = "qr_login"
DEVICE_REVOKED = "device_revoked"
LOGOUT = "logout"
OMO_ID_CHANGED = "omo_id_changed"
ROLE_CHANGED = "role_changed"
REFUND = "refund"
MERGE = "merge"
EXPORT = "export"
ERASURE = "erasure"
OPERATOR_ACTION = "operator_action"  # a platform operator's change (verify, quotas, library)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    action: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(80))
    client_address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: uuid.UUID
    action: str
    actor: str
    client_address: str | None
    detail: dict[str, Any]
    occurred_at: datetime


def record_audit(
    session: AsyncSession,
    *,
    account_id: uuid.UUID,
    action: str,
    occurred_at: datetime,
    actor: str = "self",
    client_address: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append an entry to the caller's transaction. `detail` must hold no secret."""
    session.add(
        AuditEntry(
            id=new_id(),
            account_id=account_id,
            action=action,
            actor=actor,
            client_address=client_address,
            detail=detail or {},
            occurred_at=occurred_at,
        )
    )


async def audit_trail(
    session: AsyncSession,
    account_id: uuid.UUID,
    *,
    limit: int = 50,
    before: uuid.UUID | None = None,
) -> list[AuditRecord]:
    """The account's entries, newest first; page with `before` = the last id seen."""
    query = (
        select(AuditEntry)
        .where(AuditEntry.account_id == account_id)
        .order_by(AuditEntry.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(AuditEntry.id < before)
    rows = (await session.scalars(query)).all()
    return [
        AuditRecord(r.id, r.action, r.actor, r.client_address, r.detail, r.occurred_at)
        for r in rows
    ]
