"""Alembic migrations for every context's tables: one history, SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(HERE / "versions"))
    config.attributes["database_url"] = database_url
    return config


def _outside_the_loop(work: Callable[[], None]) -> None:
    """Alembic's async env runs its own event loop; from inside a running one, use a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        work()
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(work).result()


def upgrade(database_url: str, revision: str = "heads") -> None:
    """Bring the schema to `revision` (every context's branch of the history by default)."""
    _outside_the_loop(lambda: command.upgrade(alembic_config(database_url), revision))


def downgrade(database_url: str, revision: str) -> None:
    _outside_the_loop(lambda: command.downgrade(alembic_config(database_url), revision))
