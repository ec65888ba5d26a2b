"""axe-core on every page of the consumer web app, in every language: no serious or critical
violation of WCAG 2.2 A/AA (and axe's best practices), in the light and the dark colour scheme.

axe-core comes from npm as a test-only tool (never shipped with OMO):

    npm ci --prefix tests/web

The pages keep their real Content-Security-Policy during the check: axe is evaluated through
the DevTools protocol (`page.evaluate`), which CSP does not govern, instead of being added as
an inline <script> that the policy would rightly block.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import APIRequestContext, Page, expect
from tests.web.conftest import LiveServer, SmsGateway

from omo.core.i18n import SUPPORTED

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
INSTALL = "npm ci --prefix tests/web"
PASSWORD = "a long accessible password"
# Which impacts fail the check; set OMO_TEST_AXE_IMPACTS=minor,moderate,serious,critical to audit.
BLOCKING = tuple(
    impact.strip()
    for impact in os.environ.get("OMO_TEST_AXE_IMPACTS", "serious,critical").split(",")
)

# Each language's own way of writing its tag in <html lang>.
HTML_LANG = {"en": "en", "zh_Hans": "zh-Hans", "it": "it", "fr": "fr", "ja": "ja"}
# Dark mode is checked in two scripts that render very differently (Latin and CJK).
DARK_TOO = ("en", "ja")
PHONES = {
    "en": "+447911123456",
    "zh_Hans": "+8613812345678",
    "it": "+393401234567",
    "fr": "+33612345678",
    "ja": "+819012345678",
}


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        message = f"axe-core is not installed at {AXE}; run `{INSTALL}`"
        if os.environ.get("OMO_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return AXE.read_text(encoding="utf-8")


def api_sign_up(
    server: LiveServer, gateway: SmsGateway, phone: str, name: str, locale: str = "en"
) -> None:
    """A person with a verified phone and `locale` as their language, made through the API."""
    base = server.url + "/api/v1/identity"
    body = {"phone": phone, "password": PASSWORD, "display_name": name}
    # The text message comes in English, whose code the gateway fixture knows how to read.
    signed_up = httpx.post(base + "/signup", json=body, headers={"Accept-Language": "en"})
    assert signed_up.status_code == 202, signed_up.text
    code = gateway.last_code(phone)
    verified = httpx.post(base + "/verify", json={"phone": phone, "code": code})
    assert verified.status_code == 200, verified.text
    if locale != "en":
        login = {"phone": phone, "password": PASSWORD, "device_name": "Setup"}
        token = httpx.post(base + "/login", json=login).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        changed = httpx.patch(base + "/me", json={"locale": locale}, headers=bearer)
        assert changed.status_code == 200, changed.text
        httpx.post(base + "/logout", headers=bearer)


def api_sign_up_and_log_in(
    request: APIRequestContext,
    server: LiveServer,
    gateway: SmsGateway,
    phone: str,
    name: str,
    locale: str,
) -> None:
    """Sign up, verify and log in through the API; the browser context gets the cookie."""
    api_sign_up(server, gateway, phone, name)
    base = server.url + "/api/v1/identity"
    login = {"phone": phone, "password": PASSWORD, "kind": "web", "device_name": "Chromium"}
    assert request.post(base + "/login", data=login).ok
    changed = request.patch(base + "/me", data={"locale": locale}, headers={"X-OMO-CSRF": "1"})
    assert changed.ok, changed.text()


def qr_scan_url(server: LiveServer) -> str:
    """The URL a computer's QR login code holds, as a phone's camera would read it."""
    ticket = httpx.post(server.url + "/api/v1/identity/qr-tickets", timeout=10)
    assert ticket.status_code in (200, 201), ticket.text
    return str(ticket.json()["scan_url"])


def axe_violations(page: Page, source: str) -> list[dict[str, Any]]:
    if page.evaluate("typeof window.axe") != "object":
        page.evaluate(source)
    result: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const results = await axe.run(document, { resultTypes: ["violations"] });
            return results.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.map((n) => n.target.join(" ")),
                summary: v.nodes.map((n) => n.failureSummary).slice(0, 2),
            }));
        }"""
    )
    return result


def blocking_violations(page: Page, source: str, label: str) -> list[str]:
    """One line per serious or critical violation on the page, labelled with where it was."""
    found = [v for v in axe_violations(page, source) if v["impact"] in BLOCKING]
    return [
        f"{label}: {v['impact']} {v['id']} — {v['help']}\n    at {v['targets'][:5]}\n"
        f"    {v['summary']}"
        for v in found
    ]


def visit(page: Page, url: str, lang: str) -> None:
    page.goto(url)
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_role("main")).to_be_visible()


def _signed_out_pages(server: LiveServer, locale: str, phone: str) -> list[tuple[str, str]]:
    query = f"lang={locale}"
    return [
        ("welcome", f"{server.url}/?{query}"),
        ("signup", f"{server.url}/signup?{query}"),
        ("verify", f"{server.url}/verify?phone={phone.replace('+', '%2B')}&{query}"),
        ("login", f"{server.url}/login?{query}"),
        ("login/qr", f"{server.url}/login/qr?{query}"),
    ]


@pytest.mark.parametrize("locale", SUPPORTED)
def test_every_page_has_no_serious_accessibility_violation(
    browser: Any, live_server: LiveServer, sms_gateway: SmsGateway, axe_source: str, locale: str
) -> None:
    lang = HTML_LANG[locale]
    phone = PHONES[locale]
    schemes = ("light", "dark") if locale in DARK_TOO else ("light",)
    problems: list[str] = []
    for scheme in schemes:
        # Signed out: the pages anyone sees, in the language chosen with ?lang=.
        visitor = browser.new_context(locale=lang, color_scheme=scheme)
        # The QR login page long-polls for 20 s; holding those polls in the browser keeps the
        # page as a person sees it (code shown, waiting) without tying up the server.
        visitor.route("**/qr-tickets/*/claim", lambda route: None)
        page = visitor.new_page()
        for name, url in _signed_out_pages(live_server, locale, phone):
            visit(page, url, lang)
            if name == "login/qr":
                expect(page.locator("[data-qr-image] svg")).to_be_visible()
            problems += blocking_violations(page, axe_source, f"{locale} {scheme} {name}")
        visitor.close()

    person = browser.new_context(locale=lang)
    api_sign_up_and_log_in(person.request, live_server, sms_gateway, phone, "Aiko", locale)
    page = person.new_page()
    for scheme in schemes:
        page.emulate_media(color_scheme=scheme)
        for name, path in (("home", "/"), ("profile", "/profile"), ("devices", "/devices")):
            visit(page, live_server.url + path, lang)
            problems += blocking_violations(page, axe_source, f"{locale} {scheme} {name}")
        visit(page, qr_scan_url(live_server), lang)
        expect(page.locator("[data-browser]")).not_to_have_text("…")
        problems += blocking_violations(page, axe_source, f"{locale} {scheme} qr-login confirm")
    person.close()
    assert not problems, "axe found serious or critical violations:\n" + "\n".join(problems)


def test_the_harness_does_catch_violations(browser: Any, axe_source: str) -> None:
    """A page with known faults fails the check, so a silent axe cannot pass everything."""
    page = browser.new_context().new_page()
    page.set_content(
        '<html><body><main><img src="data:,"><input id="x">'
        '<p style="color:#777;background:#888">low contrast</p></main></body></html>'
    )
    found = {v["id"] for v in axe_violations(page, axe_source) if v["impact"] in BLOCKING}
    assert {"image-alt", "label", "color-contrast", "html-has-lang"} <= found
    page.context.close()


def test_the_qr_code_has_a_text_alternative(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(locale="ja")
    context.route("**/qr-tickets/*/claim", lambda route: None)
    page = context.new_page()
    page.goto(live_server.url + "/login/qr")
    link = page.locator("[data-qr-link]")
    expect(link).to_have_attribute("href", re.compile(r"/qr-login/"))
    image = page.get_by_role("img")
    expect(image).to_have_accessible_name(re.compile(r"QR"))
    page.context.close()
