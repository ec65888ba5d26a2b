"""Social routes: REST under /api/v1/social and the Moments pages. Thin: parse, call, serialise."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from omo.core.access import Access, access
from omo.core.auth import SESSION_COOKIE, CurrentPrincipal, Principal
from omo.core.errors import ProblemError
from omo.identity.schemas import PublicProfileOut
from omo.identity.service import PublicProfile
from omo.messaging.storage import LocalDiskStorage
from omo.social.schemas import (
    CardOut,
    CommentIn,
    CommentOut,
    FriendIn,
    FriendOut,
    LabelIn,
    LabelOut,
    LabelUpdate,
    MediaOut,
    NotificationOut,
    PageOut,
    PlaceOut,
    PostIn,
    PostOut,
    ShareIn,
    SponsoredAdminOut,
    SponsoredIn,
    SponsoredOut,
    SponsoredPlaceIn,
    SponsoredPreferences,
    SponsoredPreferencesIn,
    WindowIn,
    WindowOut,
)
from omo.social.service import (
    SIZE_LIMITS,
    CommentView,
    Draft,
    FriendView,
    LabelView,
    MediaView,
    PostView,
    SocialService,
    TimelinePage,
)
from omo.social.sponsored import SponsoredService, SponsoredView, Targeting
from omo.web.pages import render

API = "/api/v1/social"
api = APIRouter(prefix=API, tags=["social"])
pages = APIRouter(include_in_schema=False)
router = APIRouter()
PERSON = access(Access.PERSON)
ACCOUNT_MANAGER = access(Access.BRAND_MEMBER, resource="accounts.account", roles=("owner", "admin"))
ACCOUNT_MEMBER = access(
    Access.BRAND_MEMBER, resource="accounts.account", roles=("owner", "admin", "agent")
)
SPONSORED_MANAGER = access(
    Access.BRAND_MEMBER, resource="social.sponsored", roles=("owner", "admin")
)


async def start(app: FastAPI) -> None:
    app.state.social = SocialService(
        app.state.db,
        app.state.clock,
        app.state.broker,
        app.state.identity,
        app.state.messaging,
        storage=LocalDiskStorage(app.state.settings.data_dir / "media"),
    )
    app.state.sponsored = SponsoredService(
        app.state.db, app.state.clock, app.state.messaging, app.state.accounts
    )


def social(request: Request) -> SocialService:
    service: SocialService = request.app.state.social
    return service


Social = Annotated[SocialService, Depends(social)]


def sponsored_service(request: Request) -> SponsoredService:
    service: SponsoredService = request.app.state.sponsored
    return service


Ads = Annotated[SponsoredService, Depends(sponsored_service)]


async def _account_manager(
    account_id: uuid.UUID, principal: CurrentPrincipal, service: Ads
) -> uuid.UUID:
    """An owner or admin of the account's brand; others get 404 before the body is read."""
    await service.managing(principal.user_id, account_id)
    return account_id


AccountManaged = Annotated[uuid.UUID, Depends(_account_manager)]


def person_out(profile: PublicProfile) -> PublicProfileOut:
    avatar = f"/api/v1/identity/avatars/{profile.avatar_id}" if profile.avatar_id else None
    return PublicProfileOut(
        omo_id=profile.omo_id,
        display_name=profile.display_name,
        region=profile.region,
        avatar_url=avatar,
    )


def media_out(media: MediaView) -> MediaOut:
    url = f"{API}/media/{media.id}"
    return MediaOut(
        id=media.id,
        kind=media.kind,
        content_type=media.content_type,
        alt=media.alt,
        width=media.width,
        height=media.height,
        url=url,
        thumbnail_url=f"{url}?thumbnail=true" if media.has_thumbnail else None,
    )


def comment_out(comment: CommentView) -> CommentOut:
    return CommentOut(
        id=comment.id,
        author=person_out(comment.author),
        reply_to=person_out(comment.reply_to) if comment.reply_to else None,
        reply_to_id=comment.reply_to_id,
        text=comment.text,
        created_at=comment.created_at,
        mine=comment.mine,
    )


def post_out(post: PostView) -> PostOut:
    return PostOut(
        id=post.id,
        author=person_out(post.author),
        remark=post.remark,
        kind=post.kind,
        text=post.text,
        media=[media_out(m) for m in post.media],
        card=CardOut.model_validate(post.card) if post.card else None,
        place=PlaceOut.model_validate(post.place) if post.place else None,
        visibility=post.visibility,
        created_at=post.created_at,
        mine=post.mine,
        liked=post.liked,
        likes=[person_out(p) for p in post.likes],
        comments=[comment_out(c) for c in post.comments],
    )


def page_out(page: TimelinePage) -> PageOut:
    return PageOut(posts=[post_out(p) for p in page.posts], next_cursor=page.next_cursor)


def friend_out(view: FriendView) -> FriendOut:
    return FriendOut(
        person=person_out(view.person),
        remark=view.remark,
        hide_my_moments=view.hide_my_moments,
        hide_their_moments=view.hide_their_moments,
        labels=view.labels,
    )


def label_out(view: LabelView) -> LabelOut:
    return LabelOut(id=view.id, name=view.name, members=[person_out(p) for p in view.members])


Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int, Query(ge=1, le=50)]

# -- friends and labels ----------------------------------------------------------------------


@api.get("/friends/{omo_id}", response_model=FriendOut, openapi_extra=PERSON)
async def get_friend(omo_id: str, principal: CurrentPrincipal, service: Social) -> FriendOut:
    return friend_out(await service.friend(principal.user_id, omo_id[:40]))


@api.patch("/friends/{omo_id}", response_model=FriendOut, openapi_extra=PERSON)
async def set_friend(
    omo_id: str, body: FriendIn, principal: CurrentPrincipal, service: Social
) -> FriendOut:
    return friend_out(
        await service.set_friend(
            principal.user_id,
            omo_id[:40],
            remark=body.remark,
            hide_my_moments=body.hide_my_moments,
            hide_their_moments=body.hide_their_moments,
        )
    )


@api.get("/labels", response_model=list[LabelOut], openapi_extra=PERSON)
async def list_labels(principal: CurrentPrincipal, service: Social) -> list[LabelOut]:
    return [label_out(v) for v in await service.labels(principal.user_id)]


@api.post("/labels", status_code=201, response_model=LabelOut, openapi_extra=PERSON)
async def create_label(body: LabelIn, principal: CurrentPrincipal, service: Social) -> LabelOut:
    return label_out(await service.create_label(principal.user_id, body.name, body.members))


@api.patch("/labels/{label_id}", response_model=LabelOut, openapi_extra=PERSON)
async def update_label(
    label_id: uuid.UUID, body: LabelUpdate, principal: CurrentPrincipal, service: Social
) -> LabelOut:
    return label_out(
        await service.update_label(
            principal.user_id, label_id, name=body.name, members=body.members
        )
    )


@api.delete("/labels/{label_id}", status_code=204, openapi_extra=PERSON)
async def delete_label(
    label_id: uuid.UUID, principal: CurrentPrincipal, service: Social
) -> Response:
    await service.delete_label(principal.user_id, label_id)
    return Response(status_code=204)


@api.get("/settings/window", response_model=WindowOut, openapi_extra=PERSON)
async def get_window(principal: CurrentPrincipal, service: Social) -> WindowOut:
    return WindowOut.model_validate({"window": await service.window(principal.user_id)})


@api.put("/settings/window", response_model=WindowOut, openapi_extra=PERSON)
async def set_window(body: WindowIn, principal: CurrentPrincipal, service: Social) -> WindowOut:
    return WindowOut.model_validate(
        {"window": await service.set_window(principal.user_id, body.window)}
    )


# -- media -----------------------------------------------------------------------------------


@api.post(
    "/media",
    status_code=201,
    response_model=MediaOut,
    openapi_extra={
        **PERSON,
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
    },
)
async def upload_media(
    request: Request,
    principal: CurrentPrincipal,
    service: Social,
    kind: Annotated[str, Query(pattern="^(image|video)$")],
    alt: Annotated[str, Query(max_length=500, description="What the photo shows")] = "",
) -> MediaOut:
    """Upload a photo or video (the raw bytes as the body), then publish a post with its id."""
    limit = SIZE_LIMITS.get(kind, 0)
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > limit:
            raise ProblemError(
                "media-too-large", "Send at most %(kib)d KiB.", params={"kib": limit // 1024}
            )
    return media_out(await service.upload_media(principal.user_id, kind, alt, bytes(data)))


@api.get("/media/{media_id}", response_class=Response, openapi_extra=PERSON)
async def media(
    media_id: uuid.UUID, principal: CurrentPrincipal, service: Social, thumbnail: bool = False
) -> Response:
    """The bytes, only for the post's audience as it stands now (404 for anyone else)."""
    view, data = await service.media_content(principal.user_id, media_id, thumbnail=thumbnail)
    return Response(
        data, media_type=view.content_type, headers={"Cache-Control": "private, no-store"}
    )


# -- posts -----------------------------------------------------------------------------------


@api.post("/posts", status_code=201, response_model=PostOut, openapi_extra=PERSON)
async def publish(body: PostIn, principal: CurrentPrincipal, service: Social) -> PostOut:
    draft = Draft(
        text=body.text,
        photos=tuple(body.photos),
        video=body.video,
        card=body.card.model_dump() if body.card else None,
        place=body.place.model_dump(exclude_none=True) if body.place else None,
        visibility=body.visibility,
        people=tuple(p[:40] for p in body.people),
        labels=tuple(body.labels),
        mentions=tuple(m[:40] for m in body.mentions),
    )
    return post_out(await service.publish(principal.user_id, draft))


def sponsored_out(view: SponsoredView) -> SponsoredOut:
    return SponsoredOut(
        id=view.id,
        account_id=view.account_id,
        account_name=view.account_name,
        text=view.text,
        card=CardOut.model_validate(view.card) if view.card else None,
    )


def sponsored_admin_out(view: SponsoredView) -> SponsoredAdminOut:
    place = view.targeting.place
    return SponsoredAdminOut(
        **sponsored_out(view).model_dump(),
        followers_only=view.targeting.followers_only,
        tag_ids=list(view.targeting.tag_ids),
        place=SponsoredPlaceIn(latitude=place[0], longitude=place[1], radius_m=place[2])
        if place
        else None,
        daily_cap=view.daily_cap,
        starts_at=view.starts_at,
        ends_at=view.ends_at,
        stopped=view.stopped,
        shown=view.shown,
    )


Latitude = Annotated[float | None, Query(ge=-90, le=90)]
Longitude = Annotated[float | None, Query(ge=-180, le=180)]


@api.get("/timeline", response_model=PageOut, openapi_extra=PERSON)
async def timeline(
    request: Request,
    principal: CurrentPrincipal,
    cursor: Cursor = None,
    limit: Limit = 20,
    latitude: Latitude = None,
    longitude: Longitude = None,
) -> PageOut:
    """Friends' posts; on the first page, at most one sponsored post (`latitude`/`longitude`,
    if sent, only match a brand's place targeting for this request and are not stored)."""
    # The services straight from the app, not as `Depends`: each dependency FastAPI solves
    # costs ~0.1 ms, a tenth of this hot page's budget (docs/BENCHMARKS.md).
    service, ads = social(request), sponsored_service(request)
    page = page_out(await service.timeline(principal.user_id, cursor, limit))
    if cursor is None:
        here = (latitude, longitude) if latitude is not None and longitude is not None else None
        picked = await ads.pick(principal.user_id, here)
        page.sponsored = sponsored_out(picked) if picked else None
    return page


# -- sponsored posts -------------------------------------------------------------------------


@api.post(
    "/accounts/{account_id}/sponsored",
    status_code=201,
    response_model=SponsoredAdminOut,
    openapi_extra=ACCOUNT_MANAGER,
)
async def create_sponsored(
    account_id: AccountManaged, body: SponsoredIn, principal: CurrentPrincipal, ads: Ads
) -> SponsoredAdminOut:
    """A sponsored post from the brand's official account, for the people it targets."""
    place = body.place
    view = await ads.create(
        principal.user_id,
        account_id,
        text=body.text,
        card=body.card.model_dump() if body.card else None,
        targeting=Targeting(
            body.followers_only,
            tuple(body.tag_ids),
            (place.latitude, place.longitude, place.radius_m) if place else None,
        ),
        daily_cap=body.daily_cap,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
    )
    return sponsored_admin_out(view)


@api.get(
    "/accounts/{account_id}/sponsored",
    response_model=list[SponsoredAdminOut],
    openapi_extra=ACCOUNT_MEMBER,
)
async def list_sponsored(
    account_id: uuid.UUID, principal: CurrentPrincipal, ads: Ads
) -> list[SponsoredAdminOut]:
    return [sponsored_admin_out(v) for v in await ads.of_account(principal.user_id, account_id)]


@api.delete("/sponsored/{sponsored_id}", status_code=204, openapi_extra=SPONSORED_MANAGER)
async def stop_sponsored(
    sponsored_id: uuid.UUID, principal: CurrentPrincipal, ads: Ads
) -> Response:
    """Stop a sponsored post now (its impressions stay counted)."""
    await ads.stop(principal.user_id, sponsored_id)
    return Response(status_code=204)


@api.get("/sponsored/preferences", response_model=SponsoredPreferences, openapi_extra=PERSON)
async def sponsored_preferences(principal: CurrentPrincipal, ads: Ads) -> SponsoredPreferences:
    found = await ads.preferences(principal.user_id)
    return SponsoredPreferences(
        no_sponsored=found.no_sponsored, hidden_accounts=found.hidden_accounts
    )


@api.put("/sponsored/preferences", response_model=SponsoredPreferences, openapi_extra=PERSON)
async def set_sponsored_preferences(
    body: SponsoredPreferencesIn, principal: CurrentPrincipal, ads: Ads
) -> SponsoredPreferences:
    """No sponsored posts at all (true), or sponsored posts again (false)."""
    if body.no_sponsored:
        await ads.opt_out(principal.user_id)
    else:
        await ads.opt_in(principal.user_id)
    return await sponsored_preferences(principal, ads)


@api.put("/sponsored/hidden/{account_id}", status_code=204, openapi_extra=PERSON)
async def hide_brand(account_id: uuid.UUID, principal: CurrentPrincipal, ads: Ads) -> Response:
    """Hide this brand's ads."""
    await ads.opt_out(principal.user_id, account_id)
    return Response(status_code=204)


@api.delete("/sponsored/hidden/{account_id}", status_code=204, openapi_extra=PERSON)
async def show_brand(account_id: uuid.UUID, principal: CurrentPrincipal, ads: Ads) -> Response:
    await ads.opt_in(principal.user_id, account_id)
    return Response(status_code=204)


@api.get("/people/{omo_id}/posts", response_model=PageOut, openapi_extra=PERSON)
async def profile_posts(
    omo_id: str,
    principal: CurrentPrincipal,
    service: Social,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> PageOut:
    return page_out(await service.profile_posts(principal.user_id, omo_id[:40], cursor, limit))


@api.get("/posts/{post_id}", response_model=PostOut, openapi_extra=PERSON)
async def get_post(post_id: uuid.UUID, principal: CurrentPrincipal, service: Social) -> PostOut:
    return post_out(await service.post(principal.user_id, post_id))


@api.delete("/posts/{post_id}", status_code=204, openapi_extra=PERSON)
async def delete_post(post_id: uuid.UUID, principal: CurrentPrincipal, service: Social) -> Response:
    await service.delete_post(principal.user_id, post_id)
    return Response(status_code=204)


@api.put("/posts/{post_id}/like", status_code=204, openapi_extra=PERSON)
async def like(post_id: uuid.UUID, principal: CurrentPrincipal, service: Social) -> Response:
    await service.like(principal.user_id, post_id)
    return Response(status_code=204)


@api.delete("/posts/{post_id}/like", status_code=204, openapi_extra=PERSON)
async def unlike(post_id: uuid.UUID, principal: CurrentPrincipal, service: Social) -> Response:
    await service.unlike(principal.user_id, post_id)
    return Response(status_code=204)


@api.post(
    "/posts/{post_id}/comments", status_code=201, response_model=CommentOut, openapi_extra=PERSON
)
async def comment(
    post_id: uuid.UUID, body: CommentIn, principal: CurrentPrincipal, service: Social
) -> CommentOut:
    return comment_out(await service.comment(principal.user_id, post_id, body.text, body.reply_to))


@api.delete("/comments/{comment_id}", status_code=204, openapi_extra=PERSON)
async def delete_comment(
    comment_id: uuid.UUID, principal: CurrentPrincipal, service: Social
) -> Response:
    await service.delete_comment(principal.user_id, comment_id)
    return Response(status_code=204)


@api.post("/posts/{post_id}/shares", status_code=204, openapi_extra=PERSON)
async def share(
    post_id: uuid.UUID, body: ShareIn, principal: CurrentPrincipal, service: Social
) -> Response:
    await service.share(principal.user_id, post_id, body.to)
    return Response(status_code=204)


# -- notifications ---------------------------------------------------------------------------


@api.get("/notifications", response_model=list[NotificationOut], openapi_extra=PERSON)
async def notifications(principal: CurrentPrincipal, service: Social) -> list[NotificationOut]:
    return [
        NotificationOut(
            id=n.id,
            kind=n.kind,  # type: ignore[arg-type]
            actor=person_out(n.actor),
            post_id=n.post_id,
            comment_id=n.comment_id,
            created_at=n.created_at,
            read=n.read,
        )
        for n in await service.notifications(principal.user_id)
    ]


@api.post("/notifications/read", status_code=204, openapi_extra=PERSON)
async def mark_read(principal: CurrentPrincipal, service: Social) -> Response:
    await service.mark_notifications_read(principal.user_id)
    return Response(status_code=204)


# -- pages -----------------------------------------------------------------------------------


async def _page_principal(request: Request) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    principal: Principal | None = await request.app.state.authenticator.authenticate(token)
    if principal and principal.locale:
        request.state.locale = principal.locale
    return principal


def _to_login(request: Request) -> Response:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


@pages.api_route(
    "/moments", methods=["GET", "HEAD"], response_class=HTMLResponse, openapi_extra=PERSON
)
async def moments_page(request: Request, cursor: Cursor = None) -> Response:
    principal = await _page_principal(request)
    if principal is None:
        return _to_login(request)
    service = social(request)
    page = page_out(await service.timeline(principal.user_id, cursor))
    if cursor is None:
        picked = await sponsored_service(request).pick(principal.user_id)
        page.sponsored = sponsored_out(picked) if picked else None
    labels = await service.labels(principal.user_id)
    return render(request, "moments.html", page=page, labels=labels)


@pages.api_route(
    "/moments/friends/{omo_id}",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=PERSON,
)
async def friend_page(request: Request, omo_id: str) -> Response:
    principal = await _page_principal(request)
    if principal is None:
        return _to_login(request)
    service = social(request)
    friend = friend_out(await service.friend(principal.user_id, omo_id[:40]))
    labels = [label_out(v) for v in await service.labels(principal.user_id)]
    return render(request, "moments_friend.html", friend=friend, labels=labels)


@pages.api_route(
    "/moments/{post_id}", methods=["GET", "HEAD"], response_class=HTMLResponse, openapi_extra=PERSON
)
async def post_page(
    request: Request, post_id: uuid.UUID, fragment: Literal["", "card", "full"] = ""
) -> Response:
    """The post's page; `fragment` renders the post alone (the Moments page swaps it in when
    a like or comment arrives), under the same rules."""
    principal = await _page_principal(request)
    if principal is None:
        return _to_login(request)
    post = post_out(await social(request).post(principal.user_id, post_id))
    if fragment:
        return render(request, "_moment.html", post=post, full=fragment == "full")
    return render(request, "moment.html", post=post)


router.include_router(api)
router.include_router(pages)
