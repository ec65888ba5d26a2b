"""Mini program routes: registration and versions for brand members, launch checks for
people, and the developer API a mini program's own backend calls with its appid and secret
(HTTP Basic). Thin: parse, call the service, serialise."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import uuid
from typing import Annotated, Any
from urllib.parse import quote

import segno
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from omo.accounts.service import MANAGERS
from omo.core.access import Access, access
from omo.core.auth import CurrentPrincipal
from omo.core.errors import PROBLEM_RESPONSES, ProblemError
from omo.core.money import Money
from omo.core.ratelimit import Limit, RateLimiter
from omo.miniapps import pages
from omo.miniapps.backend import BackendService
from omo.miniapps.bridge import BridgeService
from omo.miniapps.checkout import CheckoutService
from omo.miniapps.package import MAX_PACKAGE_BYTES
from omo.miniapps.scanner import MAX_IMAGE_BYTES, decode_image
from omo.miniapps.schemas import (
    AppOut,
    AppRequest,
    BackendRequest,
    BackendResponseOut,
    BestOfferOut,
    CodeOut,
    ConsentOut,
    CreatedAppOut,
    DecodedOut,
    DevBasketOut,
    DevBasketRequest,
    GrantRequest,
    LaunchOut,
    LoginCodeOut,
    MoneyOut,
    NextOfferOut,
    OrderOut,
    OrderRequest,
    OriginsOut,
    OriginsRequest,
    PaymentRequest,
    PermissionOut,
    PrefixOut,
    PrefixRequest,
    ProfileOut,
    RefundRequest,
    ResolvedOut,
    ScanOut,
    SecretOut,
    SessionOut,
    SessionRequest,
    StorageRequest,
    StorageUsageOut,
    StorageValueOut,
    TesterRequest,
    TestersOut,
    VersionOut,
)
from omo.miniapps.service import (
    LOGIN_CODE_TTL,
    SCENE_MAX,
    STORAGE_QUOTA_BYTES,
    AppView,
    ConsentView,
    Launch,
    MiniAppService,
    OrderView,
    PrefixView,
    VersionView,
)
from omo.pay.service import parse_money

router: APIRouter = APIRouter()
api = APIRouter(prefix="/api/v1/miniapps", tags=["mini programs"], responses=PROBLEM_RESPONSES)
dev = APIRouter(
    prefix="/api/v1/miniapps/dev/{appid}",
    tags=["mini programs: developer API"],
    responses=PROBLEM_RESPONSES,
)

compat = APIRouter(tags=["mini programs: developer API (WeChat-compatible)"])

PERSON = access(Access.PERSON)
ORG_MEMBER = access(
    Access.BRAND_MEMBER, resource="accounts.organisation", roles=("owner", "admin", "agent")
)
ORG_MANAGER = access(Access.BRAND_MEMBER, resource="accounts.organisation", roles=MANAGERS)
APP_MEMBER = access(Access.BRAND_MEMBER, resource="miniapps.app", roles=("owner", "admin", "agent"))
APP_MANAGER = access(Access.BRAND_MEMBER, resource="miniapps.app", roles=MANAGERS)
DEVELOPER = access(Access.MINIAPP, resource="miniapps.appid")
ZIP_BODY = {
    "requestBody": {
        "required": True,
        # The zip's bytes as the body (any content type; `application/zip` is customary).
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
# The camera sends about three frames a second while it looks; a person's scans stay far
# below these, a script's do not.
DECODES_PER_MINUTE = Limit("miniapps-decode", 240, 60)
REQUESTS_PER_MINUTE = Limit("miniapps-request", 300, 60)
PNG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "The QR code as a PNG image"}
}


def miniapp_service(request: Request) -> MiniAppService:
    service: MiniAppService = request.app.state.miniapps
    return service


MiniApps = Annotated[MiniAppService, Depends(miniapp_service)]


async def start(app: FastAPI) -> None:
    settings = app.state.settings
    app.state.miniapps = MiniAppService(
        app.state.db,
        app.state.clock,
        app.state.identity,
        app.state.accounts,
        public_url=settings.public_url,
        allow_private_destinations=settings.webhooks_to_private_networks,
        pay=getattr(app.state, "pay", None),
    )
    app.state.miniapps_bridge = BridgeService(
        app.state.miniapps, getattr(app.state, "coupons", None)
    )
    app.state.miniapp_backend = BackendService(
        app.state.db,
        app.state.clock,
        app.state.miniapps,
        allow_private_destinations=settings.webhooks_to_private_networks,
    )


async def _developer(appid: str, request: Request, service: MiniApps) -> uuid.UUID:
    """The mini program whose appid is in the path, proven by HTTP Basic appid:secret."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise ProblemError(
            "unauthenticated", "Send the appid and secret with HTTP Basic authentication."
        )
    try:
        user, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise ProblemError("miniapps-bad-credentials", "Check the appid and secret.") from None
    app_id = await service.authenticate(user, secret)
    if user != appid:
        raise ProblemError("not-found", "No such mini program.")
    return app_id


Developer = Annotated[uuid.UUID, Depends(_developer)]


# Access checks as dependencies: strangers get 404 before the body is even validated.


async def _app_member(
    app_id: uuid.UUID, principal: CurrentPrincipal, service: MiniApps
) -> uuid.UUID:
    await service.app(principal.user_id, app_id)
    return app_id


async def _app_manager(
    app_id: uuid.UUID, principal: CurrentPrincipal, service: MiniApps
) -> uuid.UUID:
    await service.require_manager(principal.user_id, app_id)
    return app_id


async def _org_manager(
    organisation_id: uuid.UUID, principal: CurrentPrincipal, service: MiniApps
) -> uuid.UUID:
    await service.accounts.require_member(principal.user_id, organisation_id, MANAGERS)
    return organisation_id


AppMember = Annotated[uuid.UUID, Depends(_app_member)]
AppManager = Annotated[uuid.UUID, Depends(_app_manager)]
OrgManager = Annotated[uuid.UUID, Depends(_org_manager)]


async def _read_zip(request: Request) -> bytes:
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > MAX_PACKAGE_BYTES:
            raise ProblemError(
                "miniapps-package-too-large",
                "A package may hold at most 1 MiB, packed or unpacked.",
            )
    return bytes(data)


def _app(view: AppView) -> AppOut:
    return AppOut(
        id=view.id,
        organisation_id=view.organisation_id,
        appid=view.appid,
        name=view.name,
        released_version=view.released_version,
        created_at=view.created_at,
    )


def _version(view: VersionView) -> VersionOut:
    return VersionOut(
        id=view.id,
        code=view.code,
        name=view.name,
        state=view.state,
        packed_size=view.packed_size,
        unpacked_size=view.unpacked_size,
        sha256=view.sha256,
        pages=view.pages,
        permissions=[PermissionOut(**p) for p in view.permissions],
        uploaded_at=view.uploaded_at,
        released_at=view.released_at,
    )


def _launch(view: Launch) -> LaunchOut:
    return LaunchOut(
        appid=view.appid,
        name=view.name,
        version=view.version_name,
        trial=view.trial,
        page=view.page,
        pages=view.pages,
        permissions=[PermissionOut(**p) for p in view.permissions],
        window=view.window,
        verified=view.verified,
    )


def _prefix(view: PrefixView) -> PrefixOut:
    return PrefixOut(
        id=view.id,
        prefix=view.prefix,
        page=view.page,
        verified=view.verified,
        verify_url=view.verify_url,
        token=view.token,
    )


def _code(url: str) -> CodeOut:
    svg: str = segno.make(url, error="m").svg_inline(scale=4, dark="#111", light="#fff")
    return CodeOut(url=url, svg=svg)


def _png(url: str) -> Response:
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="png", scale=6, border=4)
    return Response(buffer.getvalue(), media_type="image/png")


Page = Annotated[str, Query(max_length=200, description="Default: the entry page")]
Scene = Annotated[str, Query(max_length=SCENE_MAX)]


# -- registration (brand members) ------------------------------------------------------------


@api.post(
    "/organisations/{organisation_id}/apps",
    response_model=CreatedAppOut,
    status_code=201,
    openapi_extra=ORG_MANAGER,
)
async def register_app(
    organisation_id: OrgManager, body: AppRequest, principal: CurrentPrincipal, service: MiniApps
) -> CreatedAppOut:
    created = await service.register_app(principal.user_id, organisation_id, body.name)
    return CreatedAppOut(**_app(created.app).model_dump(), secret=created.secret)


@api.get(
    "/organisations/{organisation_id}/apps", response_model=list[AppOut], openapi_extra=ORG_MEMBER
)
async def apps_of_organisation(
    organisation_id: uuid.UUID, principal: CurrentPrincipal, service: MiniApps
) -> list[AppOut]:
    return [_app(v) for v in await service.apps_of_organisation(principal.user_id, organisation_id)]


@api.get("/apps/{app_id}", response_model=AppOut, openapi_extra=APP_MEMBER)
async def app_detail(app_id: uuid.UUID, principal: CurrentPrincipal, service: MiniApps) -> AppOut:
    return _app(await service.app(principal.user_id, app_id))


@api.post("/apps/{app_id}/secret", response_model=SecretOut, openapi_extra=APP_MANAGER)
async def reset_secret(
    app_id: uuid.UUID, principal: CurrentPrincipal, service: MiniApps
) -> SecretOut:
    secret = await service.reset_secret(principal.user_id, app_id)
    return SecretOut(appid=await service.appid_of(app_id), secret=secret)


# -- versions --------------------------------------------------------------------------------


@api.post(
    "/apps/{app_id}/versions",
    response_model=VersionOut,
    status_code=201,
    openapi_extra={**APP_MANAGER, **ZIP_BODY},
)
async def upload_version(
    app_id: uuid.UUID, request: Request, principal: CurrentPrincipal, service: MiniApps
) -> VersionOut:
    """Upload a package (the zip as the body); it is validated before it is kept."""
    await service.app(principal.user_id, app_id)  # strangers get 404 before the body is read
    data = await _read_zip(request)
    return _version(await service.upload_as_member(principal.user_id, app_id, data))


@api.get("/apps/{app_id}/versions", response_model=list[VersionOut], openapi_extra=APP_MEMBER)
async def versions(
    app_id: uuid.UUID, principal: CurrentPrincipal, service: MiniApps
) -> list[VersionOut]:
    return [_version(v) for v in await service.versions(principal.user_id, app_id)]


@api.post(
    "/apps/{app_id}/versions/{version_id}/trial",
    response_model=VersionOut,
    openapi_extra=APP_MANAGER,
)
async def start_trial(
    app_id: uuid.UUID, version_id: uuid.UUID, principal: CurrentPrincipal, service: MiniApps
) -> VersionOut:
    return _version(await service.start_trial(principal.user_id, app_id, version_id))


@api.post(
    "/apps/{app_id}/versions/{version_id}/release",
    response_model=VersionOut,
    openapi_extra=APP_MANAGER,
)
async def release(
    app_id: uuid.UUID, version_id: uuid.UUID, principal: CurrentPrincipal, service: MiniApps
) -> VersionOut:
    return _version(await service.release(principal.user_id, app_id, version_id))


@api.post("/apps/{app_id}/rollback", response_model=VersionOut, openapi_extra=APP_MANAGER)
async def rollback(app_id: uuid.UUID, principal: CurrentPrincipal, service: MiniApps) -> VersionOut:
    return _version(await service.rollback(principal.user_id, app_id))


# -- testers ---------------------------------------------------------------------------------


@api.get("/apps/{app_id}/testers", response_model=TestersOut, openapi_extra=APP_MEMBER)
async def testers(app_id: uuid.UUID, principal: CurrentPrincipal, service: MiniApps) -> TestersOut:
    return TestersOut(testers=await service.testers(principal.user_id, app_id))


@api.post("/apps/{app_id}/testers", response_model=TestersOut, openapi_extra=APP_MANAGER)
async def add_tester(
    app_id: AppManager, body: TesterRequest, principal: CurrentPrincipal, service: MiniApps
) -> TestersOut:
    return TestersOut(testers=await service.add_tester(principal.user_id, app_id, body.omo_id))


@api.delete("/apps/{app_id}/testers/{omo_id}", status_code=204, openapi_extra=APP_MANAGER)
async def remove_tester(
    app_id: uuid.UUID, omo_id: str, principal: CurrentPrincipal, service: MiniApps
) -> Response:
    await service.remove_tester(principal.user_id, app_id, omo_id)
    return Response(status_code=204)


# -- codes and link prefixes -----------------------------------------------------------------


@api.get("/apps/{app_id}/code", response_model=CodeOut, openapi_extra=APP_MEMBER)
async def code(
    app_id: AppMember,
    request: Request,
    principal: CurrentPrincipal,
    service: MiniApps,
    page: Page = "",
    scene: Scene = "",
) -> CodeOut:
    """A mini program code: a QR whose URL opens a released page with the scene."""
    base = str(request.base_url)
    return _code(await service.code_for_member(principal.user_id, app_id, page, scene, base))


@api.post(
    "/apps/{app_id}/prefixes", response_model=PrefixOut, status_code=201, openapi_extra=APP_MANAGER
)
async def add_prefix(
    app_id: AppManager, body: PrefixRequest, principal: CurrentPrincipal, service: MiniApps
) -> PrefixOut:
    return _prefix(await service.add_prefix(principal.user_id, app_id, body.prefix, body.page))


@api.get("/apps/{app_id}/prefixes", response_model=list[PrefixOut], openapi_extra=APP_MEMBER)
async def prefixes(
    app_id: uuid.UUID, principal: CurrentPrincipal, service: MiniApps
) -> list[PrefixOut]:
    return [_prefix(v) for v in await service.prefixes(principal.user_id, app_id)]


@api.post(
    "/apps/{app_id}/prefixes/{prefix_id}/verify",
    response_model=PrefixOut,
    openapi_extra=APP_MANAGER,
)
async def verify_prefix(
    app_id: uuid.UUID, prefix_id: uuid.UUID, principal: CurrentPrincipal, service: MiniApps
) -> PrefixOut:
    return _prefix(await service.verify_prefix(principal.user_id, app_id, prefix_id))


# -- people ----------------------------------------------------------------------------------


@api.get("/launch/{appid}", response_model=LaunchOut, openapi_extra=PERSON)
async def launch(
    appid: str,
    principal: CurrentPrincipal,
    service: MiniApps,
    page: Annotated[str | None, Query(max_length=200)] = None,
    trial: bool = False,
) -> LaunchOut:
    """What a scanned code opens: the released version, or the trial for its testers."""
    return _launch(await service.launch(appid, page, principal.user_id, trial=trial))


@api.get("/links", response_model=ResolvedOut, openapi_extra=PERSON)
async def resolve_link(
    principal: CurrentPrincipal,
    service: MiniApps,
    url: Annotated[str, Query(min_length=1, max_length=2048)],
) -> ResolvedOut:
    """A scanned ordinary link under a verified prefix → the mini program page to open."""
    found = await service.resolve_link(url)
    host = f"/mp/{found.appid}/{quote(found.page, safe='/')}?link={quote(found.link, safe='')}"
    return ResolvedOut(appid=found.appid, page=found.page, link=found.link, url=host)


@api.post("/launch/{appid}/login", response_model=LoginCodeOut, openapi_extra=PERSON)
async def login_code(
    appid: str, principal: CurrentPrincipal, service: MiniApps, trial: bool = False
) -> LoginCodeOut:
    """The bridge's `login`: the host asks for a one-time code and hands it to the frame."""
    code = await service.login_code(appid, principal.user_id, trial=trial)
    return LoginCodeOut(code=code, expires_in=int(LOGIN_CODE_TTL.total_seconds()))


def _consent(view: ConsentView) -> ConsentOut:
    return ConsentOut(
        appid=view.appid, name=view.name, privacy_accepted=view.privacy_accepted, grants=view.grants
    )


Permission = Annotated[str, Path(max_length=32, pattern=r"^[a-z_]+$")]
Key = Annotated[str, Path(min_length=1, max_length=128)]


@api.get("/launch/{appid}/consent", response_model=ConsentOut, openapi_extra=PERSON)
async def consent(appid: str, principal: CurrentPrincipal, service: MiniApps) -> ConsentOut:
    return _consent(await service.consent(appid, principal.user_id))


@api.post("/launch/{appid}/privacy", response_model=ConsentOut, openapi_extra=PERSON)
async def accept_privacy(
    appid: str, principal: CurrentPrincipal, service: MiniApps, trial: bool = False
) -> ConsentOut:
    """The person accepts the privacy notice (shown by the host before first use)."""
    return _consent(await service.accept_privacy(appid, principal.user_id, trial=trial))


@api.put("/launch/{appid}/grants/{permission}", response_model=ConsentOut, openapi_extra=PERSON)
async def set_grant(
    appid: str,
    permission: Permission,
    body: GrantRequest,
    principal: CurrentPrincipal,
    service: MiniApps,
    trial: bool = False,
) -> ConsentOut:
    """The person's answer to the host's prompt: allow or deny one permission."""
    view = await service.set_grant(appid, principal.user_id, permission, body.granted, trial=trial)
    return _consent(view)


@api.delete("/launch/{appid}/grants/{permission}", response_model=ConsentOut, openapi_extra=PERSON)
async def revoke_grant(
    appid: str, permission: Permission, principal: CurrentPrincipal, service: MiniApps
) -> ConsentOut:
    """Revoke (app settings): the next call asks again."""
    return _consent(await service.revoke(appid, principal.user_id, permission))


@api.get("/me/consents", response_model=list[ConsentOut], openapi_extra=PERSON)
async def my_consents(principal: CurrentPrincipal, service: MiniApps) -> list[ConsentOut]:
    return [_consent(v) for v in await service.consents_of(principal.user_id)]


@api.get("/launch/{appid}/profile", response_model=ProfileOut, openapi_extra=PERSON)
async def user_profile(appid: str, principal: CurrentPrincipal, service: MiniApps) -> ProfileOut:
    """getUserProfile: nickname and avatar, only after the person allowed `profile`."""
    found = await service.user_profile(appid, principal.user_id)
    return ProfileOut(nickname=found.nickname, avatar_url=found.avatar_url)


@api.get("/launch/{appid}/storage/{key}", response_model=StorageValueOut, openapi_extra=PERSON)
async def storage_get(
    appid: str, key: Key, principal: CurrentPrincipal, service: MiniApps
) -> StorageValueOut:
    value = await service.storage_get(appid, principal.user_id, key)
    if value is None:
        raise ProblemError("not-found", "No such key.")
    return StorageValueOut(key=key, value=value)


@api.put("/launch/{appid}/storage/{key}", response_model=StorageUsageOut, openapi_extra=PERSON)
async def storage_set(
    appid: str, key: Key, body: StorageRequest, principal: CurrentPrincipal, service: MiniApps
) -> StorageUsageOut:
    used = await service.storage_set(appid, principal.user_id, key, body.value)
    return StorageUsageOut(used=used, quota=STORAGE_QUOTA_BYTES)


@api.delete("/launch/{appid}/storage/{key}", status_code=204, openapi_extra=PERSON)
async def storage_remove(
    appid: str, key: Key, principal: CurrentPrincipal, service: MiniApps
) -> Response:
    await service.storage_remove(appid, principal.user_id, key)
    return Response(status_code=204)


def _money(money: Money | None) -> MoneyOut | None:
    if money is None:
        return None
    return MoneyOut(
        amount=str(money.to_decimal()), currency=money.currency, minor=money.amount_minor
    )


def _order(view: OrderView) -> OrderOut:
    amount = _money(view.amount)
    assert amount is not None
    return OrderOut(
        prepay_id=view.prepay_id,
        order_id=view.order_id,
        description=view.description,
        merchant_name=view.merchant_name,
        amount=amount,
        status=view.status,
        paid=_money(view.paid),
        discount=_money(view.discount),
    )


@api.get("/launch/{appid}/payments/{prepay_id}", response_model=OrderOut, openapi_extra=PERSON)
async def payment_sheet(
    appid: str, prepay_id: uuid.UUID, principal: CurrentPrincipal, service: MiniApps
) -> OrderOut:
    """What the host's payment sheet shows (an order of this mini program only)."""
    return _order(await service.order_for_payer(appid, principal.user_id, prepay_id))


@api.post("/launch/{appid}/payments/{prepay_id}", response_model=OrderOut, openapi_extra=PERSON)
async def pay(
    appid: str,
    prepay_id: uuid.UUID,
    body: PaymentRequest,
    principal: CurrentPrincipal,
    service: MiniApps,
) -> OrderOut:
    """requestPayment, confirmed with the PIN in the host's sheet."""
    sheet = await service.order_for_payer(appid, principal.user_id, prepay_id)
    expected = parse_money(body.amount, sheet.amount.currency) if body.amount else None
    view = await service.pay_order(
        appid,
        principal.user_id,
        principal.session_id,
        prepay_id,
        body.pin,
        expected,
        body.coupon_id,
    )
    return _order(view)


# -- the mini program's own server: registered origins and the bridge's `request` ----------


async def backend_service(request: Request) -> BackendService:
    service: BackendService = request.app.state.miniapp_backend
    return service


Backends = Annotated[BackendService, Depends(backend_service)]


@api.get("/apps/{app_id}/request-origins", response_model=OriginsOut, openapi_extra=APP_MEMBER)
async def request_origins(
    app_id: uuid.UUID, principal: CurrentPrincipal, backends: Backends
) -> OriginsOut:
    return OriginsOut(origins=await backends.origins_for_member(principal.user_id, app_id))


@api.put("/apps/{app_id}/request-origins", response_model=OriginsOut, openapi_extra=APP_MANAGER)
async def set_request_origins(
    app_id: AppManager, body: OriginsRequest, principal: CurrentPrincipal, backends: Backends
) -> OriginsOut:
    """The servers the mini program's `request` may reach (WeChat's "request legal
    domains"): https origins, or http on loopback when the operator allows it."""
    chosen = await backends.set_origins_as_manager(principal.user_id, app_id, body.origins)
    return OriginsOut(origins=chosen)


@api.post("/launch/{appid}/request", response_model=BackendResponseOut, openapi_extra=PERSON)
async def backend_request(
    appid: str,
    body: BackendRequest,
    request: Request,
    principal: CurrentPrincipal,
    backends: Backends,
    trial: bool = False,
) -> BackendResponseOut:
    """The bridge's `request`: the host fetches from the mini program's registered server
    (no cookies, no redirects, 10 s, 1 MiB) and hands back status, headers and data."""
    limiter: RateLimiter = request.app.state.limiter
    await limiter.hit(REQUESTS_PER_MINUTE, f"{principal.user_id}:{appid}")
    answer = await backends.request(
        appid,
        principal.user_id,
        url=body.url,
        method=body.method,
        headers=body.header,
        data=body.data,
        data_type=body.dataType,
        trial=trial,
    )
    return BackendResponseOut(statusCode=answer.status, header=answer.headers, data=answer.data)


# -- the scanner: decode a camera frame or a chosen image -----------------------------------

IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@api.post("/scanner/decode", response_model=ScanOut, openapi_extra={**PERSON, **IMAGE_BODY})
async def decode(request: Request, principal: CurrentPrincipal) -> ScanOut:
    """The codes in a camera frame or a picture (the camera stays in the host page; the
    host sends stills here). QR codes and retail barcodes (EAN-13/8, UPC-A/E), ..."""
    limiter: RateLimiter = request.app.state.limiter
    await limiter.hit(DECODES_PER_MINUTE, str(principal.user_id))
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > MAX_IMAGE_BYTES:
            raise ProblemError("miniapps-image-too-large", "Send an image of at most 2 MiB.")
    found = await asyncio.to_thread(decode_image, bytes(data))
    return ScanOut(codes=[DecodedOut(result=c.text, scanType=c.scan_type) for c in found])


# -- developer API (appid + secret) ----------------------------------------------------------


@dev.post("/orders", response_model=OrderOut, status_code=201, openapi_extra=DEVELOPER)
async def dev_create_order(app_id: Developer, body: OrderRequest, service: MiniApps) -> OrderOut:
    """Create a payment order (idempotent per order_id); give its prepay_id to the frame."""
    money = parse_money(body.amount, body.currency)
    return _order(await service.create_order(app_id, body.order_id, money, body.description))


@dev.get("/orders/{order_id}", response_model=OrderOut, openapi_extra=DEVELOPER)
async def dev_query_order(app_id: Developer, order_id: str, service: MiniApps) -> OrderOut:
    return _order(await service.query_order(app_id, order_id))


@dev.post("/orders/{order_id}/refunds", response_model=OrderOut, openapi_extra=DEVELOPER)
async def dev_refund(
    app_id: Developer, order_id: str, body: RefundRequest, service: MiniApps
) -> OrderOut:
    money = parse_money(body.amount, body.currency)
    return _order(await service.refund_order(app_id, order_id, body.refund_id, money))


@dev.post("/baskets", response_model=DevBasketOut, openapi_extra=DEVELOPER)
async def dev_basket(
    app_id: Developer, body: DevBasketRequest, request: Request, service: MiniApps
) -> DevBasketOut:
    """What the coupons engine offers one of the mini program's users for this basket at the
    organisation's shop: the best coupon they hold and the nearest threshold to unlock."""
    checkout = CheckoutService(
        service, request.app.state.identity, request.app.state.coupons, request.app.state.pay
    )
    found = await checkout.basket(app_id, body.openid, parse_money(body.amount, body.currency))
    best = (
        BestOfferOut(title=found.best.title, discount=_money_out(found.best.discount))
        if found.best
        else None
    )
    nearest = (
        NextOfferOut(
            title=found.nearest.title,
            spend_more=_money_out(found.nearest.spend_more),
            discount=_money_out(found.nearest.discount),
        )
        if found.nearest
        else None
    )
    return DevBasketOut(best=best, nearest=nearest)


def _money_out(money: Money) -> MoneyOut:
    shown = _money(money)
    assert shown is not None
    return shown


@dev.post("/sessions", response_model=SessionOut, openapi_extra=DEVELOPER)
async def dev_session(app_id: Developer, body: SessionRequest, service: MiniApps) -> SessionOut:
    """code → openid, unionid and session key (once per code, within 5 minutes)."""
    found = await service.exchange_code(app_id, body.code)
    return SessionOut(openid=found.openid, unionid=found.unionid, session_key=found.session_key)


@dev.post(
    "/versions",
    response_model=VersionOut,
    status_code=201,
    openapi_extra={**DEVELOPER, **ZIP_BODY},
)
async def dev_upload(app_id: Developer, request: Request, service: MiniApps) -> VersionOut:
    """`omo miniapp publish` posts here: validate and keep a new version (state uploaded)."""
    return _version(await service.upload(app_id, await _read_zip(request)))


@dev.get("/code", responses=PNG, response_class=Response, openapi_extra=DEVELOPER)
async def dev_code(
    app_id: Developer,
    request: Request,
    service: MiniApps,
    page: Page = "",
    scene: Scene = "",
) -> Response:
    """A mini program code as a PNG image (what the merchant prints on table 12)."""
    return _png(await service.code_for(app_id, page, scene, str(request.base_url)))


@compat.get("/sns/jscode2session", openapi_extra=access(Access.ANONYMOUS))
async def jscode2session(
    service: MiniApps,
    appid: Annotated[str, Query(max_length=64)] = "",
    secret: Annotated[str, Query(max_length=128)] = "",
    js_code: Annotated[str, Query(max_length=128)] = "",
    grant_type: Annotated[str, Query(max_length=64)] = "",
) -> JSONResponse:
    """WeChat's shape, for code ported from WeChat mini programs' servers: credentials in
    the query, errors as `errcode` in a 200 answer."""
    if grant_type != "authorization_code":
        return JSONResponse({"errcode": 40002, "errmsg": "invalid grant_type"})
    try:
        app_id = await service.authenticate(appid, secret)
    except ProblemError:
        return JSONResponse({"errcode": 40125, "errmsg": "invalid appid or appsecret"})
    try:
        found = await service.exchange_code(app_id, js_code)
    except ProblemError:
        return JSONResponse({"errcode": 40029, "errmsg": "invalid code"})
    return JSONResponse(
        {"openid": found.openid, "unionid": found.unionid, "session_key": found.session_key}
    )


router.include_router(api)
router.include_router(dev)
router.include_router(compat)
router.include_router(pages.router)

# chooseCoupon, subscriptions, recents, search, verification (they use this module's checks)
from omo.miniapps import bridge_api  # noqa: E402

router.include_router(bridge_api.router)
