"""SQLite statements run on the event loop's own thread, behind the aiosqlite interface.

aiosqlite hands every statement to a worker thread and waits for the answer: two thread
switches and a trip through the event loop per statement. A SQLite statement on an indexed
WAL database takes microseconds, while the hand-off takes a millisecond or more once the loop
is busy or the CPU is shared, so a payment of a dozen statements spent nearly all its time
waiting for threads (docs/BENCHMARKS.md). This module gives SQLAlchemy's aiosqlite dialect a
connection with the same async methods that simply runs each statement where it is called.

Only one thing may not happen on the loop's thread: waiting for a lock held by another
connection. The connection therefore has no busy timeout (SQLite answers SQLITE_BUSY at once)
and the wait happens here, with `asyncio.sleep`, so the connection holding the lock (perhaps
in this same process) keeps running. That is what SQLite's own busy handler does, minus the
blocking: the statement is retried until `busy_timeout` seconds have passed.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

SQLITE_BUSY = 5
SQLITE_LOCKED = 6


def _busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) in (SQLITE_BUSY, SQLITE_LOCKED)


class InlineConnection:
    """The subset of `aiosqlite.Connection` that SQLAlchemy's aiosqlite dialect uses."""

    def __init__(self, connection: sqlite3.Connection, busy_timeout: float) -> None:
        self._conn = connection
        # SQLAlchemy's adapter checks this attribute to know the connection is open.
        self._connection: sqlite3.Connection | None = connection
        self.busy_timeout = busy_timeout

    async def _retry(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except sqlite3.OperationalError as error:
            if not _busy(error):
                raise
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.0005
        while True:
            await asyncio.sleep(delay)
            try:
                return call()
            except sqlite3.OperationalError as error:
                if not _busy(error) or time.monotonic() >= deadline:
                    raise
            delay = min(delay * 2, 0.02)

    def cursor(self) -> InlineCursor:
        return InlineCursor(self)

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        cursor = self.cursor()
        await cursor.execute(sql, parameters)
        return cursor

    async def commit(self) -> None:
        await self._retry(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        """Forced close (SQLAlchemy's terminate)."""
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> Any:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: Any) -> None:
        self._conn.isolation_level = value

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    @asynccontextmanager
    async def immediate(self) -> AsyncIterator[None]:
        """A write transaction on a connection in autocommit mode (`Database.sqlite_writer`):
        BEGIN IMMEDIATE takes the write lock first, so the block's reads and writes see one
        state; COMMIT when the block ends, ROLLBACK on any error (which is raised again)."""
        await (await self.execute("BEGIN IMMEDIATE")).close()
        try:
            yield
            await (await self.execute("COMMIT")).close()
        except BaseException:
            if self.in_transaction:
                await self.rollback()
            raise


class InlineCursor:
    """The subset of `aiosqlite.Cursor` that SQLAlchemy's adapter uses."""

    def __init__(self, connection: InlineConnection) -> None:
        self._connection = connection
        self._cursor = connection._conn.cursor()

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        cursor = self._cursor
        if parameters is None:
            await self._connection._retry(lambda: cursor.execute(sql))
        else:
            await self._connection._retry(lambda: cursor.execute(sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> InlineCursor:
        rows = list(parameters)
        cursor = self._cursor
        await self._connection._retry(lambda: cursor.executemany(sql, rows))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def nextset(self) -> None:
        return None

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


def connector(database: str, busy_timeout: float = 10.0) -> Callable[[], Any]:
    """An `async_creator` for `create_async_engine("sqlite+aiosqlite://...")`."""

    async def connect() -> InlineConnection:
        connection = sqlite3.connect(
            database,
            # The pool may close a connection from another thread (e.g. at interpreter exit).
            check_same_thread=False,
            # No waiting inside SQLite: InlineConnection waits without blocking the loop.
            timeout=0,
            uri=database.startswith("file:"),
        )
        return InlineConnection(connection, busy_timeout)

    return connect
