"""The coupons context's public HTTP contract."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from omo.pay.schemas import AMOUNT, CURRENCY, BasketLine, MoneyOut


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tier(Strict):
    spend: str = AMOUNT
    off: str = AMOUNT


class CampaignRequest(Strict):
    issuer: uuid.UUID
    title: str = Field(min_length=1, max_length=100)
    kind: Literal["cash_off", "percent_off", "threshold", "gift"]
    currency: str = CURRENCY
    value: str = "0"
    percent: int = Field(default=0, ge=0, le=99)
    cap: str = "0"
    min_spend: str = "0"
    tiers: list[Tier] = Field(default_factory=list, max_length=10)
    gift: str = Field(default="", max_length=100)
    merchants: list[uuid.UUID] = Field(default_factory=list, max_length=50)
    stores: list[uuid.UUID] = Field(default_factory=list, max_length=200)
    products: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Product codes the coupon is for; empty: the whole order",
    )
    starts_at: datetime
    ends_at: datetime
    total_stock: int = Field(ge=1, le=10_000_000)
    per_user_limit: int = Field(default=1, ge=1, le=1000)
    return_on_refund: bool = True


class CampaignOut(BaseModel):
    id: uuid.UUID
    issuer: str
    title: str
    kind: str
    currency: str
    starts_at: datetime
    ends_at: datetime
    total_stock: int
    claimed: int
    per_user_limit: int
    claim_code: str
    gift: str
    products: list[str]


class ClaimRequest(Strict):
    campaign_id: uuid.UUID | None = None
    claim_code: str | None = Field(default=None, max_length=40)
    source: Literal["api", "qr", "chat", "broadcast"] = "api"


class CouponOut(BaseModel):
    id: uuid.UUID
    status: str
    campaign: CampaignOut
    claimed_at: datetime
    redeemed_at: datetime | None


class BasketRequest(Strict):
    merchant_id: uuid.UUID
    store_id: uuid.UUID | None = None
    amount: str = AMOUNT
    currency: str = CURRENCY
    items: list[BasketLine] | None = Field(default=None, max_length=200)


class AwardRequest(Strict):
    campaign_id: uuid.UUID
    min_spend: str = AMOUNT


class AwardOut(BaseModel):
    id: uuid.UUID
    merchant_id: str
    campaign_id: uuid.UUID
    campaign_title: str
    min_spend: MoneyOut
    active: bool


class OfferOut(BaseModel):
    coupon_id: uuid.UUID | None
    campaign_id: uuid.UUID
    title: str
    discount: MoneyOut
    gift: str


class UnlockableOut(BaseModel):
    campaign_id: uuid.UUID
    title: str
    spend_more: MoneyOut
    discount: MoneyOut


class BasketOut(BaseModel):
    offers: list[OfferOut]
    best: OfferOut | None
    nearest: UnlockableOut | None


class SaleRequest(Strict):
    merchant_id: uuid.UUID
    store_id: uuid.UUID | None = None
    product: str = Field(min_length=1, max_length=100)
    price: str = AMOUNT
    currency: str = CURRENCY
    stock: int = Field(ge=1, le=1_000_000)
    starts_at: datetime
    hold_seconds: int = Field(default=300, ge=10, le=86_400)
    per_user_limit: int = Field(default=1, ge=1, le=100)


class SaleOut(BaseModel):
    id: uuid.UUID
    merchant: str
    product: str
    price: MoneyOut
    stock: int
    taken: int
    starts_at: datetime
    hold_seconds: int
    per_user_limit: int


class ReservationOut(BaseModel):
    id: uuid.UUID
    sale_id: uuid.UUID
    status: str
    expires_at: datetime
    price: MoneyOut
