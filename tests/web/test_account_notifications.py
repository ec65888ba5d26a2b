"""A follower allows an account's notifications from the prompt card in the account
conversation, by keyboard, and withdraws them from the account page; axe-core on the page
with the prompt and the notifications section (Latin and CJK)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from tests.web.conftest import LiveServer, SmsGateway
from tests.web.test_accessibility import (
    HTML_LANG,
    api_sign_up_and_log_in,
    axe_source,
    blocking_violations,
    visit,
)
from tests.web.test_console import _bearer, _ok

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
CSRF = {"X-OMO-CSRF": "1"}
__all__ = ["axe_source"]  # the fixture


def _brand_asking(server: LiveServer, bearer: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    """A brand with a template; returns its account, the template and the owner's bearer."""
    api = server.url + "/api/v1/accounts"
    org = httpx.post(api + "/organisations", json={"name": "Caffè"}, headers=bearer).json()
    account = httpx.post(
        f"{api}/organisations/{org['id']}/accounts",
        json={"kind": "service", "name": "Caffè Roma"},
        headers=bearer,
    ).json()
    template = httpx.post(
        f"{api}/manage/{account['id']}/templates",
        json={"title": "Order ready", "content": "{{first.DATA}} Order {{order.DATA}}"},
        headers=bearer,
    ).json()
    return account["id"], template["template_id"], bearer


def _ask(server: LiveServer, bearer: dict[str, str], account: str, template: str) -> None:
    api = f"{server.url}/api/v1/accounts/manage/{account}"
    openid = httpx.get(api + "/followers", headers=bearer).json()["openids"][0]
    sent = httpx.post(
        api + "/messages",
        json={"openid": openid, "card": {"type": "subscribe", "template_id": template}},
        headers=bearer,
    )
    assert sent.status_code == 201, sent.text


@pytest.mark.parametrize("locale", ["en", "ja"])
def test_a_follower_allows_notifications_from_the_prompt_by_keyboard(
    browser: Any, live_server: LiveServer, sms_gateway: SmsGateway, axe_source: str, locale: str
) -> None:
    owner = _bearer(live_server, sms_gateway, "+393401234567", "Giulia")
    account, template, _ = _brand_asking(live_server, owner)
    context = browser.new_context(locale=HTML_LANG[locale])
    api_sign_up_and_log_in(
        context.request, live_server, sms_gateway, "+33612345678", "Camille", locale
    )
    followed = context.request.put(
        f"{live_server.url}/api/v1/accounts/{account}/follow", data={}, headers=CSRF
    )
    assert followed.status == 204, followed.text()
    _ask(live_server, owner, account, template)
    page = context.new_page()
    visit(page, f"{live_server.url}/accounts/{account}", HTML_LANG[locale])
    prompt = page.locator("[data-account-thread] li form").filter(
        has=page.locator("[data-accept-template]")
    )
    expect(prompt).to_have_count(1)
    problems = blocking_violations(page, axe_source, f"{locale} account with a prompt")

    # by keyboard: choose 3 in the prompt's list and allow
    choice = prompt.locator("select")
    choice.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(choice).to_have_value("3")
    page.keyboard.press("Tab")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    mine = _ok(context.request.get(f"{live_server.url}/api/v1/accounts/{account}/templates"))
    assert [t["remaining"] for t in mine] == [3]
    listed = page.locator(f'[data-template="{template}"]')
    expect(listed).to_contain_text("3")
    problems += blocking_violations(page, axe_source, f"{locale} account with notifications")

    # withdraw them all from the notifications section
    withdraw = listed.locator("[data-withdraw-template]")
    withdraw.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    mine = _ok(context.request.get(f"{live_server.url}/api/v1/accounts/{account}/templates"))
    assert [t["remaining"] for t in mine] == [0]
    expect(page.locator(f'[data-template="{template}"] [data-withdraw-template]')).to_have_count(0)
    context.close()
    assert not problems, "axe found serious or critical violations:\n" + "\n".join(problems)
