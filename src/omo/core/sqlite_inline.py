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
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

SQLITE_BUSY = 5
SQLITE_LOCKED = 6
# At most this often a WAL checkpoint (see `Checkpointer`) while commits keep coming.
CHECKPOINT_SECONDS = 0.1
# A WAL of this many pages (4 KiB each) is started over by the next checkpoint that can.
RESTART_FRAMES = 8192
RESTART_FRAMES_MAX = 65536
RESTART_WAIT_SECONDS = 0.02

logger = logging.getLogger("omo.core.sqlite")


def _busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) in (SQLITE_BUSY, SQLITE_LOCKED)


class InlineConnection:
    """The subset of `aiosqlite.Connection` that SQLAlchemy's aiosqlite dialect uses."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        busy_timeout: float,
        checkpointer: Checkpointer | None = None,
    ) -> None:
        self._conn = connection
        # SQLAlchemy's adapter checks this attribute to know the connection is open.
        self._connection: sqlite3.Connection | None = connection
        self.busy_timeout = busy_timeout
        self.checkpointer = checkpointer

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
        if self.checkpointer is not None:
            self.checkpointer.committed()

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


def restart_wait(frames: int) -> float | None:
    """How long a checkpoint waits for the write lock and readers to start over a WAL of
    `frames` pages: None (it does not try), 0 (only if it can at once), or a short while
    past RESTART_FRAMES_MAX, which bounds the WAL (see `Checkpointer._checkpoint`)."""
    if frames < RESTART_FRAMES:
        return None
    return RESTART_WAIT_SECONDS if frames >= RESTART_FRAMES_MAX else 0.0


class Checkpointer:
    """WAL checkpoints of one database file in a worker thread, not inside a commit.

    SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past 1000 pages:
    it copies the WAL back into the database file and, with synchronous=NORMAL, syncs both
    files, here on the event loop's thread, which serves nothing else meanwhile. A small
    transaction writes a dozen pages, so at a few thousand commits a second (chat messages
    arriving one by one) that was a checkpoint every few hundred commits: about a quarter of
    a lone message's CPU, and the loop stalled in fdatasync (profiled, docs/BENCHMARKS.md).
    SQLite documents the alternative used here: connections made with this checkpointer
    turn the automatic checkpoint off (`PRAGMA wal_autocheckpoint=0`) and report their
    commits; at most every CHECKPOINT_SECONDS while commits come, a PASSIVE checkpoint runs
    on a connection of its own in the loop's default executor. PASSIVE takes no lock that a
    reader or a writer waits for, and `sqlite3` releases the GIL while SQLite works.
    Durability is that of synchronous=NORMAL as before: a commit is in the WAL either way.
    """

    def __init__(self, database: str, interval: float = CHECKPOINT_SECONDS) -> None:
        self.database = database
        self.interval = interval
        self.checkpoints = 0
        self._last = float("-inf")  # the first commit starts one at once
        self._running: asyncio.Future[None] | None = None
        self._due: asyncio.TimerHandle | None = None
        self._again = False  # a commit came while a checkpoint ran
        self._connection: sqlite3.Connection | None = None
        self._closed = False

    def committed(self) -> None:
        """A connection committed: a checkpoint starts now, or when the one running ends, or
        once CHECKPOINT_SECONDS have passed since the last began: every commit is copied
        into the database file soon, with at most one checkpoint an interval."""
        if self._closed or self._due is not None:
            return
        if self._running is not None:
            self._again = True
            return
        wait = self._last + self.interval - time.monotonic()
        if wait > 0:
            self._due = asyncio.get_running_loop().call_later(wait, self._start)
        else:
            self._start()

    def _start(self) -> None:
        self._due = None
        self._last = time.monotonic()
        running = asyncio.get_running_loop().run_in_executor(None, self._checkpoint)
        self._running = running
        running.add_done_callback(self._done)

    def _checkpoint(self) -> None:
        """In the worker thread (one at a time): copy the WAL into the database file, and
        when it has grown long, have the next transaction write it from its start again.

        PASSIVE copies what is committed without taking any lock that others wait for. But
        SQLite starts the WAL over only when a write transaction begins with all of it
        copied, which never happens while commits come faster than checkpoints (it grew by
        hundreds of megabytes in a minute of chat). Past RESTART_FRAMES, RESTART then takes
        the write lock if it is free at once, copies the little committed meanwhile, and
        restarts the WAL if no reader is in it at once; else it gives up at once (a waiting
        checkpoint would hold the write lock) and the next one tries again. Only past
        RESTART_FRAMES_MAX does it wait, up to RESTART_WAIT_SECONDS, which bounds the WAL.
        The writers meanwhile wait for the lock without blocking the loop (`_retry`)."""
        connection = self._connection
        if connection is None:
            connection = self._connection = sqlite3.connect(
                self.database,
                check_same_thread=False,
                timeout=0,
                isolation_level=None,
                uri=self.database.startswith("file:"),
            )
        _busy, frames, _copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        wait = restart_wait(frames)
        if wait is not None:
            connection.execute(f"PRAGMA busy_timeout={int(wait * 1000)}")
            connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()

    def _done(self, running: asyncio.Future[None]) -> None:
        self._running = None
        self.checkpoints += 1
        if not running.cancelled() and running.exception() is not None:
            # The WAL keeps the data; a later checkpoint copies it.
            logger.warning("WAL checkpoint failed", exc_info=running.exception())
        if self._again:
            self._again = False
            self.committed()

    async def close(self) -> None:
        """Let a running checkpoint end, copy what was committed since, and close the
        checkpoint's connection; later commits start none."""
        self._closed = True
        due = self._due is not None or self._again
        if self._due is not None:
            self._due.cancel()
            self._due = None
        running = self._running
        if running is not None:
            await asyncio.wait([running])
        if due or self._again:
            self._again = False
            await asyncio.get_running_loop().run_in_executor(None, self._checkpoint)
            self.checkpoints += 1
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def connector(
    database: str, busy_timeout: float = 10.0, checkpointer: Checkpointer | None = None
) -> Callable[[], Any]:
    """An `async_creator` for `create_async_engine("sqlite+aiosqlite://...")`; with a
    checkpointer, the connections leave WAL checkpoints to it (see `Checkpointer`)."""

    async def connect() -> InlineConnection:
        connection = sqlite3.connect(
            database,
            # The pool may close a connection from another thread (e.g. at interpreter exit).
            check_same_thread=False,
            # No waiting inside SQLite: InlineConnection waits without blocking the loop.
            timeout=0,
            uri=database.startswith("file:"),
        )
        if checkpointer is not None:
            connection.execute("PRAGMA wal_autocheckpoint=0")
        return InlineConnection(connection, busy_timeout, checkpointer)

    return connect
