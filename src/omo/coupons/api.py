"""Coupon routes under /api/v1/coupons. Thin: parse, call the service, serialise."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request

from omo.core.access import Access, access
from omo.core.auth import CurrentPrincipal, Principal
from omo.coupons.gate import MemoryGate, RedisGate, StockGate
from omo.coupons.schemas import (
    AwardOut,
    AwardRequest,
    BasketOut,
    BasketRequest,
    CampaignOut,
    CampaignRequest,
    ClaimRequest,
    CouponOut,
    OfferOut,
    ReservationOut,
    SaleOut,
    SaleRequest,
    UnlockableOut,
)
from omo.coupons.service import (
    AwardView,
    CampaignView,
    CouponService,
    CouponView,
    Offer,
    ReservationView,
    SaleView,
)
from omo.pay.deps import Owner
from omo.pay.schemas import MoneyOut
from omo.pay.service import PayService, parse_basket, parse_money

router = APIRouter(prefix="/api/v1/coupons", tags=["coupons"])

# Creating a campaign or a sale names the merchant in the body; the service checks membership.
PERSON = access(Access.PERSON)
MERCHANT_OWNER = access(Access.BRAND_MEMBER, resource="pay.merchant", roles=("owner",))


async def coupon_service(request: Request) -> CouponService:
    service: CouponService = request.app.state.coupons
    return service


Coupons = Annotated[CouponService, Depends(coupon_service)]


async def start(app: FastAPI) -> None:
    pay: PayService = app.state.pay
    settings = app.state.settings
    # Several `omo serve` processes share Redis; one process alone keeps the gate in memory.
    gate: StockGate = (
        RedisGate(settings.redis_url, settings.redis_prefix) if settings.redis_url else MemoryGate()
    )
    service = CouponService(app.state.db, app.state.clock, writer=pay.writer, gate=gate)
    await service.rebuild_gates()
    app.state.coupons = service


async def stop(app: FastAPI) -> None:
    await app.state.coupons.gate.close()


async def _member(request: Request, principal: Principal, merchant_id: uuid.UUID) -> None:
    pay: PayService = request.app.state.pay
    await pay.merchant(principal.user_id, merchant_id)


def _campaign(view: CampaignView) -> CampaignOut:
    return CampaignOut(
        id=view.id,
        issuer=view.issuer,
        title=view.title,
        kind=view.kind,
        currency=view.currency,
        starts_at=view.starts_at,
        ends_at=view.ends_at,
        total_stock=view.total_stock,
        claimed=view.claimed,
        per_user_limit=view.per_user_limit,
        claim_code=view.claim_code,
        gift=view.gift,
        products=view.products,
    )


def _coupon(view: CouponView) -> CouponOut:
    return CouponOut(
        id=view.id,
        status=view.status,
        campaign=_campaign(view.campaign),
        claimed_at=view.claimed_at,
        redeemed_at=view.redeemed_at,
    )


def _offer(offer: Offer) -> OfferOut:
    return OfferOut(
        coupon_id=offer.coupon_id,
        campaign_id=offer.campaign_id,
        title=offer.title,
        discount=MoneyOut.of(offer.discount),
        gift=offer.gift,
    )


def _reservation(view: ReservationView) -> ReservationOut:
    return ReservationOut(
        id=view.id,
        sale_id=view.sale_id,
        status=view.status,
        expires_at=view.expires_at,
        price=MoneyOut.of(view.price),
    )


@router.post("/campaigns", response_model=CampaignOut, status_code=201, openapi_extra=PERSON)
async def create_campaign(
    body: CampaignRequest, request: Request, principal: CurrentPrincipal, service: Coupons
) -> CampaignOut:
    await _member(request, principal, body.issuer)

    def minor(amount: str) -> int:
        return parse_money(amount, body.currency).amount_minor

    view = await service.create_campaign(
        issuer=str(body.issuer),
        title=body.title,
        kind=body.kind,
        currency=body.currency,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        total_stock=body.total_stock,
        per_user_limit=body.per_user_limit,
        value_minor=minor(body.value),
        percent=body.percent,
        cap_minor=minor(body.cap),
        min_spend_minor=minor(body.min_spend),
        tiers=[[minor(tier.spend), minor(tier.off)] for tier in body.tiers],
        gift=body.gift,
        merchants=[str(m) for m in body.merchants],
        stores=[str(s) for s in body.stores],
        return_on_refund=body.return_on_refund,
        products=body.products,
    )
    return _campaign(view)


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut, openapi_extra=PERSON)
async def campaign(
    campaign_id: uuid.UUID, principal: CurrentPrincipal, service: Coupons
) -> CampaignOut:
    return _campaign(await service.campaign(campaign_id))


@router.post("/claims", response_model=CouponOut, status_code=201, openapi_extra=PERSON)
async def claim(body: ClaimRequest, principal: CurrentPrincipal, service: Coupons) -> CouponOut:
    view = await service.claim(
        principal.user_id,
        campaign_id=body.campaign_id,
        claim_code=body.claim_code,
        source=body.source,
    )
    return _coupon(view)


@router.get("/wallet", response_model=list[CouponOut], openapi_extra=PERSON)
async def wallet(principal: CurrentPrincipal, service: Coupons) -> list[CouponOut]:
    return [_coupon(view) for view in await service.wallet(principal.user_id)]


@router.post("/baskets", response_model=BasketOut, openapi_extra=PERSON)
async def evaluate(body: BasketRequest, principal: CurrentPrincipal, service: Coupons) -> BasketOut:
    basket = await service.evaluate(
        principal.user_id,
        str(body.merchant_id),
        str(body.store_id) if body.store_id else None,
        parse_money(body.amount, body.currency),
        parse_basket(body.items, body.currency),
    )
    nearest = (
        UnlockableOut(
            campaign_id=basket.nearest.campaign_id,
            title=basket.nearest.title,
            spend_more=MoneyOut.of(basket.nearest.spend_more),
            discount=MoneyOut.of(basket.nearest.discount),
        )
        if basket.nearest
        else None
    )
    return BasketOut(
        offers=[_offer(offer) for offer in basket.offers],
        best=_offer(basket.best) if basket.best else None,
        nearest=nearest,
    )


@router.post("/flash-sales", response_model=SaleOut, status_code=201, openapi_extra=PERSON)
async def create_sale(
    body: SaleRequest, request: Request, principal: CurrentPrincipal, service: Coupons
) -> SaleOut:
    await _member(request, principal, body.merchant_id)
    view = await service.create_sale(
        merchant=str(body.merchant_id),
        store=str(body.store_id) if body.store_id else None,
        product=body.product,
        price=parse_money(body.price, body.currency),
        stock=body.stock,
        starts_at=body.starts_at,
        hold_seconds=body.hold_seconds,
        per_user_limit=body.per_user_limit,
    )
    return _sale(view.id, await service.sale(view.id))


def _sale(sale_id: uuid.UUID, view: SaleView) -> SaleOut:
    return SaleOut(
        id=sale_id,
        merchant=view.merchant,
        product=view.product,
        price=MoneyOut.of(view.price),
        stock=view.stock,
        taken=view.taken,
        starts_at=view.starts_at,
        hold_seconds=view.hold_seconds,
        per_user_limit=view.per_user_limit,
    )


@router.get("/flash-sales/{sale_id}", response_model=SaleOut, openapi_extra=PERSON)
async def sale(sale_id: uuid.UUID, principal: CurrentPrincipal, service: Coupons) -> SaleOut:
    return _sale(sale_id, await service.sale(sale_id))


@router.post(
    "/flash-sales/{sale_id}/reservations",
    response_model=ReservationOut,
    status_code=201,
    openapi_extra=PERSON,
)
async def reserve(
    sale_id: uuid.UUID, principal: CurrentPrincipal, service: Coupons
) -> ReservationOut:
    return _reservation(await service.reserve(principal.user_id, sale_id))


@router.get(
    "/reservations/{reservation_id}",
    response_model=ReservationOut,
    openapi_extra=access(Access.OWNER, resource="coupons.reservation"),
)
async def reservation(
    reservation_id: uuid.UUID, principal: CurrentPrincipal, service: Coupons
) -> ReservationOut:
    return _reservation(await service.reservation(principal.user_id, reservation_id))


# -- coupons awarded on payment -------------------------------------------------------------


def _award(view: AwardView) -> AwardOut:
    return AwardOut(
        id=view.id,
        merchant_id=view.merchant,
        campaign_id=view.campaign_id,
        campaign_title=view.campaign_title,
        min_spend=MoneyOut.of(view.min_spend),
        active=view.active,
    )


@router.post(
    "/merchants/{merchant_id}/payment-awards",
    response_model=AwardOut,
    status_code=201,
    openapi_extra=MERCHANT_OWNER,
)
async def create_award(merchant_id: Owner, body: AwardRequest, service: Coupons) -> AwardOut:
    """Hand out a campaign's coupons to whoever pays this merchant at least `min_spend`."""
    campaign = await service.campaign(body.campaign_id)
    minimum = parse_money(body.min_spend, campaign.currency).amount_minor
    return _award(await service.create_award(str(merchant_id), body.campaign_id, minimum))


@router.get(
    "/merchants/{merchant_id}/payment-awards",
    response_model=list[AwardOut],
    openapi_extra=MERCHANT_OWNER,
)
async def awards(merchant_id: Owner, service: Coupons) -> list[AwardOut]:
    return [_award(view) for view in await service.awards_of(str(merchant_id))]


@router.delete(
    "/merchants/{merchant_id}/payment-awards/{award_id}",
    status_code=204,
    openapi_extra=access(Access.BRAND_MEMBER, resource="coupons.award", roles=("owner",)),
)
async def end_award(merchant_id: Owner, award_id: uuid.UUID, service: Coupons) -> None:
    await service.end_award(str(merchant_id), award_id)
