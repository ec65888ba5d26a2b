"""One journey with the keyboard only: log in, open the profile, change the name, save.

Nothing is clicked or filled: the test only presses Tab, Enter and types, the way a person
who cannot use a mouse (or uses a switch or a screen reader) does. At every stop the focused
element must show a visible focus indicator inside the viewport (WCAG 2.4.7, 2.4.11).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tests.web.app_world import app_world
from tests.web.conftest import LiveServer, SmsGateway
from tests.web.test_accessibility import (
    HTML_LANG,
    PASSWORD,
    api_sign_up,
    api_sign_up_and_log_in,
)

from omo.core.formatting import format_datetime, time_zone_label
from omo.core.i18n import translations

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

MAX_TABS = 40

# What the focused element looks like: its outline (or a ring drawn by box-shadow), whether
# the browser considers the focus keyboard-visible, and where it is on the screen.
FOCUS_STATE = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    return {
        tag: el.tagName.toLowerCase(),
        id: el.id,
        text: (el.innerText || el.value || "").trim().slice(0, 80),
        focusVisible: el.matches(":focus-visible"),
        outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
        ring: style.boxShadow !== "none",
        inView: box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0
            && box.top < innerHeight && box.left < innerWidth,
    };
}"""


def focus_state(page: Page) -> dict[str, Any]:
    state: dict[str, Any] | None = page.evaluate(FOCUS_STATE)
    assert state is not None, "nothing has the focus"
    return state


def assert_visible_focus(page: Page) -> dict[str, Any]:
    state = focus_state(page)
    assert state["focusVisible"], f"focus is not keyboard-visible on {state}"
    assert state["outline"] or state["ring"], f"no focus indicator on {state}"
    assert state["inView"], f"the focused element is off screen: {state}"
    return state


def tab_to(page: Page, wanted: str, *, by: str = "text", backwards: bool = False) -> None:
    """Press Tab until the element whose `by` ("text" or "id") is `wanted` has the focus,
    checking the focus indicator of every element passed on the way."""
    seen: list[str] = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        state = assert_visible_focus(page)
        seen.append(f"{state['tag']}#{state['id']} {state['text']!r}")
        if state[by] == wanted:
            return
    raise AssertionError(f"Tab never reached {wanted!r}; went through:\n" + "\n".join(seen))


@pytest.mark.parametrize("locale", ["en", "ja"])
def test_log_in_and_edit_the_profile_with_the_keyboard_only(
    browser: Any, live_server: LiveServer, sms_gateway: SmsGateway, locale: str
) -> None:
    _ = translations(locale).gettext
    phone = "+393471234567" if locale == "en" else "+818012345678"
    api_sign_up(live_server, sms_gateway, phone, "Kei", locale)
    context = browser.new_context(locale=HTML_LANG[locale])
    page = context.new_page()
    keyboard = page.keyboard

    page.goto(f"{live_server.url}/login?lang={locale}")
    # The first Tab reaches the skip link, which shows itself; Enter moves into the page.
    keyboard.press("Tab")
    assert assert_visible_focus(page)["text"] == _("Skip to content")
    keyboard.press("Enter")
    tab_to(page, "login-phone", by="id")
    keyboard.type(phone)
    tab_to(page, "login-password", by="id")
    keyboard.type(PASSWORD)
    keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        _("Hello, %(name)s") % {"name": "Kei"}
    )

    tab_to(page, _("Profile"))
    keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(_("Profile"))
    tab_to(page, "profile-name", by="id")
    keyboard.press("ControlOrMeta+A")
    keyboard.type("Kei Tanaka")
    tab_to(page, "profile-time-zone", by="id")
    if locale == "en":
        # A closed list takes type-ahead on the zone's name in the page's language.
        keyboard.type(time_zone_label("Asia/Tokyo", locale))
    else:
        # Type-ahead needs keys, not an input method's text: walk the list with the arrows.
        for _step in range(600):
            if page.locator("#profile-time-zone").input_value() == "Asia/Tokyo":
                break
            keyboard.press("ArrowDown")
    expect(page.locator("#profile-time-zone")).to_have_value("Asia/Tokyo")
    tab_to(page, _("Save"))
    # A new time zone has the page rendered again, so what shows next is what the server holds.
    with page.expect_navigation():
        keyboard.press("Enter")
    expect(page.locator("#profile-name")).to_have_value("Kei Tanaka")
    expect(page.locator("#profile-time-zone")).to_have_value("Asia/Tokyo")

    tab_to(page, _("Devices"))
    keyboard.press("Enter")
    last_active = page.get_by_role("main").locator("time").first
    instant = datetime.fromisoformat(last_active.get_attribute("datetime") or "")
    expect(last_active).to_have_text(format_datetime(instant, locale, "Asia/Tokyo"))
    context.close()


def test_the_language_list_does_not_reload_while_arrowing_through_it(
    browser: Any, live_server: LiveServer
) -> None:
    """Moving through the languages with the arrow keys changes nothing until Apply (3.2.2)."""
    context = browser.new_context(locale="en")
    page = context.new_page()
    page.goto(live_server.url + "/")
    tab_to(page, "language-choice", by="id")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.wait_for_timeout(300)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.keyboard.press("Tab")
    assert assert_visible_focus(page)["tag"] == "button"
    page.keyboard.press("Enter")
    expect(page.locator("html")).not_to_have_attribute("lang", "en")
    # The choice is remembered for the next page.
    lang = page.locator("html").get_attribute("lang")
    page.goto(live_server.url + "/login")
    expect(page.locator("html")).to_have_attribute("lang", lang or "")
    context.close()


def test_chat_and_the_payment_code_with_the_keyboard_only(
    browser: Any, live_server: LiveServer, sms_gateway: SmsGateway
) -> None:
    """Send a message and delete it for oneself, then get a new payment code and set the
    payment PIN — Tab, Shift+Tab, Enter and typing only."""
    context = browser.new_context(locale="en")
    phone = "+393479876543"
    api_sign_up_and_log_in(context.request, live_server, sms_gateway, phone, "Kei", "en")
    world = app_world(context.request, live_server, sms_gateway, phone)
    page = context.new_page()
    keyboard = page.keyboard
    page.goto(f"{live_server.url}/chat/{world.direct}")
    expect(page.locator("[data-chat]")).to_have_attribute("data-online", "true")
    log = page.get_by_role("log", name="Messages").get_by_role("listitem")
    expect(log).to_have_count(1)

    tab_to(page, "message-text", by="id")
    keyboard.type("typed, not clicked")
    keyboard.press("Enter")
    expect(log).to_have_count(2)
    expect(page.locator("#message-text")).to_be_focused()
    tab_to(page, "Delete for me", backwards=True)
    keyboard.press("Enter")
    expect(log).to_have_count(1)
    expect(page.locator("#message-text")).to_be_focused()

    tab_to(page, "Wallet", backwards=True)
    keyboard.press("Enter")
    digits = page.locator("[data-pay-code-digits]")
    expect(digits).to_have_text(re.compile(r"^[0-9 ]{18,}$"))
    first = digits.inner_text()
    tab_to(page, "New code")
    keyboard.press("Enter")
    expect(digits).not_to_have_text(first)
    tab_to(page, "new-pin", by="id")
    keyboard.type("246810")
    keyboard.press("Enter")
    expect(page.locator("#status")).to_have_text("Payment PIN set.")
    context.close()
