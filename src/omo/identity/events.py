"""Events the identity context emits. They carry no phone number."""

from __future__ import annotations

import dataclasses
import uuid
from typing import ClassVar

from omo.core.events import DomainEvent


@dataclasses.dataclass(frozen=True, kw_only=True)
class PersonSignedUp(DomainEvent):
    topic: ClassVar[str] = "identity.signed_up"
    user_id: uuid.UUID
    region: str | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhoneVerified(DomainEvent):
    topic: ClassVar[str] = "identity.phone_verified"
    user_id: uuid.UUID


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoggedIn(DomainEvent):
    topic: ClassVar[str] = "identity.logged_in"
    user_id: uuid.UUID
    session_id: uuid.UUID
    kind: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class SessionRevoked(DomainEvent):
    topic: ClassVar[str] = "identity.session_revoked"
    user_id: uuid.UUID
    session_id: uuid.UUID


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProfileChanged(DomainEvent):
    topic: ClassVar[str] = "identity.profile_changed"
    user_id: uuid.UUID
    fields: tuple[str, ...]


@dataclasses.dataclass(frozen=True, kw_only=True)
class PersonErased(DomainEvent):
    """The person erased their account: every context drops what it holds about them."""

    topic: ClassVar[str] = "identity.person_erased"
    user_id: uuid.UUID
