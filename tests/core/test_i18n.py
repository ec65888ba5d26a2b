"""How a request's language is chosen and how translations reach pages, APIs and texts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from tests.identity.conftest import PASSWORD, Person

from omo.core.auth import SESSION_COOKIE
from omo.core.clock import ManualClock
from omo.core.formatting import format_datetime
from omo.core.i18n import DEFAULT, SUPPORTED, gettext_for, locale_of, negotiate, translations


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("ja", "ja"),
        ("ja-JP,ja;q=0.9,en;q=0.8", "ja"),
        ("de-DE,de;q=0.9,fr;q=0.8,en;q=0.5", "fr"),
        ("zh-CN,zh;q=0.9", "zh_Hans"),
        ("zh-TW", "zh_Hans"),
        ("zh-Hans-CN", "zh_Hans"),
        ("en;q=0.5, it;q=0.8", "it"),
        ("it;q=0, fr", "fr"),
        ("it;q=nonsense, ja;q=0.1", "ja"),
        ("*", "en"),
        ("de, es", "en"),
        ("fr-CA;q=1.0, fr;q=1.0", "fr"),
    ],
)
def test_accept_language(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


def test_the_deployments_default_applies_when_nothing_matches() -> None:
    assert negotiate("de", default="it") == "it"
    assert negotiate(None, default="ja") == "ja"


def test_equal_quality_keeps_the_browsers_order() -> None:
    assert negotiate("fr, it") == "fr"
    assert negotiate("it, fr") == "it"


def _request(headers: dict[str, str], state: dict[str, object] | None = None) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "state": state or {},
    }
    return Request(scope)


def test_a_chosen_locale_beats_the_header() -> None:
    assert locale_of(_request({"Accept-Language": "ja"})) == "ja"
    assert locale_of(_request({"Accept-Language": "ja"}, {"locale": "it"})) == "it"
    assert gettext_for(_request({}, {"locale": "fr"}))("Log in") == "Se connecter"


@pytest.mark.parametrize("locale", SUPPORTED)
def test_every_supported_locale_loads(locale: str) -> None:
    catalogue = translations(locale)
    assert catalogue.gettext("Profile")
    if locale != DEFAULT:
        assert catalogue.gettext("Profile") != "Profile"


@pytest.mark.parametrize(
    ("locale", "one", "five"),
    [
        ("it", "Scade tra 1 minuto.", "Scade tra 5 minuti."),
        ("fr", "Il expire dans 1 minute.", "Il expire dans 5 minutes."),
        ("en", "It expires in 1 minute.", "It expires in 5 minutes."),
    ],
)
def test_the_text_message_has_plural_forms(locale: str, one: str, five: str) -> None:
    singular = "Your OMO code is %(code)s. It expires in %(minutes)d minute. Never share it."
    plural = "Your OMO code is %(code)s. It expires in %(minutes)d minutes. Never share it."
    catalogue = translations(locale)
    for count, wanted in ((1, one), (5, five)):
        text = catalogue.ngettext(singular, plural, count) % {"code": "123456", "minutes": count}
        assert wanted in text
        assert "123456" in text


# -- a person's own language and time zone, through the API and on their pages -------------

SignUp = Callable[..., Awaitable[Person]]


@pytest.fixture
def sign_up(client: httpx.AsyncClient, sms: Any) -> SignUp:
    async def _sign_up(phone: str = "+393401234567", name: str = "Giulia") -> Person:
        body = {"phone": phone, "password": PASSWORD, "display_name": name}
        assert (await client.post("/api/v1/identity/signup", json=body)).status_code == 202
        code = {"phone": phone, "code": sms.last_code()}
        assert (await client.post("/api/v1/identity/verify", json=code)).status_code == 200
        credentials = {"phone": phone, "password": PASSWORD}
        login = await client.post("/api/v1/identity/login", json=credentials)
        client.cookies.clear()
        return Person(phone=phone, token=login.json()["token"])

    return _sign_up


async def test_a_person_sets_a_time_zone(client: httpx.AsyncClient, sign_up: SignUp) -> None:
    person = await sign_up()
    me = "/api/v1/identity/me"
    assert (await client.get(me, headers=person.auth)).json()["time_zone"] is None
    changed = await client.patch(me, json={"time_zone": "Asia/Tokyo"}, headers=person.auth)
    assert changed.status_code == 200, changed.text
    assert (await client.get(me, headers=person.auth)).json()["time_zone"] == "Asia/Tokyo"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "asia/tokyo", "../etc/passwd", "", "+09:00"])
async def test_an_unknown_time_zone_is_refused_in_the_persons_language(
    client: httpx.AsyncClient, sign_up: SignUp, zone: str
) -> None:
    person = await sign_up()
    me = "/api/v1/identity/me"
    await client.patch(me, json={"locale": "fr"}, headers=person.auth)
    refused = await client.patch(me, json={"time_zone": zone}, headers=person.auth)
    assert refused.status_code == 422
    assert refused.json()["type"] == "/problems/invalid-time-zone"
    assert refused.json()["title"] == "Fuseau horaire inconnu"


async def test_the_devices_page_shows_times_in_the_persons_zone_and_language(
    client: httpx.AsyncClient, sign_up: SignUp, clock: ManualClock
) -> None:
    person = await sign_up("+819012345678", "Yuki")
    me = "/api/v1/identity/me"
    await client.patch(me, json={"locale": "ja", "time_zone": "Asia/Tokyo"}, headers=person.auth)
    client.cookies.set(SESSION_COOKIE, person.token)
    page = await client.get("/devices")
    assert page.status_code == 200
    # The clock stands at 09:00 UTC, which is 18:00 in Tokyo.
    expected = format_datetime(clock.now(), "ja", "Asia/Tokyo")
    assert expected == "2026/11/25 18:00"
    assert f">{expected}</time>" in page.text
    assert "UTC" not in page.text


async def test_without_a_setting_times_use_the_deployments_zone(
    client: httpx.AsyncClient, sign_up: SignUp, clock: ManualClock
) -> None:
    person = await sign_up()
    client.cookies.set(SESSION_COOKIE, person.token)
    page = await client.get("/devices?lang=it")
    assert f">{format_datetime(clock.now(), 'en', 'UTC')}</time>" in page.text


async def test_the_profile_page_offers_time_zones_named_in_the_persons_language(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up()
    me = "/api/v1/identity/me"
    await client.patch(me, json={"locale": "ja", "time_zone": "Asia/Tokyo"}, headers=person.auth)
    client.cookies.set(SESSION_COOKIE, person.token)
    page = await client.get("/profile")
    assert '<option value="Asia/Tokyo" selected>日本時間</option>' in page.text
    assert 'name="time_zone"' in page.text
