"""Real browser: the customer shows the payment code, the cashier charges it, a coupon is
applied by itself, and the customer sees the receipt and the new balance."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from tests.web.conftest import CHROMIUM_FLAGS, LiveServer, SmsGateway, chromium_path
from tests.web.test_browser_journeys import PASSWORD, sign_up_verify_and_log_in

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Our own Chromium, closed when this module ends: Playwright's sync API keeps an event
    loop running in the thread, which the async tests that follow on this worker need free."""
    executable = chromium_path()
    if not executable:
        pytest.skip("Chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def api_login(server: LiveServer, phone: str) -> dict[str, str]:
    response = httpx.post(
        server.url + "/api/v1/identity/login", json={"phone": phone, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_a_cashier_charges_the_customers_code_and_the_coupon_applies_itself(
    browser: Any, live_server: LiveServer, sms_gateway: SmsGateway
) -> None:
    phone_context = browser.new_context(locale="en-US", viewport={"width": 390, "height": 844})
    customer = phone_context.new_page()
    sign_up_verify_and_log_in(customer, live_server, sms_gateway, "+393471110001", "Giulia")
    till_context = browser.new_context(locale="en-US")
    till = till_context.new_page()
    sign_up_verify_and_log_in(till, live_server, sms_gateway, "+393471110002", "Marco")

    owner = api_login(live_server, "+393471110002")
    buyer = api_login(live_server, "+393471110001")
    merchant = httpx.post(
        live_server.url + "/api/v1/pay/merchants",
        json={"organisation_id": "org-aurora", "name": "Caffè Aurora"},
        headers=owner,
    ).json()
    now = datetime.now(UTC)
    campaign = httpx.post(
        live_server.url + "/api/v1/coupons/campaigns",
        json={
            "issuer": merchant["id"],
            "title": "5 off over 20",
            "kind": "cash_off",
            "currency": "EUR",
            "value": "5.00",
            "min_spend": "20.00",
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(days=1)).isoformat(),
            "total_stock": 10,
        },
        headers=owner,
    ).json()
    claimed = httpx.post(
        live_server.url + "/api/v1/coupons/claims",
        json={"campaign_id": campaign["id"]},
        headers=buyer,
    )
    assert claimed.status_code == 201, claimed.text
    topped = httpx.post(
        live_server.url + "/api/v1/pay/wallet/top-ups",
        json={
            "request_id": "t1",
            "bank_account": "IT60X0542811101",
            "amount": "50.00",
            "currency": "EUR",
        },
        headers=buyer,
    )
    assert topped.json()["status"] == "succeeded"

    customer.get_by_role("navigation", name="Main").get_by_role("link", name="Wallet").click()
    expect(customer.get_by_role("heading", level=1)).to_have_text("Wallet")
    digits = customer.locator("[data-pay-code-digits]")
    expect(digits).to_have_text(re.compile(r"^28\d\d( \d{4}){3} \d{2}$"))
    expect(customer.locator("[data-pay-code-image] svg")).to_be_visible()

    till.goto(live_server.url + "/cashier")
    till.get_by_label("Amount").fill("24.00")
    till.get_by_label("Customer's payment code").fill(digits.inner_text())
    till.get_by_role("button", name="Charge").click()
    expect(till.locator("[data-cashier-result]")).to_contain_text("Paid: €19.00 (discount €5.00)")

    receipt = customer.locator("[data-receipt-text]")
    expect(receipt).to_contain_text("Paid €19.00 to Caffè Aurora", timeout=10_000)
    expect(receipt).to_contain_text("New balance: €31.00")
    expect(customer.locator("[data-balances]")).to_contain_text("€31.00")
    till_context.close()
    phone_context.close()
