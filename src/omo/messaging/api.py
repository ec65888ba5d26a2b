"""Messaging routes: REST under /api/v1/messaging, the WebSocket at /ws, the chat pages.

Thin: parse, call the service, serialise.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response, WebSocket
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup

from omo.core.access import Access, access
from omo.core.auth import SESSION_COOKIE, CurrentPrincipal, Principal
from omo.core.background import run_every, stop_task
from omo.core.errors import ProblemError
from omo.core.i18n import locale_of
from omo.identity.schemas import PublicProfileOut
from omo.identity.service import PublicProfile
from omo.messaging import gateway
from omo.messaging.schemas import (
    ContactOut,
    ContactsOut,
    ConversationOut,
    CreatedOut,
    DirectIn,
    GroupIn,
    GroupUpdate,
    InviteIn,
    MediaOut,
    MemberOut,
    MessageIn,
    MessageOut,
    MuteIn,
    PageOut,
    PersonRef,
    ReadIn,
    ReadOut,
    RequestOut,
    RoleIn,
    SearchOut,
    SentOut,
)
from omo.messaging.service import ConversationView, Draft, MessagingService
from omo.messaging.storage import LocalDiskStorage
from omo.web.pages import render

api = APIRouter(prefix="/api/v1/messaging", tags=["messaging"])
pages = APIRouter(include_in_schema=False)
router = APIRouter()


async def start(app: FastAPI) -> None:
    settings = app.state.settings
    service = MessagingService(
        app.state.db,
        app.state.clock,
        app.state.broker,
        app.state.identity,
        storage=LocalDiskStorage(settings.data_dir / "media"),
        upload_limit=settings.max_request_bytes,
        limiter=app.state.limiter,
    )
    await service.start()
    app.state.messaging = service
    # Other contexts add sections to the chat list (official accounts the person follows, ...)
    # without messaging knowing them: each is `async (user_id, locale) -> (template, data)`.
    app.state.chat_list_sections = []

    app.state.messaging_erasures = run_every(2, service.forget_erased_people, "messaging-erasures")


async def stop(app: FastAPI) -> None:
    await stop_task(getattr(app.state, "messaging_erasures", None))
    service: MessagingService | None = getattr(app.state, "messaging", None)
    if service is not None:
        await service.stop()


def _service(request: Request) -> MessagingService:
    service: MessagingService = request.app.state.messaging
    return service


async def messaging(request: Request) -> MessagingService:
    # async: FastAPI would run a plain function in a worker thread, a thread hop per request.
    return _service(request)


Messaging = Annotated[MessagingService, Depends(messaging)]


async def _member(
    conversation_id: uuid.UUID, principal: CurrentPrincipal, service: Messaging
) -> None:
    """Membership first, so a stranger is refused before the body is even looked at."""
    await service.require_member(principal.user_id, conversation_id)


MEMBER_ONLY = [Depends(_member)]
CONVERSATION = access(Access.OWNER, resource="messaging.conversation")


def _person(profile: PublicProfile) -> PublicProfileOut:
    avatar = f"/api/v1/identity/avatars/{profile.avatar_id}" if profile.avatar_id else None
    return PublicProfileOut(
        omo_id=profile.omo_id,
        display_name=profile.display_name,
        region=profile.region,
        avatar_url=avatar,
    )


async def _conversation_out(service: MessagingService, view: ConversationView) -> ConversationOut:
    last = None
    if view.last_message is not None:
        last = MessageOut.model_validate((await service.wire([view.last_message]))[0])
    title = view.name if view.kind == "group" else (view.peer.display_name if view.peer else "")
    return ConversationOut(
        id=view.id,
        kind=view.kind,  # type: ignore[arg-type]
        title=title,
        name=view.name,
        announcement=view.announcement,
        peer=_person(view.peer) if view.peer else None,
        last_seq=view.last_seq,
        read_seq=view.read_seq,
        unread=view.unread,
        muted=view.muted,
        role=view.role,
        last_message=last,
        members=[MemberOut(person=_person(m.profile), role=m.role) for m in view.members],
    )


# -- contacts --------------------------------------------------------------------------------


@api.get("/contacts", response_model=ContactsOut, openapi_extra=access(Access.PERSON))
async def list_contacts(principal: CurrentPrincipal, service: Messaging) -> ContactsOut:
    contacts, blocked = await service.contacts(principal.user_id)
    return ContactsOut(
        contacts=[
            ContactOut(person=_person(c.profile), status=c.status)  # type: ignore[arg-type]
            for c in contacts
        ],
        blocked=[_person(p) for p in blocked],
    )


@api.post("/contacts/requests", response_model=RequestOut, openapi_extra=access(Access.PERSON))
async def request_friend(
    body: PersonRef, principal: CurrentPrincipal, service: Messaging
) -> RequestOut:
    return RequestOut(status=await service.request_friend(principal.user_id, body.omo_id))


@api.post(
    "/contacts/{omo_id}/accept", response_model=RequestOut, openapi_extra=access(Access.PERSON)
)
async def accept_friend(omo_id: str, principal: CurrentPrincipal, service: Messaging) -> RequestOut:
    await service.accept_friend(principal.user_id, omo_id)
    return RequestOut(status="friend")


@api.post(
    "/contacts/{omo_id}/decline", response_model=RequestOut, openapi_extra=access(Access.PERSON)
)
async def decline_friend(
    omo_id: str, principal: CurrentPrincipal, service: Messaging
) -> RequestOut:
    await service.decline_friend(principal.user_id, omo_id)
    return RequestOut(status="declined")


@api.delete("/contacts/{omo_id}", response_model=RequestOut, openapi_extra=access(Access.PERSON))
async def remove_friend(omo_id: str, principal: CurrentPrincipal, service: Messaging) -> RequestOut:
    await service.remove_friend(principal.user_id, omo_id)
    return RequestOut(status="removed")


@api.post("/blocks", response_model=RequestOut, openapi_extra=access(Access.PERSON))
async def block(body: PersonRef, principal: CurrentPrincipal, service: Messaging) -> RequestOut:
    await service.block(principal.user_id, body.omo_id)
    return RequestOut(status="blocked")


@api.delete("/blocks/{omo_id}", response_model=RequestOut, openapi_extra=access(Access.PERSON))
async def unblock(omo_id: str, principal: CurrentPrincipal, service: Messaging) -> RequestOut:
    await service.unblock(principal.user_id, omo_id)
    return RequestOut(status="unblocked")


# -- conversations ---------------------------------------------------------------------------


@api.get(
    "/conversations", response_model=list[ConversationOut], openapi_extra=access(Access.PERSON)
)
async def list_conversations(
    principal: CurrentPrincipal, service: Messaging
) -> list[ConversationOut]:
    views = await service.conversations(principal.user_id)
    return [await _conversation_out(service, v) for v in views]


@api.post("/conversations/direct", response_model=CreatedOut, openapi_extra=access(Access.PERSON))
async def open_direct(
    body: DirectIn, principal: CurrentPrincipal, service: Messaging
) -> CreatedOut:
    return CreatedOut(id=await service.open_direct(principal.user_id, body.omo_id))


@api.post(
    "/conversations/groups",
    status_code=201,
    response_model=CreatedOut,
    openapi_extra=access(Access.PERSON),
)
async def create_group(
    body: GroupIn, principal: CurrentPrincipal, service: Messaging
) -> CreatedOut:
    return CreatedOut(id=await service.create_group(principal.user_id, body.name, body.members))


@api.get(
    "/conversations/{conversation_id}", response_model=ConversationOut, openapi_extra=CONVERSATION
)
async def get_conversation(
    conversation_id: uuid.UUID, principal: CurrentPrincipal, service: Messaging
) -> ConversationOut:
    return await _conversation_out(
        service, await service.conversation(principal.user_id, conversation_id)
    )


@api.patch(
    "/conversations/{conversation_id}",
    response_model=ConversationOut,
    openapi_extra=CONVERSATION,
    dependencies=MEMBER_ONLY,
)
async def update_group(
    conversation_id: uuid.UUID, body: GroupUpdate, principal: CurrentPrincipal, service: Messaging
) -> ConversationOut:
    await service.update_group(
        principal.user_id, conversation_id, name=body.name, announcement=body.announcement
    )
    return await _conversation_out(
        service, await service.conversation(principal.user_id, conversation_id)
    )


@api.post(
    "/conversations/{conversation_id}/members",
    status_code=204,
    openapi_extra=CONVERSATION,
    dependencies=MEMBER_ONLY,
)
async def invite(
    conversation_id: uuid.UUID, body: InviteIn, principal: CurrentPrincipal, service: Messaging
) -> Response:
    await service.invite(principal.user_id, conversation_id, body.members)
    return Response(status_code=204)


@api.delete(
    "/conversations/{conversation_id}/members/{omo_id}", status_code=204, openapi_extra=CONVERSATION
)
async def remove_member(
    conversation_id: uuid.UUID, omo_id: str, principal: CurrentPrincipal, service: Messaging
) -> Response:
    await service.remove_member(principal.user_id, conversation_id, omo_id)
    return Response(status_code=204)


@api.post("/conversations/{conversation_id}/leave", status_code=204, openapi_extra=CONVERSATION)
async def leave(
    conversation_id: uuid.UUID, principal: CurrentPrincipal, service: Messaging
) -> Response:
    await service.leave(principal.user_id, conversation_id)
    return Response(status_code=204)


@api.put(
    "/conversations/{conversation_id}/members/{omo_id}/role",
    status_code=204,
    openapi_extra=CONVERSATION,
    dependencies=MEMBER_ONLY,
)
async def set_role(
    conversation_id: uuid.UUID,
    omo_id: str,
    body: RoleIn,
    principal: CurrentPrincipal,
    service: Messaging,
) -> Response:
    await service.set_role(principal.user_id, conversation_id, omo_id, body.role)
    return Response(status_code=204)


@api.put(
    "/conversations/{conversation_id}/mute",
    status_code=204,
    openapi_extra=CONVERSATION,
    dependencies=MEMBER_ONLY,
)
async def mute(
    conversation_id: uuid.UUID, body: MuteIn, principal: CurrentPrincipal, service: Messaging
) -> Response:
    await service.set_muted(principal.user_id, conversation_id, body.muted)
    return Response(status_code=204)


# -- messages --------------------------------------------------------------------------------


@api.post(
    "/conversations/{conversation_id}/messages",
    response_model=SentOut,
    status_code=201,
    responses={200: {"model": SentOut, "description": "A retry: the message stored before"}},
    openapi_extra=CONVERSATION,
    dependencies=MEMBER_ONLY,
)
async def send(
    conversation_id: uuid.UUID,
    body: MessageIn,
    principal: CurrentPrincipal,
    service: Messaging,
    response: Response,
) -> SentOut:
    draft = Draft(
        conversation_id=conversation_id,
        client_id=body.client_id,
        text=body.text,
        card=body.card.model_dump() if body.card else None,
        media_id=body.media_id,
        location=body.location.model_dump() if body.location else None,
        mentions=tuple(body.mentions),
        mention_all=body.mention_all,
    )
    sent = await service.send(principal.user_id, draft)
    if sent.duplicate:
        response.status_code = 200
    wired = (await service.wire([sent.message]))[0]
    return SentOut(duplicate=sent.duplicate, message=MessageOut.model_validate(wired))


@api.get(
    "/conversations/{conversation_id}/messages", response_model=PageOut, openapi_extra=CONVERSATION
)
async def history(
    conversation_id: uuid.UUID,
    principal: CurrentPrincipal,
    service: Messaging,
    after: Annotated[int | None, Query(ge=0)] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> PageOut:
    page = await service.history(
        principal.user_id, conversation_id, after=after, before=before, limit=limit
    )
    messages = [MessageOut.model_validate(m) for m in await service.wire(page.messages)]
    return PageOut(messages=messages, until=page.until, more=page.more)


@api.get("/search", response_model=SearchOut, openapi_extra=access(Access.PERSON))
async def search(
    principal: CurrentPrincipal,
    service: Messaging,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    conversation_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> SearchOut:
    """Messages of the caller's conversations holding every word of `q`, newest first.
    Chinese and Japanese words of one or two characters are found too."""
    found = await service.search(principal.user_id, q, conversation_id=conversation_id, limit=limit)
    return SearchOut(messages=[MessageOut.model_validate(m) for m in await service.wire(found)])


@api.post(
    "/conversations/{conversation_id}/read",
    response_model=ReadOut,
    openapi_extra=CONVERSATION,
    dependencies=MEMBER_ONLY,
)
async def mark_read(
    conversation_id: uuid.UUID, body: ReadIn, principal: CurrentPrincipal, service: Messaging
) -> ReadOut:
    return ReadOut(read_seq=await service.mark_read(principal.user_id, conversation_id, body.seq))


@api.post(
    "/conversations/{conversation_id}/messages/{seq}/recall",
    response_model=SentOut,
    openapi_extra=CONVERSATION,
)
async def recall(
    conversation_id: uuid.UUID, seq: int, principal: CurrentPrincipal, service: Messaging
) -> SentOut:
    sent = await service.recall(principal.user_id, conversation_id, seq)
    wired = (await service.wire([sent.message]))[0]
    return SentOut(duplicate=sent.duplicate, message=MessageOut.model_validate(wired))


@api.delete(
    "/conversations/{conversation_id}/messages/{seq}", status_code=204, openapi_extra=CONVERSATION
)
async def hide(
    conversation_id: uuid.UUID, seq: int, principal: CurrentPrincipal, service: Messaging
) -> Response:
    await service.hide(principal.user_id, conversation_id, seq)
    return Response(status_code=204)


# -- media -----------------------------------------------------------------------------------


@api.post(
    "/conversations/{conversation_id}/media",
    status_code=201,
    response_model=MediaOut,
    openapi_extra={
        **CONVERSATION,
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
    },
    dependencies=MEMBER_ONLY,
)
async def upload_media(
    conversation_id: uuid.UUID,
    request: Request,
    principal: CurrentPrincipal,
    service: Messaging,
    kind: Annotated[str, Query(pattern="^(image|voice|video|file)$")],
    name: Annotated[str, Query(max_length=200)] = "",
) -> MediaOut:
    """Upload first (the raw bytes as the body), then send a message with the media id."""
    limit = service.limit_for(kind)
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > limit:
            raise ProblemError(
                "media-too-large", "Send at most %(kib)d KiB.", params={"kib": limit // 1024}
            )
    media = await service.upload_media(principal.user_id, conversation_id, kind, name, bytes(data))
    return MediaOut(
        id=media.id,
        kind=media.kind,
        content_type=media.content_type,
        name=media.name,
        size=media.size,
        width=media.width,
        height=media.height,
    )


async def _media_response(
    service: MessagingService, principal: Principal, media_id: uuid.UUID, thumbnail: bool
) -> Response:
    media, data = await service.media_content(principal.user_id, media_id, thumbnail=thumbnail)
    headers = {"Cache-Control": "private, max-age=86400"}
    if media.kind == "file" and not thumbnail:
        headers["Content-Disposition"] = "attachment"
    return Response(data, media_type=media.content_type, headers=headers)


@api.get(
    "/media/{media_id}",
    response_class=Response,
    openapi_extra=access(Access.OWNER, resource="messaging.media"),
)
async def media(media_id: uuid.UUID, principal: CurrentPrincipal, service: Messaging) -> Response:
    return await _media_response(service, principal, media_id, False)


@api.get(
    "/media/{media_id}/thumbnail",
    response_class=Response,
    openapi_extra=access(Access.OWNER, resource="messaging.media"),
)
async def media_thumbnail(
    media_id: uuid.UUID, principal: CurrentPrincipal, service: Messaging
) -> Response:
    return await _media_response(service, principal, media_id, True)


# -- realtime --------------------------------------------------------------------------------


@router.websocket("/ws")
async def websocket_gateway(websocket: WebSocket) -> None:
    state = websocket.app.state
    heartbeat = float(getattr(state, "messaging_heartbeat", gateway.HEARTBEAT_SECONDS))
    await gateway.serve(websocket, state.messaging, state.authenticator, heartbeat)


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
    "/chat",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.PERSON),
)
async def chat_list_page(request: Request, q: str = "") -> Response:
    principal = await _page_principal(request)
    if principal is None:
        return _to_login(request)
    service = _service(request)
    conversations = [
        await _conversation_out(service, v) for v in await service.conversations(principal.user_id)
    ]
    query = q.strip()[:200]
    found = await service.search(principal.user_id, query) if query else []
    titles = {c.id: c.title for c in conversations}
    results = [
        {"conversation_id": m.conversation_id, "title": titles.get(m.conversation_id, ""), **w}
        for m, w in zip(found, await service.wire(found), strict=True)
    ]
    contacts, _blocked = await service.contacts(principal.user_id)
    me = await request.app.state.identity.own_profile(principal.user_id)
    base = request.app.state.settings.public_url or str(request.base_url)
    add_url = f"{base.rstrip('/')}/chat/add/{me.omo_id}"
    my_qr = segno.make(add_url, error="m").svg_inline(scale=4, dark="#111", light="#fff")
    sections = [
        await provide(principal.user_id, locale_of(request))
        for provide in getattr(request.app.state, "chat_list_sections", [])
    ]
    return render(
        request,
        "chat_list.html",
        sections=sections,
        conversations=conversations,
        contacts=contacts,
        my_qr=Markup(my_qr),  # noqa: S704  (segno's own SVG of our own URL)
        add_url=add_url,
        query=query,
        results=results,
    )


@pages.api_route(
    "/chat/add/{omo_id}",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.PERSON),
)
async def add_friend_page(request: Request, omo_id: str) -> Response:
    """Where a personal QR code leads: the person, and a button to ask them to be friends."""
    principal = await _page_principal(request)
    if principal is None:
        return _to_login(request)
    person = await request.app.state.identity.find_by_omo_id(omo_id[:40])
    return render(request, "chat_add.html", person=person)


@pages.api_route(
    "/chat/{conversation_id}",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=CONVERSATION,
)
async def chat_page(request: Request, conversation_id: uuid.UUID) -> Response:
    principal = await _page_principal(request)
    if principal is None:
        return _to_login(request)
    service = _service(request)
    conversation = await _conversation_out(
        service, await service.conversation(principal.user_id, conversation_id)
    )
    me: Any = await request.app.state.identity.own_profile(principal.user_id)
    return render(request, "chat.html", conversation=conversation, me_omo_id=me.omo_id)


router.include_router(api)
router.include_router(pages)
