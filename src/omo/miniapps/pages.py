"""The mini program host page: `/mp/{appid}/{page}?scene=` (what a mini program code holds).

The host owns the top bar (name, badge, close) and runs the package in an iframe from the
mini program origin with `sandbox="allow-scripts"` only — never with `allow-same-origin` — so
the frame has an opaque origin: no cookies, no storage, no DOM of the host. The host hands it
one end of a MessageChannel at load; every bridge call travels over that port.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.background import BackgroundTask

from omo.core.access import Access, access
from omo.core.auth import SESSION_COOKIE, Principal
from omo.core.errors import ProblemError
from omo.core.i18n import gettext_for
from omo.miniapps.bridge import AppCard, BridgeService
from omo.miniapps.origin import PACKAGE_PREFIX, WARM_PAGE
from omo.miniapps.service import MiniAppService, check_scene
from omo.web.pages import render

router = APIRouter(include_in_schema=False)


async def _principal(request: Request) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    principal: Principal | None = await request.app.state.identity.authenticate(token)
    if principal and principal.locale:
        request.state.locale = principal.locale
    return principal


def _json_for_script(value: object) -> str:
    """JSON safe inside <script>: no '<', '>' or '&' survives as itself."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def permission_names(request: Request) -> dict[str, str]:
    _ = gettext_for(request)
    return {
        "profile": _("Your nickname and avatar"),
        "location": _("Your approximate location"),
        "precise_location": _("Your precise location"),
        "camera": _("Scanning codes with the camera"),
        "payment": _("Payments"),
        "coupons": _("Your coupons"),
        "subscribe_message": _("Sending you notifications"),
        "share": _("Sharing to your chats"),
    }


def _launching_page(request: Request, template: str, **context: Any) -> Response:
    """An app page that opens mini programs in place (miniapp_launch.js): it may frame the
    mini program origin, and names the blank page its idle-time warm frame loads."""
    origin = request.app.state.settings.resolved_miniapp_origin
    response = render(request, template, miniapp_warm=f"{origin}{WARM_PAGE}", **context)
    response.headers["Content-Security-Policy"] = host_csp(request.state.csp_nonce, origin)
    return response


def host_csp(nonce: str, miniapp_origin: str) -> str:
    """The platform's page policy, plus framing of the mini program origin (only)."""
    return (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self'; img-src 'self' data: blob:; "
        f"connect-src 'self'; frame-src {miniapp_origin}; child-src {miniapp_origin}; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


@router.api_route(
    "/mp/{appid}/{page:path}",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.PERSON),
)
async def host_page(
    request: Request,
    appid: str,
    page: str,
    scene: Annotated[str, Query(max_length=64)] = "",
    link: Annotated[str, Query(max_length=2048)] = "",
    trial: bool = False,
) -> Response:
    principal = await _principal(request)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    service: MiniAppService = request.app.state.miniapps
    try:
        check_scene(scene)
        launch = await service.launch(appid, page or None, principal.user_id, trial=trial)
    except ProblemError as refused:
        return render(request, "miniapp_host.html", status=refused.status, launch=None)
    consent = await service.consent(appid, principal.user_id)
    origin = request.app.state.settings.resolved_miniapp_origin
    base = f"{origin}{PACKAGE_PREFIX}{launch.appid}/{launch.version_id}/"
    options = {
        "appid": launch.appid,
        "base": base,
        "origin": origin,
        "page": launch.page,
        "pages": launch.pages,
        "name": launch.name,
        "permissions": {p["name"]: p["reason"] for p in launch.permissions},
        "scene": scene,
        "link": link,
        "trial": launch.trial,
        "verified": launch.verified,
        "shareUrl": f"{request.base_url}mp/{launch.appid}/",
        # Rendered in, so the frame starts loading without another round trip.
        "consent": {"privacy_accepted": consent.privacy_accepted, "grants": consent.grants},
    }
    names = permission_names(request)
    _ = gettext_for(request)
    texts = {
        "names": names,
        "asks": _("%(name)s asks for: %(what)s"),
        "off": _("%(amount)s off"),
        "until": _("valid until %(date)s"),
        "howMany": _("How many messages of “%(title)s”"),
        "shareCard": _("Mini program: %(name)s"),
        "shared": _("Shared to %(chat)s"),
    }
    response = render(
        request,
        "miniapp_host.html",
        launch=launch,
        permission_names=names,
        frame_src=f"{base}{quote(launch.page)}.html",
        privacy_accepted=consent.privacy_accepted,
        # The link is the scanned URL, chosen by whoever printed the code.
        options=_json_for_script(options),
        texts=_json_for_script(texts),
    )
    response.headers["Content-Security-Policy"] = host_csp(request.state.csp_nonce, origin)
    # The recently used list is written after the page is sent, off the launch's path.
    response.background = BackgroundTask(
        request.app.state.miniapps_bridge.opened, launch.appid, principal.user_id
    )
    return response


def _login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _cards(cards: list[AppCard]) -> list[dict[str, object]]:
    return [
        {
            "appid": c.appid,
            "name": c.name,
            "verified": c.verified,
            "url": f"/mp/{c.appid}/{quote(c.page, safe='/')}",
            "opened_at": c.opened_at,
        }
        for c in cards
    ]


@router.api_route(
    "/miniapps",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.PERSON),
)
async def miniapps_page(request: Request, q: Annotated[str, Query(max_length=64)] = "") -> Response:
    """The consumer app's mini programs: recently used, and search by name."""
    principal = await _principal(request)
    if principal is None:
        return _login(request)
    bridge: BridgeService = request.app.state.miniapps_bridge
    query = q.strip()
    return _launching_page(
        request,
        "miniapps.html",
        query=query,
        results=_cards(await bridge.search(query)) if query else [],
        recent=_cards(await bridge.recent(principal.user_id)),
    )


@router.api_route(
    "/settings/miniapps",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.PERSON),
)
async def miniapp_settings_page(request: Request) -> Response:
    """What the person allowed each mini program (permissions, notifications), revocable."""
    principal = await _principal(request)
    if principal is None:
        return _login(request)
    service: MiniAppService = request.app.state.miniapps
    bridge: BridgeService = request.app.state.miniapps_bridge
    return render(
        request,
        "miniapp_settings.html",
        consents=await service.consents_of(principal.user_id),
        subscriptions=await bridge.subscriptions_of(principal.user_id),
        permission_names=permission_names(request),
    )


@router.api_route(
    "/scan",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.PERSON),
)
async def scan_page(request: Request) -> Response:
    """The consumer app's scanner: the camera or an image → the mini program, brand, friend or
    login code it holds."""
    if await _principal(request) is None:
        return RedirectResponse("/login?next=/scan", status_code=303)
    return _launching_page(request, "scan.html")
