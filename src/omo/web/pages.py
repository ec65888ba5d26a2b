"""Server-rendered pages of the consumer web app. Scripts only enhance them (plain ES modules)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from babel.dates import get_timezone_location
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context

from omo.core.access import Access, access
from omo.core.auth import SESSION_COOKIE, Principal
from omo.core.formatting import (
    DEFAULT_TIME_ZONE,
    format_date,
    format_datetime,
    format_money,
    format_number,
    format_time,
    person_name,
    time_zone,
    time_zones,
    truncate,
)
from omo.core.i18n import SUPPORTED, babel_locale, locale_of, translations
from omo.core.money import Money
from omo.identity.service import IdentityService, OwnProfile

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
    install_formats(environment, locale)
    return Jinja2Templates(env=environment)


def install_formats(environment: Environment, locale: str) -> None:
    """Filters that write money, dates, numbers, names and text the way `locale` reads them.

    Dates and times use the `time_zone` of the page's context (the person's own setting, else
    the deployment's default): `{{ device.last_seen_at | datetime }}`, `{{ price | money }}`,
    `{{ 1234.5 | number }}`, `{{ text | shorten(40) }}`, `{{ person_name(given, family) }}`.
    """

    @pass_context
    def datetime_filter(context: Context, value: datetime, width: str = "medium") -> str:
        return format_datetime(value, locale, context.get("time_zone"), width)  # type: ignore[arg-type]

    @pass_context
    def date_filter(context: Context, value: date | datetime, width: str = "medium") -> str:
        return format_date(value, locale, context.get("time_zone"), width)  # type: ignore[arg-type]

    @pass_context
    def time_filter(context: Context, value: datetime) -> str:
        return format_time(value, locale, context.get("time_zone"))

    def money_filter(value: Money) -> str:
        return format_money(value, locale)

    def number_filter(value: int | float | Decimal) -> str:
        return format_number(value, locale)

    def name_global(given: str, family: str) -> str:
        return person_name(given, family, locale)

    environment.filters.update(
        datetime=datetime_filter,
        date=date_filter,
        time=time_filter,
        money=money_filter,
        number=number_filter,
        shorten=truncate,
    )
    environment.globals["person_name"] = name_global


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


def deployment_time_zone(request: Request) -> str:
    configured = getattr(request.app.state.settings, "default_time_zone", None)
    return configured if isinstance(configured, str) and configured else DEFAULT_TIME_ZONE


@cache
def time_zone_choices(locale: str) -> tuple[tuple[str, str], ...]:
    """(IANA name, place in `locale`) for the picker: one entry per place, sorted by place."""
    areas = (
        *("Africa/", "America/", "Antarctica/", "Asia/", "Atlantic/", "Australia/"),
        *("Europe/", "Indian/", "Pacific/"),
    )
    by_label: dict[str, str] = {}
    for name in sorted(time_zones()):
        if name.startswith(areas):
            label = str(get_timezone_location(time_zone(name), locale=babel_locale(locale)))
            by_label.setdefault(label, name)
    return (
        ("UTC", "UTC"),
        *sorted(((zone, place) for place, zone in by_label.items()), key=lambda c: c[1]),
    )


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    locale = locale_of(request)
    context.setdefault("time_zone", deployment_time_zone(request))
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


def _time_zone_of(request: Request, profile: OwnProfile) -> str:
    """The person's own time zone, else the deployment's: the `time_zone` of their pages."""
    return profile.time_zone or deployment_time_zone(request)


def _login_redirect(request: Request) -> Response:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


@router.api_route(
    "/",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.ANONYMOUS),
)
async def home(request: Request) -> Response:
    principal = await _principal(request)
    if principal is None:
        return render(request, "welcome.html")
    identity: IdentityService = request.app.state.identity
    profile = await identity.own_profile(principal.user_id)
    return render(request, "home.html", profile=profile, time_zone=_time_zone_of(request, profile))


@router.api_route(
    "/signup",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.ANONYMOUS),
)
async def signup_page(request: Request) -> Response:
    return render(request, "signup.html")


@router.api_route(
    "/verify",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.ANONYMOUS),
)
async def verify_page(request: Request, phone: str = "") -> Response:
    return render(request, "verify.html", phone=phone[:32])


@router.api_route(
    "/login",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.ANONYMOUS),
)
async def login_page(request: Request, next: str = "/") -> Response:
    safe_next = next if next.startswith("/") and not next.startswith("//") else "/"
    return render(request, "login.html", next=safe_next)


@router.api_route(
    "/login/qr",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.ANONYMOUS),
)
async def qr_login_page(request: Request) -> Response:
    return render(request, "login_qr.html")


@router.api_route(
    "/qr-login/{scan_code}",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.PERSON),
)
async def qr_confirm_page(request: Request, scan_code: str) -> Response:
    if await _principal(request) is None:
        return _login_redirect(request)
    return render(request, "qr_confirm.html", scan_code=scan_code[:64])


@router.api_route(
    "/profile",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.PERSON),
)
async def profile_page(request: Request) -> Response:
    principal = await _principal(request)
    if principal is None:
        return _login_redirect(request)
    identity: IdentityService = request.app.state.identity
    profile = await identity.own_profile(principal.user_id)
    choices = time_zone_choices(locale_of(request))
    own = profile.time_zone
    if own and all(name != own for name, _ in choices):
        choices = ((own, own), *choices)
    return render(
        request,
        "profile.html",
        profile=profile,
        time_zone=_time_zone_of(request, profile),
        default_time_zone=deployment_time_zone(request),
        time_zone_choices=choices,
    )


@router.api_route(
    "/devices",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.PERSON),
)
async def devices_page(request: Request) -> Response:
    principal = await _principal(request)
    if principal is None:
        return _login_redirect(request)
    identity: IdentityService = request.app.state.identity
    devices = await identity.list_devices(principal.user_id)
    profile = await identity.own_profile(principal.user_id)
    return render(
        request,
        "devices.html",
        devices=devices,
        current=principal.session_id,
        time_zone=_time_zone_of(request, profile),
    )
