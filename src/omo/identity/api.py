"""Identity routes under /api/v1/identity. Thin: parse, call the service, serialise."""

from __future__ import annotations

import uuid
from typing import Annotated

import segno
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.responses import Response as RawResponse

from omo.core.access import Access, access
from omo.core.auth import SESSION_COOKIE, CurrentPrincipal, client_address
from omo.core.errors import ProblemError
from omo.core.i18n import locale_of
from omo.identity.schemas import (
    Accepted,
    AuditEntryOut,
    CodeRequest,
    DeviceOut,
    EraseRequest,
    LogInRequest,
    OmoIdChange,
    ProfileOut,
    ProfileUpdate,
    PublicProfileOut,
    QrClaimOut,
    QrClaimRequest,
    QrScanOut,
    QrScanRequest,
    QrTicketOut,
    SessionOut,
    SignUpRequest,
    VerifyRequest,
)
from omo.identity.service import IdentityService, IssuedSession, OwnProfile, PublicProfile

router = APIRouter(prefix="/api/v1/identity", tags=["identity"])
AVATAR_TYPES = ("image/png", "image/jpeg", "image/webp")


async def identity(request: Request) -> IdentityService:
    service: IdentityService = request.app.state.identity
    return service


Identity = Annotated[IdentityService, Depends(identity)]


def _avatar_url(avatar_id: uuid.UUID | None) -> str | None:
    return f"/api/v1/identity/avatars/{avatar_id}" if avatar_id else None


def _profile_out(profile: OwnProfile) -> ProfileOut:
    return ProfileOut(
        phone=profile.phone_e164,
        omo_id=profile.omo_id,
        omo_id_changeable_from=profile.omo_id_changeable_from,
        display_name=profile.display_name,
        region=profile.region,
        locale=profile.locale,
        time_zone=profile.time_zone,
        avatar_url=_avatar_url(profile.avatar_id),
        created_at=profile.created_at,
    )


def _public_out(profile: PublicProfile) -> PublicProfileOut:
    return PublicProfileOut(
        omo_id=profile.omo_id,
        display_name=profile.display_name,
        region=profile.region,
        avatar_url=_avatar_url(profile.avatar_id),
    )


def _session_out(request: Request, response: Response, issued: IssuedSession) -> SessionOut:
    # Web clients get an HttpOnly cookie too, so page scripts never hold the token.
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        expires=issued.expires_at,
        httponly=True,
        secure=request.app.state.settings.tls,
        samesite="lax",
        path="/",
    )
    return SessionOut(
        token=issued.token, session_id=issued.session_id, expires_at=issued.expires_at
    )


def _user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")


@router.post(
    "/signup", status_code=202, response_model=Accepted, openapi_extra=access(Access.ANONYMOUS)
)
async def sign_up(body: SignUpRequest, request: Request, service: Identity) -> Accepted:
    await service.sign_up(
        body.phone, body.password, body.display_name, client_address(request), locale_of(request)
    )
    return Accepted(status="code_sent")


@router.post(
    "/codes", status_code=202, response_model=Accepted, openapi_extra=access(Access.ANONYMOUS)
)
async def resend_code(body: CodeRequest, request: Request, service: Identity) -> Accepted:
    await service.send_code(body.phone, "verify", client_address(request), locale_of(request))
    return Accepted(status="code_sent")


@router.post("/verify", response_model=Accepted, openapi_extra=access(Access.ANONYMOUS))
async def verify(body: VerifyRequest, service: Identity) -> Accepted:
    await service.verify_phone(body.phone, body.code)
    return Accepted(status="verified")


@router.post("/login", response_model=SessionOut, openapi_extra=access(Access.ANONYMOUS))
async def log_in(
    body: LogInRequest, request: Request, response: Response, service: Identity
) -> SessionOut:
    issued = await service.log_in(
        body.phone,
        body.password,
        device_name=body.device_name,
        kind=body.kind,
        user_agent=_user_agent(request),
        client_address=client_address(request),
    )
    return _session_out(request, response, issued)


@router.post("/logout", response_model=Accepted, openapi_extra=access(Access.PERSON))
async def log_out(principal: CurrentPrincipal, response: Response, service: Identity) -> Accepted:
    await service.revoke_device(principal.user_id, principal.session_id, logging_out=True)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return Accepted(status="logged_out")


@router.get("/devices", response_model=list[DeviceOut], openapi_extra=access(Access.PERSON))
async def list_devices(principal: CurrentPrincipal, service: Identity) -> list[DeviceOut]:
    return [
        DeviceOut(
            id=d.id,
            kind=d.kind,
            device_name=d.device_name,
            user_agent=d.user_agent,
            created_at=d.created_at,
            last_seen_at=d.last_seen_at,
            current=d.id == principal.session_id,
        )
        for d in await service.list_devices(principal.user_id)
    ]


@router.delete(
    "/devices/{device_id}",
    response_model=Accepted,
    openapi_extra=access(Access.OWNER, resource="identity.device"),
)
async def revoke_device(
    device_id: uuid.UUID, principal: CurrentPrincipal, service: Identity
) -> Accepted:
    await service.revoke_device(principal.user_id, device_id)
    return Accepted(status="revoked")


@router.get("/me", response_model=ProfileOut, openapi_extra=access(Access.PERSON))
async def my_profile(principal: CurrentPrincipal, service: Identity) -> ProfileOut:
    return _profile_out(await service.own_profile(principal.user_id))


@router.patch("/me", response_model=ProfileOut, openapi_extra=access(Access.PERSON))
async def update_profile(
    body: ProfileUpdate, principal: CurrentPrincipal, service: Identity
) -> ProfileOut:
    profile = await service.update_profile(
        principal.user_id,
        display_name=body.display_name,
        region=body.region,
        locale=body.locale,
        time_zone=body.time_zone,
    )
    return _profile_out(profile)


@router.put("/me/omo-id", response_model=ProfileOut, openapi_extra=access(Access.PERSON))
async def change_omo_id(
    body: OmoIdChange, principal: CurrentPrincipal, service: Identity
) -> ProfileOut:
    return _profile_out(await service.change_omo_id(principal.user_id, body.omo_id))


@router.put(
    "/me/avatar",
    response_model=ProfileOut,
    openapi_extra={
        **access(Access.PERSON),
        "requestBody": {
            "required": True,
            "content": {
                kind: {"schema": {"type": "string", "format": "binary"}} for kind in AVATAR_TYPES
            },
        },
    },
)
async def set_avatar(
    request: Request, principal: CurrentPrincipal, service: Identity
) -> ProfileOut:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type not in AVATAR_TYPES:
        raise ProblemError(
            "invalid-avatar", "Send the image as image/png, image/jpeg or image/webp."
        )
    limit = request.app.state.settings.avatar_max_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ProblemError(
            "avatar-too-large", "Use an image under %(kib)d KiB.", params={"kib": limit // 1024}
        )
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > limit:
            raise ProblemError(
                "avatar-too-large", "Use an image under %(kib)d KiB.", params={"kib": limit // 1024}
            )
    return _profile_out(await service.set_avatar(principal.user_id, bytes(data)))


@router.get(
    "/avatars/{avatar_id}",
    response_class=RawResponse,
    responses={200: {"content": {kind: {} for kind in AVATAR_TYPES}}},
    openapi_extra=access(Access.PERSON),
)
async def avatar(
    avatar_id: uuid.UUID, principal: CurrentPrincipal, service: Identity
) -> RawResponse:
    content_type, data = await service.avatar(avatar_id)
    return RawResponse(
        data, media_type=content_type, headers={"Cache-Control": "private, max-age=86400"}
    )


@router.get(
    "/people/{omo_id}", response_model=PublicProfileOut, openapi_extra=access(Access.PERSON)
)
async def find_person(
    omo_id: str, principal: CurrentPrincipal, service: Identity
) -> PublicProfileOut:
    return _public_out(await service.find_by_omo_id(omo_id))


# -- QR web login ---------------------------------------------------------------------------


def scan_url(request: Request, scan_code: str) -> str:
    base = request.app.state.settings.public_url or str(request.base_url)
    return f"{base.rstrip('/')}/qr-login/{scan_code}"


@router.post(
    "/qr-tickets",
    status_code=201,
    response_model=QrTicketOut,
    openapi_extra=access(Access.ANONYMOUS),
)
async def create_qr_ticket(request: Request, service: Identity) -> QrTicketOut:
    ticket = await service.create_qr_ticket(_user_agent(request), client_address(request))
    url = scan_url(request, ticket.scan_code)
    svg = segno.make(url, error="m").svg_inline(scale=5, dark="#111", light="#fff")
    return QrTicketOut(
        ticket_id=ticket.id,
        poll_token=ticket.poll_token,
        scan_url=url,
        qr_svg=svg,
        expires_at=ticket.expires_at,
    )


@router.post("/qr-tickets/scan", response_model=QrScanOut, openapi_extra=access(Access.PERSON))
async def scan_qr_ticket(
    body: QrScanRequest, principal: CurrentPrincipal, service: Identity
) -> QrScanOut:
    view = await service.scan_qr_ticket(principal, body.scan_code)
    return QrScanOut(
        ticket_id=view.id,
        status=view.status,
        browser_user_agent=view.browser_user_agent,
        expires_at=view.expires_at,
    )


@router.post("/qr-tickets/confirm", response_model=Accepted, openapi_extra=access(Access.PERSON))
async def confirm_qr_ticket(
    body: QrScanRequest, principal: CurrentPrincipal, service: Identity
) -> Accepted:
    await service.confirm_qr_ticket(principal, body.scan_code)
    return Accepted(status="confirmed")


@router.post(
    "/qr-tickets/{ticket_id}/claim",
    response_model=QrClaimOut,
    openapi_extra=access(Access.ANONYMOUS),
)
async def claim_qr_ticket(
    ticket_id: uuid.UUID,
    body: QrClaimRequest,
    request: Request,
    response: Response,
    service: Identity,
) -> QrClaimOut:
    claim = await service.claim_qr_ticket(
        ticket_id,
        body.poll_token,
        wait_seconds=body.wait_seconds,
        user_agent=_user_agent(request),
        client_address=client_address(request),
    )
    session = _session_out(request, response, claim.session) if claim.session else None
    return QrClaimOut(status=claim.status, session=session)  # type: ignore[arg-type]


@router.get("/audit-log", response_model=list[AuditEntryOut], openapi_extra=access(Access.PERSON))
async def audit_log(
    principal: CurrentPrincipal,
    service: Identity,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: uuid.UUID | None = None,
) -> list[AuditEntryOut]:
    """Security-relevant actions on one's own account, newest first."""
    entries = await service.audit_trail(principal.user_id, limit=limit, before=before)
    return [
        AuditEntryOut(
            id=e.id,
            action=e.action,
            actor=e.actor,
            client_address=e.client_address,
            detail=e.detail,
            occurred_at=e.occurred_at,
        )
        for e in entries
    ]


@router.get("/me/export", openapi_extra=access(Access.PERSON))
async def export_my_data(
    request: Request, principal: CurrentPrincipal, service: Identity
) -> JSONResponse:
    """Everything this service's identity part holds about you, as a JSON download."""
    data = await service.export_data(principal.user_id, client_address(request))
    return JSONResponse(
        data,
        headers={"Content-Disposition": 'attachment; filename="omo-my-data.json"'},
    )


@router.post("/me/erase", response_model=Accepted, openapi_extra=access(Access.PERSON))
async def erase_my_account(
    body: EraseRequest,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    service: Identity,
) -> Accepted:
    """Erase your account for good: phone, name, photo and sessions are removed at once."""
    await service.erase_account(principal.user_id, body.password, client_address(request))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return Accepted(status="erased")
