"""Take the screenshots in docs/screenshots: the welcome and profile pages in every language.

    .venv/bin/python docs/screenshots/take.py            # all languages
    .venv/bin/python docs/screenshots/take.py ja fr      # only some

Tooling for people, not a test: it starts `omo demo` on a throw-away data directory and a free
port, drives Debian's Chromium (/usr/bin/chromium, or OMO_TEST_CHROMIUM) with Playwright at a
phone's size, and writes <page>-<lang>.png beside this file. Chinese and Japanese need CJK fonts
on the machine (Debian: `apt-get install fonts-noto-cjk`), or their text shows as boxes.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Browser, sync_playwright

from omo.core.i18n import SUPPORTED
from omo.demo import DEMO_PASSWORD, PEOPLE

HERE = Path(__file__).resolve().parent
HTML_LANG = {"en": "en", "zh_Hans": "zh-Hans", "it": "it", "fr": "fr", "ja": "ja"}
# Whose profile each language shows: a demo person who would read it.
PERSON = {"en": 1, "zh_Hans": 0, "it": 1, "fr": 2, "ja": 3}
PHONE_SCREEN = {"width": 390, "height": 760}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_demo(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "OMO_DATA_DIR": str(data_dir),
        "OMO_PORT": str(port),
        "OMO_LOG_LEVEL": "warning",
    }
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "omo.cli", "demo"], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("omo demo exited:\n" + (data_dir / "server.log").read_text())
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("omo demo did not start")


def _shoot(browser: Browser, url: str, locale: str) -> None:
    person = PEOPLE[PERSON[locale]]
    context = browser.new_context(
        locale=HTML_LANG[locale],
        viewport=PHONE_SCREEN,
        device_scale_factor=2,
        color_scheme="light",
        reduced_motion="reduce",
    )
    page = context.new_page()
    page.goto(f"{url}/?lang={locale}")
    page.screenshot(path=HERE / f"welcome-{locale}.png", full_page=True)

    api = f"{url}/api/v1/identity"
    login = {"phone": person.phone, "password": DEMO_PASSWORD, "kind": "web"}
    assert context.request.post(f"{api}/login", data=login).ok
    context.request.patch(f"{api}/me", data={"locale": locale}, headers={"X-OMO-CSRF": "1"})
    page.goto(f"{url}/profile")
    page.screenshot(path=HERE / f"profile-{locale}.png", full_page=True)
    context.close()
    print(f"wrote welcome-{locale}.png and profile-{locale}.png")


def main(locales: list[str]) -> None:
    unknown = set(locales) - set(SUPPORTED)
    if unknown:
        raise SystemExit(f"unknown languages {sorted(unknown)}; choose from {SUPPORTED}")
    chromium = os.environ.get("OMO_TEST_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        raise SystemExit("needs Chromium: apt-get install chromium")
    data_dir = Path(tempfile.mkdtemp(prefix="omo-screenshots-"))
    process, url = _start_demo(data_dir)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            for locale in locales or SUPPORTED:
                _shoot(browser, url, locale)
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
