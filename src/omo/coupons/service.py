"""Coupon use cases: campaigns, claims, the offer engine, redemption and flash sales.

The same engine (`_discount`) answers "which coupon is best", "what is the nearest offer I
can unlock" and "how much does this redemption take off". The pay context redeems a coupon
with its own session (`redeem`), so the coupon and the money move in one transaction; a
conditional update (`available` -> `redeemed`) makes a coupon redeemable exactly once, even
under racing payments. Flash-sale stock is a counter changed only by conditional updates
(`taken < stock`), so a sale is never oversold.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, Exists, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from omo.core.clock import Clock
from omo.core.db import Database
from omo.core.driver import DriverStatement
from omo.core.errors import ProblemError, register
from omo.core.events import DomainEvent, record_event
from omo.core.ids import new_id
from omo.core.money import Money
from omo.coupons import events
from omo.coupons.gate import Decision, MemoryGate, StockGate
from omo.coupons.models import Campaign, Coupon, FlashSale, PaymentAward, Reservation

register("campaign-not-partner", 403, "This campaign is not yours to hand out")
register("award-not-found", 404, "There is no such payment award")
register("campaign-invalid", 422, "That campaign cannot be created")
register("campaign-not-found", 404, "No such coupon campaign")
register("campaign-not-open", 409, "This coupon campaign is not open")
register("coupon-out-of-stock", 409, "No coupons are left")
register("coupon-limit-reached", 409, "You already have as many of these coupons as allowed")
register("coupon-not-found", 404, "No such coupon")
register("coupon-not-usable", 409, "This coupon cannot be used for this payment")
register("flash-sale-not-found", 404, "No such flash sale")
register("flash-sale-not-started", 409, "The sale has not started yet")
register("flash-sale-sold-out", 409, "Sold out")
register("flash-sale-limit-reached", 409, "You already reserved as many as allowed")
register("reservation-expired", 410, "The reservation has expired")

Kind = Literal["cash_off", "percent_off", "threshold", "gift"]
KINDS = ("cash_off", "percent_off", "threshold", "gift")


@dataclass(frozen=True, slots=True)
class Discount:
    coupon_id: uuid.UUID
    issuer: str
    amount: Money
    title: str


@dataclass(frozen=True, slots=True)
class CampaignView:
    id: uuid.UUID
    issuer: str
    title: str
    kind: str
    currency: str
    value_minor: int
    percent: int
    cap_minor: int
    min_spend_minor: int
    tiers: list[list[int]]
    gift: str
    merchants: list[str]
    stores: list[str]
    starts_at: datetime
    ends_at: datetime
    total_stock: int
    claimed: int
    per_user_limit: int
    return_on_refund: bool
    claim_code: str
    products: list[str]


@dataclass(frozen=True, slots=True)
class AwardView:
    id: uuid.UUID
    merchant: str
    campaign_id: uuid.UUID
    campaign_title: str
    min_spend: Money
    active: bool


@dataclass(frozen=True, slots=True)
class Awarded:
    """A coupon handed to a payer by a payment."""

    coupon_id: uuid.UUID
    campaign_id: uuid.UUID
    title: str
    issuer: str


@dataclass(frozen=True, slots=True)
class CouponView:
    id: uuid.UUID
    campaign: CampaignView
    status: str
    claimed_at: datetime
    redeemed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Offer:
    coupon_id: uuid.UUID | None
    campaign_id: uuid.UUID
    title: str
    discount: Money
    gift: str


@dataclass(frozen=True, slots=True)
class Unlockable:
    campaign_id: uuid.UUID
    title: str
    spend_more: Money
    discount: Money


@dataclass(frozen=True, slots=True)
class Basket:
    offers: list[Offer]
    best: Offer | None
    nearest: Unlockable | None


@dataclass(frozen=True, slots=True)
class FlashOffer:
    reservation_id: uuid.UUID
    merchant_id: str
    store_id: str | None
    product: str
    price: Money


@dataclass(frozen=True, slots=True)
class SaleView:
    id: uuid.UUID
    merchant: str
    product: str
    price: Money
    stock: int
    taken: int
    starts_at: datetime
    hold_seconds: int
    per_user_limit: int


@dataclass(frozen=True, slots=True)
class ReservationView:
    id: uuid.UUID
    sale_id: uuid.UUID
    status: str
    expires_at: datetime
    price: Money


def _view(campaign: Campaign) -> CampaignView:
    return CampaignView(
        campaign.id,
        campaign.issuer,
        campaign.title,
        campaign.kind,
        campaign.currency,
        campaign.value_minor,
        campaign.percent,
        campaign.cap_minor,
        campaign.min_spend_minor,
        [list(tier) for tier in campaign.tiers],
        campaign.gift,
        list(campaign.merchants),
        list(campaign.stores),
        campaign.starts_at,
        campaign.ends_at,
        campaign.total_stock,
        campaign.claimed,
        campaign.per_user_limit,
        campaign.return_on_refund,
        campaign.claim_code,
        list(campaign.products),
    )


# -- the offer engine ----------------------------------------------------------------------


def _applies_at(campaign: Campaign, merchant_id: str, store_id: str | None) -> bool:
    merchants = campaign.merchants or [campaign.issuer]
    if merchant_id not in merchants:
        return False
    return not campaign.stores or (store_id is not None and store_id in campaign.stores)


def _in_window(campaign: Campaign, now: datetime) -> bool:
    return campaign.starts_at <= now < campaign.ends_at


Lines = Sequence[tuple[str, int]]  # a basket: (product code, amount in minor units)
MAX_PRODUCTS = 100
PRODUCT_CODE_MAX = 64


def _eligible(campaign: Campaign, amount_minor: int, items: Lines | None) -> int:
    """The part of the order the coupon counts: all of it, or only its products' lines (none
    when the coupon is for products and the merchant sent no basket)."""
    if not campaign.products:
        return amount_minor
    if not items:
        return 0
    wanted = set(campaign.products)
    return sum(amount for product, amount in items if product in wanted)


def _discount(campaign: Campaign, amount_minor: int) -> int:
    """Minor units taken off an order of `amount_minor` (0 when the coupon does not apply)."""
    if amount_minor < campaign.min_spend_minor:
        return 0
    if campaign.kind == "cash_off":
        off = campaign.value_minor
    elif campaign.kind == "percent_off":
        off = amount_minor * campaign.percent // 100
        if campaign.cap_minor:
            off = min(off, campaign.cap_minor)
    elif campaign.kind == "threshold":
        reached = [tier_off for threshold, tier_off in campaign.tiers if amount_minor >= threshold]
        off = max(reached, default=0)
    else:
        off = 0
    return max(0, min(off, amount_minor))


def _next_step(campaign: Campaign, amount_minor: int) -> tuple[int, int] | None:
    """(spend more, discount then) for the nearest threshold above the amount, if any."""
    current = _discount(campaign, amount_minor)
    steps: list[tuple[int, int]] = []
    if campaign.kind == "threshold":
        steps = [(threshold, off) for threshold, off in campaign.tiers]
    elif campaign.min_spend_minor > amount_minor:
        steps = [(campaign.min_spend_minor, _discount(campaign, campaign.min_spend_minor))]
    better = [
        (threshold - amount_minor, off)
        for threshold, off in steps
        if threshold > amount_minor and off > current
    ]
    return min(better, key=lambda step: (step[0], -step[1])) if better else None


def _usable(
    campaign: Campaign, merchant_id: str, store_id: str | None, amount: Money, now: datetime
) -> bool:
    return (
        campaign.currency == amount.currency
        and _in_window(campaign, now)
        and _applies_at(campaign, merchant_id, store_id)
    )


# Read on every payment: built once (building a statement costs more than running it).
_WALLET = (
    select(Coupon, Campaign)
    .join(Campaign, Campaign.id == Coupon.campaign_id)
    .where(Coupon.user_id == bindparam("user_id"), Coupon.status == "available")
)
_AWARDS = (
    select(PaymentAward, Campaign)
    .join(Campaign, Campaign.id == PaymentAward.campaign_id)
    .where(
        PaymentAward.merchant == bindparam("merchant"),
        PaymentAward.active.is_(True),
        PaymentAward.currency == bindparam("currency"),
        PaymentAward.min_spend_minor <= bindparam("paid"),
        Campaign.starts_at <= bindparam("now"),
        Campaign.ends_at > bindparam("now"),
        Campaign.claimed < Campaign.total_stock,
    )
    .order_by(PaymentAward.created_at)
)
# Most payers hold no coupon and most merchants run no payment award: one plain read on the
# driver connection (omo.core.driver) answers "none" before the ORM reads above are made.
_ANY_COUPON = DriverStatement(
    select(Coupon.id)
    .where(Coupon.user_id == bindparam("user_id"), Coupon.status == "available")
    .limit(1)
)
_ANY_AWARD = DriverStatement(_AWARDS.with_only_columns(PaymentAward.id).order_by(None).limit(1))
# A payment with its coupon chosen automatically asks both at once (one round trip less).
_ANYTHING_FOR_PAYMENT = DriverStatement(
    select(
        _ANY_COUPON.statement.exists().label("coupon"),
        _ANY_AWARD.statement.exists().label("award"),
    )
)


def anything_for_payment_columns(user_id: ColumnElement[uuid.UUID]) -> tuple[Exists, Exists]:
    """`anything_for_payment`'s two answers as columns for a statement the caller makes
    anyway (the scan's code claim returns them: one round trip less), for the payer in the
    column `user_id`. Parameters: merchant, currency, paid, now. True, True or either:
    call `best_discount` / `award_after_payment` as after `anything_for_payment`."""
    coupon = (
        select(Coupon.id)
        .where(Coupon.user_id == user_id, Coupon.status == "available")
        .limit(1)
        .exists()
    )
    return coupon, _ANY_AWARD.statement.exists()


def _pending(session: AsyncSession) -> bool:
    """ORM changes not flushed yet: a driver read would not see them (an ORM read flushes)."""
    return bool(session.new or session.dirty or session.deleted)


async def _wallet_rows(session: AsyncSession, user_id: uuid.UUID) -> list[tuple[Coupon, Campaign]]:
    rows = await session.execute(_WALLET, {"user_id": user_id})
    return [(coupon, campaign) for coupon, campaign in rows]


async def anything_for_payment(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    merchant_id: str,
    amount: Money,
    now: datetime,
) -> bool:
    """False when neither `best_discount` nor `award_after_payment` (with nothing taken off
    `amount`) can find anything for this payment: the payer holds no available coupon and
    the merchant runs no payment award it could earn. One read; the caller may then skip
    both."""
    if _pending(session):
        return True
    row = await _ANYTHING_FOR_PAYMENT.first(
        session,
        {
            "user_id": user_id,
            "merchant": merchant_id,
            "currency": amount.currency,
            "paid": amount.amount_minor,
            "now": now,
        },
    )
    return row is None or bool(row[0]) or bool(row[1])


async def best_discount(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    merchant_id: str,
    store_id: str | None,
    amount: Money,
    now: datetime,
    items: Lines | None = None,
) -> Discount | None:
    """The user's coupon that takes the most off this payment (gifts are chosen by hand)."""
    if not _pending(session) and await _ANY_COUPON.first(session, {"user_id": user_id}) is None:
        return None
    best: Discount | None = None
    for coupon, campaign in await _wallet_rows(session, user_id):
        if not _usable(campaign, merchant_id, store_id, amount, now):
            continue
        off = _discount(campaign, _eligible(campaign, amount.amount_minor, items))
        if off > 0 and (best is None or off > best.amount.amount_minor):
            best = Discount(coupon.id, campaign.issuer, Money(off, amount.currency), campaign.title)
    return best


async def redeem(
    session: AsyncSession,
    *,
    coupon_id: uuid.UUID,
    user_id: uuid.UUID,
    merchant_id: str,
    store_id: str | None,
    amount: Money,
    payment_ref: str,
    now: datetime,
    items: Lines | None = None,
) -> Discount:
    """Mark the coupon used by this payment, in the payment's own transaction."""
    row = (
        await session.execute(
            select(Coupon, Campaign)
            .join(Campaign, Campaign.id == Coupon.campaign_id)
            .where(Coupon.id == coupon_id, Coupon.user_id == user_id)
        )
    ).first()
    if row is None:
        raise ProblemError("coupon-not-found", "Pick one of your own coupons.")
    coupon, campaign = row
    if not _usable(campaign, merchant_id, store_id, amount, now):
        raise ProblemError("coupon-not-usable", "Check where and when the coupon is valid.")
    eligible = _eligible(campaign, amount.amount_minor, items)
    if campaign.products and eligible == 0:
        raise ProblemError("coupon-not-usable", "The order has none of the coupon's products.")
    if eligible < campaign.min_spend_minor or (
        campaign.kind == "threshold" and _discount(campaign, eligible) == 0
    ):
        raise ProblemError("coupon-not-usable", "The order is below the coupon's minimum spend.")
    claimed = await session.execute(
        update(Coupon)
        .where(Coupon.id == coupon_id, Coupon.status == "available")
        .values(status="redeemed", redeemed_at=now, payment_ref=payment_ref)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        raise ProblemError("coupon-not-usable", "This coupon was already used.")
    off = Money(_discount(campaign, eligible), amount.currency)
    _record(
        session,
        events.CouponRedeemed(
            coupon_id=coupon.id,
            campaign_id=campaign.id,
            user_id=user_id,
            merchant_id=merchant_id,
            payment_ref=payment_ref,
            discount_minor=off.amount_minor,
            currency=off.currency,
        ),
        now,
    )
    return Discount(coupon.id, campaign.issuer, off, campaign.title)


async def return_coupon(session: AsyncSession, *, coupon_id: uuid.UUID, now: datetime) -> bool:
    """A fully refunded payment gives its coupon back when the campaign says so."""
    campaign_returns = await session.scalar(
        select(Campaign.return_on_refund)
        .join(Coupon, Coupon.campaign_id == Campaign.id)
        .where(Coupon.id == coupon_id)
    )
    if not campaign_returns:
        return False
    result = await session.execute(
        update(Coupon)
        .where(Coupon.id == coupon_id, Coupon.status == "redeemed")
        .values(status="available", redeemed_at=None, payment_ref=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def award_after_payment(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    merchant_id: str,
    paid: Money,
    payment_ref: str,
    now: datetime,
) -> list[Awarded]:
    """Coupons this payment earns from the merchant's payment awards, in the payment's own
    transaction. An award whose campaign is closed, out of stock or at the payer's limit
    gives nothing; it never fails the payment."""
    params = {
        "merchant": merchant_id,
        "currency": paid.currency,
        "paid": paid.amount_minor,
        "now": now,
    }
    if not _pending(session) and await _ANY_AWARD.first(session, params) is None:
        return []
    rows = await session.execute(_AWARDS, params)
    awarded: list[Awarded] = []
    for _award, campaign in rows.all():
        held = await session.scalar(
            select(func.count())
            .select_from(Coupon)
            .where(Coupon.campaign_id == campaign.id, Coupon.user_id == user_id)
        )
        if int(held or 0) >= campaign.per_user_limit:
            continue
        taken = await session.execute(
            update(Campaign)
            .where(Campaign.id == campaign.id, Campaign.claimed < Campaign.total_stock)
            .values(claimed=Campaign.claimed + 1)
        )
        if not taken.rowcount:  # type: ignore[attr-defined]
            continue
        coupon = Coupon(
            id=new_id(),
            campaign_id=campaign.id,
            user_id=user_id,
            status="available",
            source="payment",
            claimed_at=now,
            payment_ref=None,
        )
        session.add(coupon)
        _record(
            session,
            events.CouponClaimed(
                coupon_id=coupon.id, campaign_id=campaign.id, user_id=user_id, source="payment"
            ),
            now,
        )
        awarded.append(Awarded(coupon.id, campaign.id, campaign.title, campaign.issuer))
    return awarded


def _record(session: AsyncSession, event: DomainEvent, now: datetime) -> None:
    record_event(session, event, now)


# -- flash sales, seen from a payment --------------------------------------------------------


async def reservation_offer(
    db: Database, reservation_id: uuid.UUID, user_id: uuid.UUID
) -> FlashOffer:
    """The unit the person reserved; another's reservation (or none) is simply not found."""
    async with db.sessions() as session:
        row = (
            await session.execute(
                select(Reservation, FlashSale)
                .join(FlashSale, FlashSale.id == Reservation.sale_id)
                .where(Reservation.id == reservation_id, Reservation.user_id == user_id)
            )
        ).first()
    if row is None:
        raise ProblemError("not-found", "Reserve the item again.")
    reservation, sale = row
    return FlashOffer(
        reservation.id,
        sale.merchant,
        sale.store,
        sale.product,
        Money(sale.price_minor, sale.currency),
    )


async def take_reservation(
    session: AsyncSession,
    *,
    reservation_id: uuid.UUID,
    user_id: uuid.UUID,
    payment_ref: str,
    now: datetime,
) -> None:
    """The reserved unit is paid for: it leaves the hold for good (or the payment fails)."""
    taken = await session.execute(
        update(Reservation)
        .where(
            Reservation.id == reservation_id,
            Reservation.user_id == user_id,
            Reservation.status == "held",
            Reservation.expires_at > now,
        )
        .values(status="paid", payment_ref=payment_ref)
    )
    if not taken.rowcount:  # type: ignore[attr-defined]
        raise ProblemError("reservation-expired", "Reserve the item again.")


class _SoldOut(Exception):  # noqa: N818 - internal signal
    def __init__(self, until: datetime | None) -> None:
        super().__init__("sold out")
        self.until = until


class _LimitReached(Exception):  # noqa: N818 - internal signal
    pass


_NEVER = datetime.max.replace(tzinfo=UTC)
# With a shared (Redis) gate, a process answers "sold out" from memory for this long at most.
SHARED_SOLD_OUT_HINT = timedelta(milliseconds=250)
SHARED_NEXT_RETURN_CHECK = timedelta(seconds=1)

# The flash-sale statements, built once (a popular sale runs them thousands of times).
_SALE_TAKEN = select(FlashSale.taken).where(FlashSale.id == bindparam("sale"))
_SALE_HOLDERS = (
    select(Reservation.user_id, func.count())
    .where(Reservation.sale_id == bindparam("sale"), Reservation.status.in_(("held", "paid")))
    .group_by(Reservation.user_id)
)
_NEXT_RETURN = select(func.min(Reservation.expires_at)).where(
    Reservation.sale_id == bindparam("sale"), Reservation.status == "held"
)
_TAKE_UNIT = (
    update(FlashSale)
    .where(FlashSale.id == bindparam("sale"), FlashSale.taken < FlashSale.stock)
    .values(taken=FlashSale.taken + 1)
)
_HOLDS_OF = (
    select(func.count())
    .select_from(Reservation)
    .where(
        Reservation.sale_id == bindparam("sale"),
        Reservation.user_id == bindparam("user"),
        Reservation.status.in_(("held", "paid")),
    )
)
_INSERT_RESERVATION = insert(Reservation)


class CouponService:
    """Campaigns, claims, baskets and flash sales over one database and clock."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        writer: asyncio.Lock | None = None,
        gate: StockGate | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        # On SQLite (one writer) our writers queue here instead of sleeping in SQLite's busy
        # handler; the pay context shares the same lock.
        self._writer = writer if writer is not None or not db.is_sqlite else asyncio.Lock()
        self.gate: StockGate = gate or MemoryGate()
        self._sold_out_until: dict[uuid.UUID, datetime] = {}
        self._next_returns: dict[uuid.UUID, datetime] = {}
        self._expiring: dict[uuid.UUID, asyncio.Lock] = {}
        self._sales: dict[uuid.UUID, FlashSale] = {}

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncSession]:
        if self._writer is None:
            async with self.db.transaction() as session:
                yield session
            return
        async with self._writer, self.db.transaction() as session:
            yield session

    # -- campaigns ----------------------------------------------------------------------------

    async def create_campaign(
        self,
        *,
        issuer: str,
        title: str,
        kind: str,
        currency: str,
        starts_at: datetime,
        ends_at: datetime,
        total_stock: int,
        per_user_limit: int = 1,
        value_minor: int = 0,
        percent: int = 0,
        cap_minor: int = 0,
        min_spend_minor: int = 0,
        tiers: list[list[int]] | None = None,
        gift: str = "",
        merchants: list[str] | None = None,
        stores: list[str] | None = None,
        return_on_refund: bool = True,
        products: list[str] | None = None,
    ) -> CampaignView:
        tiers = sorted([int(t), int(o)] for t, o in (tiers or []))
        problems = [
            kind not in KINDS,
            ends_at <= starts_at,
            total_stock <= 0,
            per_user_limit <= 0,
            kind == "cash_off" and value_minor <= 0,
            kind == "percent_off" and not 0 < percent < 100,
            kind == "threshold" and (not tiers or any(o <= 0 or o > t for t, o in tiers)),
            kind == "gift" and not gift,
            min(value_minor, cap_minor, min_spend_minor) < 0,
            len(products or []) > MAX_PRODUCTS,
            any(not 0 < len(code) <= PRODUCT_CODE_MAX for code in products or []),
        ]
        if any(problems):
            raise ProblemError("campaign-invalid", "Check the kind, value, window and stock.")
        merchants = sorted({issuer, *(merchants or [])})
        campaign = Campaign(
            id=new_id(),
            issuer=issuer,
            title=title,
            kind=kind,
            currency=currency,
            value_minor=value_minor,
            percent=percent,
            cap_minor=cap_minor,
            min_spend_minor=min_spend_minor,
            tiers=tiers,
            gift=gift,
            merchants=merchants,
            stores=list(stores or []),
            products=sorted(set(products or [])),
            starts_at=starts_at,
            ends_at=ends_at,
            total_stock=total_stock,
            claimed=0,
            per_user_limit=per_user_limit,
            return_on_refund=return_on_refund,
            claim_code=secrets.token_urlsafe(12),
            created_at=self.clock.now(),
        )
        async with self._tx() as session:
            session.add(campaign)
        return _view(campaign)

    async def campaign(self, campaign_id: uuid.UUID) -> CampaignView:
        async with self.db.sessions() as session:
            campaign = await session.get(Campaign, campaign_id)
        if campaign is None:
            raise ProblemError("campaign-not-found", "Check the campaign id.")
        return _view(campaign)

    async def campaigns_of(self, issuer: str) -> list[CampaignView]:
        async with self.db.sessions() as session:
            rows = await session.scalars(
                select(Campaign).where(Campaign.issuer == issuer).order_by(Campaign.created_at)
            )
            return [_view(row) for row in rows]

    async def claim(
        self,
        user_id: uuid.UUID,
        *,
        campaign_id: uuid.UUID | None = None,
        claim_code: str | None = None,
        source: str = "api",
    ) -> CouponView:
        """Take one coupon from the campaign's stock, within the per-user limit."""
        now = self.clock.now()
        async with self._tx() as session:
            query = select(Campaign)
            query = (
                query.where(Campaign.id == campaign_id)
                if campaign_id
                else query.where(Campaign.claim_code == (claim_code or ""))
            )
            campaign = await session.scalar(query)
            if campaign is None:
                raise ProblemError("campaign-not-found", "Check the campaign or its QR code.")
            if not _in_window(campaign, now):
                raise ProblemError("campaign-not-open", "Coupons can be claimed while it runs.")
            taken = await session.execute(
                update(Campaign)
                .where(Campaign.id == campaign.id, Campaign.claimed < Campaign.total_stock)
                .values(claimed=Campaign.claimed + 1)
            )
            if not taken.rowcount:  # type: ignore[attr-defined]
                raise ProblemError("coupon-out-of-stock", "All coupons of this campaign are gone.")
            held = await session.scalar(
                select(func.count())
                .select_from(Coupon)
                .where(Coupon.campaign_id == campaign.id, Coupon.user_id == user_id)
            )
            if int(held or 0) >= campaign.per_user_limit:
                raise ProblemError("coupon-limit-reached", "Use the ones you have first.")
            coupon = Coupon(
                id=new_id(),
                campaign_id=campaign.id,
                user_id=user_id,
                status="available",
                source=source,
                claimed_at=now,
            )
            session.add(coupon)
            _record(
                session,
                events.CouponClaimed(
                    coupon_id=coupon.id, campaign_id=campaign.id, user_id=user_id, source=source
                ),
                now,
            )
        await_refresh = await self.campaign(campaign.id)
        return CouponView(coupon.id, await_refresh, coupon.status, coupon.claimed_at, None)

    # -- coupons awarded on payment -------------------------------------------------------------

    async def create_award(
        self, merchant: str, campaign_id: uuid.UUID, min_spend_minor: int
    ) -> AwardView:
        """The merchant hands out this campaign's coupons to whoever pays it at least
        `min_spend_minor`: its own campaign, or one whose issuer named it a partner."""
        if min_spend_minor < 0:
            raise ProblemError("campaign-invalid", "The minimum spend cannot be negative.")
        async with self._tx() as session:
            campaign = await session.get(Campaign, campaign_id)
            if campaign is None:
                raise ProblemError("campaign-not-found", "Check the campaign or its QR code.")
            if merchant != campaign.issuer and merchant not in campaign.merchants:
                raise ProblemError(
                    "campaign-not-partner",
                    "Only the issuer and the partners it names can hand out its coupons.",
                )
            award = PaymentAward(
                id=new_id(),
                merchant=merchant,
                campaign_id=campaign.id,
                currency=campaign.currency,
                min_spend_minor=min_spend_minor,
                active=True,
                created_at=self.clock.now(),
            )
            session.add(award)
        return self._award_view(award, campaign)

    async def awards_of(self, merchant: str) -> list[AwardView]:
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(PaymentAward, Campaign)
                .join(Campaign, Campaign.id == PaymentAward.campaign_id)
                .where(PaymentAward.merchant == merchant)
                .order_by(PaymentAward.created_at)
            )
            return [self._award_view(award, campaign) for award, campaign in rows.all()]

    async def end_award(self, merchant: str, award_id: uuid.UUID) -> None:
        async with self._tx() as session:
            ended = await session.execute(
                update(PaymentAward)
                .where(PaymentAward.id == award_id, PaymentAward.merchant == merchant)
                .values(active=False)
            )
            if not ended.rowcount:  # type: ignore[attr-defined]
                raise ProblemError("award-not-found", "Check the award id.")

    @staticmethod
    def _award_view(award: PaymentAward, campaign: Campaign) -> AwardView:
        return AwardView(
            award.id,
            award.merchant,
            campaign.id,
            campaign.title,
            Money(award.min_spend_minor, award.currency),
            award.active,
        )

    async def wallet(self, user_id: uuid.UUID) -> list[CouponView]:
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(Coupon, Campaign)
                .join(Campaign, Campaign.id == Coupon.campaign_id)
                .where(Coupon.user_id == user_id)
                .order_by(Coupon.claimed_at.desc())
            )
            return [
                CouponView(c.id, _view(k), c.status, c.claimed_at, c.redeemed_at) for c, k in rows
            ]

    async def evaluate(
        self,
        user_id: uuid.UUID,
        merchant_id: str,
        store_id: str | None,
        amount: Money,
        items: Lines | None = None,
    ) -> Basket:
        """Offers that apply to this basket, the best one, and the nearest one to unlock."""
        now = self.clock.now()
        offers: list[Offer] = []
        nearest: Unlockable | None = None
        nearest_key: tuple[int, int] | None = None
        async with self.db.sessions() as session:
            owned = await _wallet_rows(session, user_id)
            open_campaigns = (
                await session.scalars(
                    select(Campaign).where(
                        Campaign.currency == amount.currency,
                        Campaign.starts_at <= now,
                        Campaign.ends_at > now,
                        Campaign.claimed < Campaign.total_stock,
                    )
                )
            ).all()
        candidates: list[tuple[uuid.UUID | None, Campaign]] = [(c.id, k) for c, k in owned]
        owned_campaigns = {k.id for _, k in owned}
        candidates += [(None, k) for k in open_campaigns if k.id not in owned_campaigns]
        for coupon_id, campaign in candidates:
            if not _usable(campaign, merchant_id, store_id, amount, now):
                continue
            eligible = _eligible(campaign, amount.amount_minor, items)
            off = _discount(campaign, eligible)
            if coupon_id is not None and (off > 0 or campaign.kind == "gift"):
                offers.append(
                    Offer(
                        coupon_id,
                        campaign.id,
                        campaign.title,
                        Money(off, amount.currency),
                        campaign.gift,
                    )
                )
            step = _next_step(campaign, eligible) if eligible or not campaign.products else None
            if step is not None and (nearest_key is None or (step[0], -step[1]) < nearest_key):
                nearest_key = (step[0], -step[1])
                nearest = Unlockable(
                    campaign.id,
                    campaign.title,
                    Money(step[0], amount.currency),
                    Money(step[1], amount.currency),
                )
        offers.sort(key=lambda offer: -offer.discount.amount_minor)
        best = next((offer for offer in offers if offer.discount.amount_minor > 0), None)
        return Basket(offers, best, nearest)

    # -- flash sales --------------------------------------------------------------------------

    async def create_sale(
        self,
        *,
        merchant: str,
        store: str | None,
        product: str,
        price: Money,
        stock: int,
        starts_at: datetime,
        hold_seconds: int = 300,
        per_user_limit: int = 1,
    ) -> SaleView:
        if stock <= 0 or price.amount_minor <= 0 or hold_seconds <= 0 or per_user_limit <= 0:
            raise ProblemError("campaign-invalid", "Check the price, stock and time limit.")
        sale = FlashSale(
            id=new_id(),
            merchant=merchant,
            store=store,
            product=product,
            currency=price.currency,
            price_minor=price.amount_minor,
            stock=stock,
            taken=0,
            starts_at=starts_at,
            hold_seconds=hold_seconds,
            per_user_limit=per_user_limit,
            created_at=self.clock.now(),
            details={},
        )
        async with self._tx() as session:
            session.add(sale)
        return self._sale_view(sale)

    def _sale_view(self, sale: FlashSale) -> SaleView:
        return SaleView(
            sale.id,
            sale.merchant,
            sale.product,
            Money(sale.price_minor, sale.currency),
            sale.stock,
            sale.taken,
            sale.starts_at,
            sale.hold_seconds,
            sale.per_user_limit,
        )

    async def sale(self, sale_id: uuid.UUID) -> SaleView:
        async with self.db.sessions() as session:
            sale = await session.get(FlashSale, sale_id)
        if sale is None:
            raise ProblemError("flash-sale-not-found", "Check the sale id.")
        return self._sale_view(sale)

    async def _sale_row(self, sale_id: uuid.UUID) -> FlashSale:
        sale = self._sales.get(sale_id)
        if sale is None:
            async with self.db.sessions() as session:
                sale = await session.get(FlashSale, sale_id)
            if sale is None:
                raise ProblemError("flash-sale-not-found", "Check the sale id.")
            self._sales[sale_id] = sale
        return sale

    async def reserve(self, user_id: uuid.UUID, sale_id: uuid.UUID) -> ReservationView:
        """Hold one unit for this buyer until the payment time limit; never more than stock.

        The stock gate decides first (no database work for a refusal); a unit it lets through
        is then taken in the database by a conditional update, which stays the guarantee."""
        now = self.clock.now()
        sale = await self._sale_row(sale_id)
        if now < sale.starts_at:
            raise ProblemError("flash-sale-not-started", "Come back when the sale starts.")
        decision = await self._decide(sale, user_id, now)
        if decision == "limit":
            raise ProblemError("flash-sale-limit-reached", "Pay for the one you reserved.")
        if decision != "ok":
            raise ProblemError("flash-sale-sold-out", "Every unit is reserved or sold.")
        expires_at = now + timedelta(seconds=sale.hold_seconds)
        try:
            reservation_id = await self._hold(sale, user_id, expires_at)
        except _SoldOut:
            # The gate let through a unit the database does not have: keep it consumed.
            await self.gate.give_back(sale_id, [user_id], units=False)
            raise ProblemError("flash-sale-sold-out", "Every unit is reserved or sold.") from None
        except _LimitReached:
            await self.gate.give_back(sale_id, [user_id], holds=False)
            raise ProblemError(
                "flash-sale-limit-reached", "Pay for the one you reserved."
            ) from None
        except BaseException:
            await self.gate.give_back(sale_id, [user_id])
            raise
        known = self._next_returns.get(sale_id)
        if known is not None and expires_at < known:
            self._next_returns[sale_id] = expires_at
        return ReservationView(
            reservation_id, sale_id, "held", expires_at, Money(sale.price_minor, sale.currency)
        )

    async def _decide(self, sale: FlashSale, user_id: uuid.UUID, now: datetime) -> Decision:
        hint = self._sold_out_until.get(sale.id)
        if hint is not None and now < hint:
            return "sold-out"
        decision = await self.gate.take(sale.id, user_id, sale.per_user_limit)
        if decision == "unloaded":
            await self._load_gate(sale, replace=False)
            decision = await self.gate.take(sale.id, user_id, sale.per_user_limit)
        if decision in ("sold-out", "limit"):
            next_return = await self._next_return(sale.id, now)
            if next_return <= now:
                # Ours or a racing caller's sweep may have returned a unit: ask again.
                await self._expire(sale.id, now)
                decision = await self.gate.take(sale.id, user_id, sale.per_user_limit)
            elif decision == "sold-out" and self.gate.shared:
                # Other processes may return units only when holds expire (or, rarely, when a
                # database write fails): ask Redis again at that time, or after a moment.
                self._sold_out_until[sale.id] = min(next_return, now + SHARED_SOLD_OUT_HINT)
        return decision

    async def _load_gate(self, sale: FlashSale, *, replace: bool) -> None:
        """The gate's view of a sale, read from the database (the truth)."""
        async with self.db.sessions() as session:
            taken = await session.scalar(_SALE_TAKEN, {"sale": sale.id})
            holders = (await session.execute(_SALE_HOLDERS, {"sale": sale.id})).all()
        left = sale.stock - int(taken or 0)
        await self.gate.load(
            sale.id, left, {user: int(count) for user, count in holders}, replace=replace
        )

    async def rebuild_gates(self) -> None:
        """At start: every sale with units not yet paid gets its gate from the database."""
        async with self.db.sessions() as session:
            sales = (await session.scalars(select(FlashSale))).all()
            paid = dict(
                (
                    await session.execute(
                        select(Reservation.sale_id, func.count())
                        .where(Reservation.status == "paid")
                        .group_by(Reservation.sale_id)
                    )
                ).all()
            )
        for sale in sales:
            if int(paid.get(sale.id, 0)) < sale.stock:
                await self._load_gate(sale, replace=True)

    async def _next_return(self, sale_id: uuid.UUID, now: datetime) -> datetime:
        """When the first held unit of the sale runs out (holds all last as long, so a newer
        hold never runs out earlier); `datetime.max` when none is held."""
        known = self._next_returns.get(sale_id)
        if known is None:
            async with self.db.sessions() as session:
                found = await session.scalar(_NEXT_RETURN, {"sale": sale_id})
            known = self._next_returns[sale_id] = self._or_never(found, now)
        return known

    def _or_never(self, found: datetime | None, now: datetime) -> datetime:
        """No unit held: none can return, unless another process holds one we do not know
        of (shared gate): then look again in a second."""
        if found is not None:
            return found
        return now + SHARED_NEXT_RETURN_CHECK if self.gate.shared else _NEVER

    async def _expire(self, sale_id: uuid.UUID, now: datetime) -> int:
        """Holds past their time limit end; each unit returns to stock and to the gate once
        (the conditional update hands each row to one caller only, whichever process)."""
        lock = self._expiring.setdefault(sale_id, asyncio.Lock())
        async with lock:
            known = self._next_returns.get(sale_id)
            if known is not None and known > now:
                return 0  # a caller before us swept (in this process)
            async with self._tx() as session:
                users = list(
                    (
                        await session.scalars(
                            update(Reservation)
                            .where(
                                Reservation.sale_id == sale_id,
                                Reservation.status == "held",
                                Reservation.expires_at <= now,
                            )
                            .values(status="expired")
                            .returning(Reservation.user_id)
                        )
                    ).all()
                )
                if users:
                    await session.execute(
                        update(FlashSale)
                        .where(FlashSale.id == sale_id)
                        .values(taken=FlashSale.taken - len(users))
                    )
                found = await session.scalar(_NEXT_RETURN, {"sale": sale_id})
            self._next_returns[sale_id] = self._or_never(found, now)
            self._sold_out_until.pop(sale_id, None)
            await self.gate.give_back(sale_id, users)
        return len(users)

    async def _hold(self, sale: FlashSale, user_id: uuid.UUID, expires_at: datetime) -> uuid.UUID:
        """The database's side of a unit the gate let through (prebuilt statements)."""
        reservation_id = new_id()
        async with self._tx() as session:
            taken = await session.execute(_TAKE_UNIT, {"sale": sale.id})
            if not taken.rowcount:  # type: ignore[attr-defined]
                raise _SoldOut(None)
            mine = await session.scalar(_HOLDS_OF, {"sale": sale.id, "user": user_id})
            if int(mine or 0) >= sale.per_user_limit:
                raise _LimitReached
            await session.execute(
                _INSERT_RESERVATION,
                {
                    "id": reservation_id,
                    "sale_id": sale.id,
                    "user_id": user_id,
                    "status": "held",
                    "expires_at": expires_at,
                },
            )
        return reservation_id

    async def reservation(self, user_id: uuid.UUID, reservation_id: uuid.UUID) -> ReservationView:
        async with self.db.sessions() as session:
            row = (
                await session.execute(
                    select(Reservation, FlashSale)
                    .join(FlashSale, FlashSale.id == Reservation.sale_id)
                    .where(Reservation.id == reservation_id, Reservation.user_id == user_id)
                )
            ).first()
        if row is None:
            raise ProblemError("not-found", "Reserve the item again.")
        reservation, sale = row
        status = reservation.status
        if status == "held" and reservation.expires_at <= self.clock.now():
            status = "expired"
        return ReservationView(
            reservation.id,
            sale.id,
            status,
            reservation.expires_at,
            Money(sale.price_minor, sale.currency),
        )

    async def sold(self, sale_id: uuid.UUID) -> int:
        async with self.db.sessions() as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(Reservation)
                    .where(Reservation.sale_id == sale_id, Reservation.status == "paid")
                )
                or 0
            )
