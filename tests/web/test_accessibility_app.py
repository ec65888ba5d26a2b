"""axe-core on the signed-in app beyond the account pages: chats (list, search, a 1:1 chat
with its message actions, a group with its settings open, the add-a-friend page), the wallet
with its payment code, the cashier's till, an official account's profile and the Nearby page
(People Nearby, Shake, Places nearby) — in every language, with no serious or critical
violation."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tests.web.app_world import World, app_world
from tests.web.conftest import LiveServer, SmsGateway
from tests.web.test_accessibility import (
    DARK_TOO,
    HTML_LANG,
    PHONES,
    api_sign_up_and_log_in,
    axe_source,
    blocking_violations,
    visit,
)

from omo.core.i18n import SUPPORTED

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
CSRF = {"X-OMO-CSRF": "1"}
__all__ = ["axe_source"]  # the fixture


def _pages(world: World) -> list[tuple[str, str]]:
    return [
        ("chats", "/chat"),
        ("chat search", "/chat?q=明日"),
        ("add a friend", f"/chat/add/{world.friend_omo_id}"),
        ("1:1 chat", f"/chat/{world.direct}"),
        ("group chat", f"/chat/{world.group}"),
        ("wallet", "/wallet"),
        ("cashier", "/cashier"),
        ("official account", f"/accounts/{world.account}"),
        ("nearby", "/nearby"),
        ("moments", "/moments"),
        ("a moment", f"/moments/{world.moment}"),
        ("a friend's labels", f"/moments/friends/{world.friend_omo_id}"),
    ]


def _settle(page: Page, name: str) -> None:
    """Wait for what scripts add (messages and their buttons, the payment code)."""
    if name.endswith("chat"):
        expect(page.locator("[data-chat]")).to_have_attribute("data-online", "true")
        page.locator("[data-chat-settings] summary").click()
    if name == "1:1 chat":
        expect(page.locator("[data-messages] li .message-actions").first).to_be_visible()


@pytest.mark.parametrize("locale", SUPPORTED)
def test_the_app_pages_have_no_serious_accessibility_violation(
    browser: Any, live_server: LiveServer, sms_gateway: SmsGateway, axe_source: str, locale: str
) -> None:
    lang = HTML_LANG[locale]
    context = browser.new_context(locale=lang)
    api_sign_up_and_log_in(
        context.request, live_server, sms_gateway, PHONES[locale], "Aiko", locale
    )
    world = app_world(context.request, live_server, sms_gateway, PHONES[locale])
    page = context.new_page()
    problems: list[str] = []
    for scheme in ("light", "dark") if locale in DARK_TOO else ("light",):
        page.emulate_media(color_scheme=scheme)
        for name, path in _pages(world):
            visit(page, live_server.url + path, lang)
            _settle(page, name)
            problems += blocking_violations(page, axe_source, f"{locale} {scheme} {name}")
    context.close()
    assert not problems, "axe found serious or critical violations:\n" + "\n".join(problems)
