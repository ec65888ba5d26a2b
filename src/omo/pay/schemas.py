"""The pay context's public HTTP contract. Amounts travel as decimal strings plus currency."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from omo.core.money import Money

AMOUNT = Field(pattern=r"^[0-9]{1,15}(\.[0-9]{1,3})?$", examples=["12.50"])
CURRENCY = Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])
IDEMPOTENCY = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MoneyOut(BaseModel):
    amount: str
    currency: str
    minor: int

    @classmethod
    def of(cls, money: Money) -> MoneyOut:
        return cls(
            amount=f"{money.to_decimal():f}", currency=money.currency, minor=money.amount_minor
        )


class WalletOut(BaseModel):
    balances: list[MoneyOut]
    has_pin: bool


class BankRequest(Strict):
    request_id: str = IDEMPOTENCY
    bank_account: str = Field(min_length=4, max_length=64)
    amount: str = AMOUNT
    currency: str = CURRENCY


class BankOut(BaseModel):
    id: uuid.UUID
    status: str
    amount: MoneyOut
    balances: list[MoneyOut]


class ConversionRequest(Strict):
    amount: str = AMOUNT
    currency: str = CURRENCY
    to_currency: str = CURRENCY


class PinRequest(Strict):
    pin: str = Field(pattern=r"^[0-9]{6}$")
    current_pin: str | None = Field(default=None, pattern=r"^[0-9]{6}$")


class CodeOut(BaseModel):
    code: str
    expires_at: datetime
    refresh_seconds: int
    qr_svg: str


class PaymentOut(BaseModel):
    id: uuid.UUID
    merchant_id: uuid.UUID
    merchant_name: str
    store_id: uuid.UUID | None
    order_id: str
    status: str
    amount: MoneyOut
    discount: MoneyOut
    paid: MoneyOut
    refunded: MoneyOut
    coupon_id: uuid.UUID | None
    created_at: datetime
    expires_at: datetime | None
    paid_at: datetime | None


class PaidOut(BaseModel):
    """A payment and the caller's resulting balance (merchant settlement, or payer wallet)."""

    payment: PaymentOut
    balance: MoneyOut | None


class ConfirmRequest(Strict):
    pin: str = Field(pattern=r"^[0-9]{6}$")


class MerchantRequest(Strict):
    organisation_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=100)
    webhook_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")


class MerchantUpdate(Strict):
    webhook_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")


class MerchantOut(BaseModel):
    id: uuid.UUID
    organisation_id: str
    name: str
    fee_bps: int
    role: str
    webhook_url: str | None
    webhook_secret: str | None = None
    status: Literal["pending", "approved", "rejected"] = Field(
        default="approved",
        description="A merchant takes payments once a platform operator approved it.",
    )
    review_reason: str | None = Field(default=None, description="Why it was rejected.")


class MerchantApplicationOut(BaseModel):
    id: uuid.UUID
    organisation_id: str
    name: str
    owner_omo_id: str | None
    status: Literal["pending", "approved", "rejected"]
    fee_bps: int = Field(description="The platform's fee per payment, in basis points.")
    created_at: datetime
    reviewed_at: datetime | None
    review_reason: str | None


class MerchantFeeRequest(Strict):
    fee_bps: int = Field(ge=0, le=10_000, description="Basis points of each payment.")


class MerchantReviewRequest(Strict):
    decision: Literal["approve", "reject"]
    reason: str | None = Field(
        default=None, max_length=500, description="Required to reject; the owner sees it."
    )


class StoreRequest(Strict):
    name: str = Field(min_length=1, max_length=100)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)


class StoreOut(BaseModel):
    id: uuid.UUID
    merchant_id: uuid.UUID
    name: str
    latitude: float | None
    longitude: float | None
    qr_url: str


class CashierRequest(Strict):
    omo_id: str = Field(min_length=1, max_length=20)


class BasketLine(Strict):
    product: str = Field(min_length=1, max_length=64, description="The merchant's product code")
    amount: str = AMOUNT


class ChargeRequest(Strict):
    code: str = Field(pattern=r"^\s*[0-9][0-9 ]{16,30}\s*$")
    amount: str = AMOUNT
    currency: str = CURRENCY
    order_id: str = IDEMPOTENCY
    store_id: uuid.UUID | None = None
    coupon: Literal["auto", "none"] = "auto"
    items: list[BasketLine] | None = Field(
        default=None,
        max_length=200,
        description="The basket, adding up to `amount`; coupons for products need it",
    )


class OrderQrRequest(Strict):
    amount: str = AMOUNT
    currency: str = CURRENCY
    order_id: str = IDEMPOTENCY
    store_id: uuid.UUID | None = None


class OrderQrOut(BaseModel):
    payment: PaymentOut
    qr_url: str
    qr_svg: str


class RefundRequest(Strict):
    refund_id: str = IDEMPOTENCY
    amount: str = AMOUNT
    currency: str = CURRENCY


class RefundOut(BaseModel):
    refund_id: str
    amount: MoneyOut
    payment: PaymentOut
    merchant_balance: MoneyOut


class QrOut(BaseModel):
    merchant_name: str
    store_name: str | None
    amount: MoneyOut | None
    order_id: str | None
    expires_at: datetime | None


class QrPayRequest(Strict):
    request_id: str = IDEMPOTENCY
    amount: str | None = AMOUNT
    currency: str | None = CURRENCY
    pin: str | None = Field(default=None, pattern=r"^[0-9]{6}$")
    coupon: Literal["auto", "none"] | uuid.UUID = "auto"


class ReservationPayRequest(Strict):
    pin: str | None = Field(default=None, pattern=r"^[0-9]{6}$")
