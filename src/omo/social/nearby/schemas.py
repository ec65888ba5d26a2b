"""The public HTTP contract of People Nearby, Places nearby and Shake."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from omo.core.schemas import RequestModel

LATITUDE = Field(ge=-90, le=90, description="Degrees; snapped to a grid cell, never stored")
LONGITUDE = Field(ge=-180, le=180, description="Degrees; snapped to a grid cell, never stored")


class Position(RequestModel):
    latitude: float = LATITUDE
    longitude: float = LONGITUDE


class TurnOnRequest(Position):
    minutes: int | None = Field(
        default=None, ge=1, le=720, description="How long to stay visible (default 4 hours)"
    )


class VisibilityOut(BaseModel):
    visible: bool
    visible_until: datetime | None


class NearbyCardOut(BaseModel):
    """A public card: no id, no phone number, no position; `handle` is only for greeting."""

    handle: str
    display_name: str
    avatar_url: str | None
    region: str | None
    band: Literal["1km", "2km", "5km"] = Field(
        description="Distance between grid-cell centres: under 1, 2 or 5 km"
    )


class NearbyPeopleOut(BaseModel):
    visible_until: datetime
    people: list[NearbyCardOut]


class GreetRequest(RequestModel):
    handle: str = Field(min_length=1, max_length=32)


class GreetOut(BaseModel):
    status: Literal["outgoing", "friend"]


class PlaceOfferOut(BaseModel):
    campaign_id: uuid.UUID = Field(description="Claim it with POST /api/v1/coupons/claims")
    title: str
    kind: str
    ends_at: datetime
    left: int


class PlaceOut(BaseModel):
    kind: Literal["store", "account"] = Field(
        description="A shop of a merchant, or an official account's own place"
    )
    store_id: uuid.UUID | None
    merchant_id: uuid.UUID | None
    merchant_name: str
    name: str
    distance_m: int = Field(description="Rounded to 50 m")
    offers: list[PlaceOfferOut]
    account_id: uuid.UUID | None = Field(description="The brand's official account, if any")
    account_name: str | None
    busy: Literal["quiet", "busy", "very-busy"] | None = Field(
        description="From OMO payments there in the last hour; null when fewer than 3 people"
    )


class AccountPlaceIn(RequestModel):
    name: str = Field(min_length=1, max_length=100)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class AccountPlaceOut(BaseModel):
    account_id: uuid.UUID
    name: str
    latitude: float
    longitude: float


class ShakeRequest(Position):
    beacon: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The shop's place or beacon id the phone is near, if any",
    )


class CardOut(BaseModel):
    """A public profile card: name, avatar and region only."""

    display_name: str
    avatar_url: str | None
    region: str | None


class ShopPageOut(BaseModel):
    beacon: str
    title: str
    kind: Literal["offer", "miniprogram"]
    target: str = Field(description="A coupon campaign id (offer) or a mini program URL")


class ShakeOut(BaseModel):
    outcome: Literal["paired", "again", "alone", "shop"]
    partner: CardOut | None = None
    page: ShopPageOut | None = None
    greet_token: str | None = Field(
        default=None, description="Greet the partner with POST /shakes/greetings (10 minutes)"
    )


class ShakeGreetRequest(RequestModel):
    token: str = Field(min_length=1, max_length=32)


class BindingRequest(RequestModel):
    title: str = Field(min_length=1, max_length=100)
    kind: Literal["offer", "miniprogram"]
    target: str = Field(min_length=1, max_length=2048)
