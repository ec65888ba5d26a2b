"""Official account routes: the native JSON API under /api/v1/accounts, the WeChat-compatible
developer API under /cgi-bin (omo.accounts.wechat) and the profile page. Thin: parse, call the
service, serialise."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import Response

from omo.accounts import pages, wechat
from omo.accounts.receipts import ReceiptWorker
from omo.accounts.schemas import (
    AccountOut,
    AccountRequest,
    AccountUpdate,
    AddFromLibraryRequest,
    AutomationOut,
    AutomationRequest,
    BrandMessageRequest,
    BroadcastRequest,
    CreatedAccountOut,
    DeliveryOut,
    FollowerOut,
    FollowersOut,
    FollowRequest,
    KindQuotaRequest,
    LibraryTemplateOut,
    LibraryTemplateRequest,
    Locale,
    ManagedAccountOut,
    MemberOut,
    MemberRemovalRequest,
    MemberRequest,
    MenuClickOut,
    MenuClickRequest,
    MenuOut,
    MenuRequest,
    MessageRequest,
    OrganisationOut,
    OrganisationRequest,
    ProfileOut,
    PublicTemplateOut,
    QrOut,
    QuotaOut,
    QuotaRequest,
    ScanRequest,
    SecretOut,
    SubscriptionOut,
    SubscriptionRequest,
    TaggingRequest,
    TagOut,
    TagRequest,
    TemplateMessageRequest,
    TemplateOut,
    TemplateRequest,
    ThreadItemOut,
    TranslationRequest,
    VerificationRequest,
    WebhookRequest,
)
from omo.accounts.service import (
    EVERYONE,
    MANAGERS,
    AccountService,
    AccountView,
    Automation,
    OrganisationView,
    ThreadItem,
)
from omo.accounts.webhook import WebhookWorker, allowed_hosts, check_url
from omo.core.access import Access, access
from omo.core.auth import CurrentPrincipal, MaybePrincipal
from omo.core.background import run_every, stop_task
from omo.core.i18n import locale_of

router = APIRouter()  # what the app mounts: the routers below
# Routes whose first segment is a word ("template-library", "operator/…"): matched before
# native's "/{account_id}".
early = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])
native = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])

PERSON = access(Access.PERSON)
ANYONE = access(Access.ANONYMOUS)
ORG_MEMBER = access(
    Access.BRAND_MEMBER, resource="accounts.organisation", roles=("owner", "admin", "agent")
)
ORG_MANAGER = access(Access.BRAND_MEMBER, resource="accounts.organisation", roles=MANAGERS)
SERVE = access(Access.BRAND_MEMBER, resource="accounts.account", roles=EVERYONE)
MANAGE = access(Access.BRAND_MEMBER, resource="accounts.account", roles=MANAGERS)
OPERATE = access(Access.OPERATOR, resource="accounts.account")
OPERATOR = access(Access.OPERATOR)
OPERATE_LIBRARY = access(Access.OPERATOR, resource="accounts.library_template")


async def account_service(request: Request) -> AccountService:
    service: AccountService = request.app.state.accounts
    return service


Accounts = Annotated[AccountService, Depends(account_service)]


async def start(app: FastAPI) -> None:
    settings = app.state.settings
    service = AccountService(
        app.state.db,
        app.state.clock,
        app.state.identity,
        app.state.broker,
        limiter=app.state.limiter,
        operators=settings.operators.split(","),
        pay=getattr(app.state, "pay", None),
        coupons=getattr(app.state, "coupons", None),
    )
    app.state.accounts = service
    await service.start()  # broadcasts' realtime push to this node's connected followers

    async def followed_accounts(user_id: uuid.UUID, locale: str) -> tuple[str, Any]:
        return "_chat_accounts.html", await service.following(user_id, locale)

    # The person's account conversations belong in their chat list, next to their chats.
    if hasattr(app.state, "chat_list_sections"):
        app.state.chat_list_sections.append(followed_accounts)
    app.state.accounts_webhooks = WebhookWorker(
        service,
        app.state.db,
        allow_private=settings.webhooks_to_private_networks,
        hosts=allowed_hosts(settings.accounts_webhook_hosts),
    )
    app.state.accounts_webhooks.start()
    app.state.accounts_receipts = ReceiptWorker(
        service, app.state.db, lambda: getattr(app.state, "pay", None)
    )
    app.state.accounts_receipts.start()

    app.state.accounts_erasures = run_every(2, service.forget_erased_people, "accounts-erasures")


async def stop(app: FastAPI) -> None:
    await stop_task(app.state.accounts_erasures)
    await app.state.accounts_receipts.stop()
    await app.state.accounts_webhooks.stop()
    await app.state.accounts.stop()


async def _serving(
    account_id: uuid.UUID, principal: CurrentPrincipal, service: Accounts
) -> uuid.UUID:
    """Any member of the account's brand; others get 404 before the body is even read."""
    await service.managed(principal.user_id, account_id)
    return account_id


async def _managing(
    account_id: uuid.UUID, principal: CurrentPrincipal, service: Accounts
) -> uuid.UUID:
    """An owner or admin of the account's brand."""
    await service.managed(principal.user_id, account_id, MANAGERS)
    return account_id


async def _org_member(
    organisation_id: uuid.UUID, principal: CurrentPrincipal, service: Accounts
) -> uuid.UUID:
    await service.require_member(principal.user_id, organisation_id)
    return organisation_id


async def _org_manager(
    organisation_id: uuid.UUID, principal: CurrentPrincipal, service: Accounts
) -> uuid.UUID:
    await service.require_member(principal.user_id, organisation_id, MANAGERS)
    return organisation_id


async def _operating(
    account_id: uuid.UUID, principal: CurrentPrincipal, service: Accounts
) -> uuid.UUID:
    """A platform operator (settings OMO_OPERATORS); anyone else is refused with 403."""
    await service.require_operator(principal.user_id)
    await service.account(account_id)
    return account_id


Serving = Annotated[uuid.UUID, Depends(_serving)]
Managing = Annotated[uuid.UUID, Depends(_managing)]
OrgMember = Annotated[uuid.UUID, Depends(_org_member)]
OrgManager = Annotated[uuid.UUID, Depends(_org_manager)]
Operating = Annotated[uuid.UUID, Depends(_operating)]


def _org(view: OrganisationView) -> OrganisationOut:
    return OrganisationOut(
        id=view.id,
        name=view.name,
        role=view.role,
        members=[MemberOut(omo_id=o, role=r) for o, r in view.members],
    )


def _account(view: AccountView) -> AccountOut:
    return AccountOut(
        id=view.id,
        organisation_id=view.organisation_id,
        kind=view.kind,
        name=view.name,
        description=view.description,
        avatar_url=view.avatar_url,
        verified=view.verified,
        followers=view.followers,
        menu=view.menu,
    )


def _managed(view: AccountView) -> ManagedAccountOut:
    return ManagedAccountOut(**_account(view).model_dump(), app_id=view.app_id)


def _item(item: ThreadItem) -> ThreadItemOut:
    return ThreadItemOut(
        id=item.id,
        direction=item.direction,  # type: ignore[arg-type]
        broadcast=item.broadcast,
        body=item.body,
        created_at=item.created_at,
    )


# -- organisations ---------------------------------------------------------------------------


@native.post(
    "/organisations", response_model=OrganisationOut, status_code=201, openapi_extra=PERSON
)
async def create_organisation(
    body: OrganisationRequest, principal: CurrentPrincipal, service: Accounts
) -> OrganisationOut:
    return _org(await service.create_organisation(principal.user_id, body.name))


@native.get(
    "/organisations/{organisation_id}", response_model=OrganisationOut, openapi_extra=ORG_MEMBER
)
async def organisation(
    organisation_id: OrgMember, principal: CurrentPrincipal, service: Accounts
) -> OrganisationOut:
    return _org(await service.organisation(principal.user_id, organisation_id))


@native.put(
    "/organisations/{organisation_id}/members",
    response_model=OrganisationOut,
    openapi_extra=ORG_MANAGER,
)
async def set_member(
    organisation_id: OrgManager, body: MemberRequest, principal: CurrentPrincipal, service: Accounts
) -> OrganisationOut:
    return _org(
        await service.set_member(principal.user_id, organisation_id, body.omo_id, body.role)
    )


@native.post(
    "/organisations/{organisation_id}/accounts",
    response_model=CreatedAccountOut,
    status_code=201,
    openapi_extra=ORG_MANAGER,
)
async def create_account(
    organisation_id: OrgManager,
    body: AccountRequest,
    principal: CurrentPrincipal,
    service: Accounts,
) -> CreatedAccountOut:
    created = await service.create_account(
        principal.user_id,
        organisation_id,
        kind=body.kind,
        name=body.name,
        description=body.description,
        avatar_url=body.avatar_url,
    )
    return CreatedAccountOut(
        **_managed(created.account).model_dump(), app_secret=created.app_secret
    )


@native.get(
    "/organisations/{organisation_id}/accounts",
    response_model=list[ManagedAccountOut],
    openapi_extra=ORG_MEMBER,
)
async def organisation_accounts(
    organisation_id: OrgMember, principal: CurrentPrincipal, service: Accounts
) -> list[ManagedAccountOut]:
    views = await service.accounts_of_organisation(principal.user_id, organisation_id)
    return [_managed(v) for v in views]


# -- the follower's side ---------------------------------------------------------------------


@native.get("/following", response_model=list[AccountOut], openapi_extra=PERSON)
async def following(
    request: Request, principal: CurrentPrincipal, service: Accounts
) -> list[AccountOut]:
    views = await service.following(principal.user_id, locale_of(request))
    return [_account(v) for v in views]


@native.get("/{account_id}", response_model=ProfileOut, openapi_extra=ANYONE)
async def profile(
    request: Request, account_id: uuid.UUID, principal: MaybePrincipal, service: Accounts
) -> ProfileOut:
    """The profile in the reader's language (the brand's variant of it, else its default)."""
    view = await service.account(account_id, locale_of(request))
    follows = bool(principal) and await service.is_following(
        principal.user_id if principal else uuid.UUID(int=0), account_id
    )
    return ProfileOut(**_account(view).model_dump(), following=follows)


@native.put("/{account_id}/follow", status_code=204, openapi_extra=PERSON)
async def follow(
    account_id: uuid.UUID, body: FollowRequest, principal: CurrentPrincipal, service: Accounts
) -> Response:
    await service.follow(principal.user_id, account_id, scene=body.scene)
    return Response(status_code=204)


@native.delete("/{account_id}/follow", status_code=204, openapi_extra=PERSON)
async def unfollow(
    account_id: uuid.UUID, principal: CurrentPrincipal, service: Accounts
) -> Response:
    await service.account(account_id)
    await service.unfollow(principal.user_id, account_id)
    return Response(status_code=204)


@native.post("/{account_id}/scans", status_code=204, openapi_extra=PERSON)
async def scan(
    account_id: uuid.UUID, body: ScanRequest, principal: CurrentPrincipal, service: Accounts
) -> Response:
    """Scanning the account's QR code: follows (with the scene) or, if following, a SCAN event."""
    await service.follow(principal.user_id, account_id, scene=body.scene, by_scan=True)
    return Response(status_code=204)


@native.get("/{account_id}/messages", response_model=list[ThreadItemOut], openapi_extra=PERSON)
async def conversation(
    account_id: uuid.UUID,
    principal: CurrentPrincipal,
    service: Accounts,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[ThreadItemOut]:
    return [_item(i) for i in await service.conversation(principal.user_id, account_id, limit)]


@native.post(
    "/{account_id}/messages",
    response_model=list[ThreadItemOut],
    status_code=201,
    openapi_extra=PERSON,
)
async def send(
    account_id: uuid.UUID, body: MessageRequest, principal: CurrentPrincipal, service: Accounts
) -> list[ThreadItemOut]:
    items = await service.user_send(principal.user_id, account_id, body.body())
    return [_item(i) for i in items]


@native.post("/{account_id}/menu-clicks", response_model=MenuClickOut, openapi_extra=PERSON)
async def menu_click(
    account_id: uuid.UUID, body: MenuClickRequest, principal: CurrentPrincipal, service: Accounts
) -> MenuClickOut:
    return MenuClickOut(open_url=await service.menu_click(principal.user_id, account_id, body.key))


# -- the brand's side --------------------------------------------------------------------------


@native.get("/manage/{account_id}", response_model=ManagedAccountOut, openapi_extra=SERVE)
async def managed_account(account_id: Serving, service: Accounts) -> ManagedAccountOut:
    return _managed(await service.account(account_id))


@native.patch("/manage/{account_id}", response_model=ManagedAccountOut, openapi_extra=MANAGE)
async def update_account(
    account_id: Managing, body: AccountUpdate, service: Accounts
) -> ManagedAccountOut:
    view = await service.update_profile(
        account_id, name=body.name, description=body.description, avatar_url=body.avatar_url
    )
    return _managed(view)


@native.post("/manage/{account_id}/secret", response_model=SecretOut, openapi_extra=MANAGE)
async def reset_secret(account_id: Managing, service: Accounts) -> SecretOut:
    view = await service.account(account_id)
    return SecretOut(app_id=view.app_id, app_secret=await service.reset_secret(account_id))


@native.get("/manage/{account_id}/followers", response_model=FollowersOut, openapi_extra=SERVE)
async def followers(
    account_id: Serving,
    service: Accounts,
    after: Annotated[str, Query(max_length=64)] = "",
    count: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> FollowersOut:
    total, openids = await service.followers(account_id, after_openid=after, count=count)
    return FollowersOut(total=total, openids=openids, next_openid=openids[-1] if openids else "")


@native.get(
    "/manage/{account_id}/followers/{openid}", response_model=FollowerOut, openapi_extra=SERVE
)
async def follower(account_id: Serving, openid: str, service: Accounts) -> FollowerOut:
    view = await service.follower(account_id, openid)
    return FollowerOut(
        openid=view.openid,
        unionid=view.unionid,
        nickname=view.nickname,
        avatar_url=f"/api/v1/identity/avatars/{view.avatar_id}" if view.avatar_id else None,
        followed_at=view.followed_at,
        scene=view.scene,
        tag_ids=view.tag_ids,
        last_interaction_at=view.last_interaction_at,
    )


@native.post(
    "/manage/{account_id}/messages",
    response_model=ThreadItemOut,
    status_code=201,
    openapi_extra=SERVE,
)
async def brand_send(
    account_id: Serving, body: BrandMessageRequest, service: Accounts
) -> ThreadItemOut:
    return _item(await service.brand_send(account_id, body.openid, body.body()))


@native.post(
    "/manage/{account_id}/broadcasts",
    response_model=ThreadItemOut,
    status_code=201,
    openapi_extra=MANAGE,
)
async def broadcast(
    account_id: Managing, body: BroadcastRequest, service: Accounts
) -> ThreadItemOut:
    return _item(await service.broadcast(account_id, body.body(), tag_id=body.tag_id))


@native.get("/manage/{account_id}/quota", response_model=QuotaOut, openapi_extra=SERVE)
async def quota(account_id: Serving, service: Accounts) -> QuotaOut:
    view = await service.quota(account_id)
    return QuotaOut(period=view.period, used=view.used, allowed=view.allowed)


@native.put("/manage/{account_id}/menu", response_model=MenuOut, openapi_extra=MANAGE)
async def set_menu(account_id: Managing, body: MenuRequest, service: Accounts) -> MenuOut:
    buttons = [b.model_dump(exclude_none=True) for b in body.button]
    return MenuOut(button=await service.set_menu(account_id, buttons))


@native.put("/manage/{account_id}/automation", response_model=AutomationOut, openapi_extra=MANAGE)
async def set_automation(
    account_id: Managing, body: AutomationRequest, service: Accounts
) -> AutomationOut:
    view = await service.set_automation(
        account_id,
        Automation(
            body.welcome,
            body.default_reply,
            [(r.match, r.keyword, r.reply) for r in body.rules],
            [{str(k): v for k, v in r.translations.items()} for r in body.rules],
        ),
    )
    return AutomationOut(
        welcome=view.welcome,
        default_reply=view.default_reply,
        rules=[
            {"match": m, "keyword": k, "reply": r, "translations": t}
            for (m, k, r), t in zip(view.rules, view.rule_translations, strict=True)
        ],
    )


@native.get("/manage/{account_id}/tags", response_model=list[TagOut], openapi_extra=SERVE)
async def tags(account_id: Serving, service: Accounts) -> list[TagOut]:
    return [TagOut(id=i, name=n, count=c) for i, n, c in await service.tags(account_id)]


@native.post(
    "/manage/{account_id}/tags", response_model=TagOut, status_code=201, openapi_extra=MANAGE
)
async def create_tag(account_id: Managing, body: TagRequest, service: Accounts) -> TagOut:
    tag_id, name = await service.create_tag(account_id, body.name)
    return TagOut(id=tag_id, name=name, count=0)


@native.post("/manage/{account_id}/tagging", status_code=204, openapi_extra=SERVE)
async def tag_followers(account_id: Serving, body: TaggingRequest, service: Accounts) -> Response:
    await service.tag_followers(account_id, body.tag_id, body.openids, remove=body.remove)
    return Response(status_code=204)


@native.get("/manage/{account_id}/qr", response_model=QrOut, openapi_extra=SERVE)
async def qr(
    account_id: Serving,
    request: Request,
    service: Accounts,
    scene: Annotated[str, Query(max_length=64)] = "",
) -> QrOut:
    base = request.app.state.settings.public_url or str(request.base_url)
    url, svg = service.qr_payload(base, await service.account(account_id), scene)
    return QrOut(url=url, svg=svg)


@native.put("/manage/{account_id}/webhook", status_code=204, openapi_extra=MANAGE)
async def set_webhook(
    request: Request, account_id: Managing, body: WebhookRequest, service: Accounts
) -> Response:
    """Point the account's events at the brand's server (a public address), after the
    echostr URL check."""
    if body.url:
        settings = request.app.state.settings
        await check_url(
            body.url,
            body.token,
            allow_private=settings.webhooks_to_private_networks,
            hosts=allowed_hosts(settings.accounts_webhook_hosts),
        )
    await service.set_webhook(account_id, body.url, body.token)
    return Response(status_code=204)


@native.get(
    "/manage/{account_id}/webhook/deliveries",
    response_model=list[DeliveryOut],
    openapi_extra=SERVE,
)
async def deliveries(account_id: Serving, service: Accounts) -> list[DeliveryOut]:
    return [
        DeliveryOut(
            event_id=d.event_id,
            status=d.status,
            attempts=d.attempts,
            last_error=d.last_error,
            updated_at=d.updated_at,
        )
        for d in await service.deliveries(account_id)
    ]


# -- notification templates ------------------------------------------------------------------


def _template(row: Any) -> TemplateOut:
    return TemplateOut(
        template_id=row.id,
        title=row.title,
        content=row.content,
        library_id=row.library_id or "",
        primary_industry=row.primary_industry or "",
        deputy_industry=row.deputy_industry or "",
        example=row.example or "",
    )


def _library_template(row: Any) -> LibraryTemplateOut:
    return LibraryTemplateOut(
        template_id_short=row.id,
        title=row.title,
        content=row.content,
        example=row.example,
        primary_industry=row.primary_industry,
        deputy_industry=row.deputy_industry,
    )


@native.get("/{account_id}/templates", response_model=list[PublicTemplateOut], openapi_extra=ANYONE)
async def public_templates(
    account_id: uuid.UUID, principal: MaybePrincipal, service: Accounts
) -> list[PublicTemplateOut]:
    """The account's notification templates, with what the caller has accepted of each."""
    rows = await service.templates(account_id)
    mine = await service.subscriptions(principal.user_id, account_id) if principal else {}
    return [
        PublicTemplateOut(**_template(r).model_dump(), remaining=mine.get(r.id, 0)) for r in rows
    ]


@native.put(
    "/{account_id}/templates/{template_id}/subscription",
    response_model=SubscriptionOut,
    openapi_extra=PERSON,
)
async def subscribe_template(
    account_id: uuid.UUID,
    template_id: Annotated[str, Path(max_length=64)],
    principal: CurrentPrincipal,
    service: Accounts,
    body: SubscriptionRequest | None = None,
) -> SubscriptionOut:
    """Accept `count` more messages of this template (default 1; they add up to 10): the
    account may send that many outside the 48-hour window, one per acceptance."""
    count = body.count if body is not None else 1
    remaining = await service.subscribe_template(
        principal.user_id, account_id, template_id, count=count
    )
    return SubscriptionOut(remaining=remaining)


@native.delete(
    "/{account_id}/templates/{template_id}/subscription",
    response_model=SubscriptionOut,
    openapi_extra=PERSON,
)
async def unsubscribe_template(
    account_id: uuid.UUID,
    template_id: Annotated[str, Path(max_length=64)],
    principal: CurrentPrincipal,
    service: Accounts,
) -> SubscriptionOut:
    remaining = await service.subscribe_template(
        principal.user_id, account_id, template_id, accept=False
    )
    return SubscriptionOut(remaining=remaining)


@native.post(
    "/manage/{account_id}/templates",
    response_model=TemplateOut,
    status_code=201,
    openapi_extra=MANAGE,
)
async def create_template(
    account_id: Managing, body: TemplateRequest, service: Accounts
) -> TemplateOut:
    return _template(await service.create_template(account_id, body.title, body.content))


@native.get("/manage/{account_id}/templates", response_model=list[TemplateOut], openapi_extra=SERVE)
async def templates(account_id: Serving, service: Accounts) -> list[TemplateOut]:
    return [_template(r) for r in await service.templates(account_id)]


@native.post(
    "/manage/{account_id}/template-messages",
    response_model=ThreadItemOut,
    status_code=201,
    openapi_extra=SERVE,
)
async def send_template(
    account_id: Serving, body: TemplateMessageRequest, service: Accounts
) -> ThreadItemOut:
    """A template message: outside the 48-hour window too, to a follower who accepted it."""
    item = await service.send_template(
        account_id,
        body.openid,
        body.template_id,
        {k: {"value": v.value} for k, v in body.data.items()},
        url=body.url,
    )
    return _item(item)


@native.get(
    "/media/{media_id}",
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            }
        }
    },
    openapi_extra=PERSON,
)
async def media(media_id: uuid.UUID, principal: CurrentPrincipal, service: Accounts) -> Response:
    """A file the account sent in a message (image, voice, video), while it lives (3 days)."""
    row = await service.media(None, media_id)
    return Response(
        row.data, media_type=row.content_type, headers={"Cache-Control": "private, max-age=3600"}
    )


# -- the brand's own content per language ------------------------------------------------------


@native.get(
    "/manage/{account_id}/translations",
    response_model=dict[str, dict[str, Any]],
    openapi_extra=SERVE,
)
async def translations(account_id: Serving, service: Accounts) -> dict[str, dict[str, Any]]:
    return await service.translations(account_id)


@native.put(
    "/manage/{account_id}/translations/{locale}",
    response_model=dict[str, dict[str, Any]],
    openapi_extra=MANAGE,
)
async def set_translation(
    account_id: Managing, locale: Locale, body: TranslationRequest, service: Accounts
) -> dict[str, dict[str, Any]]:
    """The description, welcome, default reply and menu in one language; followers of that
    language get them, everyone else the account's default."""
    return await service.set_translation(
        account_id,
        locale,
        description=body.description,
        welcome=body.welcome,
        default_reply=body.default_reply,
        menu=[b.model_dump(exclude_none=True) for b in body.menu],
    )


@native.delete(
    "/manage/{account_id}/translations/{locale}",
    response_model=dict[str, dict[str, Any]],
    openapi_extra=MANAGE,
)
async def remove_translation(
    account_id: Managing, locale: Locale, service: Accounts
) -> dict[str, dict[str, Any]]:
    return await service.remove_translation(account_id, locale)


# -- members ---------------------------------------------------------------------------------


@native.post(
    "/organisations/{organisation_id}/member-removals",
    response_model=OrganisationOut,
    openapi_extra=ORG_MANAGER,
)
async def remove_member(
    organisation_id: OrgManager,
    body: MemberRemovalRequest,
    principal: CurrentPrincipal,
    service: Accounts,
) -> OrganisationOut:
    return _org(await service.remove_member(principal.user_id, organisation_id, body.omo_id))


# -- the platform operator ---------------------------------------------------------------------


@native.put("/operator/{account_id}/verification", response_model=AccountOut, openapi_extra=OPERATE)
async def verify(
    account_id: Operating,
    body: VerificationRequest,
    principal: CurrentPrincipal,
    service: Accounts,
) -> AccountOut:
    """Give or take the verified badge (shown wherever the account appears)."""
    view = await service.verify(account_id, body.verified, operator=principal.user_id)
    return _account(view)


@native.put("/operator/{account_id}/quota", response_model=QuotaOut, openapi_extra=OPERATE)
async def set_quota(
    account_id: Operating, body: QuotaRequest, principal: CurrentPrincipal, service: Accounts
) -> QuotaOut:
    """This account's broadcasts per period (null: its kind's default)."""
    await service.set_quota(account_id, body.allowed, operator=principal.user_id)
    view = await service.quota(account_id)
    return QuotaOut(period=view.period, used=view.used, allowed=view.allowed)


# -- the template library ------------------------------------------------------------------


@early.get("/template-library", response_model=list[LibraryTemplateOut], openapi_extra=PERSON)
async def template_library(
    principal: CurrentPrincipal,
    service: Accounts,
    industry: Annotated[str, Query(max_length=40)] = "",
) -> list[LibraryTemplateOut]:
    """The platform's template library (optionally of one primary industry)."""
    return [_library_template(r) for r in await service.library(industry)]


@native.post(
    "/manage/{account_id}/library-templates",
    response_model=TemplateOut,
    status_code=201,
    openapi_extra=MANAGE,
)
async def add_from_library(
    account_id: Managing, body: AddFromLibraryRequest, service: Accounts
) -> TemplateOut:
    """Add a library template to the account's own (the same one again answers that one)."""
    return _template(await service.add_from_library(account_id, body.template_id_short))


async def _operator(principal: CurrentPrincipal, service: Accounts) -> None:
    await service.require_operator(principal.user_id)


Operator = Depends(_operator)


@early.post(
    "/operator/template-library",
    response_model=LibraryTemplateOut,
    status_code=201,
    openapi_extra=OPERATOR,
    dependencies=[Operator],
)
async def add_to_library(
    body: LibraryTemplateRequest, principal: CurrentPrincipal, service: Accounts
) -> LibraryTemplateOut:
    """Add a template to the platform's library."""
    row = await service.add_to_library(
        operator=principal.user_id,
        short_id=body.template_id_short,
        title=body.title,
        content=body.content,
        example=body.example,
        primary_industry=body.primary_industry,
        deputy_industry=body.deputy_industry,
    )
    return _library_template(row)


@early.delete(
    "/operator/template-library/{template_id_short}",
    status_code=204,
    openapi_extra=OPERATE_LIBRARY,
    dependencies=[Operator],
)
async def remove_from_library(
    template_id_short: Annotated[str, Path(max_length=32)],
    principal: CurrentPrincipal,
    service: Accounts,
) -> Response:
    """Retire a library template: accounts can no longer add it; their copies stay."""
    await service.remove_from_library(template_id_short, operator=principal.user_id)
    return Response(status_code=204)


@early.get(
    "/operator/accounts",
    response_model=list[AccountOut],
    openapi_extra=OPERATOR,
    dependencies=[Operator],
)
async def operator_accounts(
    service: Accounts, q: Annotated[str, Query(max_length=64)] = ""
) -> list[AccountOut]:
    """Every organisation's accounts (by name), newest first, at most 100."""
    return [_account(v) for v in await service.all_accounts(q)]


@early.get(
    "/operator/kind-quotas",
    response_model=dict[str, int],
    openapi_extra=OPERATOR,
    dependencies=[Operator],
)
async def kind_quotas(service: Accounts) -> dict[str, int]:
    """Broadcasts per period for each kind of account."""
    return await service.kind_quotas()


@early.put(
    "/operator/kind-quotas",
    response_model=dict[str, int],
    openapi_extra=OPERATOR,
    dependencies=[Operator],
)
async def set_kind_quota(
    body: KindQuotaRequest, principal: CurrentPrincipal, service: Accounts
) -> dict[str, int]:
    """Broadcasts per period for every account of a kind without a quota of its own."""
    return await service.set_kind_quota(body.kind, body.allowed, operator=principal.user_id)


router.include_router(early)
router.include_router(native)
router.include_router(wechat.router)
router.include_router(pages.router)
