"""Launching inside the app (miniapp_launch.js) in Chromium: a code read by the app's scanner,
or a mini program picked in its recently used list, opens in the page the person is on — the
address becomes the mini program's, the page is not navigated — with the same sandbox, a new
frame and a new bridge scoped to that mini program; nothing the previous mini program left
in its frame reaches the next one; Close and the browser's Back return to the app page."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import segno
from tests.miniapps.conftest import manifest, package_files
from tests.miniapps.test_runtime_browser import _login, _ok
from tests.support.live import LiveServer, SmsGateway
from tests.web.conftest import browser
from tests.web.test_accessibility import AXE, BLOCKING, axe_violations

from omo.core.auth import SESSION_COOKIE
from omo.miniapps.package import build_zip

__all__ = ["browser"]

# Reports what the frame can reach, what the frame before it left in `window.name` (a frame
# reused across mini programs would keep it), then leaves its own mark there.
FRAME_SCRIPT = b"""
const out = (id, value) => {
  const line = document.createElement("p");
  line.id = id;
  line.textContent = String(value);
  document.body.appendChild(line);
};
out("left", "name:" + window.name);
window.name = "left by " + document.title;
try { out("cookie", "read:" + document.cookie); } catch (e) { out("cookie", "blocked"); }
try { localStorage.setItem("x", "1"); out("storage", "allowed"); }
catch (e) { out("storage", "blocked"); }
try { out("parent", "read:" + window.parent.document.title); }
catch (e) { out("parent", "blocked"); }
out("origin", self.origin);
omo.getLaunchOptions().then((o) => out("scene", o.scene));
wx.login({ success: (r) => out("code", r.code), fail: (e) => out("code", e.errMsg) });
"""


def _package(appid: str, title: str) -> bytes:
    files = package_files(appid)
    files["manifest.json"] = json.dumps(manifest(appid, name=title)).encode()
    files["pages/menu.html"] = (
        f'<!doctype html><html lang="en"><title>{title}</title><h1>{title}</h1>'
        '<p><a href="order.html">Order</a></p>'
        '<script src="/omo.js"></script><script src="../app.js"></script></html>'
    ).encode()
    files["app.js"] = FRAME_SCRIPT
    return build_zip(files)


def _release(server: LiveServer, owner: dict[str, str], name: str) -> dict[str, str]:
    """A released mini program of its own organisation: {id, appid, secret, code_url}."""
    api = server.url + "/api/v1"
    org = _ok(httpx.post(f"{api}/accounts/organisations", json={"name": name}, headers=owner), 201)
    app = _ok(
        httpx.post(
            f"{api}/miniapps/organisations/{org['id']}/apps", json={"name": name}, headers=owner
        ),
        201,
    )
    version = _ok(
        httpx.post(
            f"{api}/miniapps/apps/{app['id']}/versions",
            content=_package(app["appid"], name),
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
    code = _ok(
        httpx.get(
            f"{api}/miniapps/apps/{app['id']}/code",
            params={"page": "pages/menu", "scene": f"t={len(name)}"},
            headers=owner,
        )
    )
    return {"appid": app["appid"], "secret": app["secret"], "code_url": code["url"]}


def _qr_file(text: str, folder: Path, name: str) -> Path:
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=6, border=4)
    path = folder / name
    path.write_bytes(buffer.getvalue())
    return path


def _frame_says(page: Any) -> dict[str, str]:
    frame = page.frame_locator("[data-miniapp-frame]")
    found: dict[str, str] = {}
    for key in ("left", "cookie", "storage", "parent", "origin", "scene", "code"):
        locator = frame.locator(f"#{key}")
        locator.wait_for(state="attached", timeout=15000)
        found[key] = locator.text_content() or ""
    return found


def _exchanges(server: LiveServer, code: str, program: dict[str, str]) -> int:
    response = httpx.post(
        f"{server.url}/api/v1/miniapps/dev/{program['appid']}/sessions",
        json={"code": code},
        auth=(program["appid"], program["secret"]),
    )
    return response.status_code


def _scan_image(page: Any, picture: Path) -> None:
    page.get_by_role("button", name="Scan from an image").click()
    page.get_by_label("Scan from an image").set_input_files(str(picture))


def test_a_scanned_code_opens_in_the_app_sandboxed_with_its_own_bridge_and_a_new_frame(
    live_server: LiveServer, sms_gateway: SmsGateway, browser: Any, tmp_path: Path
) -> None:
    owner = {"Authorization": "Bearer " + _login(live_server, sms_gateway, "+393401234567", "G")}
    first = _release(live_server, owner, "Trattoria")
    second = _release(live_server, owner, "Mercato")
    token = _login(live_server, sms_gateway, "+33612345678", "Camille")
    diner = {"Authorization": f"Bearer {token}"}
    # The first was used before (privacy notice accepted); the second is new to this person.
    _ok(
        httpx.post(
            f"{live_server.url}/api/v1/miniapps/launch/{first['appid']}/privacy", headers=diner
        )
    )
    context = browser.new_context()
    context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": live_server.url}])
    page = context.new_page()
    page.goto(live_server.url + "/scan")
    # The app keeps a blank sandboxed frame of the mini program origin ready while idle.
    warm = page.locator("[data-miniapp-warm-frame]")
    warm.wait_for(state="attached", timeout=15000)
    assert warm.get_attribute("sandbox") == "allow-scripts"
    assert urlsplit(warm.get_attribute("src") or "").path == "/_warm.html"
    page.evaluate("window.sameDocument = 'yes'")

    _scan_image(page, _qr_file(first["code_url"], tmp_path, "first.png"))
    page.get_by_role("heading", name="Trattoria").wait_for(timeout=15000)
    assert urlsplit(page.url).path == f"/mp/{first['appid']}/pages/menu"
    assert page.title() == "Trattoria · OMO"
    assert page.evaluate("document.activeElement.id") == "miniapp-name"
    assert page.evaluate("window.sameDocument") == "yes"  # opened in place, not navigated
    frame = page.locator("[data-miniapp-frame]")
    assert frame.get_attribute("sandbox") == "allow-scripts"
    assert frame.get_attribute("allow") == ""
    found = _frame_says(page)
    assert found == {
        "left": "name:",
        "cookie": "blocked",
        "storage": "blocked",
        "parent": "blocked",
        "origin": "null",
        "scene": "t=9",
        "code": found["code"],
    }
    # The bridge is the first mini program's: its code is exchanged by its backend only.
    assert _exchanges(live_server, found["code"], second) != 200
    assert _exchanges(live_server, found["code"], first) == 200
    assert AXE.exists(), "run `npm ci --prefix tests/web` for axe-core"
    source = AXE.read_text(encoding="utf-8")
    assert [v["id"] for v in axe_violations(page, source) if v["impact"] in BLOCKING] == []

    # Close (keyboard) goes back to the scanner page, the frame is gone.
    page.get_by_role("link", name="Close").focus()
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Scan", exact=True).wait_for(timeout=15000)
    assert urlsplit(page.url).path == "/scan"
    assert page.title() == "Scan · OMO"
    assert page.evaluate("document.activeElement.id") == "main"
    assert page.locator("[data-miniapp-frame]").count() == 0
    assert page.evaluate("window.sameDocument") == "yes"

    # The next code: another mini program, in a new frame, with nothing left by the first.
    _scan_image(page, _qr_file(second["code_url"], tmp_path, "second.png"))
    # New to this person: the privacy notice first, in place; the frame loads once accepted.
    page.get_by_role("heading", name="Before you use Mercato").wait_for(timeout=15000)
    assert urlsplit(page.url).path == f"/mp/{second['appid']}/pages/menu"
    assert page.locator("[data-miniapp-frame]").get_attribute("src") is None
    page.get_by_role("button", name="Accept and continue").click()
    found = _frame_says(page)
    assert found["left"] == "name:"
    assert found["scene"] == "t=7"
    assert (found["origin"], found["cookie"], found["storage"]) == ("null", "blocked", "blocked")
    assert _exchanges(live_server, found["code"], first) != 200
    assert _exchanges(live_server, found["code"], second) == 200
    # The browser's Back closes it too.
    page.go_back()
    page.get_by_role("heading", name="Scan", exact=True).wait_for(timeout=15000)
    assert page.locator("[data-miniapp-frame]").count() == 0

    # The recently used list opens in place as well.
    page.goto(live_server.url + "/miniapps")
    page.evaluate("window.sameDocument = 'list'")
    page.locator("[data-miniapp-recent]").get_by_role("link", name="Trattoria").focus()
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Trattoria").wait_for(timeout=15000)
    assert page.evaluate("window.sameDocument") == "list"
    found = _frame_says(page)
    assert (found["left"], found["origin"], found["scene"]) == ("name:", "null", "")
    # The page navigates itself (a history entry of the frame); Close still closes at once.
    page.frame_locator("[data-miniapp-frame]").get_by_role("link", name="Order").click()
    page.frame_locator("[data-miniapp-frame]").get_by_role("heading", name="Order").wait_for()
    # Closed, focus is back on the link that opened it.
    page.get_by_role("link", name="Close").click()
    page.get_by_role("heading", name="Recently used").wait_for(timeout=15000)
    assert page.evaluate("document.activeElement.textContent") == "Trattoria"
    assert urlsplit(page.url).path == "/miniapps"
    assert page.locator("[data-miniapp-frame]").count() == 0
    context.close()
