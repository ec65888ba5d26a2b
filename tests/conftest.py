"""Test harness: every database test runs on SQLite and, when configured, PostgreSQL + Redis.

Set OMO_TEST_POSTGRES_URL (postgresql+asyncpg://user@host:port/postgres) and
OMO_TEST_REDIS_URL (redis://host:port/0) to add the second backend; OMO_TEST_REQUIRE_SERVICES=1
turns a missing service into a failure instead of a smaller run (CI sets it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from tests.support.live import live_server, sms_gateway
from tests.support.nodes import start_node
from tests.support.secrets_guard import RecordingHandler, leaks_in

from omo import migrations
from omo.app import create_app
from omo.core.clock import ManualClock
from omo.core.config import Settings
from omo.core.db import Base, make_engine

__all__ = ["live_server", "sms_gateway", "start_node"]  # fixtures shared by every test folder

POSTGRES_URL = os.environ.get("OMO_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("OMO_TEST_REDIS_URL")
REQUIRE_SERVICES = os.environ.get("OMO_TEST_REQUIRE_SERVICES") == "1"

BACKENDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])


def pytest_configure(config: pytest.Config) -> None:
    if REQUIRE_SERVICES and not (POSTGRES_URL and REDIS_URL):
        raise pytest.UsageError(
            "OMO_TEST_REQUIRE_SERVICES=1 needs OMO_TEST_POSTGRES_URL and OMO_TEST_REDIS_URL"
        )


def pytest_report_header() -> str:
    return f"omo backends: {', '.join(BACKENDS)}; redis: {'yes' if REDIS_URL else 'no'}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once; each test gets a copy of the file (milliseconds, not a migration run)."""
    folder = tmp_path_factory.mktemp("template")
    path = folder / "omo.sqlite3"
    migrations.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


async def _admin(url: str, statement: str) -> None:
    engine = make_engine(url)
    async with engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(statement))
    await engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of our own for this test process, migrated once and dropped at the end."""
    assert POSTGRES_URL
    name = f"omo_test_{uuid.uuid4().hex[:12]}"
    admin = make_url(POSTGRES_URL)
    run_in_thread(lambda: _admin(POSTGRES_URL, f'CREATE DATABASE "{name}"'))
    url = admin.set(database=name).render_as_string(hide_password=False)
    migrations.upgrade(url)
    yield url
    run_in_thread(lambda: _admin(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate_all(url: str) -> None:
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    engine = make_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run_in_thread(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine to completion on a fresh loop, even when this thread has one running
    (Playwright's sync API keeps one in the main thread)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: asyncio.run(work())).result()


@pytest.fixture
def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Settings]:
    common = {
        "data_dir": tmp_path,
        "secret_key": "test-secret-" + uuid.uuid4().hex,
        # The tests' merchant and brand servers listen on loopback.
        "webhooks_to_private_networks": True,
    }
    if backend == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), tmp_path / "omo.sqlite3")
        yield Settings(**common, redis_url=None)  # type: ignore[arg-type]
        return
    url = request.getfixturevalue("postgres_url")
    run_in_thread(lambda: _truncate_all(url))
    yield Settings(  # type: ignore[arg-type]
        **common,
        database_url=url,
        redis_url=REDIS_URL,
        redis_prefix=f"omotest:{uuid.uuid4().hex[:8]}:",
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))


@pytest.fixture
async def app(settings: Settings, clock: ManualClock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock)
    # A loaded CI machine may take more than the default 5 s to close pools and background
    # tasks; a real hang still fails, at 30 s.
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


class SmsInbox:
    """Reads what the log SMS sender 'sent': the real sender, read back from the log."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self._caplog = caplog

    def texts(self) -> list[str]:
        return [r.getMessage() for r in self._caplog.records if r.name == "omo.sms"]

    def last_code(self) -> str:
        texts = self.texts()
        assert texts, "no text message was sent"
        found = re.search(r"(?<!\d)(\d{6})(?!\d)", texts[-1])
        assert found, texts[-1]
        return found.group(1)


@pytest.fixture
def sms(caplog: pytest.LogCaptureFixture) -> SmsInbox:
    caplog.set_level(logging.INFO, logger="omo.sms")
    return SmsInbox(caplog)


@pytest.fixture(autouse=True)
def no_secrets_in_logs() -> Iterator[None]:
    """Whatever a test makes the platform log (at any level) must hold no secret."""
    handler = RecordingHandler()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    omo_logger = logging.getLogger("omo")
    previous = omo_logger.level
    omo_logger.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        omo_logger.setLevel(previous)
    found = [leak for line in handler.lines for leak in leaks_in(line)]
    assert not found, f"secrets in the logs: {found}"
