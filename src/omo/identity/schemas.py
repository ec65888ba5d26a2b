"""The identity context's public HTTP contract."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from omo.core.schemas import RequestModel


class Strict(RequestModel):
    """Identity's request bodies (see RequestModel for what every body refuses)."""


class SignUpRequest(Strict):
    phone: str = Field(min_length=3, max_length=32, examples=["+393401234567"])
    password: str = Field(min_length=1, max_length=256)
    display_name: str = Field(min_length=1, max_length=64, pattern=r"\S")


class CodeRequest(Strict):
    phone: str = Field(min_length=3, max_length=32)


class VerifyRequest(Strict):
    phone: str = Field(min_length=3, max_length=32)
    code: str = Field(pattern=r"^\s*\d{6}\s*$")


class LogInRequest(Strict):
    phone: str = Field(min_length=3, max_length=32)
    password: str = Field(min_length=1, max_length=256)
    device_name: str = Field(default="", max_length=80)
    kind: Literal["app", "web"] = "app"


class Accepted(BaseModel):
    status: Literal["code_sent", "verified", "logged_out", "revoked", "confirmed", "erased"]


class EraseRequest(Strict):
    password: str = Field(min_length=1, max_length=256, description="Asked again to erase")


class SessionOut(BaseModel):
    token: str = Field(description="Send as 'Authorization: Bearer <token>'")
    session_id: uuid.UUID
    expires_at: datetime


class DeviceOut(BaseModel):
    id: uuid.UUID
    kind: str
    device_name: str
    user_agent: str
    created_at: datetime
    last_seen_at: datetime
    current: bool


class ProfileOut(BaseModel):
    phone: str
    omo_id: str
    omo_id_changeable_from: datetime | None
    display_name: str
    region: str | None
    locale: str | None
    time_zone: str | None = Field(
        description="IANA time zone for dates and times; null means the deployment's default"
    )
    avatar_url: str | None
    created_at: datetime


class ProfileUpdate(Strict):
    display_name: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"\S")
    region: str | None = Field(default=None, min_length=2, max_length=2)
    locale: str | None = Field(default=None, max_length=16)
    time_zone: str | None = Field(
        default=None, max_length=64, examples=["Asia/Shanghai", "Europe/Rome"]
    )


class OmoIdChange(Strict):
    omo_id: str = Field(min_length=1, max_length=40)


class PublicProfileOut(BaseModel):
    omo_id: str
    display_name: str
    region: str | None
    avatar_url: str | None


class QrTicketOut(BaseModel):
    ticket_id: uuid.UUID
    poll_token: str = Field(description="Keep it secret in the browser; it collects the session")
    scan_url: str = Field(description="What the QR code holds; open it on a logged-in phone")
    qr_svg: str
    expires_at: datetime


class QrScanRequest(Strict):
    scan_code: str = Field(min_length=8, max_length=64)


class QrScanOut(BaseModel):
    ticket_id: uuid.UUID
    status: str
    browser_user_agent: str
    expires_at: datetime


class QrClaimRequest(Strict):
    poll_token: str = Field(min_length=8, max_length=64)
    wait_seconds: float = Field(default=20.0, ge=0, le=30)


class QrClaimOut(BaseModel):
    status: Literal["pending", "scanned", "confirmed", "consumed", "expired"]
    session: SessionOut | None = None


class AuditEntryOut(BaseModel):
    id: uuid.UUID
    action: str = Field(examples=["login", "device_revoked", "refund"])
    actor: str
    client_address: str | None
    detail: dict[str, Any]
    occurred_at: datetime
