"""The brand console in a real browser: axe-core on every console page in every language, and
the whole care journey — a customer writes to a brand, the agent sees it arrive (no reload),
replies (by keyboard), the customer reads the reply as it arrives (no reload either), the agent
resolves and the customer rates it."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import APIRequestContext, Page, expect
from tests.web.conftest import LiveServer, SmsGateway
from tests.web.test_accessibility import (
    DARK_TOO,
    HTML_LANG,
    PASSWORD,
    api_sign_up,
    api_sign_up_and_log_in,
    axe_source,
    blocking_violations,
    visit,
)

from omo.core.i18n import SUPPORTED

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
CSRF = {"X-OMO-CSRF": "1"}
__all__ = ["axe_source"]  # the fixture
PHONES = {
    "en": "+447911123450",
    "zh_Hans": "+8613812345670",
    "it": "+393401234560",
    "fr": "+33612345670",
    "ja": "+819012345670",
}


def _ok(response: Any) -> Any:
    assert response.ok, response.text()
    return response.json()


def _bearer(server: LiveServer, gateway: SmsGateway, phone: str, name: str) -> dict[str, str]:
    api_sign_up(server, gateway, phone, name)
    login = httpx.post(
        server.url + "/api/v1/identity/login", json={"phone": phone, "password": PASSWORD}
    )
    return {"Authorization": f"Bearer {login.json()['token']}"}


def _desk(request: APIRequestContext, server: LiveServer) -> tuple[str, str, str]:
    """A brand of the signed-in person, with an account and a team (they its agent)."""
    api = server.url + "/api/v1"
    org = _ok(request.post(api + "/accounts/organisations", data={"name": "Caffè"}, headers=CSRF))
    account = _ok(
        request.post(
            f"{api}/accounts/organisations/{org['id']}/accounts",
            data={"kind": "service", "name": "Caffè Roma"},
            headers=CSRF,
        )
    )
    team = _ok(
        request.post(
            f"{api}/care/organisations/{org['id']}/teams",
            data={"name": "Desk", "account_ids": [account["id"]]},
            headers=CSRF,
        )
    )
    return org["id"], account["id"], team["id"]


def _add_agent(
    request: APIRequestContext, server: LiveServer, org: str, team: str, omo: str
) -> None:
    """Make `omo` an agent of the brand and of the team."""
    api = server.url + "/api/v1"
    _ok(
        request.put(
            f"{api}/accounts/organisations/{org}/members",
            data={"omo_id": omo, "role": "agent"},
            headers=CSRF,
        )
    )
    _ok(
        request.put(
            f"{api}/care/teams/{team}/agents", data={"omo_id": omo, "capacity": 5}, headers=CSRF
        )
    )


def _customer_writes(server: LiveServer, bearer: dict[str, str], account: str, text: str) -> None:
    api = server.url + "/api/v1/accounts"
    assert httpx.put(f"{api}/{account}/follow", json={}, headers=bearer).status_code == 204
    sent = httpx.post(f"{api}/{account}/messages", json={"text": text}, headers=bearer)
    assert sent.status_code in (200, 201), sent.text


def _first_conversation(request: APIRequestContext, server: LiveServer, org: str) -> str:
    for _ in range(100):
        rows = _ok(request.get(f"{server.url}/api/v1/care/organisations/{org}/conversations"))
        if rows:
            return str(rows[0]["id"])
        time.sleep(0.1)
    raise AssertionError("the conversation never reached the inbox")


@pytest.mark.parametrize("locale", SUPPORTED)
def test_the_console_pages_have_no_serious_accessibility_violation(
    browser: Any, live_server: LiveServer, sms_gateway: SmsGateway, axe_source: str, locale: str
) -> None:
    lang = HTML_LANG[locale]
    context = browser.new_context(locale=lang)
    api_sign_up_and_log_in(
        context.request, live_server, sms_gateway, PHONES[locale], "Aiko", locale
    )
    me = _ok(context.request.get(live_server.url + "/api/v1/identity/me"))["omo_id"]
    org, account, team = _desk(context.request, live_server)
    _ok(  # the owner serves in the team too
        context.request.put(
            f"{live_server.url}/api/v1/care/teams/{team}/agents",
            data={"omo_id": me, "capacity": 5},
            headers=CSRF,
        )
    )
    customer = _bearer(live_server, sms_gateway, "+33698765432", "Camille")
    _customer_writes(live_server, customer, account, "咖啡机坏了 — the coffee machine broke")
    conversation = _first_conversation(context.request, live_server, org)
    care = f"{live_server.url}/api/v1/care/conversations/{conversation}"
    _ok(context.request.post(care + "/notes", data={"text": f"@{me} check"}, headers=CSRF))
    _ok(context.request.put(care + "/labels", data={"labels": ["refund"]}, headers=CSRF))
    pages = [
        ("inbox", f"/console/{org}"),
        ("inbox search", f"/console/{org}?q=咖啡&status=open&assignee=me"),
        ("conversation", f"/console/conversations/{conversation}"),
        ("missing", f"/console/conversations/{uuid.uuid4()}"),
    ]
    page = context.new_page()
    problems: list[str] = []
    for scheme in ("light", "dark") if locale in DARK_TOO else ("light",):
        page.emulate_media(color_scheme=scheme)
        for name, path in pages:
            visit(page, live_server.url + path, lang)
            if name != "missing":
                expect(page.locator("[data-console]")).to_have_attribute("data-online", "true")
            problems += blocking_violations(page, axe_source, f"{locale} {scheme} {name}")
    context.close()
    assert not problems, "axe found serious or critical violations:\n" + "\n".join(problems)


def _thread(page: Page) -> Any:
    return page.locator("[data-account-thread] li")


def test_a_customer_is_answered_from_the_console_and_rates_the_care(
    browser: Any, live_server: LiveServer, sms_gateway: SmsGateway
) -> None:
    owner = browser.new_context(locale="en-US")
    api_sign_up_and_log_in(owner.request, live_server, sms_gateway, "+393401234567", "Giulia", "en")
    org, account, team = _desk(owner.request, live_server)
    agent_context = browser.new_context(locale="en-US")
    api_sign_up_and_log_in(
        agent_context.request, live_server, sms_gateway, "+393409999999", "Marco", "en"
    )
    agent_omo = _ok(agent_context.request.get(live_server.url + "/api/v1/identity/me"))["omo_id"]
    _add_agent(owner.request, live_server, org, team, agent_omo)
    customer_context = browser.new_context(locale="en-US")
    api_sign_up_and_log_in(
        customer_context.request, live_server, sms_gateway, "+33612345678", "Camille", "en"
    )

    # the agent waits in the inbox, connected to the realtime gateway
    agent = agent_context.new_page()
    agent.goto(f"{live_server.url}/console")
    expect(agent).to_have_url(re.compile(f"/console/{org}$"))
    expect(agent.locator("[data-console]")).to_have_attribute("data-online", "true")

    # the customer follows the brand and writes to it
    customer = customer_context.new_page()
    customer.goto(f"{live_server.url}/accounts/{account}")
    customer.get_by_role("button", name="Follow").click()
    expect(customer.get_by_role("button", name="Unfollow")).to_be_visible()
    # the page's scripts ran and it listens on the realtime gateway
    expect(customer.locator("[data-account-thread]")).to_have_attribute("data-online", "true")
    customer.get_by_role("textbox", name="Message").fill("My cappuccino was cold")
    customer.get_by_role("button", name="Send").click()
    expect(_thread(customer).last).to_contain_text("My cappuccino was cold")
    expect(customer.locator("[data-account-thread]")).to_have_attribute("data-online", "true")

    # it appears in the agent's inbox without a reload, assigned to them
    row = agent.get_by_role("link", name="My cappuccino was cold")
    expect(row).to_be_visible(timeout=10_000)
    expect(agent.locator("[data-live=inbox]")).to_contain_text(f"Assigned to {agent_omo}")
    # by keyboard: open it with Enter, write, send with Ctrl+Enter
    row.focus()
    agent.keyboard.press("Enter")
    reply = agent.get_by_role("textbox", name="Reply to the customer")
    reply.focus()
    agent.keyboard.type("Sorry! A new one is on us.")
    agent.keyboard.press("Control+Enter")
    expect(agent.locator("[data-live=thread]")).to_contain_text("Sorry! A new one is on us.")

    # the customer sees the reply arrive without a reload (the same realtime gateway)
    expect(_thread(customer).last).to_contain_text("Sorry! A new one is on us.", timeout=10_000)
    # sent once: the console's forms are the console's own (not also the pages' generic ones)
    expect(_thread(customer).filter(has_text="Sorry! A new one is on us.")).to_have_count(1)

    # the agent resolves; the customer is asked for a rating and gives one
    agent.get_by_role("button", name="Resolve").focus()
    agent.keyboard.press("Enter")
    expect(agent.locator("[data-live=summary]")).to_have_attribute(
        "data-conversation-status", "resolved"
    )
    # the reloaded page is listening again before the customer answers
    expect(agent.locator("[data-console]")).to_have_attribute("data-online", "true")
    expect(_thread(customer).last).to_contain_text("How did we do?", timeout=10_000)
    customer.get_by_role("textbox", name="Message").fill("5 warm and quick")
    customer.get_by_role("button", name="Send").click()
    expect(agent.locator("[data-live=summary]")).to_contain_text("Rated 5 of 5", timeout=10_000)
    expect(agent.locator("[data-live=summary]")).to_contain_text("warm and quick")
    for context in (owner, agent_context, customer_context):
        context.close()
