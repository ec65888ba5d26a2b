"""Storage: one async SQLAlchemy engine (SQLite file by default, PostgreSQL when configured)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, Select, event
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
from omo.core.driver import CompiledStatement

# A SELECT of any columns (Select is generic over the tuple of its columns' types).
AnySelect = Select[*tuple[Any, ...]]

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


def _sqlite_database(url: str) -> str:
    """The file (or ":memory:") a SQLite URL names; "" when it names none."""
    return url.split(":///", 1)[1] if ":///" in url else ""


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        database = _sqlite_database(url)
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
        database = _sqlite_database(self.url)
        # `first` reads a SQLite file through one plain connection of its own; an in-memory
        # database exists only inside its own connection, so it keeps the engine's path.
        self._sqlite_file = database if self.is_sqlite and database not in ("", ":memory:") else ""
        self._raw: sqlite_inline.InlineConnection | None = None
        self._prepared: dict[int, tuple[AnySelect, CompiledStatement]] = {}

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits when the block ends normally, rolls back on any error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def first(self, statement: AnySelect, parameters: dict[str, Any]) -> Any:
        """The first row of a prebuilt Core SELECT (a tuple of its columns), or None.

        For the reads every request makes (whose session is this token). Each call is its own
        read (a new snapshot on SQLite, autocommit on PostgreSQL), so a change committed by
        any connection or node is seen by the very next call: nothing is cached but the
        statement's compiled form. `statement` must be a module-level constant: it is
        compiled once and remembered by identity.

        On SQLite the row comes from one plain `sqlite3` connection on the loop's thread,
        opened read-only (`query_only`), with the columns' own type conversions: the pooled
        async engine's checkout, greenlet switches and result machinery cost about ten times
        the read itself.
        """
        if not self._sqlite_file:
            async with self.reader.connect() as connection:
                return (await connection.execute(statement, parameters)).first()
        found = self._prepared.get(id(statement))
        if found is None or found[0] is not statement:
            found = (statement, CompiledStatement(statement, self.engine.dialect, None))
            self._prepared[id(statement)] = found
        prepared = found[1]
        raw = self._raw
        if raw is None:
            raw = self._raw = await _read_only(self._sqlite_file)
        values = prepared.values(parameters)
        row = await raw._retry(lambda: _fetch_first(raw, prepared.sql, values))
        return None if row is None else prepared.row(row)

    async def sqlite_writer(self) -> sqlite_inline.InlineConnection | None:
        """A plain writable connection of its own to this SQLite file, tuned like the
        engine's (WAL, foreign keys), in autocommit mode: its owner writes BEGIN IMMEDIATE
        and COMMIT itself and closes it. None on other databases and in-memory SQLite (whose
        data lives only inside the engine's connection). For a hot writer that runs a few
        prepared statements per transaction: a session's checkout, greenlet hops and commit
        cost more than those statements (messaging's batches)."""
        if not self._sqlite_file:
            return None
        connection: sqlite_inline.InlineConnection = await sqlite_inline.connector(
            self._sqlite_file
        )()
        _tune_sqlite(connection._conn, None)
        connection.isolation_level = None
        return connection

    async def dispose(self) -> None:
        if self._raw is not None:
            await self._raw.close()
            self._raw = None
        await self.engine.dispose()


def _fetch_first(connection: sqlite_inline.InlineConnection, sql: str, values: Any) -> Any:
    cursor = connection._conn.execute(sql, values)
    try:
        return cursor.fetchone()
    finally:
        # Resetting the statement ends its read transaction: the next read sees new commits.
        cursor.close()


async def _read_only(database: str) -> sqlite_inline.InlineConnection:
    connection: sqlite_inline.InlineConnection = await sqlite_inline.connector(database)()
    # Autocommit (no BEGIN from the driver): every SELECT is its own read transaction.
    connection.isolation_level = None
    connection._conn.execute("PRAGMA query_only=ON")
    return connection
