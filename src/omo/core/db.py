"""Storage: one async SQLAlchemy engine (SQLite file by default, PostgreSQL when configured)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from omo.core import sqlite_inline

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Every context's tables share one metadata, so one Alembic history covers them all."""

    metadata = MetaData(naming_convention=NAMING)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use the clock")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer. A connection that finds the write lock
    # taken waits for it in `sqlite_inline` (without blocking the event loop), not in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        database = url.split(":///", 1)[1] if ":///" in url else ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Statements run on the event loop's thread: see omo.core.sqlite_inline.
        engine = create_async_engine(
            url,
            poolclass=NullPool if not database else None,
            hide_parameters=True,
            async_creator=sqlite_inline.connector(database or ":memory:"),
        )
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        return engine
    # hide_parameters: a failed statement's error (and so the log) never shows the values,
    # which may be phone numbers or password hashes.
    # No pool_pre_ping: with asyncpg it costs three round trips (BEGIN, ping, ROLLBACK) on
    # every checkout, more than most requests' own work. A connection found dead fails its
    # request once, and SQLAlchemy then replaces every pooled connection older than it.
    return create_async_engine(url, pool_size=10, max_overflow=20, hide_parameters=True)


class Database:
    """The engine plus a session factory; one per process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Reads outside a unit of work. On PostgreSQL without BEGIN and ROLLBACK around them
        # (two round trips saved per read); SQLite's driver opens no transaction for a SELECT.
        readers = self.engine
        if not self.is_sqlite:
            readers = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.reads = async_sessionmaker(readers, expire_on_commit=False)
        # For a Core read on every request (authentication): a connection without an ORM
        # session is ~80 µs cheaper.
        self.reader = readers

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits when the block ends normally, rolls back on any error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
