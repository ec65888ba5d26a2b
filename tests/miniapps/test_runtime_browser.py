"""The runtime in Chromium: launched by its code's URL, the frame logs in through the bridge
and cannot read the host's cookies, storage or DOM; a package file opened directly stays
sandboxed; axe finds nothing serious on the host page."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx
from tests.miniapps.conftest import manifest, package_files
from tests.support.live import LiveServer, SmsGateway
from tests.web.conftest import browser
from tests.web.test_accessibility import AXE, BLOCKING, PASSWORD, api_sign_up, axe_violations

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
try { out("cookie", "read:" + document.cookie); } catch (e) { out("cookie", "blocked"); }
try { localStorage.setItem("x", "1"); out("storage", "allowed"); }
catch (e) { out("storage", "blocked"); }
try { out("parent", "read:" + window.parent.document.title); }
catch (e) { out("parent", "blocked"); }
out("origin", self.origin);
omo.getLaunchOptions().then((o) => out("scene", o.scene));
omo.getLocation().then(() => out("location", "allowed"), (e) => out("location", e.code));
wx.login({ success: (r) => out("code", r.code), fail: (e) => out("code", e.errMsg) });
omo.getUserProfile().then((p) => out("profile", p.nickname), (e) => out("profile", e.code));
wx.setStorage({ key: "basket", data: ["pizza"] })
  .then(() => wx.getStorage({ key: "basket" }))
  .then((r) => out("kept", JSON.stringify(r.data)), (e) => out("kept", e.code))
  .then(() => wx.getStorage({ key: "prepay" }))
  .then((r) => wx.requestPayment({ package: "prepay_id=" + r.data }))
  .then((r) => out("paid", r.status), (e) => out("paid", e.code || e.errMsg));
"""


def _bridge_package(appid: str) -> bytes:
    files = package_files(appid)
    permissions = [
        {"name": "payment", "reason": "To pay for your order"},
        {"name": "profile", "reason": "To greet you by name"},
    ]
    files["manifest.json"] = json.dumps(manifest(appid, req_permissions=permissions)).encode()
    files["pages/menu.html"] = (
        b'<!doctype html><html lang="en"><title>Menu</title><h1>Menu</h1>'
        b'<script src="/omo.js"></script><script src="../app.js"></script></html>'
    )
    files["app.js"] = FRAME_SCRIPT
    return build_zip(files)


def _login(server: LiveServer, gateway: SmsGateway, phone: str, name: str) -> str:
    api_sign_up(server, gateway, phone, name)
    login = httpx.post(
        server.url + "/api/v1/identity/login", json={"phone": phone, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    return str(login.json()["token"])


def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _released_program(server: LiveServer, owner: dict[str, str]) -> tuple[str, str, str]:
    """Through the public API: organisation, mini program, package uploaded, tried, released.
    Returns (app id, appid, secret)."""
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
    version = _ok(
        httpx.post(
            f"{api}/miniapps/apps/{app['id']}/versions",
            content=_bridge_package(app["appid"]),
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
    return app["id"], app["appid"], app["secret"]


def _order_for(
    server: LiveServer, owner: dict[str, str], app_id: str, appid: str, secret: str, token: str
) -> str:
    """The restaurant's merchant account, an order from the mini program's server, and the
    diner's wallet and PIN; the prepay id is left in the diner's storage for the frame."""
    api = server.url + "/api/v1"
    org = _ok(httpx.get(f"{api}/miniapps/apps/{app_id}", headers=owner))["organisation_id"]
    _ok(
        httpx.post(
            f"{api}/pay/merchants",
            json={"organisation_id": org, "name": "Trattoria"},
            headers=owner,
        ),
        201,
    )
    order = _ok(
        httpx.post(
            f"{api}/miniapps/dev/{appid}/orders",
            json={"order_id": "T12-1", "amount": "12.50", "currency": "EUR"},
            auth=(appid, secret),
        ),
        201,
    )
    diner = {"Authorization": f"Bearer {token}"}
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
    stored = json.dumps(order["prepay_id"])
    _ok(
        httpx.put(
            f"{api}/miniapps/launch/{appid}/storage/prepay", json={"value": stored}, headers=diner
        )
    )
    return str(order["prepay_id"])


def test_the_frame_logs_in_through_the_bridge_and_cannot_reach_the_host(
    live_server: LiveServer, sms_gateway: SmsGateway, browser: Any
) -> None:
    owner = {"Authorization": "Bearer " + _login(live_server, sms_gateway, "+393401234567", "G")}
    app_id, appid, secret = _released_program(live_server, owner)
    code_url = _ok(
        httpx.get(
            f"{live_server.url}/api/v1/miniapps/apps/{app_id}/code",
            params={"page": "pages/menu", "scene": "t=12"},
            headers=owner,
        )
    )["url"]
    parts = urlsplit(code_url)
    launch = f"{live_server.url}{parts.path}?{parts.query}"
    token = _login(live_server, sms_gateway, "+33612345678", "Camille")
    prepay = _order_for(live_server, owner, app_id, appid, secret, token)
    found = _drive(browser, live_server.url, launch, token)
    assert found["cookie"] == "blocked"
    assert found["storage"] == "blocked"
    assert found["parent"] == "blocked"
    assert found["origin"] == "null"
    assert found["scene"] == "t=12"
    assert found["location"] == "permission_not_declared"
    assert found["profile"] == "Camille"
    assert found["kept"] == '["pizza"]'
    assert found["paid"] == "succeeded"
    order = httpx.get(
        f"{live_server.url}/api/v1/miniapps/dev/{appid}/orders/T12-1", auth=(appid, secret)
    )
    assert order.json()["status"] == "succeeded"
    assert order.json()["prepay_id"] == prepay
    assert found["axe"] == []
    exchanged = httpx.post(
        f"{live_server.url}/api/v1/miniapps/dev/{appid}/sessions",
        json={"code": found["code"]},
        auth=(appid, secret),
    )
    assert exchanged.status_code == 200, exchanged.text
    assert found["direct"] == {"origin": "null", "cookie": "blocked"}
    newcomer = _login(live_server, sms_gateway, "+447911123456", "Olivia")
    assert _first_visit(browser, live_server.url, launch, newcomer) == "t=12"


def _first_visit(browser: Any, server: str, launch: str, token: str) -> str | None:
    """Someone who never used the mini program sees its privacy notice before it loads."""
    context = browser.new_context()
    context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": server}])
    page = context.new_page()
    page.goto(launch)
    notice = page.get_by_role("heading", name="Before you use Trattoria")
    notice.wait_for()
    assert page.get_by_text("To greet you by name").is_visible()
    assert page.locator("[data-miniapp-frame]").get_attribute("src") is None
    page.get_by_role("button", name="Accept and continue").click()
    scene: str | None = (
        page.frame_locator("[data-miniapp-frame]").locator("#scene").text_content(timeout=15000)
    )
    context.close()
    return scene


def _drive(browser: Any, server: str, launch: str, token: str) -> dict[str, Any]:
    context = browser.new_context()
    context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": server}])
    page = context.new_page()
    page.goto(launch)
    page.get_by_role("button", name="Allow").click()  # the host's prompt for `profile`
    page.get_by_label("Payment PIN").fill("246810")  # the host's payment sheet
    page.get_by_role("button", name="Pay now").click()
    frame = page.frame_locator("[data-miniapp-frame]")
    found: dict[str, Any] = {}
    keys = (
        "cookie",
        "storage",
        "parent",
        "origin",
        "scene",
        "location",
        "code",
        "profile",
        "kept",
        "paid",
    )
    for key in keys:
        locator = frame.locator(f"#{key}")
        locator.wait_for(timeout=15000)
        found[key] = locator.text_content()
    assert page.get_by_role("heading", name="Trattoria").is_visible()
    assert AXE.exists(), "run `npm ci --prefix tests/web` for axe-core"
    source = AXE.read_text(encoding="utf-8")
    found["axe"] = [v["id"] for v in axe_violations(page, source) if v["impact"] in BLOCKING]
    file_url = page.locator("[data-miniapp-frame]").get_attribute("data-src")
    assert file_url
    direct = context.new_page()
    direct.goto(file_url)
    found["direct"] = {
        "origin": direct.evaluate("self.origin"),
        "cookie": direct.evaluate(
            "() => { try { return 'read:' + document.cookie; } catch (e) { return 'blocked'; } }"
        ),
    }
    context.close()
    return found
