"""The platform operator's console (/operator) in a real browser: axe-core in every language,
and by keyboard only — verify an account, set a kind's broadcast quota, add a template to the
library and retire it; a person who is not an operator gets the 404 page."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import APIRequestContext, Page, expect
from tests.web.conftest import LiveServer, SmsGateway
from tests.web.test_accessibility import (
    DARK_TOO,
    HTML_LANG,
    api_sign_up_and_log_in,
    axe_source,
    blocking_violations,
    visit,
)

from omo.core.config import Settings
from omo.core.i18n import SUPPORTED

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
CSRF = {"X-OMO-CSRF": "1"}
OPERATOR = "platform-op"
__all__ = ["axe_source"]  # the fixture


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"operators": OPERATOR})


def _ok(response: Any) -> Any:
    assert response.ok, response.text()
    return response.json() if response.status != 204 else None


def _become_operator(request: APIRequestContext, server: LiveServer) -> None:
    _ok(
        request.put(
            server.url + "/api/v1/identity/me/omo-id", data={"omo_id": OPERATOR}, headers=CSRF
        )
    )


def _brand(request: APIRequestContext, server: LiveServer, name: str) -> str:
    api = server.url + "/api/v1/accounts"
    org = _ok(request.post(api + "/organisations", data={"name": name}, headers=CSRF))
    account = _ok(
        request.post(
            f"{api}/organisations/{org['id']}/accounts",
            data={"kind": "subscription", "name": name},
            headers=CSRF,
        )
    )
    return str(account["id"])


def _submit(page: Page) -> None:
    """Enter on the focused control; the form's API call answers, then the page loads again."""
    with page.expect_navigation():
        page.keyboard.press("Enter")


def _tab_to(page: Page, target: Any, limit: int = 80) -> None:
    """Press Tab until `target` has the focus (a keyboard user's way there)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("node => node === document.activeElement"):
            return
    raise AssertionError("Tab never reached the control")


@pytest.mark.parametrize("locale", SUPPORTED)
def test_the_operator_console_has_no_serious_accessibility_violation(
    browser: Any, live_server: LiveServer, sms_gateway: SmsGateway, axe_source: str, locale: str
) -> None:
    lang = HTML_LANG[locale]
    context = browser.new_context(locale=lang)
    phone = {"en": "+447911123451", "zh_Hans": "+8613812345671", "it": "+393401234561"}.get(
        locale, "+33612345671" if locale == "fr" else "+819012345671"
    )
    api_sign_up_and_log_in(context.request, live_server, sms_gateway, phone, "Ornella", locale)
    refused = context.new_page()
    answer = refused.goto(live_server.url + "/operator")
    assert answer is not None
    assert answer.status == 404  # not (yet) an operator
    problems = blocking_violations(refused, axe_source, f"{locale} not an operator")
    _become_operator(context.request, live_server)
    _brand(context.request, live_server, "Caffè Aurora")
    _ok(
        context.request.post(
            live_server.url + "/api/v1/accounts/operator/template-library",
            data={
                "title": "Order shipped",
                "content": "{{first.DATA}} {{order.DATA}}",
                "primary_industry": "Retail",
            },
            headers=CSRF,
        )
    )
    page = context.new_page()
    for scheme in ("light", "dark") if locale in DARK_TOO else ("light",):
        page.emulate_media(color_scheme=scheme)
        visit(page, live_server.url + "/operator", lang)
        expect(page.locator("[data-library-template]")).to_have_count(1)
        problems += blocking_violations(page, axe_source, f"{locale} {scheme} operator")
    context.close()
    assert not problems, "axe found serious or critical violations:\n" + "\n".join(problems)


def test_an_operator_works_the_console_by_keyboard(
    browser: Any, live_server: LiveServer, sms_gateway: SmsGateway
) -> None:
    context = browser.new_context(locale="en-US")
    api_sign_up_and_log_in(
        context.request, live_server, sms_gateway, "+393471112233", "Ornella", "en"
    )
    _become_operator(context.request, live_server)
    account = _brand(context.request, live_server, "Caffè Aurora")
    page = context.new_page()
    page.goto(live_server.url + "/operator")
    row = page.locator(f'[data-account="{account}"]')
    expect(row.locator("[data-verified]")).to_have_count(0)

    # verify the account
    _tab_to(page, row.get_by_role("button", name="Verify"))
    _submit(page)
    expect(row.locator("[data-verified]")).to_be_visible()
    profile = context.request.get(f"{live_server.url}/api/v1/accounts/{account}")
    assert _ok(profile)["verified"] is True

    # subscription accounts may broadcast twice a day
    field = page.get_by_role("spinbutton", name="Broadcasts per day, subscription accounts")
    _tab_to(page, field)
    page.keyboard.press("Control+A")
    page.keyboard.type("2")
    _submit(page)
    expect(field).to_have_value("2")
    quotas = _ok(context.request.get(f"{live_server.url}/api/v1/accounts/operator/kind-quotas"))
    assert quotas["subscription"] == 2

    # a template for the library
    _tab_to(page, page.get_by_role("textbox", name="Title"))
    page.keyboard.type("Table ready")
    page.keyboard.press("Tab")
    page.keyboard.type("Table {{table.DATA}} is ready")
    _tab_to(page, page.get_by_role("textbox", name="Industry"))
    page.keyboard.type("Food")
    _tab_to(page, page.get_by_role("button", name="Add to the library"))
    _submit(page)
    added = page.locator("[data-library-template]")
    expect(added).to_have_count(1)
    expect(added).to_contain_text("Table ready")
    library = _ok(context.request.get(f"{live_server.url}/api/v1/accounts/template-library"))
    assert [t["title"] for t in library] == ["Table ready"]

    # a mistake is announced in the form, by the API's message
    _tab_to(page, page.get_by_role("textbox", name="Title"))
    page.keyboard.type("No fields")
    page.keyboard.press("Tab")
    page.keyboard.type("plain text")
    _tab_to(page, page.get_by_role("textbox", name="Industry"))
    page.keyboard.type("Food")
    page.keyboard.press("Enter")
    error = page.locator("[data-operator-library] form[aria-labelledby] [data-form-error]")
    expect(error).to_be_visible()
    expect(error).to_be_focused()

    # retire it
    _tab_to(page, added.get_by_role("button", name="Retire"))
    _submit(page)
    expect(page.locator("[data-library-template]")).to_have_count(0)
    context.close()
