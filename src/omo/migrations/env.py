"""Alembic environment: runs migrations over the async engine of the configured database."""

from __future__ import annotations

import asyncio
import importlib

from alembic import context
from sqlalchemy.engine import Connection

import omo.core.audit
import omo.core.events  # noqa: F401  (registers the kernel's tables: outbox, audit log)
from omo.contexts import CONTEXTS
from omo.core.db import Base, make_engine

for _name in CONTEXTS:
    importlib.import_module(f"omo.{_name}.models")

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str) -> None:
    engine = make_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


url = context.config.attributes.get("database_url") or context.config.get_main_option(
    "sqlalchemy.url"
)
assert url, "no database url given to the migrations"
asyncio.run(_run_online(url))
