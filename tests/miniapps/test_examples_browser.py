"""The two example mini programs of `examples/miniapps/`, end to end in Chromium, as the demo
world serves them: seeded by `omo demo`'s seed, their backends in their own processes, the
code on the table (or at the shop's door) scanned through Chromium's fake camera (a Y4M video
of the QR code, made here from segno's image), paid in the host's sheet with the best coupon,
and the receipt seen in the chat with the brand's official account."""

from __future__ import annotations

import asyncio
import io
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import segno
import zxingcpp
from PIL import Image
from tests.support.live import LiveServer, SmsGateway, start_live_server
from tests.web.conftest import CHROMIUM_FLAGS, chromium_path
from tests.web.test_accessibility import AXE, BLOCKING, axe_violations

from omo import demo as demo_world
from omo.app import create_app
from omo.core.auth import SESSION_COOKIE
from omo.core.config import Settings
from omo.demo import DEMO_PASSWORD, PEOPLE
from omo.miniapps.demo import BACKENDS, Backend

PIN = "135790"
WIDTH, HEIGHT = 640, 480


def qr_png(text: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=6, border=4)
    return buffer.getvalue()


def ean13_image(digits: str) -> Image.Image:
    drawn = memoryview(
        zxingcpp.create_barcode(digits, zxingcpp.BarcodeFormat.EAN13).to_image(scale=4)
    )
    height, width = drawn.shape
    return Image.frombytes("L", (width, height), drawn.tobytes())


def y4m_of(text: str, path: Path, frames: int = 6) -> Path:
    """A short Y4M video (YUV 4:2:0) showing the QR code of `text`, for Chromium's fake
    camera: luma from the grey image, neutral chroma."""
    code = Image.open(io.BytesIO(qr_png(text))).convert("L")
    side = min(code.width, HEIGHT - 40)
    return y4m_showing(code.resize((side, side), Image.Resampling.NEAREST), path, frames)


def y4m_showing(code: Image.Image, path: Path, frames: int = 6) -> Path:
    picture = Image.new("L", (WIDTH, HEIGHT), 235)
    picture.paste(code, ((WIDTH - code.width) // 2, (HEIGHT - code.height) // 2))
    luma = picture.tobytes()
    chroma = bytes([128]) * ((WIDTH // 2) * (HEIGHT // 2))
    with path.open("wb") as video:
        video.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            video.write(b"FRAME\n" + luma + chroma + chroma)
    return path


def _ports_free(*ports: int) -> bool:
    for port in ports:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _demo_port() -> int:
    """A port for OMO whose + 2 and + 3 (the example backends') are free too; below the
    ephemeral range, so that no outgoing connection takes one meanwhile."""
    for _ in range(200):
        port = random.randrange(20000, 30000)
        if _ports_free(port, port + 2, port + 3):
            return port
    raise AssertionError("no free ports")


@contextmanager
def demo_world_served(
    settings: Settings, gateway: SmsGateway, tmp_path: Path
) -> Iterator[tuple[LiveServer, dict[str, Backend]]]:
    port = _demo_port()
    seeded = settings.model_copy(update={"port": port})
    with start_live_server(seeded, gateway, tmp_path, port) as server:
        asyncio.run(demo_world.seed(create_app(seeded)))
        backends = {backend.name: backend for backend in BACKENDS}
        children = []
        try:
            for backend in backends.values():
                log = (tmp_path / f"{backend.script.parent.name}.log").open("w")
                children.append(
                    subprocess.Popen(
                        [sys.executable, str(backend.script)],
                        env={**os.environ, **backend.env},
                        stdout=log,
                        stderr=log,
                    )
                )
            for backend in backends.values():
                _wait_for(backend.url + "/healthz")
            yield server, backends
        finally:
            for child in children:
                child.terminate()
                child.wait(timeout=10)


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not start")


def _log_in(server: LiveServer, phone: str) -> dict[str, str]:
    login = httpx.post(
        server.url + "/api/v1/identity/login", json={"phone": phone, "password": DEMO_PASSWORD}
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    pin = httpx.put(server.url + "/api/v1/pay/wallet/pin", json={"pin": PIN}, headers=headers)
    assert pin.status_code == 200, pin.text
    return headers


@contextmanager
def camera_browser(video: Path) -> Iterator[Any]:
    """Chromium whose camera films `video` (and says yes to the camera prompt)."""
    executable = chromium_path()
    if not executable:
        pytest.skip("Chromium is not installed")
    from playwright.sync_api import sync_playwright

    flags = [
        *CHROMIUM_FLAGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=flags)
        try:
            yield browser
        finally:
            browser.close()


def _context(browser: Any, server: LiveServer, headers: dict[str, str]) -> Any:
    context = browser.new_context(permissions=["camera"])
    token = headers["Authorization"].removeprefix("Bearer ")
    context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": server.url}])
    return context


def _receipt(server: LiveServer, headers: dict[str, str], brand: str) -> tuple[str, str]:
    """(account id, receipt title) once the receipt reached the chat with the brand."""
    following = httpx.get(server.url + "/api/v1/accounts/following", headers=headers).json()
    account = next(a for a in following if a["name"] == brand)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        items = httpx.get(
            f"{server.url}/api/v1/accounts/{account['id']}/messages", headers=headers
        ).json()
        for item in items:
            card = (item.get("body") or {}).get("card") or {}
            if str(card.get("title", "")).startswith("Payment to"):
                return account["id"], card["title"]
        time.sleep(0.2)
    raise AssertionError(f"no receipt from {brand}")


def test_table_ordering_scanned_ordered_paid_with_a_coupon_seen_by_the_kitchen(
    settings: Settings, sms_gateway: SmsGateway, tmp_path: Path
) -> None:
    with demo_world_served(settings, sms_gateway, tmp_path) as (server, backends):
        trattoria = backends["Trattoria Da Nino"]
        assert "scene=t%3D12" in trattoria.code_url
        diner = _log_in(server, PEOPLE[0].phone)
        with camera_browser(y4m_of(trattoria.code_url, tmp_path / "table12.y4m")) as browser:
            context = _context(browser, server, diner)
            kitchen = context.new_page()
            kitchen.goto(trattoria.staff_url)
            kitchen.get_by_text("Live: new orders appear here.").wait_for(timeout=15000)

            page = context.new_page()
            page.goto(server.url + "/scan")
            page.get_by_role("button", name="Scan with the camera").click()
            page.wait_for_url("**/mp/**", timeout=20000)  # the camera read the table's code
            assert "scene=t%3D12" in page.url
            page.get_by_role("button", name="Accept and continue").click()
            frame = page.frame_locator("[data-miniapp-frame]")
            frame.get_by_text("Table 12").wait_for(timeout=15000)
            frame.get_by_role("button", name="One more Pizza Margherita").click()
            frame.get_by_role("button", name="One more Spaghetti alla carbonara").click()
            frame.get_by_text("Total 20.00 €").wait_for()
            frame.get_by_role("button", name="Order and pay").click()

            # The order reaches the kitchen's screen before it is paid, without a reload.
            kitchen.get_by_text("Waiting for payment: 20.00 €").wait_for(timeout=15000)

            page.get_by_label("Payment PIN").fill(PIN)  # the host's sheet, not the frame's
            page.get_by_role("button", name="Pay now").click()
            frame.get_by_role("heading", name="Grazie!").wait_for(timeout=20000)
            summary = frame.locator("#summary").text_content()
            assert summary is not None
            assert "paid: 17.00 €" in summary  # 3 € off over 20 €: the best coupon applied
            assert "saved 3.00 €" in summary
            kitchen.get_by_text("Paid 17.00 € (coupon −3.00 €)").wait_for(timeout=15000)

            account_id, title = _receipt(server, diner, "Trattoria Da Nino")
            assert title == "Payment to Trattoria Da Nino"
            page.goto(f"{server.url}/accounts/{account_id}")
            assert page.get_by_text("Payment to Trattoria Da Nino").first.is_visible()
            context.close()

        # The kitchen's screen is for the staff only.
        refused = httpx.get(trattoria.url + "/kitchen", params={"key": "guess"})
        assert refused.status_code == 403


def _serious_violations(page: Any) -> list[str]:
    assert AXE.exists(), "run `npm ci --prefix tests/web` for axe-core"
    found = axe_violations(page, AXE.read_text(encoding="utf-8"))
    return [v["id"] for v in found if v["impact"] in BLOCKING]


def _launch_by_camera(browser: Any, server: LiveServer, diner: dict[str, str]) -> str:
    context = _context(browser, server, diner)
    page = context.new_page()
    page.goto(server.url + "/scan")
    page.get_by_role("button", name="Scan with the camera").click()
    page.wait_for_url("**/mp/**", timeout=20000)
    page.get_by_role("button", name="Accept and continue").click()
    page.frame_locator("[data-miniapp-frame]").get_by_role(
        "heading", name="Scan, pay and go"
    ).wait_for(timeout=15000)
    launched: str = page.url
    context.close()
    return launched


def test_scan_and_go_basket_nudge_payment_and_a_single_use_exit_code(
    settings: Settings, sms_gateway: SmsGateway, tmp_path: Path
) -> None:
    with demo_world_served(settings, sms_gateway, tmp_path) as (server, backends):
        shop = backends["Mercato Fresco"]
        shopper = _log_in(server, PEOPLE[2].phone)
        with camera_browser(y4m_of(shop.code_url, tmp_path / "door.y4m")) as browser:
            launched = _launch_by_camera(browser, server, shopper)
        assert "scene=s%3D1" in launched

        oil = y4m_showing(ean13_image("8001002003015"), tmp_path / "oil.y4m")
        with camera_browser(oil) as browser:
            context = _context(browser, server, shopper)
            page = context.new_page()
            # The same code read from a picture ("scan from an image") opens it too.
            page.goto(server.url + "/scan")
            page.get_by_role("button", name="Scan from an image").click()
            page.get_by_text("Choose an image of the code instead").wait_for()
            assert _serious_violations(page) == []  # the scanner, open
            picture = tmp_path / "door.png"
            picture.write_bytes(qr_png(shop.code_url))
            page.get_by_label("Scan from an image").set_input_files(str(picture))
            page.wait_for_url("**/mp/**", timeout=20000)
            assert page.url == launched
            frame = page.frame_locator("[data-miniapp-frame]")

            frame.get_by_role("button", name="Scan a product").click()
            page.get_by_role("button", name="Allow").click()  # camera, asked once
            frame.get_by_text("1 × Extra virgin olive oil 0.75 l").wait_for(timeout=20000)
            frame.get_by_text("Spend 11.10 € more to save 3.00 €").wait_for(timeout=10000)
            frame.get_by_role("button", name="Scan a product").click()
            frame.get_by_text("2 × Extra virgin olive oil 0.75 l").wait_for(timeout=20000)
            frame.get_by_text("Spend 2.20 € more to save 3.00 €").wait_for(timeout=10000)
            frame.get_by_role("button", name="Scan a product").click()
            frame.get_by_text("3 × Extra virgin olive oil 0.75 l").wait_for(timeout=20000)
            frame.get_by_text("Total 26.70 €").wait_for(timeout=10000)
            frame.get_by_text("takes 3.00 € off at payment").wait_for(timeout=10000)
            frame.get_by_text("Spend 23.30 € more to save 10.00 €").wait_for(timeout=10000)
            assert page.locator("[data-scanner]").is_hidden()  # the camera is off again
            assert _serious_violations(page) == []  # the host page with its frame

            frame.get_by_role("button", name="Pay").click()
            page.get_by_label("Payment PIN").fill(PIN)
            page.get_by_role("button", name="Pay now").click()
            frame.get_by_role("heading", name="Thank you!").wait_for(timeout=20000)
            frame.locator("#summary", has_text="Paid").wait_for(timeout=15000)
            summary = frame.locator("#summary").text_content() or ""
            assert "Paid 23.70 €." in summary
            assert "saved 3.00 €" in summary
            assert frame.get_by_role("img", name="Exit code to show at the door").is_visible()
            exit_code = frame.locator("#code").text_content() or ""
            assert exit_code.startswith("EXIT.")

            guard = context.new_page()
            guard.goto(shop.staff_url)
            guard.get_by_label("Exit code").fill(exit_code)
            guard.get_by_role("button", name="Verify").click()
            guard.get_by_text("Paid 23.70 € for 3 items. Let them through.").wait_for()
            guard.get_by_label("Exit code").fill(exit_code)
            guard.get_by_role("button", name="Verify").click()
            guard.get_by_text("Already used").wait_for()
            forged = exit_code[:-2] + ("AA" if not exit_code.endswith("AA") else "BB")
            guard.get_by_label("Exit code").fill(forged)
            guard.get_by_role("button", name="Verify").click()
            guard.get_by_text("Forged or damaged code").wait_for()

            _, title = _receipt(server, shopper, "Mercato Fresco")
            assert title == "Payment to Mercato Fresco"
            context.close()
        refused = httpx.post(shop.url + "/guard/verify", json={"key": "guess", "code": exit_code})
        assert refused.status_code == 403
