"""Two people in two browsers near each other: they find each other in People Nearby and
become friends by greeting; then they shake at the same time and are matched."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tests.web.conftest import CHROMIUM_FLAGS, LiveServer, SmsGateway, chromium_path
from tests.web.test_accessibility import api_sign_up_and_log_in

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

PEOPLES_SQUARE = {"latitude": 31.2304, "longitude": 121.4737}
NEXT_DOOR = {"latitude": 31.2307, "longitude": 121.4739}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Chromium for this module only (Playwright's sync API keeps a loop in this thread)."""
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


def located_person(
    browser: Any,
    server: LiveServer,
    gateway: SmsGateway,
    phone: str,
    name: str,
    where: dict[str, float],
) -> Page:
    context = browser.new_context(locale="en-US", geolocation=where, permissions=["geolocation"])
    api_sign_up_and_log_in(context.request, server, gateway, phone, name, "en")
    page: Page = context.new_page()
    page.goto(server.url + "/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Nearby").click()
    expect(page).to_have_url(re.compile(r"/nearby$"))
    page.wait_for_load_state("load")
    return page


def test_two_people_nearby_find_each_other_become_friends_and_shake_together(
    chromium: Any, live_server: LiveServer, sms_gateway: SmsGateway
) -> None:
    ana = located_person(chromium, live_server, sms_gateway, "+393401111111", "Ana", PEOPLES_SQUARE)
    bo = located_person(chromium, live_server, sms_gateway, "+393402222222", "Bo", NEXT_DOOR)

    # People Nearby: both turn it on, see each other in the nearest band, and greet.
    bo.get_by_role("button", name="Show me to people nearby").click()
    expect(bo.get_by_text("Nobody nearby has turned this on yet.")).to_be_visible()
    ana.get_by_role("button", name="Show me to people nearby").click()
    people = ana.get_by_role("list", name="People Nearby").get_by_role("listitem")
    expect(people).to_have_count(1)
    expect(people).to_contain_text("Bo · Within 1 km")
    ana.get_by_role("button", name="Say hello to Bo").click()
    expect(ana.get_by_text("Friend request sent to Bo.")).to_be_visible()
    bo.get_by_role("button", name="Refresh").click()
    bo.get_by_role("button", name="Say hello to Ana").click()
    expect(bo.get_by_text("You and Ana are now friends.")).to_be_visible()
    bo.goto(live_server.url + "/chat")
    expect(bo.get_by_role("main")).to_contain_text("Ana")

    # Clear my location: Ana is gone from Bo's list at once.
    ana.get_by_role("button", name="Clear my location").click()
    expect(ana.get_by_text("You are not visible to anyone.")).to_be_visible()

    # Shake: both press the button at the same time (no accelerometer in a test browser).
    bo.goto(live_server.url + "/nearby")
    bo.wait_for_load_state("load")
    # A click returns at once; the answers come when the pair is decided.
    ana.get_by_role("button", name="Shake", exact=True).click()
    bo.get_by_role("button", name="Shake", exact=True).click()
    expect(ana.get_by_text("You shook with Bo.")).to_be_visible(timeout=10_000)
    expect(bo.get_by_text("You shook with Ana.")).to_be_visible(timeout=10_000)


def test_a_shaken_pair_greets_and_becomes_friends(
    chromium: Any, live_server: LiveServer, sms_gateway: SmsGateway
) -> None:
    cai = located_person(chromium, live_server, sms_gateway, "+393403333351", "Cai", PEOPLES_SQUARE)
    dan = located_person(chromium, live_server, sms_gateway, "+393403333352", "Dan", NEXT_DOOR)
    cai.get_by_role("button", name="Shake", exact=True).click()
    dan.get_by_role("button", name="Shake", exact=True).click()
    expect(cai.get_by_text("You shook with Dan.")).to_be_visible(timeout=10_000)
    expect(dan.get_by_text("You shook with Cai.")).to_be_visible(timeout=10_000)
    # The card has a greet button (a friend request), and no phone number anywhere.
    cai.get_by_role("button", name="Send Dan a friend request").click()
    expect(cai.get_by_text("Friend request sent to Dan.")).to_be_visible()
    dan.get_by_role("button", name="Send Cai a friend request").click()
    expect(dan.get_by_text("You and Cai are now friends.")).to_be_visible()
    assert "+39340333335" not in dan.get_by_role("main").inner_text()
    dan.goto(live_server.url + "/chat")
    expect(dan.get_by_role("main")).to_contain_text("Cai")
