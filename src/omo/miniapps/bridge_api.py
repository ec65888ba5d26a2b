"""Routes of `omo.miniapps.bridge`: chooseCoupon, requestSubscribeMessage and the person's
subscriptions, the developer's subscribed messages and coupons, the recently used list,
search, and the operator's verification. Thin: parse, call the service, serialise."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from omo.core.access import Access, access
from omo.core.auth import CurrentPrincipal
from omo.core.errors import PROBLEM_RESPONSES
from omo.miniapps.api import DEVELOPER, PERSON, Developer, _money
from omo.miniapps.bridge import AppCard, BridgeService, TemplateChoice
from omo.miniapps.schemas import (
    IssueCouponRequest,
    IssuedCouponOut,
    MiniAppCardOut,
    SubscribedMessageOut,
    SubscribedMessageRequest,
    SubscribeRequest,
    SubscriptionOut,
    TemplateOut,
    UsableCouponOut,
    VerificationRequest,
)

api = APIRouter(prefix="/api/v1/miniapps", tags=["mini programs"], responses=PROBLEM_RESPONSES)
dev = APIRouter(
    prefix="/api/v1/miniapps/dev/{appid}",
    tags=["mini programs: developer API"],
    responses=PROBLEM_RESPONSES,
)
OPERATOR = access(Access.OPERATOR, resource="miniapps.app")


def bridge_service(request: Request) -> BridgeService:
    service: BridgeService = request.app.state.miniapps_bridge
    return service


Bridge = Annotated[BridgeService, Depends(bridge_service)]
TemplateId = Annotated[str, Path(min_length=1, max_length=64)]


def _template(choice: TemplateChoice) -> TemplateOut:
    return TemplateOut(
        template_id=choice.template_id, title=choice.title, remaining=choice.remaining
    )


def _card(card: AppCard) -> MiniAppCardOut:
    return MiniAppCardOut(
        appid=card.appid,
        name=card.name,
        verified=card.verified,
        url=f"/mp/{card.appid}/{quote(card.page, safe='/')}",
        opened_at=card.opened_at,
    )


# -- the person, through the host --------------------------------------------------------------


@api.get("/launch/{appid}/coupons", response_model=list[UsableCouponOut], openapi_extra=PERSON)
async def usable_coupons(
    appid: str,
    principal: CurrentPrincipal,
    service: Bridge,
    prepay_id: uuid.UUID | None = None,
    trial: bool = False,
) -> list[UsableCouponOut]:
    """chooseCoupon: the person's coupons usable at the mini program's merchant (needs the
    `coupons` permission); with an order, what each takes off it, best first."""
    found = await service.usable_coupons(appid, principal.user_id, prepay_id, trial=trial)
    return [
        UsableCouponOut(
            coupon_id=c.coupon_id,
            campaign_id=c.campaign_id,
            title=c.title,
            discount=_money(c.discount),
            gift=c.gift,
            ends_at=c.ends_at,
        )
        for c in found
    ]


@api.get("/launch/{appid}/subscriptions", response_model=list[TemplateOut], openapi_extra=PERSON)
async def subscription_prompt(
    appid: str,
    principal: CurrentPrincipal,
    service: Bridge,
    template_id: Annotated[list[str], Query(min_length=1, max_length=3)],
    trial: bool = False,
) -> list[TemplateOut]:
    """What the host's requestSubscribeMessage prompt shows."""
    choices = await service.templates(appid, principal.user_id, template_id, trial=trial)
    return [_template(c) for c in choices]


@api.put("/launch/{appid}/subscriptions", response_model=list[TemplateOut], openapi_extra=PERSON)
async def subscribe(
    appid: str,
    body: SubscribeRequest,
    principal: CurrentPrincipal,
    service: Bridge,
    trial: bool = False,
) -> list[TemplateOut]:
    """The person's answer: N more messages of each template."""
    choices = await service.subscribe(appid, principal.user_id, body.templates, trial=trial)
    return [_template(c) for c in choices]


@api.get("/me/subscriptions", response_model=list[SubscriptionOut], openapi_extra=PERSON)
async def my_subscriptions(principal: CurrentPrincipal, service: Bridge) -> list[SubscriptionOut]:
    return [
        SubscriptionOut(
            appid=s.appid,
            name=s.name,
            template_id=s.template_id,
            title=s.title,
            remaining=s.remaining,
        )
        for s in await service.subscriptions_of(principal.user_id)
    ]


@api.delete("/me/subscriptions/{appid}/{template_id}", status_code=204, openapi_extra=PERSON)
async def unsubscribe(
    appid: str, template_id: TemplateId, principal: CurrentPrincipal, service: Bridge
) -> Response:
    """Withdraw every message of the template still allowed (app settings)."""
    await service.unsubscribe(appid, principal.user_id, template_id)
    return Response(status_code=204)


@api.get("/me/recent", response_model=list[MiniAppCardOut], openapi_extra=PERSON)
async def recent(principal: CurrentPrincipal, service: Bridge) -> list[MiniAppCardOut]:
    return [_card(c) for c in await service.recent(principal.user_id)]


@api.get("/search", response_model=list[MiniAppCardOut], openapi_extra=PERSON)
async def search(
    principal: CurrentPrincipal,
    service: Bridge,
    q: Annotated[str, Query(min_length=1, max_length=64)],
) -> list[MiniAppCardOut]:
    """Released mini programs by name."""
    return [_card(c) for c in await service.search(q)]


# -- the platform operator --------------------------------------------------------------------


@api.put("/apps/{app_id}/verification", response_model=MiniAppCardOut, openapi_extra=OPERATOR)
async def verify(
    app_id: uuid.UUID, body: VerificationRequest, principal: CurrentPrincipal, service: Bridge
) -> MiniAppCardOut:
    """Verify (or un-verify) a mini program: the host's bar shows a verified badge."""
    return _card(await service.verify(principal.user_id, app_id, body.verified))


# -- the mini program's server (appid + secret) ------------------------------------------------


@dev.post("/messages", response_model=SubscribedMessageOut, openapi_extra=DEVELOPER)
async def send_subscribed(
    app_id: Developer, body: SubscribedMessageRequest, request: Request, service: Bridge
) -> SubscribedMessageOut:
    """Send one subscribed message (a card in the person's thread with the organisation's
    official account owning the template); refused once the person's allowance is used."""
    left = await service.send_subscribed(
        app_id, body.touser, body.template_id, body.data, body.page, str(request.base_url)
    )
    return SubscribedMessageOut(remaining=left)


@dev.post("/coupons", response_model=IssuedCouponOut, status_code=201, openapi_extra=DEVELOPER)
async def issue_coupon(
    app_id: Developer, body: IssueCouponRequest, service: Bridge
) -> IssuedCouponOut:
    """Give the person (by openid) one coupon of the organisation's own campaign."""
    issued = await service.issue_coupon(app_id, body.openid, body.campaign_id)
    return IssuedCouponOut(
        coupon_id=issued.coupon_id, campaign_id=issued.campaign_id, title=issued.title
    )


router: APIRouter = APIRouter()
router.include_router(api)
router.include_router(dev)
