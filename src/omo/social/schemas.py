"""The social context's public contract (REST bodies under /api/v1/social)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from omo.core.schemas import RequestModel
from omo.identity.schemas import PublicProfileOut

OmoId = Field(min_length=1, max_length=40)


class FriendIn(RequestModel):
    remark: str | None = Field(default=None, max_length=64)
    hide_my_moments: bool | None = Field(default=None, description="Don't let them see my Moments")
    hide_their_moments: bool | None = Field(default=None, description="Hide their Moments")


class FriendOut(BaseModel):
    person: PublicProfileOut
    remark: str
    hide_my_moments: bool
    hide_their_moments: bool
    labels: list[str]


class LabelIn(RequestModel):
    name: str = Field(min_length=1, max_length=32)
    members: list[str] = Field(default_factory=list, max_length=5000)


class LabelUpdate(RequestModel):
    name: str | None = Field(default=None, min_length=1, max_length=32)
    members: list[str] | None = Field(default=None, max_length=5000)


class LabelOut(BaseModel):
    id: uuid.UUID
    name: str
    members: list[PublicProfileOut]


class WindowIn(RequestModel):
    window: Literal["3d", "1m", "6m", "all"]


class WindowOut(BaseModel):
    window: Literal["3d", "1m", "6m", "all"]


class CardIn(RequestModel):
    kind: Literal["link", "miniprogram", "coupon"]
    url: str = Field(default="", max_length=2048)
    title: str = Field(default="", max_length=200)
    target: str = Field(default="", max_length=200, description="Mini program appid or coupon id")


class PlaceIn(RequestModel):
    name: str = Field(min_length=1, max_length=100)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)


class PostIn(RequestModel):
    text: str = Field(default="", max_length=2000)
    photos: list[uuid.UUID] = Field(default_factory=list, max_length=9)
    video: uuid.UUID | None = None
    card: CardIn | None = None
    place: PlaceIn | None = None
    visibility: Literal["friends", "private", "only", "except"] = "friends"
    people: list[str] = Field(default_factory=list, max_length=5000)
    labels: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    mentions: list[str] = Field(default_factory=list, max_length=20)


class MediaOut(BaseModel):
    id: uuid.UUID
    kind: str
    content_type: str
    alt: str
    width: int | None
    height: int | None
    url: str
    thumbnail_url: str | None


class CommentIn(RequestModel):
    text: str = Field(min_length=1, max_length=500)
    reply_to: uuid.UUID | None = None


class CommentOut(BaseModel):
    id: uuid.UUID
    author: PublicProfileOut
    reply_to: PublicProfileOut | None
    reply_to_id: uuid.UUID | None
    text: str
    created_at: datetime
    mine: bool


class CardOut(BaseModel):
    kind: str
    url: str
    title: str
    target: str


class PlaceOut(BaseModel):
    name: str
    latitude: float | None = None
    longitude: float | None = None


class PostOut(BaseModel):
    id: uuid.UUID
    author: PublicProfileOut
    remark: str
    kind: str
    text: str
    media: list[MediaOut]
    card: CardOut | None
    place: PlaceOut | None
    visibility: str = Field(description="Shown to the author only; empty for everyone else")
    created_at: datetime
    mine: bool
    liked: bool
    likes: list[PublicProfileOut] = Field(description="Only the viewer's own friends")
    comments: list[CommentOut] = Field(description="Only the viewer's own friends'")


class PageOut(BaseModel):
    posts: list[PostOut]
    next_cursor: str | None
    sponsored: SponsoredOut | None = Field(
        default=None, description="At most one, on the first page, marked as sponsored"
    )


class ShareIn(RequestModel):
    to: Literal["chat", "external"] = "chat"


class NotificationOut(BaseModel):
    id: uuid.UUID
    kind: Literal["like", "comment", "reply", "mention"]
    actor: PublicProfileOut
    post_id: uuid.UUID
    comment_id: uuid.UUID | None
    created_at: datetime
    read: bool


class SponsoredPlaceIn(RequestModel):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    radius_m: int = Field(ge=100, le=50_000)


class SponsoredIn(RequestModel):
    text: str = Field(min_length=1, max_length=2000)
    card: CardIn | None = None
    followers_only: bool = Field(default=False, description="Only the account's followers")
    tag_ids: list[int] = Field(
        default_factory=list, max_length=20, description="Followers with one of these tags"
    )
    place: SponsoredPlaceIn | None = Field(
        default=None, description="People whose app says they are inside this circle"
    )
    daily_cap: int = Field(default=3, ge=1, le=10, description="Times a day one person sees it")
    starts_at: datetime | None = None
    ends_at: datetime


class SponsoredOut(BaseModel):
    """What a person sees: marked sponsored, from the brand's official account."""

    id: uuid.UUID
    sponsored: Literal[True] = True
    account_id: uuid.UUID
    account_name: str
    text: str
    card: CardOut | None


class SponsoredAdminOut(SponsoredOut):
    """What the brand sees of its own sponsored post: targeting and total impressions."""

    followers_only: bool
    tag_ids: list[int]
    place: SponsoredPlaceIn | None
    daily_cap: int
    starts_at: datetime
    ends_at: datetime
    stopped: bool
    shown: int


class SponsoredPreferences(BaseModel):
    no_sponsored: bool = Field(description="No sponsored posts at all")
    hidden_accounts: list[uuid.UUID] = Field(description="Brands whose ads are hidden")


class SponsoredPreferencesIn(RequestModel):
    no_sponsored: bool


PageOut.model_rebuild()
