"""Security headers on every HTML page and API answer; cookie flags; CSRF; body limits."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from tests.safety.matrix import Caller, routes_of

from omo.core.access import Access
from omo.core.config import Settings

PAGE_PARAMS = {"scan_code": "not-a-real-code"}


def _pages(app: FastAPI) -> list[str]:
    paths = []
    for route in routes_of(app):
        if (
            route.method != "GET"
            or route.path.startswith(("/api/", "/cgi-bin/", "/sns/", "/customservice/"))
            or "{" in route.path.replace("{scan_code}", "")
        ):
            continue
        if route.path in ("/healthz",) or route.path.startswith("/problems"):
            continue
        paths.append(route.path.replace("{scan_code}", PAGE_PARAMS["scan_code"]))
    return paths


def _assert_hardened(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    assert "script-src 'self' 'nonce-" in csp
    assert "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "camera=(self)" in response.headers["permissions-policy"]


async def test_every_html_page_is_hardened_for_visitors_and_people(
    app: FastAPI, client: httpx.AsyncClient, callers: dict[str, Caller]
) -> None:
    pages = _pages(app)
    assert "/" in pages
    assert "/profile" in pages
    for path in pages:
        for caller in (callers["anonymous"], callers["person"]):
            response = await client.get(path, headers=caller.headers)
            assert response.status_code in (200, 303), path
            _assert_hardened(response)
            if response.status_code == 200:
                assert response.headers["content-type"].startswith("text/html"), path
                assert response.headers["cache-control"] == "no-store", path


async def test_each_page_gets_a_fresh_csp_nonce(client: httpx.AsyncClient) -> None:
    first = (await client.get("/")).headers["content-security-policy"]
    second = (await client.get("/")).headers["content-security-policy"]
    assert first != second


async def test_api_answers_carry_the_headers_too(client: httpx.AsyncClient) -> None:
    _assert_hardened(await client.get("/api/v1/identity/me"))


async def test_no_hsts_without_tls(client: httpx.AsyncClient) -> None:
    assert "strict-transport-security" not in (await client.get("/")).headers


@pytest.fixture
def settings_tls(settings: Settings) -> Settings:
    return settings.model_copy(update={"tls": True})


async def test_behind_tls_there_is_hsts_and_cookies_are_secure(
    settings_tls: Settings, clock: object
) -> None:
    from asgi_lifespan import LifespanManager

    from omo.app import create_app

    app = create_app(settings_tls, clock)  # type: ignore[arg-type]
    async with LifespanManager(app):
        await app.state.identity.ensure_person("+393401234567", "correct horse battery", "G")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as web:
            response = await web.post(
                "/api/v1/identity/login",
                json={"phone": "+393401234567", "password": "correct horse battery"},
            )
            assert "max-age=" in response.headers["strict-transport-security"]
            cookie = response.headers["set-cookie"].lower()
            assert "secure" in cookie
            assert "httponly" in cookie
            assert "samesite=lax" in cookie


async def test_an_oversized_body_is_refused_before_it_is_read(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/identity/login",
        content=b"{" + b" " * (3 * 1024 * 1024) + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["type"] == "/problems/payload-too-large"


async def test_nul_characters_are_refused_everywhere(client: httpx.AsyncClient) -> None:
    in_path = await client.get("/api/v1/identity/people/a%00b")
    assert in_path.status_code in (400, 401)
    in_body = await client.post(
        "/api/v1/identity/login", json={"phone": "+39340\x001234567", "password": "x"}
    )
    assert in_body.status_code == 422
    assert in_body.json()["type"] == "/problems/validation-error"


def test_every_declared_level_is_known() -> None:
    assert {level.value for level in Access} >= {"anonymous", "person", "owner"}
