"""Server-rendered pages of the consumer web app. Scripts only enhance them (plain ES modules)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape

from omo.core.auth import SESSION_COOKIE, Principal
from omo.core.i18n import SUPPORTED, babel_locale, locale_of, translations
from omo.identity.service import IdentityService

TEMPLATE_DIR = Path(__file__).parent / "templates"


@cache
def templates_for(locale: str) -> Jinja2Templates:
    """One environment per language, with new-style gettext (`_("Hi %(name)s", name=...)`)."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(("html",)),
        extensions=["jinja2.ext.i18n"],
    )
    environment.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    return Jinja2Templates(env=environment)


TEMPLATES = templates_for("en")

router = APIRouter(include_in_schema=False)

LANGUAGE_NAMES = {code: babel_locale(code).get_display_name(code) or code for code in SUPPORTED}


async def _principal(request: Request) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    identity: IdentityService = request.app.state.identity
    principal = await identity.authenticate(token)
    if principal and principal.locale:
        request.state.locale = principal.locale
    return principal


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    locale = locale_of(request)
    context.update(
        html_lang=locale.replace("_", "-"),
        locale=locale,
        languages=LANGUAGE_NAMES,
        csp_nonce=request.state.csp_nonce,
    )
    response = templates_for(locale).TemplateResponse(
        request, template, context, status_code=status
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _login_redirect(request: Request) -> Response:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def home(request: Request) -> Response:
    principal = await _principal(request)
    if principal is None:
        return render(request, "welcome.html")
    identity: IdentityService = request.app.state.identity
    profile = await identity.own_profile(principal.user_id)
    return render(request, "home.html", profile=profile)


@router.api_route("/signup", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def signup_page(request: Request) -> Response:
    return render(request, "signup.html")


@router.api_route("/verify", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def verify_page(request: Request, phone: str = "") -> Response:
    return render(request, "verify.html", phone=phone[:32])


@router.api_route("/login", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/") -> Response:
    safe_next = next if next.startswith("/") and not next.startswith("//") else "/"
    return render(request, "login.html", next=safe_next)


@router.api_route("/login/qr", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def qr_login_page(request: Request) -> Response:
    return render(request, "login_qr.html")


@router.api_route("/qr-login/{scan_code}", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def qr_confirm_page(request: Request, scan_code: str) -> Response:
    if await _principal(request) is None:
        return _login_redirect(request)
    return render(request, "qr_confirm.html", scan_code=scan_code[:64])


@router.api_route("/profile", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def profile_page(request: Request) -> Response:
    principal = await _principal(request)
    if principal is None:
        return _login_redirect(request)
    identity: IdentityService = request.app.state.identity
    profile = await identity.own_profile(principal.user_id)
    return render(request, "profile.html", profile=profile)


@router.api_route("/devices", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def devices_page(request: Request) -> Response:
    principal = await _principal(request)
    if principal is None:
        return _login_redirect(request)
    identity: IdentityService = request.app.state.identity
    devices = await identity.list_devices(principal.user_id)
    return render(request, "devices.html", devices=devices, current=principal.session_id)
