"""People Nearby, Places nearby and Shake routes under /api/v1/nearby. Thin: parse, call the
service, serialise."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from omo.core.access import Access, access
from omo.core.auth import SESSION_COOKIE, CurrentPrincipal
from omo.identity.service import PublicProfile
from omo.pay.deps import Member, Owner
from omo.social.nearby.schemas import (
    AccountPlaceIn,
    AccountPlaceOut,
    BindingRequest,
    CardOut,
    GreetOut,
    GreetRequest,
    NearbyCardOut,
    NearbyPeopleOut,
    PlaceOfferOut,
    PlaceOut,
    Position,
    ShakeGreetRequest,
    ShakeOut,
    ShakeRequest,
    ShopPageOut,
    TurnOnRequest,
    VisibilityOut,
)
from omo.social.nearby.service import AccountPlaceView, NearbyConfig, NearbyService, ShopPage
from omo.social.nearby.shake import RedisMatcher
from omo.web.pages import render

router = APIRouter()  # what the app mounts: the two below
api = APIRouter(prefix="/api/v1/nearby", tags=["nearby"])
pages = APIRouter(include_in_schema=False)

PERSON = access(Access.PERSON)
MERCHANT_OWNER = access(Access.BRAND_MEMBER, resource="pay.merchant", roles=("owner",))
ACCOUNT_MANAGER = access(Access.BRAND_MEMBER, resource="accounts.account", roles=("owner", "admin"))
ACCOUNT_MEMBER = access(
    Access.BRAND_MEMBER, resource="accounts.account", roles=("owner", "admin", "agent")
)
MERCHANT_MEMBER = access(Access.BRAND_MEMBER, resource="pay.merchant", roles=("owner", "cashier"))
Beacon = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


def nearby_service(request: Request) -> NearbyService:
    service: NearbyService = request.app.state.nearby
    return service


Nearby = Annotated[NearbyService, Depends(nearby_service)]


async def _account_manager(
    account_id: uuid.UUID, principal: CurrentPrincipal, service: Nearby
) -> uuid.UUID:
    """An owner or admin of the account's brand; others get 404 before the body is read."""
    await service.managing(principal.user_id, account_id)
    return account_id


AccountManaged = Annotated[uuid.UUID, Depends(_account_manager)]


async def start(app: FastAPI) -> None:
    settings = app.state.settings
    config = NearbyConfig()
    matcher = (
        RedisMatcher(settings.redis_url, settings.redis_prefix, config.shake_window)
        if settings.redis_url
        else None
    )
    service = NearbyService(
        db=app.state.db,
        clock=app.state.clock,
        broker=app.state.broker,
        identity=app.state.identity,
        messaging=app.state.messaging,
        secret=settings.resolved_secret_key().encode(),
        limiter=app.state.limiter,
        coupons=app.state.coupons,
        pay=app.state.pay,
        accounts=getattr(app.state, "accounts", None),
        matcher=matcher,
        config=config,
    )
    app.state.nearby = service
    await service.start()


async def stop(app: FastAPI) -> None:
    await app.state.nearby.stop()


def _avatar(profile: PublicProfile) -> str | None:
    return f"/api/v1/identity/avatars/{profile.avatar_id}" if profile.avatar_id else None


@api.get("/people/visibility", response_model=VisibilityOut, openapi_extra=PERSON)
async def visibility(principal: CurrentPrincipal, service: Nearby) -> VisibilityOut:
    seen = await service.visibility(principal.user_id)
    return VisibilityOut(visible=seen.visible, visible_until=seen.visible_until)


@api.put("/people/visibility", response_model=VisibilityOut, openapi_extra=PERSON)
async def turn_on(
    body: TurnOnRequest, principal: CurrentPrincipal, service: Nearby
) -> VisibilityOut:
    duration = timedelta(minutes=body.minutes) if body.minutes else None
    seen = await service.turn_on(principal.user_id, body.latitude, body.longitude, duration)
    return VisibilityOut(visible=seen.visible, visible_until=seen.visible_until)


@api.delete("/people/visibility", status_code=204, openapi_extra=PERSON)
async def clear(principal: CurrentPrincipal, service: Nearby) -> Response:
    await service.clear(principal.user_id)
    return Response(status_code=204)


@api.post("/people/search", response_model=NearbyPeopleOut, openapi_extra=PERSON)
async def people(body: Position, principal: CurrentPrincipal, service: Nearby) -> NearbyPeopleOut:
    until, found = await service.people(principal.user_id, body.latitude, body.longitude)
    return NearbyPeopleOut(
        visible_until=until,
        people=[
            NearbyCardOut(
                handle=person.handle,
                display_name=person.profile.display_name,
                avatar_url=_avatar(person.profile),
                region=person.profile.region,
                band=person.band,  # type: ignore[arg-type]
            )
            for person in found
        ],
    )


@api.post("/people/greetings", response_model=GreetOut, openapi_extra=PERSON)
async def greet(body: GreetRequest, principal: CurrentPrincipal, service: Nearby) -> GreetOut:
    status = await service.greet(principal.user_id, body.handle)
    return GreetOut(status=status)  # type: ignore[arg-type]


@api.post("/places/search", response_model=list[PlaceOut], openapi_extra=PERSON)
async def places(body: Position, principal: CurrentPrincipal, service: Nearby) -> list[PlaceOut]:
    found = await service.places(principal.user_id, body.latitude, body.longitude)
    return [
        PlaceOut(
            kind=place.kind,  # type: ignore[arg-type]
            store_id=place.store_id,
            merchant_id=place.merchant_id,
            merchant_name=place.merchant_name,
            name=place.name,
            distance_m=place.distance_m,
            offers=[
                PlaceOfferOut(
                    campaign_id=offer.campaign_id,
                    title=offer.title,
                    kind=offer.kind,
                    ends_at=offer.ends_at,
                    left=offer.left,
                )
                for offer in place.offers
            ],
            account_id=place.account_id,
            account_name=place.account_name,
            busy=place.busy,  # type: ignore[arg-type]
        )
        for place in found
    ]


def _account_place(place: AccountPlaceView) -> AccountPlaceOut:
    return AccountPlaceOut(
        account_id=place.account_id,
        name=place.name,
        latitude=place.latitude,
        longitude=place.longitude,
    )


@api.get(
    "/accounts/{account_id}/place",
    response_model=AccountPlaceOut | None,
    openapi_extra=ACCOUNT_MEMBER,
)
async def account_place(
    account_id: uuid.UUID, principal: CurrentPrincipal, service: Nearby
) -> AccountPlaceOut | None:
    place = await service.account_place(principal.user_id, account_id)
    return _account_place(place) if place else None


@api.put(
    "/accounts/{account_id}/place", response_model=AccountPlaceOut, openapi_extra=ACCOUNT_MANAGER
)
async def set_account_place(
    account_id: AccountManaged, body: AccountPlaceIn, principal: CurrentPrincipal, service: Nearby
) -> AccountPlaceOut:
    """Where the official account is: listed in Places nearby (a brand's place is public)."""
    place = await service.set_account_place(
        principal.user_id, account_id, body.name, body.latitude, body.longitude
    )
    return _account_place(place)


@api.delete("/accounts/{account_id}/place", status_code=204, openapi_extra=ACCOUNT_MANAGER)
async def clear_account_place(
    account_id: uuid.UUID, principal: CurrentPrincipal, service: Nearby
) -> Response:
    await service.clear_account_place(principal.user_id, account_id)
    return Response(status_code=204)


def _card(profile: PublicProfile) -> CardOut:
    return CardOut(
        display_name=profile.display_name, avatar_url=_avatar(profile), region=profile.region
    )


def _page(page: ShopPage) -> ShopPageOut:
    return ShopPageOut(
        beacon=page.beacon,
        title=page.title,
        kind=page.kind,  # type: ignore[arg-type]
        target=page.target,
    )


@api.post("/shakes", response_model=ShakeOut, openapi_extra=PERSON)
async def shake(body: ShakeRequest, principal: CurrentPrincipal, service: Nearby) -> ShakeOut:
    """Waits (at most a couple of seconds) for the person who shook at the same time."""
    result = await service.shake(principal.user_id, body.latitude, body.longitude, body.beacon)
    return ShakeOut(
        outcome=result.outcome,  # type: ignore[arg-type]
        partner=_card(result.partner) if result.partner else None,
        page=_page(result.page) if result.page else None,
        greet_token=result.greet_token,
    )


@api.post("/shakes/greetings", response_model=GreetOut, openapi_extra=PERSON)
async def greet_shaken(
    body: ShakeGreetRequest, principal: CurrentPrincipal, service: Nearby
) -> GreetOut:
    """Greet the person one just shook with: a friend request (never a phone number)."""
    status = await service.greet_shaken(principal.user_id, body.token)
    return GreetOut(status=status)  # type: ignore[arg-type]


@api.get(
    "/merchants/{merchant_id}/beacons",
    response_model=list[ShopPageOut],
    openapi_extra=MERCHANT_MEMBER,
)
async def bindings(
    merchant_id: Member, principal: CurrentPrincipal, service: Nearby
) -> list[ShopPageOut]:
    return [_page(page) for page in await service.bindings(principal.user_id, merchant_id)]


@api.put(
    "/merchants/{merchant_id}/beacons/{beacon}",
    response_model=ShopPageOut,
    openapi_extra=MERCHANT_OWNER,
)
async def bind(
    merchant_id: Owner,
    beacon: Beacon,
    body: BindingRequest,
    principal: CurrentPrincipal,
    service: Nearby,
) -> ShopPageOut:
    page = await service.bind(
        principal.user_id,
        merchant_id,
        beacon,
        title=body.title,
        kind=body.kind,
        target=body.target,
    )
    return _page(page)


@api.delete(
    "/merchants/{merchant_id}/beacons/{beacon}", status_code=204, openapi_extra=MERCHANT_OWNER
)
async def unbind(
    merchant_id: Owner, beacon: Beacon, principal: CurrentPrincipal, service: Nearby
) -> Response:
    await service.unbind(principal.user_id, merchant_id, beacon)
    return Response(status_code=204)


# -- pages -----------------------------------------------------------------------------------


@pages.api_route(
    "/nearby", methods=["GET", "HEAD"], response_class=HTMLResponse, openapi_extra=PERSON
)
async def nearby_page(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    principal = await request.app.state.authenticator.authenticate(token) if token else None
    if principal is None:
        return RedirectResponse("/login?next=/nearby", status_code=303)
    if principal.locale:
        request.state.locale = principal.locale
    return render(request, "nearby.html")


router.include_router(api)
router.include_router(pages)
