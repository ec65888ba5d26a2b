"""A live `omo serve` process configured only through OMO_* variables, and a local SMS gateway."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.secrets_guard import leaks_in

from omo.core.config import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class SmsGateway:
    """An SMS gateway on loopback: records what OMO's HTTP sender posts to it."""

    url: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @classmethod
    def start(cls) -> SmsGateway:
        gateway = cls(url="")

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
        gateway._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return gateway

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def last_code(self, phone: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in reversed(self.messages):
                if message["to"] == phone:
                    words = message["text"].replace(".", " ").split()
                    return next(w for w in words if w.isdigit() and len(w) == 6)
            time.sleep(0.05)
        raise AssertionError(f"no text message reached {phone}")


@dataclass
class LiveServer:
    url: str
    log: Path
    process: subprocess.Popen[bytes]


def server_environment(settings: Settings, gateway: SmsGateway | None, port: int) -> dict[str, str]:
    """`omo serve`'s environment: the test's settings as OMO_* variables, and the SMS gateway
    when the test reads text messages."""
    env = {
        **os.environ,
        "OMO_DATA_DIR": str(settings.data_dir),
        "OMO_SECRET_KEY": settings.secret_key or "",
        "OMO_PORT": str(port),
        # The mini program origin's port, free too (the default, port + 1, may be taken).
        "OMO_MINIAPP_ORIGIN": f"http://127.0.0.1:{free_port()}",
        "OMO_LOG_LEVEL": "warning",
        "OMO_WEBHOOKS_TO_PRIVATE_NETWORKS": str(settings.webhooks_to_private_networks).lower(),
    }
    for name, value in (
        ("OMO_DATABASE_URL", settings.database_url),
        ("OMO_REDIS_URL", settings.redis_url),
        ("OMO_REDIS_PREFIX", settings.redis_prefix),
        ("OMO_OPERATORS", settings.operators),
    ):
        if value:
            env[name] = value
    if gateway is not None:
        env["OMO_SMS_SENDER"], env["OMO_SMS_GATEWAY_URL"] = "http", gateway.url
    return env


@contextmanager
def start_live_server(
    settings: Settings, gateway: SmsGateway, log_dir: Path, port: int | None = None
) -> Iterator[LiveServer]:
    """`omo serve` as an operator runs it; stopped (SIGTERM) when the block ends."""
    port = port or free_port()
    log = log_dir / f"server-{port}.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "omo.cli", "serve"],
            env=server_environment(settings, gateway, port),
            stdout=output,
            stderr=output,
        )
    server = LiveServer(url=f"http://127.0.0.1:{port}", log=log, process=process)
    try:
        _wait_until_healthy(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    leaks = leaks_in(log.read_text(errors="replace"))
    assert not leaks, f"secrets in the server log {log}: {leaks}"


def _wait_until_healthy(server: LiveServer) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError("server exited:\n" + server.log.read_text())
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("server did not start:\n" + server.log.read_text())


@pytest.fixture
def sms_gateway() -> Iterator[SmsGateway]:
    gateway = SmsGateway.start()
    yield gateway
    gateway.stop()


@pytest.fixture
def live_server(
    settings: Settings, sms_gateway: SmsGateway, tmp_path: Path
) -> Iterator[LiveServer]:
    with start_live_server(settings, sms_gateway, tmp_path) as server:
        yield server
