"""Pay tables: accounts and their immutable entries, merchants, codes, payments, refunds."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from omo.core.db import Base, UtcDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Account(Base):
    """One ledger account per (kind, owner, currency). Only `balance_minor` ever changes."""

    __tablename__ = "pay_accounts"
    __table_args__ = (UniqueConstraint("kind", "owner", "currency"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    owner: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    balance_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    may_go_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Transfer(Base):
    """A balanced movement: its entries sum to zero per currency."""

    __tablename__ = "pay_transfers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str] = mapped_column(String(100), index=True)
    rate: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Entry(Base):
    """One side of a transfer; never updated nor deleted (mistakes get a new transfer)."""

    __tablename__ = "pay_entries"
    __table_args__ = (Index("ix_pay_entries_account_time", "account_id", "created_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    transfer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pay_transfers.id"), index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pay_accounts.id"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    balance_after_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Merchant(Base):
    __tablename__ = "pay_merchants"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    owner_user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    fee_bps: Mapped[int] = mapped_column(Integer, default=60)
    webhook_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    webhook_secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # "pending" (applied, waiting for an operator), "approved" (may take payments), "rejected"
    status: Mapped[str] = mapped_column(
        String(16), default="approved", server_default="approved", index=True
    )
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    review_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)


class Store(Base):
    __tablename__ = "pay_stores"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pay_merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    latitude: Mapped[float | None] = mapped_column(nullable=True)
    longitude: Mapped[float | None] = mapped_column(nullable=True)
    qr_token: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Cashier(Base):
    __tablename__ = "pay_cashiers"

    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pay_merchants.id"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(20), default="cashier")


class PaymentCode(Base):
    __tablename__ = "pay_codes"

    code: Mapped[str] = mapped_column(String(18), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    session_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Pin(Base):
    __tablename__ = "pay_pins"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    pin_hash: Mapped[str] = mapped_column(String(200))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Payment(Base):
    """A merchant order paid (or being paid) by a customer; the order id is the idempotency key."""

    __tablename__ = "pay_payments"
    __table_args__ = (UniqueConstraint("merchant_id", "order_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pay_merchants.id"))
    store_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    order_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    discount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    fee_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    coupon_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    coupon_issuer: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    qr_token: Mapped[str | None] = mapped_column(String(40), nullable=True, unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The basket, when the merchant sent one: [[product code, amount in minor units], ...].
    items: Mapped[list[list[Any]] | None] = mapped_column(JSON, nullable=True)


class Refund(Base):
    __tablename__ = "pay_refunds"
    __table_args__ = (UniqueConstraint("payment_id", "refund_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pay_payments.id"))
    refund_id: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BankTransfer(Base):
    """A top-up or withdrawal through the bank connector; `request_id` makes it idempotent."""

    __tablename__ = "pay_bank_transfers"
    __table_args__ = (UniqueConstraint("user_id", "request_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    request_id: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(10))
    bank_account: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WebhookDelivery(Base):
    __tablename__ = "pay_webhook_deliveries"
    __table_args__ = (UniqueConstraint("event_id", "merchant_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    merchant_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), index=True)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
