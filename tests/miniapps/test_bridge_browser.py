"""chooseCoupon, requestPayment with the chosen coupon, requestSubscribeMessage and share in
Chromium: each dialog belongs to the host, the frame only gets the result; cancelling the
coupon choice is an error the mini program handles; the shared card lands in the chat."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from tests.miniapps.conftest import manifest, package_files
from tests.miniapps.test_runtime_browser import _login, _ok
from tests.support.live import LiveServer, SmsGateway
from tests.web.conftest import browser
from tests.web.test_accessibility import AXE, BLOCKING, axe_violations

from omo.core.auth import SESSION_COOKIE
from omo.miniapps.package import build_zip

__all__ = ["browser"]

FRAME_SCRIPT = b"""
const out = (id, value) => {
  const line = document.createElement("p");
  line.id = id;
  line.textContent = String(value);
  document.body.appendChild(line);
};
const run = async () => {
  const prepay = (await omo.getStorage({ key: "prepay" })).data;
  const template = (await omo.getStorage({ key: "template" })).data;
  try { await omo.chooseCoupon({ prepayId: prepay }); out("cancel", "chosen"); }
  catch (e) { out("cancel", e.code); }
  const coupon = await wx.chooseCoupon({ prepayId: prepay });
  out("coupon", coupon.title);
  const pay = { package: "prepay_id=" + prepay, couponId: coupon.couponId };
  const paid = await wx.requestPayment(pay);
  out("paid", paid.paid.minor);
  const answer = await wx.requestSubscribeMessage({ tmplIds: [template] });
  out("subscribed", answer[template]);
  const shared = await wx.shareAppMessage({ title: "Table 12", path: "pages/order" });
  out("shared", shared.chat);
};
run().catch((e) => out("error", e.code || e.message));
"""

PERMISSIONS = [
    {"name": "payment", "reason": "To pay for your order"},
    {"name": "coupons", "reason": "To use your coupons"},
    {"name": "subscribe_message", "reason": "To tell you when the order is ready"},
    {"name": "share", "reason": "To share the menu"},
]


def _package(appid: str) -> bytes:
    files = package_files(appid)
    files["manifest.json"] = json.dumps(manifest(appid, req_permissions=PERMISSIONS)).encode()
    files["pages/menu.html"] = (
        b'<!doctype html><html lang="en"><title>Menu</title><h1>Menu</h1>'
        b'<script src="/omo.js"></script><script src="../app.js"></script></html>'
    )
    files["app.js"] = FRAME_SCRIPT
    return build_zip(files)


def _world(server: LiveServer, owner: dict[str, str], diner: dict[str, str]) -> dict[str, str]:
    """A released mini program of an organisation with a merchant, two coupon campaigns (the
    diner holds one of each), an official account with a template, an order, and the
    diner's wallet, PIN and privacy acceptance."""
    api = server.url + "/api/v1"
    org = _ok(httpx.post(f"{api}/accounts/organisations", json={"name": "T"}, headers=owner), 201)
    app = _ok(
        httpx.post(
            f"{api}/miniapps/organisations/{org['id']}/apps",
            json={"name": "Trattoria"},
            headers=owner,
        ),
        201,
    )
    appid = app["appid"]
    version = _ok(
        httpx.post(
            f"{api}/miniapps/apps/{app['id']}/versions",
            content=_package(appid),
            headers={**owner, "Content-Type": "application/zip"},
        ),
        201,
    )
    for step in ("trial", "release"):
        _ok(
            httpx.post(
                f"{api}/miniapps/apps/{app['id']}/versions/{version['id']}/{step}", headers=owner
            )
        )
    merchant = _ok(
        httpx.post(
            f"{api}/pay/merchants",
            json={"organisation_id": org["id"], "name": "Trattoria"},
            headers=owner,
        ),
        201,
    )
    now = datetime.now(UTC)
    for title, value in (("2 euro off", "2.00"), ("5 euro off", "5.00")):
        campaign = _ok(
            httpx.post(
                f"{api}/coupons/campaigns",
                json={
                    "issuer": merchant.get("merchant_id", merchant.get("id")),
                    "title": title,
                    "kind": "cash_off",
                    "currency": "EUR",
                    "value": value,
                    "starts_at": (now - timedelta(days=1)).isoformat(),
                    "ends_at": (now + timedelta(days=30)).isoformat(),
                    "total_stock": 10,
                },
                headers=owner,
            ),
            201,
        )
        _ok(
            httpx.post(
                f"{api}/coupons/claims", json={"campaign_id": campaign["id"]}, headers=diner
            ),
            201,
        )
    account = _ok(
        httpx.post(
            f"{api}/accounts/organisations/{org['id']}/accounts",
            json={"kind": "service", "name": "Trattoria"},
            headers=owner,
        ),
        201,
    )
    template = _ok(
        httpx.post(
            f"{api}/accounts/manage/{account['id']}/templates",
            json={"title": "Order ready", "content": "Table {{table.DATA}} is ready"},
            headers=owner,
        ),
        201,
    )
    order = _ok(
        httpx.post(
            f"{api}/miniapps/dev/{appid}/orders",
            json={"order_id": "T12-1", "amount": "20.00", "currency": "EUR"},
            auth=(appid, app["secret"]),
        ),
        201,
    )
    top_up = {"request_id": "t1", "bank_account": "DE89370400440532013000"}
    _ok(
        httpx.post(
            f"{api}/pay/wallet/top-ups",
            json={**top_up, "amount": "50.00", "currency": "EUR"},
            headers=diner,
        )
    )
    _ok(httpx.put(f"{api}/pay/wallet/pin", json={"pin": "246810"}, headers=diner))
    _ok(httpx.post(f"{api}/miniapps/launch/{appid}/privacy", headers=diner))
    for key, value in (("prepay", order["prepay_id"]), ("template", template["template_id"])):
        _ok(
            httpx.put(
                f"{api}/miniapps/launch/{appid}/storage/{key}",
                json={"value": json.dumps(value)},
                headers=diner,
            )
        )
    return {"appid": appid, "template": template["template_id"]}


def _friends(server: LiveServer, one: dict[str, str], other: dict[str, str]) -> str:
    api = server.url + "/api/v1"
    other_id = _ok(httpx.get(f"{api}/identity/me", headers=other))["omo_id"]
    one_id = _ok(httpx.get(f"{api}/identity/me", headers=one))["omo_id"]
    httpx.post(f"{api}/messaging/contacts/requests", json={"omo_id": other_id}, headers=one)
    httpx.post(f"{api}/messaging/contacts/{one_id}/accept", headers=other)
    return str(
        _ok(
            httpx.post(
                f"{api}/messaging/conversations/direct", json={"omo_id": other_id}, headers=one
            )
        )["id"]
    )


def _serious(page: Any) -> list[str]:
    assert AXE.exists(), "run `npm ci --prefix tests/web` for axe-core"
    source = AXE.read_text(encoding="utf-8")
    return [v["id"] for v in axe_violations(page, source) if v["impact"] in BLOCKING]


def test_coupon_choice_subscription_and_share_through_the_host(
    live_server: LiveServer, sms_gateway: SmsGateway, browser: Any
) -> None:
    owner = {"Authorization": "Bearer " + _login(live_server, sms_gateway, "+393401234567", "G")}
    token = _login(live_server, sms_gateway, "+33612345678", "Camille")
    diner = {"Authorization": f"Bearer {token}"}
    friend = {
        "Authorization": "Bearer " + _login(live_server, sms_gateway, "+447911123456", "Olivia")
    }
    world = _world(live_server, owner, diner)
    chat = _friends(live_server, diner, friend)
    appid = world["appid"]

    context = browser.new_context()
    context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": live_server.url}])
    page = context.new_page()
    page.goto(f"{live_server.url}/mp/{appid}/pages/menu")
    page.get_by_role("button", name="Allow").click()  # the prompt for `coupons`
    page.get_by_role("heading", name="Choose a coupon").wait_for()
    page.get_by_role("button", name="Cancel").click()  # the frame gets "cancelled"
    page.get_by_role("heading", name="Choose a coupon").wait_for()
    assert _serious(page) == []
    page.get_by_role("radio", name=re.compile("2 euro off")).check()
    page.get_by_role("button", name="Use this coupon").click()
    page.get_by_label("Payment PIN").fill("246810")
    page.get_by_role("button", name="Pay now").click()
    page.get_by_role("spinbutton").fill("2")
    page.get_by_role("button", name="Allow").click()
    page.get_by_role("button", name="Olivia").click()
    frame = page.frame_locator("[data-miniapp-frame]")
    found = {}
    for key in ("cancel", "coupon", "paid", "subscribed", "shared"):
        locator = frame.locator(f"#{key}")
        locator.wait_for(timeout=15000)
        found[key] = locator.text_content()
    assert found == {
        "cancel": "cancelled",
        "coupon": "2 euro off",  # the person's choice, not the best coupon
        "paid": "1800",
        "subscribed": "accept",
        "shared": "Olivia",
    }
    # the bar's share button opens the same picker
    page.get_by_role("button", name="Share").click()
    page.get_by_role("heading", name="Share Trattoria to a chat").wait_for()
    page.get_by_role("button", name="Cancel").click()

    # the consumer app: recently used, search by name, and the settings listing the grants
    page.goto(f"{live_server.url}/miniapps")
    recent = page.locator("[data-miniapp-recent]")
    assert recent.get_by_role("link", name="Trattoria").get_attribute("href") == (
        f"/mp/{appid}/pages/menu"
    )
    page.get_by_label("Search by name").fill("tratt")
    page.keyboard.press("Enter")
    page.locator("[data-miniapp-results]").get_by_role("link", name="Trattoria").wait_for()
    assert _serious(page) == []
    page.goto(f"{live_server.url}/settings/miniapps")
    settings = page.locator(f"[data-consent='{appid}']")
    assert "Your coupons: allowed" in settings.text_content()
    assert "“Order ready”: 2 more messages" in settings.text_content()
    assert _serious(page) == []
    # withdraw the coupons permission by keyboard only
    withdraw = settings.get_by_role("button", name="Withdraw").first
    withdraw.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => !document.body.textContent.includes('Your coupons: allowed')", timeout=15000
    )
    context.close()
    consent = _ok(
        httpx.get(f"{live_server.url}/api/v1/miniapps/launch/{appid}/consent", headers=diner)
    )
    assert "coupons" not in consent["grants"]

    api = live_server.url + "/api/v1"
    mine = _ok(httpx.get(f"{api}/miniapps/me/subscriptions", headers=diner))
    assert [(s["appid"], s["remaining"]) for s in mine] == [(appid, 2)]
    history = _ok(httpx.get(f"{api}/messaging/conversations/{chat}/messages", headers=friend))
    cards = [m["card"] for m in history["messages"] if m.get("card")]
    assert cards[-1]["title"] == "Table 12"
    assert cards[-1]["url"].endswith(f"/mp/{appid}/pages/order")
