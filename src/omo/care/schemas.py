"""Customer care's public HTTP contract (JSON under /api/v1/care)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from omo.core.schemas import RequestModel

TEXT = Field(min_length=1, max_length=4000)


class TeamRequest(RequestModel):
    name: str = Field(min_length=1, max_length=64)
    strategy: Literal["round_robin", "least_loaded"] = "least_loaded"
    account_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)


class TeamAccountsRequest(RequestModel):
    account_ids: list[uuid.UUID] = Field(max_length=100)


class AgentRequest(RequestModel):
    omo_id: str = Field(min_length=1, max_length=40)
    capacity: int = Field(ge=0, le=1000)


class AgentOut(BaseModel):
    omo_id: str
    name: str
    capacity: int
    load: int


class TeamOut(BaseModel):
    id: uuid.UUID
    organisation_id: uuid.UUID
    name: str
    strategy: str
    account_ids: list[uuid.UUID]
    agents: list[AgentOut]


class ConversationOut(BaseModel):
    id: uuid.UUID
    organisation_id: uuid.UUID
    account_id: uuid.UUID
    openid: str
    status: Literal["open", "pending", "snoozed", "resolved"]
    held_by_bot: bool
    team_id: uuid.UUID | None
    assignee: str | None
    labels: list[str]
    preview: str
    opened_at: datetime
    last_message_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    first_response_due: datetime | None
    resolution_due: datetime | None
    breached: bool
    csat_score: int | None
    csat_comment: str
    snoozed_until: datetime | None = None  # with status snoozed: None = until they write


class ThreadItemOut(BaseModel):
    id: uuid.UUID
    direction: Literal["in", "out"]
    broadcast: bool
    text: str
    created_at: datetime


class NoteRequest(RequestModel):
    text: str = TEXT


class NoteOut(BaseModel):
    id: uuid.UUID
    author: str
    text: str
    mentions: list[str]
    created_at: datetime


class PastConversationOut(BaseModel):
    id: uuid.UUID
    status: str
    opened_at: datetime
    preview: str


class CustomerOut(BaseModel):
    """What the team knows of the person: no phone number, no internal id."""

    openid: str
    following: bool
    nickname: str
    followed_at: datetime | None
    scene: str
    tags: list[str]
    past: list[PastConversationOut]


class ConversationDetailOut(BaseModel):
    conversation: ConversationOut
    thread: list[ThreadItemOut]
    notes: list[NoteOut]
    customer: CustomerOut
    agents: list[AgentOut]


class ReplyRequest(RequestModel):
    text: str = TEXT


class AssignRequest(RequestModel):
    omo_id: str | None = Field(default=None, min_length=1, max_length=40)


class LabelsRequest(RequestModel):
    labels: list[str] = Field(max_length=10)


class CannedRequest(RequestModel):
    shortcut: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_-]+$")
    text: str = TEXT


class CannedOut(BaseModel):
    shortcut: str
    text: str


class SettingsRequest(RequestModel):
    first_response_minutes: int | None = Field(default=None, ge=1, le=60 * 24 * 30)
    resolution_minutes: int | None = Field(default=None, ge=1, le=60 * 24 * 90)
    time_zone: str = Field(default="UTC", min_length=1, max_length=64)
    # weekday (0 = Monday) -> [start, end) minutes since local midnight
    hours: dict[int, tuple[int, int]] | None = None
    holidays: list[date] = Field(default_factory=list, max_length=366)
    language: Literal["en", "zh_Hans", "it", "fr", "ja"] = "en"
    bot_first: bool = False


class SettingsOut(BaseModel):
    account_id: uuid.UUID
    first_response_minutes: int | None
    resolution_minutes: int | None
    time_zone: str
    hours: dict[int, tuple[int, int]]
    holidays: list[date]
    language: str
    bot_first: bool


class ReportRowOut(BaseModel):
    key: str
    conversations: int
    resolved: int
    first_response_seconds: float | None
    resolution_seconds: float | None
    csat: float | None
    csat_count: int
    sla_hit_rate: float | None


class ReportOut(BaseModel):
    since: datetime
    until: datetime
    total: ReportRowOut
    by_agent: list[ReportRowOut]
    by_team: list[ReportRowOut]
    by_label: list[ReportRowOut]


class SnoozeRequest(RequestModel):
    """Until when: `until` (with its UTC offset) or `minutes` from now — at least a minute and
    at most a year ahead; neither: until the customer writes again."""

    until: AwareDatetime | None = None
    minutes: int | None = Field(default=None, ge=1, le=366 * 24 * 60)
