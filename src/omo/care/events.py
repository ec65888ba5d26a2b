"""Events of customer care (by openid only: care never knows who the person is)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import ClassVar

from omo.core.events import DomainEvent


@dataclasses.dataclass(frozen=True, kw_only=True)
class CareEvent(DomainEvent):
    conversation_id: uuid.UUID
    account_id: uuid.UUID


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConversationOpened(CareEvent):
    topic: ClassVar[str] = "care.conversation_opened"
    openid: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConversationAssigned(CareEvent):
    topic: ClassVar[str] = "care.conversation_assigned"
    team_id: uuid.UUID | None
    assignee_id: uuid.UUID | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConversationResolved(CareEvent):
    topic: ClassVar[str] = "care.conversation_resolved"


@dataclasses.dataclass(frozen=True, kw_only=True)
class SlaBreached(CareEvent):
    topic: ClassVar[str] = "care.sla_breached"
    target: str  # first_response | resolution


@dataclasses.dataclass(frozen=True, kw_only=True)
class CsatRated(CareEvent):
    topic: ClassVar[str] = "care.csat_rated"
    score: int
