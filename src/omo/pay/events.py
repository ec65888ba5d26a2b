"""Events the pay context emits, written in the same transaction as the money they describe."""

from __future__ import annotations

import dataclasses
import uuid
from typing import ClassVar

from omo.core.events import DomainEvent


@dataclasses.dataclass(frozen=True, kw_only=True)
class PaymentSucceeded(DomainEvent):
    topic: ClassVar[str] = "payment.succeeded"
    payment_id: uuid.UUID
    merchant_id: uuid.UUID
    store_id: uuid.UUID | None
    order_id: str
    user_id: uuid.UUID
    currency: str
    amount_minor: int
    discount_minor: int
    coupon_id: uuid.UUID | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class PaymentRefunded(DomainEvent):
    topic: ClassVar[str] = "payment.refunded"
    payment_id: uuid.UUID
    merchant_id: uuid.UUID
    order_id: str
    refund_id: str
    user_id: uuid.UUID
    currency: str
    amount_minor: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class WalletToppedUp(DomainEvent):
    topic: ClassVar[str] = "wallet.topped_up"
    user_id: uuid.UUID
    currency: str
    amount_minor: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class WalletWithdrawn(DomainEvent):
    topic: ClassVar[str] = "wallet.withdrawn"
    user_id: uuid.UUID
    currency: str
    amount_minor: int
