"""The official accounts context's public HTTP contract (native JSON API under /api/v1)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from omo.core.schemas import RequestModel

NAME = Field(min_length=1, max_length=64)
Locale = Literal["en", "zh_Hans", "it", "fr", "ja"]


class OrganisationRequest(RequestModel):
    name: str = Field(min_length=1, max_length=100)


class MemberOut(BaseModel):
    omo_id: str
    role: str


class OrganisationOut(BaseModel):
    id: uuid.UUID
    name: str
    role: str
    members: list[MemberOut]


class MemberRequest(RequestModel):
    omo_id: str = Field(min_length=1, max_length=40)
    role: Literal["owner", "admin", "agent"]


class AccountRequest(RequestModel):
    kind: Literal["subscription", "service"]
    name: str = NAME
    description: str = Field(default="", max_length=500)
    avatar_url: str = Field(default="", max_length=2048, pattern=r"^(https?://\S+)?$")


class AccountUpdate(RequestModel):
    name: str | None = Field(default=None, min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=500)
    avatar_url: str | None = Field(default=None, max_length=2048, pattern=r"^(https?://\S+)?$")


class AccountOut(BaseModel):
    id: uuid.UUID
    organisation_id: uuid.UUID
    kind: str
    name: str
    description: str
    avatar_url: str
    verified: bool
    followers: int
    menu: list[dict[str, Any]]


class ManagedAccountOut(AccountOut):
    app_id: str


class CreatedAccountOut(ManagedAccountOut):
    app_secret: str = Field(description="Shown once; store it on the brand's server.")


class ProfileOut(AccountOut):
    following: bool


class FollowRequest(RequestModel):
    scene: str = Field(default="", max_length=64)


class ScanRequest(RequestModel):
    scene: str = Field(default="", max_length=64)


class CardIn(RequestModel):
    """Messaging's card (url, title, description) with a type; a coupon card may name the
    brand's campaign (the follower claims it from the card), a mini program card its page."""

    type: Literal["article", "image", "voice", "video", "coupon", "miniprogram", "subscribe"]
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=500)
    url: str = Field(default="", max_length=2048, pattern=r"^(https?://\S+|/\S*)?$")
    campaign_id: uuid.UUID | None = None
    appid: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    pagepath: str | None = Field(default=None, max_length=256)
    template_id: str | None = Field(
        default=None,
        max_length=64,
        description="A subscribe card: the account's template the follower is asked to accept",
    )


class MessageRequest(RequestModel):
    text: str | None = Field(default=None, min_length=1, max_length=4000)
    card: CardIn | None = None

    def body(self) -> dict[str, Any]:
        if self.card is not None:
            card = self.card.model_dump(exclude_none=True, mode="json")
            return {"card": card} | ({"text": self.text} if self.text is not None else {})
        return {"text": self.text} if self.text is not None else {}


class BrandMessageRequest(MessageRequest):
    openid: str = Field(min_length=1, max_length=64)


class BroadcastRequest(MessageRequest):
    tag_id: int | None = Field(default=None, ge=1, le=2**31 - 1)


class ThreadItemOut(BaseModel):
    id: uuid.UUID
    direction: Literal["in", "out"]
    broadcast: bool
    body: dict[str, Any]
    created_at: datetime


class MenuClickRequest(RequestModel):
    key: str = Field(min_length=1, max_length=2048)


class MenuClickOut(BaseModel):
    open_url: str


class SubButton(RequestModel):
    type: Literal["click", "view", "miniprogram"]
    name: str = Field(min_length=1, max_length=60)
    key: str | None = Field(default=None, max_length=128)
    url: str | None = Field(default=None, max_length=2048)
    appid: str | None = Field(default=None, max_length=64)
    pagepath: str | None = Field(default=None, max_length=256)


class Button(RequestModel):
    name: str = Field(min_length=1, max_length=60)
    type: Literal["click", "view", "miniprogram"] | None = None
    key: str | None = Field(default=None, max_length=128)
    url: str | None = Field(default=None, max_length=2048)
    appid: str | None = Field(default=None, max_length=64)
    pagepath: str | None = Field(default=None, max_length=256)
    sub_button: list[SubButton] = Field(default_factory=list)


class MenuRequest(RequestModel):
    button: list[Button]


class MenuOut(BaseModel):
    button: list[dict[str, Any]]


class Rule(RequestModel):
    match: Literal["exact", "contains"]
    keyword: str = Field(min_length=1, max_length=100)
    reply: str = Field(min_length=1, max_length=4000)
    translations: dict[Locale, str] = Field(
        default_factory=dict, description="The reply in other languages (else `reply`)"
    )


class AutomationRequest(RequestModel):
    welcome: str = Field(default="", max_length=4000)
    default_reply: str = Field(default="", max_length=4000)
    rules: list[Rule] = Field(default_factory=list, max_length=200)


class AutomationOut(BaseModel):
    welcome: str
    default_reply: str
    rules: list[dict[str, Any]]


class FollowerOut(BaseModel):
    openid: str
    unionid: str
    nickname: str
    avatar_url: str | None
    followed_at: datetime
    scene: str
    tag_ids: list[int]
    last_interaction_at: datetime


class FollowersOut(BaseModel):
    total: int
    openids: list[str]
    next_openid: str


class TagRequest(RequestModel):
    name: str = Field(min_length=1, max_length=30)


class TagOut(BaseModel):
    id: int
    name: str
    count: int


class TaggingRequest(RequestModel):
    tag_id: int = Field(ge=1, le=2**31 - 1)
    openids: list[str] = Field(min_length=1, max_length=50)
    remove: bool = False


class QrOut(BaseModel):
    url: str
    svg: str


class QuotaOut(BaseModel):
    period: str
    used: int
    allowed: int


class WebhookRequest(RequestModel):
    url: str = Field(default="", max_length=2048, pattern=r"^(https?://\S+)?$")
    token: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9]*$")


class SecretOut(BaseModel):
    app_id: str
    app_secret: str


class DeliveryOut(BaseModel):
    event_id: uuid.UUID
    status: str
    attempts: int
    last_error: str
    updated_at: datetime


class TemplateRequest(RequestModel):
    title: str = Field(min_length=1, max_length=64)
    content: str = Field(min_length=1, max_length=2000)


class TemplateOut(BaseModel):
    template_id: str
    title: str
    content: str
    library_id: str = Field(default="", description="The library template it was added from")
    primary_industry: str = ""
    deputy_industry: str = ""
    example: str = ""


class LibraryTemplateOut(BaseModel):
    template_id_short: str
    title: str
    content: str
    example: str
    primary_industry: str
    deputy_industry: str


class LibraryTemplateRequest(RequestModel):
    template_id_short: str = Field(
        default="", max_length=32, description="Empty: OMO picks one (OPENTM + 9 digits)"
    )
    title: str = Field(min_length=1, max_length=64)
    content: str = Field(min_length=1, max_length=2000)
    example: str = Field(default="", max_length=2000)
    primary_industry: str = Field(min_length=1, max_length=40)
    deputy_industry: str = Field(default="", max_length=40)


class AddFromLibraryRequest(RequestModel):
    template_id_short: str = Field(min_length=1, max_length=32)


class SubscriptionRequest(RequestModel):
    count: int = Field(default=1, ge=1, le=10, description="Messages accepted (they add up to 10)")


class KindQuotaRequest(RequestModel):
    kind: Literal["subscription", "service"]
    allowed: int = Field(ge=0, le=1000, description="Broadcasts per period")


class PublicTemplateOut(TemplateOut):
    remaining: int = Field(description="Messages of it the caller has accepted and not received")


class SubscriptionOut(BaseModel):
    remaining: int


class TemplateField(RequestModel):
    value: str = Field(max_length=200)


class TemplateMessageRequest(RequestModel):
    openid: str = Field(min_length=1, max_length=64)
    template_id: str = Field(min_length=1, max_length=64)
    data: dict[str, TemplateField] = Field(default_factory=dict, max_length=20)
    url: str = Field(default="", max_length=2048, pattern=r"^(https?://\S+|/\S*)?$")


class VerificationRequest(RequestModel):
    verified: bool


class QuotaRequest(RequestModel):
    allowed: int | None = Field(
        default=None, ge=0, le=1000, description="Broadcasts per period; null: the kind's default"
    )

    @field_validator("allowed", mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        return None if value == "" else value  # an emptied form field: the kind's default


class MemberRemovalRequest(RequestModel):
    omo_id: str = Field(min_length=1, max_length=40)


class TranslationRequest(RequestModel):
    """The account's content in one language; an empty field falls back to the default."""

    description: str = Field(default="", max_length=500)
    welcome: str = Field(default="", max_length=4000)
    default_reply: str = Field(default="", max_length=4000)
    menu: list[Button] = Field(default_factory=list, max_length=3)
