"""Three people in three browsers: Ana is friends with Bo and with Cai, who are not friends.
Ana and Bo post and comment; Cai sees Ana's post but neither Bo's post nor Bo's comment."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from tests.web.conftest import CHROMIUM_FLAGS, LiveServer, SmsGateway, chromium_path
from tests.web.test_browser_journeys import sign_up_verify_and_log_in

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
CSRF = {"X-OMO-CSRF": "1"}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
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


def _person(
    browser: Any, server: LiveServer, gateway: SmsGateway, phone: str, name: str
) -> tuple[BrowserContext, Page, str]:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    sign_up_verify_and_log_in(page, server, gateway, phone, name)
    found = re.search(r"Your OMO ID is (\S+)\.", page.get_by_role("main").inner_text())
    assert found
    return context, page, found.group(1)


def _befriend(
    server: LiveServer, a: BrowserContext, b: BrowserContext, a_id: str, b_id: str
) -> None:
    api = server.url + "/api/v1/messaging/contacts"
    assert a.request.post(api + "/requests", data={"omo_id": b_id}, headers=CSRF).ok
    assert b.request.post(f"{api}/{a_id}/accept", headers=CSRF).ok


def _post(page: Page, server: LiveServer, text: str) -> None:
    page.goto(server.url + "/moments")
    page.wait_for_load_state("load")
    page.get_by_label("What's new?").fill(text)
    page.get_by_role("button", name="Post", exact=True).click()
    expect(page.get_by_role("article").filter(has_text=text)).to_be_visible()


def test_a_friend_of_one_sees_only_what_the_rules_allow(
    chromium: Any, live_server: LiveServer, sms_gateway: SmsGateway
) -> None:
    ana_ctx, ana, ana_id = _person(chromium, live_server, sms_gateway, "+393403333331", "Ana")
    bo_ctx, bo, bo_id = _person(chromium, live_server, sms_gateway, "+393403333332", "Bo")
    cai_ctx, cai, cai_id = _person(chromium, live_server, sms_gateway, "+393403333333", "Cai")
    _befriend(live_server, ana_ctx, bo_ctx, ana_id, bo_id)
    _befriend(live_server, ana_ctx, cai_ctx, ana_id, cai_id)

    _post(ana, live_server, "Dinner at Luigi's")
    _post(bo, live_server, "Bo's own news")
    bo.goto(live_server.url + "/moments")
    bo.get_by_role("article").filter(has_text="Dinner at Luigi's").get_by_role(
        "link", name="Comments"
    ).click()
    bo.wait_for_load_state("load")
    bo.get_by_label("Write a comment").fill("Looks delicious")
    bo.get_by_role("button", name="Comment", exact=True).click()
    expect(bo.get_by_role("list", name="Comments")).to_contain_text("Looks delicious")

    # Ana, friends with both, sees both posts and Bo's comment.
    ana.goto(live_server.url + "/moments")
    expect(ana.get_by_role("article").filter(has_text="Bo's own news")).to_be_visible()
    expect(ana.get_by_role("article").filter(has_text="Dinner at Luigi's")).to_contain_text(
        "Looks delicious"
    )
    ana.get_by_role("article").filter(has_text="Dinner at Luigi's").get_by_role(
        "button", name="Like"
    ).click()
    expect(
        ana.get_by_role("article")
        .filter(has_text="Dinner at Luigi's")
        .get_by_role("button", name="Like")
    ).to_have_attribute("aria-pressed", "true")

    # Cai, friends with Ana only, sees Ana's post without Bo's comment, and not Bo's post.
    cai.goto(live_server.url + "/moments")
    dinner = cai.get_by_role("article").filter(has_text="Dinner at Luigi's")
    expect(dinner).to_be_visible()
    expect(dinner).to_contain_text("Liked by Ana")
    expect(dinner).not_to_contain_text("Looks delicious")
    expect(cai.get_by_role("article").filter(has_text="Bo's own news")).to_have_count(0)
    post_link = dinner.get_by_role("link", name="Comments").get_attribute("href")
    cai.goto(live_server.url + str(post_link))
    expect(cai.get_by_role("main")).not_to_contain_text("Looks delicious")
    # Bo's post page by its address: refused to Cai.
    bo.goto(live_server.url + "/moments")
    bo_post = bo.get_by_role("article").filter(has_text="Bo's own news").get_attribute("data-post")
    refused = cai.goto(f"{live_server.url}/moments/{bo_post}")
    assert refused is not None
    assert refused.status == 404
    for context in (ana_ctx, bo_ctx, cai_ctx):
        context.close()


def test_compose_a_card_with_a_place_and_see_likes_and_comments_arrive_live(
    chromium: Any, live_server: LiveServer, sms_gateway: SmsGateway
) -> None:
    ana_ctx, ana, ana_id = _person(chromium, live_server, sms_gateway, "+393403333341", "Ana")
    bo_ctx, _bo, bo_id = _person(chromium, live_server, sms_gateway, "+393403333342", "Bo")
    _befriend(live_server, ana_ctx, bo_ctx, ana_id, bo_id)

    # Compose: a link card and a place, from the form alone.
    ana.goto(live_server.url + "/moments")
    ana.wait_for_load_state("load")
    ana.get_by_label("What's new?").fill("Our new menu")
    ana.get_by_label("Card", exact=True).select_option("link")
    ana.get_by_label("Address (https://… or /mp/…)").fill("https://example.org/menu")
    ana.get_by_label("Card title").fill("Autumn menu")
    ana.get_by_label("Place (optional)").fill("Caffè Aurora")
    ana.get_by_role("button", name="Post", exact=True).click()
    post = ana.get_by_role("article").filter(has_text="Our new menu")
    expect(post).to_contain_text("Caffè Aurora")
    expect(post.get_by_role("link", name="Autumn menu")).to_have_attribute(
        "href", "https://example.org/menu"
    )
    # A card that is not a web address is refused with a readable message.
    ana.get_by_label("What's new?").fill("Sneaky")
    ana.get_by_label("Card", exact=True).select_option("miniprogram")
    ana.get_by_label("Address (https://… or /mp/…)").fill("javascript:alert(1)")
    ana.get_by_label("Mini program id or coupon campaign id").fill("wx123")
    ana.get_by_label("Card title").fill("")
    ana.get_by_label("Place (optional)").fill("")
    ana.get_by_role("button", name="Post", exact=True).click()
    expect(ana.get_by_text("A link starts with https://.")).to_be_visible()

    # Bo likes and comments through the API; Ana's open page shows both without a reload.
    post_id = post.get_attribute("data-post")
    api = f"{live_server.url}/api/v1/social/posts/{post_id}"
    ana.wait_for_timeout(500)  # the page's realtime connection is open
    assert bo_ctx.request.put(api + "/like", headers=CSRF).ok
    log = ana.get_by_role("log", name="Notifications")
    expect(log).to_contain_text("Bo liked your moment.")
    expect(post).to_contain_text("Liked by Bo")
    assert bo_ctx.request.post(api + "/comments", data={"text": "Can't wait"}, headers=CSRF).ok
    expect(log).to_contain_text("Bo commented on your moment.")
    expect(post).to_contain_text("Can't wait")
    for context in (ana_ctx, bo_ctx):
        context.close()
