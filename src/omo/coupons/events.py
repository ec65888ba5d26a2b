"""Events the coupons context emits."""

from __future__ import annotations

import dataclasses
import uuid
from typing import ClassVar

from omo.core.events import DomainEvent


@dataclasses.dataclass(frozen=True, kw_only=True)
class CouponClaimed(DomainEvent):
    topic: ClassVar[str] = "coupon.claimed"
    coupon_id: uuid.UUID
    campaign_id: uuid.UUID
    user_id: uuid.UUID
    source: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class CouponRedeemed(DomainEvent):
    topic: ClassVar[str] = "coupon.redeemed"
    coupon_id: uuid.UUID
    campaign_id: uuid.UUID
    user_id: uuid.UUID
    merchant_id: str
    payment_ref: str
    discount_minor: int
    currency: str
