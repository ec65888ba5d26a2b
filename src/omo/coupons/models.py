"""Coupon tables: campaigns and their issued coupons, flash sales and their reservations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from omo.core.db import Base, UtcDateTime


class Campaign(Base):
    """What a coupon is worth, where and when it works, and how many exist."""

    __tablename__ = "coupons_campaigns"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    value_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    percent: Mapped[int] = mapped_column(Integer, default=0)
    cap_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    min_spend_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    tiers: Mapped[list[list[int]]] = mapped_column(JSON, default=list)
    gift: Mapped[str] = mapped_column(String(100), default="")
    merchants: Mapped[list[str]] = mapped_column(JSON, default=list)
    stores: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Product codes (SKUs) the coupon is for; empty: the whole order.
    products: Mapped[list[str]] = mapped_column(JSON, default=list)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    total_stock: Mapped[int] = mapped_column(Integer)
    claimed: Mapped[int] = mapped_column(Integer, default=0)
    per_user_limit: Mapped[int] = mapped_column(Integer, default=1)
    return_on_refund: Mapped[bool] = mapped_column(Boolean, default=True)
    claim_code: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Coupon(Base):
    __tablename__ = "coupons_coupons"
    __table_args__ = (Index("ix_coupons_coupons_user_status", "user_id", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("coupons_campaigns.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    payment_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)


class FlashSale(Base):
    __tablename__ = "coupons_flash_sales"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    merchant: Mapped[str] = mapped_column(String(64))
    store: Mapped[str | None] = mapped_column(String(64), nullable=True)
    product: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    price_minor: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int] = mapped_column(Integer)
    taken: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    hold_seconds: Mapped[int] = mapped_column(Integer)
    per_user_limit: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Reservation(Base):
    __tablename__ = "coupons_reservations"
    __table_args__ = (Index("ix_coupons_reservations_sale_user", "sale_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    sale_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("coupons_flash_sales.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(20), index=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    payment_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)


class PaymentAward(Base):
    """ "Pay here, get that coupon": a merchant hands out a campaign's coupons to its payers
    (the vending machine whose receipt carries a coupon for the shop next door). The campaign
    is the merchant's own or names the merchant as a partner, so both sides agreed."""

    __tablename__ = "coupons_payment_awards"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    merchant: Mapped[str] = mapped_column(String(64), index=True)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("coupons_campaigns.id"))
    currency: Mapped[str] = mapped_column(String(3))
    min_spend_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
