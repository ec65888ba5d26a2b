"""Two people chat in two browser contexts; one drops off the network and catches up."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tests.web.conftest import CHROMIUM_FLAGS, LiveServer, SmsGateway, chromium_path
from tests.web.test_browser_journeys import sign_up_verify_and_log_in

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Chromium for this module only: Playwright's sync API runs an event loop in this thread
    while it lives, which the async tests that follow in the same worker cannot share."""
    executable = chromium_path()
    if not executable:
        if os.environ.get("OMO_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail("Chromium is required (set OMO_TEST_CHROMIUM or install Debian's chromium)")
        pytest.skip("Chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def _messages(page: Page) -> Any:
    return page.get_by_role("log", name="Messages").get_by_role("listitem")


def _lines(*texts: str) -> list[re.Pattern[str]]:
    """Each message item starts with who said what (its action buttons follow)."""
    return [re.compile("^" + re.escape(text)) for text in texts]


def _send(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Message").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def test_two_people_chat_and_the_one_who_was_offline_catches_up_in_order(
    chromium: Any, live_server: LiveServer, sms_gateway: SmsGateway
) -> None:
    browser = chromium
    ana_context = browser.new_context(locale="en-US")
    bo_context = browser.new_context(locale="en-US")
    ana, bo = ana_context.new_page(), bo_context.new_page()
    sign_up_verify_and_log_in(ana, live_server, sms_gateway, "+393401111111", "Ana")
    sign_up_verify_and_log_in(bo, live_server, sms_gateway, "+393402222222", "Bo")
    found = re.search(r"Your OMO ID is (\S+)\.", bo.get_by_role("main").inner_text())
    assert found
    bo_omo_id = found.group(1)

    ana.get_by_role("navigation", name="Main").get_by_role("link", name="Chats").click()
    expect(ana).to_have_url(re.compile(r"/chat$"))
    ana.wait_for_load_state("load")  # the page's scripts enhance the form before we use it
    ana.get_by_label("Their OMO ID").fill(bo_omo_id)
    ana.get_by_role("button", name="Send friend request").click()
    expect(ana.locator("#status")).to_have_text("Friend request sent.")

    bo.goto(live_server.url + "/chat")
    bo.get_by_role("button", name="Accept").click()
    bo.get_by_role("button", name="Chat with Ana").click()
    expect(bo).to_have_url(re.compile(r"/chat/[0-9a-f-]{36}$"))
    ana.goto(bo.url)
    expect(ana.get_by_role("heading", level=1)).to_have_text("Bo")
    expect(ana.locator("[data-chat]")).to_have_attribute("data-online", "true")
    expect(bo.locator("[data-chat]")).to_have_attribute("data-online", "true")

    _send(ana, "hello Bo")
    expect(_messages(bo)).to_have_text(_lines("Ana: hello Bo"))

    bo_context.set_offline(True)
    expect(bo.locator("[data-chat]")).to_have_attribute("data-online", "false")
    for n in range(1, 4):
        _send(ana, f"while you were away {n}")
    _send(bo, "written offline")
    expect(_messages(ana)).to_have_count(4)
    bo_context.set_offline(False)

    expect(bo.locator("[data-chat]")).to_have_attribute("data-online", "true", timeout=15000)
    expected = _lines(
        "Ana: hello Bo",
        "Ana: while you were away 1",
        "Ana: while you were away 2",
        "Ana: while you were away 3",
        "You: written offline",
    )
    expect(_messages(bo)).to_have_text(expected, timeout=15000)
    expect(_messages(ana)).to_have_text(
        _lines(
            "You: hello Bo",
            "You: while you were away 1",
            "You: while you were away 2",
            "You: while you were away 3",
            "Bo: written offline",
        )
    )
    # A reload resumes from the server's log: still in order, still no duplicates.
    bo.reload()
    expect(_messages(bo)).to_have_text(expected)

    # Ana recalls her last message; both see it recalled. Bo deletes the first one for himself.
    ana.get_by_role("button", name="Recall: while you were away 3").click()
    recalled = "This message was recalled."
    expect(_messages(bo).nth(3)).to_have_text(re.compile(f"^Ana: {re.escape(recalled)}$"))
    expect(_messages(ana).nth(3)).to_have_text(re.compile(f"^You: {re.escape(recalled)}$"))
    bo.get_by_role("button", name="Delete for me: hello Bo").click()
    expect(_messages(bo)).to_have_count(4)
    expect(_messages(ana)).to_have_count(5)
    bo.reload()
    expect(_messages(bo)).to_have_count(4)
    ana_context.close()
    bo_context.close()
