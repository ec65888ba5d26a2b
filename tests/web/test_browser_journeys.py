"""Real-browser journeys through the consumer web app."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tests.web.conftest import LiveServer, SmsGateway

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

PASSWORD = "a long demo password"


def sign_up_verify_and_log_in(
    page: Page, server: LiveServer, gateway: SmsGateway, phone: str, name: str
) -> None:
    page.goto(server.url + "/signup")
    page.get_by_label("Phone number").fill(phone)
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Send me a code").click()
    expect(page).to_have_url(re.compile(r"/verify\?phone="))
    page.get_by_label("6-digit code").fill(gateway.last_code(phone))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/login\?phone="))
    expect(page.get_by_label("Phone number")).to_have_value(phone)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("main").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Hello, {name}")


def test_sign_up_verify_log_in_and_edit_the_profile(
    browser: Any, live_server: LiveServer, sms_gateway: SmsGateway
) -> None:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    sign_up_verify_and_log_in(page, live_server, sms_gateway, "+393401234567", "Giulia")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Profile").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Profile")
    page.get_by_label("Your name").fill("Giulia Rossi")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#status")).to_have_text("Profile saved.")
    page.reload()
    expect(page.get_by_label("Your name")).to_have_value("Giulia Rossi")
    context.close()


def test_a_wrong_code_shows_a_clear_error_in_the_form(
    browser: Any, live_server: LiveServer, sms_gateway: SmsGateway
) -> None:
    page = browser.new_context(locale="en-US").new_page()
    page.goto(live_server.url + "/signup")
    page.get_by_label("Phone number").fill("+33612345678")
    page.get_by_label("Your name").fill("Camille")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Send me a code").click()
    expect(page).to_have_url(re.compile(r"/verify"))
    right = sms_gateway.last_code("+33612345678")
    page.get_by_label("6-digit code").fill("000000" if right != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    expect(page.get_by_role("alert")).to_be_focused()
    page.context.close()


def test_a_desktop_browser_logs_in_by_a_qr_ticket_confirmed_on_the_phone(
    browser: Any, live_server: LiveServer, sms_gateway: SmsGateway
) -> None:
    phone_context = browser.new_context(locale="en-US", viewport={"width": 390, "height": 844})
    phone = phone_context.new_page()
    sign_up_verify_and_log_in(phone, live_server, sms_gateway, "+819012345678", "Yuki")

    desktop_context = browser.new_context(locale="en-US")
    desktop = desktop_context.new_page()
    desktop.goto(live_server.url + "/login/qr")
    link = desktop.locator("[data-qr-link]")
    expect(link).to_have_attribute("href", re.compile(r"/qr-login/"))
    expect(desktop.locator("[data-qr-image] svg")).to_be_visible()

    # The phone's camera reads the QR code's URL; the link under it carries the same URL.
    phone.goto(link.get_attribute("href") or "")
    expect(phone.locator("[data-browser]")).to_contain_text("Mozilla")
    phone.get_by_role("main").get_by_role("button", name="Log in").click()
    expect(phone.locator("#status")).to_have_text("Done. The computer is now logged in.")

    expect(desktop.get_by_role("heading", level=1)).to_have_text("Hello, Yuki", timeout=15000)
    desktop.goto(live_server.url + "/devices")
    expect(desktop.get_by_role("main").get_by_role("listitem")).to_have_count(2)
    desktop_context.close()
    phone_context.close()
