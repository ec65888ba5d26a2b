"""Shared set-up of the payments and flash-sale benchmarks: people, a merchant, money, and a
live `omo serve` process on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher

from omo import migrations
from omo.app import create_app
from omo.core.config import Settings
from omo.core.money import Money

PASSWORD = "bench password 2026"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class World:
    settings: Settings
    owner_token: str
    merchant_id: str
    customer_tokens: list[str]
    customer_ids: list[str]


def make_settings(database_url: str | None) -> Settings:
    folder = Path(tempfile.mkdtemp(prefix="omo-bench-"))
    return Settings(  # type: ignore[call-arg]
        data_dir=folder,
        database_url=database_url,
        secret_key="bench-" + folder.name,
        # A benchmark customer pays far more often than a person could; measure the payment.
        payment_codes_per_minute=1_000_000,
    )


async def seed(settings: Settings, customers: int, fund: str = "100000.00") -> World:
    """People log in through the identity service (a cheap password hash keeps 20,000 quick)."""
    migrations.upgrade(settings.resolved_database_url)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        identity = app.state.identity
        identity._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

        async def person(index: int) -> tuple[str, str]:
            phone = f"+86139{index:08d}"
            user_id = await identity.ensure_person(phone, PASSWORD, f"Buyer {index}")
            issued = await identity.log_in(
                phone,
                PASSWORD,
                device_name="bench",
                kind="app",
                user_agent="bench",
                client_address=f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}",
            )
            return str(user_id), issued.token

        owner_id, owner_token = await person(99_999_999)
        merchant = await app.state.pay.create_merchant(
            uuid.UUID(owner_id), f"bench-{os.getpid()}", "Bench", approved=True
        )
        people: list[tuple[str, str]] = []
        for start in range(0, customers, 200):
            batch = range(start, min(customers, start + 200))
            people += await asyncio.gather(*(person(i) for i in batch))
        return World(
            settings,
            owner_token,
            str(merchant.id),
            [token for _, token in people],
            [user for user, _ in people],
        )


async def fund(settings: Settings, user_ids: list[str], amount: str, currency: str) -> None:

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        for user in user_ids:
            await app.state.pay.top_up(
                uuid.UUID(user), "bench-fund", f"BENCH-{user}", Money.of(amount, currency)
            )


class Server:
    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "OMO_DATA_DIR": str(settings.data_dir),
            "OMO_SECRET_KEY": settings.secret_key or "",
            "OMO_PORT": str(self.port),
            "OMO_LOG_LEVEL": "warning",
            "OMO_PAYMENT_CODES_PER_MINUTE": str(settings.payment_codes_per_minute),
        }
        if settings.database_url:
            env["OMO_DATABASE_URL"] = settings.database_url
        self.log = settings.data_dir / "server.log"
        with self.log.open("w") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "omo.cli", "serve"], env=env, stdout=output, stderr=output
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not start:\n" + self.log.read_text())

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far (Linux /proc): per
        payment, a figure that holds on a shared machine where wall-clock rates swing."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def auth(token: str) -> dict[str, Any]:
    return {"Authorization": f"Bearer {token}"}


class LeanClient:
    """A minimal HTTP/1.1 keep-alive client for the load generators.

    httpx spends about as much CPU per request as the server now does, and on a shared
    2-core machine the load generator's CPU is taken from the server; this client writes
    the request bytes and reads a Content-Length body, nothing more. One connection per
    concurrent caller (`connections` of them, handed out in turn).
    """

    def __init__(self, url: str, connections: int) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self._free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._size = connections
        self._opened = 0

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._free.empty() and self._opened < self._size:
            self._opened += 1
            return await asyncio.open_connection(self.host, self.port)
        return await self._free.get()

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A keep-alive connection of one's own (a load worker that sends on it in turn)."""
        return await asyncio.open_connection(self.host, self.port)

    def head(self, method: str, path: str, token: str, length: int = 0) -> bytes:
        return (
            f"{method} {path} HTTP/1.1\r\nhost: {self.host}\r\n"
            f"authorization: Bearer {token}\r\ncontent-type: application/json\r\n"
            f"content-length: {length}\r\n\r\n"
        ).encode()

    @staticmethod
    async def exchange(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
    ) -> tuple[int, bytes]:
        """Sends one request and reads its whole answer (status and Content-Length body)."""
        writer.write(data)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
                break
        return status, await reader.readexactly(length) if length else b""

    async def request(
        self, method: str, path: str, token: str, body: Any = None
    ) -> tuple[int, Any]:
        payload = json.dumps(body).encode() if body is not None else b""
        head = self.head(method, path, token, len(payload))
        reader, writer = await self._connection()
        try:
            status, data = await self.exchange(reader, writer, head + payload)
        except BaseException:
            writer.close()
            self._opened -= 1
            raise
        self._free.put_nowait((reader, writer))
        return status, json.loads(data) if data else None

    async def close(self) -> None:
        while not self._free.empty():
            _, writer = self._free.get_nowait()
            writer.close()
