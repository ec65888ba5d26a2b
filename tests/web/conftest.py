"""A live `omo serve` process, a local SMS gateway, and Debian's Chromium through Playwright."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from omo.core.config import Settings

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    configured = os.environ.get("OMO_TEST_CHROMIUM")
    if configured:
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class SmsGateway:
    """An SMS gateway on loopback: records what OMO's HTTP sender posts to it."""

    url: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    def last_code(self, phone: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in reversed(self.messages):
                if message["to"] == phone:
                    return str(next(w for w in message["text"].split() if w.rstrip(".").isdigit()))[
                        :6
                    ]
            time.sleep(0.05)
        raise AssertionError(f"no text message reached {phone}")


@pytest.fixture
def sms_gateway() -> Iterator[SmsGateway]:
    gateway = SmsGateway(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            gateway.messages.append(json.loads(self.rfile.read(length)))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    gateway.url = f"http://127.0.0.1:{server.server_address[1]}/sms"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield gateway
    server.shutdown()


@dataclass
class LiveServer:
    url: str
    log: Path


@pytest.fixture
def live_server(
    settings: Settings, sms_gateway: SmsGateway, tmp_path: Path
) -> Iterator[LiveServer]:
    """`omo serve` as an operator runs it, configured only through OMO_* variables."""
    port = free_port()
    env = {
        **os.environ,
        "OMO_DATA_DIR": str(settings.data_dir),
        "OMO_SECRET_KEY": settings.secret_key or "",
        "OMO_PORT": str(port),
        "OMO_SMS_SENDER": "http",
        "OMO_SMS_GATEWAY_URL": sms_gateway.url,
        "OMO_LOG_LEVEL": "warning",
    }
    for name, value in (
        ("OMO_DATABASE_URL", settings.database_url),
        ("OMO_REDIS_URL", settings.redis_url),
        ("OMO_REDIS_PREFIX", settings.redis_prefix),
    ):
        if value:
            env[name] = value
    log = tmp_path / "server.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "omo.cli", "serve"], env=env, stdout=output, stderr=output
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process, log)
        yield LiveServer(url=url, log=log)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("server exited:\n" + log.read_text())
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("server did not start:\n" + log.read_text())


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
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
