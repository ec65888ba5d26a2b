"""`sqlite_inline.Checkpointer`: a SQLite file's WAL is copied into the database file by a
checkpoint beside the event loop, not by SQLite's automatic checkpoint inside a commit."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from omo.core import sqlite_inline
from omo.core.db import Database, make_engine


def _in_database_file(path: Path) -> list[tuple[int]] | None:
    """The rows of `t` in the database file alone (`immutable` reads no WAL); None when the
    file has no table `t` yet."""
    connection = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        if connection.execute("SELECT 1 FROM sqlite_master WHERE name = 't'").fetchone() is None:
            return None
        return list(connection.execute("SELECT x FROM t ORDER BY x"))
    finally:
        connection.close()


async def _make_table(db: Database) -> None:
    async with db.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (x INTEGER)"))


async def test_a_database_files_connections_leave_checkpoints_to_its_checkpointer(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'wal.sqlite3'}")
    writer = await db.sqlite_writer()
    assert writer is not None
    try:
        async with db.engine.connect() as connection:
            pooled = (await connection.execute(text("PRAGMA wal_autocheckpoint"))).scalar()
        own = writer._conn.execute("PRAGMA wal_autocheckpoint").fetchone()
        assert (pooled, own) == (0, (0,))
    finally:
        await writer.close()
        await db.dispose()


async def test_an_engine_without_a_checkpointer_keeps_sqlites_automatic_checkpoint(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'plain.sqlite3'}")
    try:
        async with engine.connect() as connection:
            pages = (await connection.execute(text("PRAGMA wal_autocheckpoint"))).scalar()
        assert pages == 1000
    finally:
        await engine.dispose()


async def test_a_commit_starts_a_checkpoint_that_copies_the_wal_into_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "copied.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{path}")
    assert db.checkpointer is not None
    db.checkpointer.interval = 0.0
    writer = await db.sqlite_writer()
    assert writer is not None
    try:
        await _make_table(db)
        await (await writer.execute("BEGIN IMMEDIATE")).close()
        await (await writer.execute("INSERT INTO t VALUES (7)")).close()
        await writer.commit()
        await writer.close()
        # close() waits for the checkpoint that the commit started.
        await db.checkpointer.close()
        assert db.checkpointer.checkpoints >= 1
        assert _in_database_file(path) == [(7,)]
    finally:
        await db.dispose()


async def test_without_a_checkpoint_committed_rows_stay_in_the_wal(tmp_path: Path) -> None:
    """The converse: the automatic checkpoint is really off (the previous test's copy is the
    checkpointer's work, not SQLite's)."""
    path = tmp_path / "kept.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{path}")
    assert db.checkpointer is not None
    await db.checkpointer.close()  # a closed checkpointer starts no checkpoint
    writer = await db.sqlite_writer()
    assert writer is not None
    try:
        await _make_table(db)
        for x in range(300):  # past SQLite's 1000-page automatic checkpoint
            await (await writer.execute("BEGIN IMMEDIATE")).close()
            await (await writer.execute("INSERT INTO t VALUES (?)", (x,))).close()
            await (await writer.execute("CREATE TABLE IF NOT EXISTS pad (y)")).close()
            await (await writer.execute("INSERT INTO pad VALUES (zeroblob(20000))")).close()
            await writer.commit()
        assert db.checkpointer.checkpoints == 0
        assert _in_database_file(path) is None
    finally:
        await writer.close()
        await db.dispose()


async def test_checkpoints_come_at_most_once_an_interval(tmp_path: Path) -> None:
    db_path = tmp_path / "interval.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{db_path}")
    assert db.checkpointer is not None
    db.checkpointer.interval = 3600.0
    try:
        await _make_table(db)
        for x in range(5):
            async with db.engine.begin() as connection:
                await connection.execute(text("INSERT INTO t VALUES (:x)"), {"x": x})
        for _ in range(500):  # the first commit's checkpoint ends
            if db.checkpointer.checkpoints:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert db.checkpointer.checkpoints == 1
        # The later commits' checkpoint waits for the interval, or for close.
        await db.checkpointer.close()
        assert db.checkpointer.checkpoints == 2
        assert _in_database_file(db_path) == [(0,), (1,), (2,), (3,), (4,)]
    finally:
        await db.dispose()


async def test_an_in_memory_database_has_no_checkpointer() -> None:
    db = Database("sqlite+aiosqlite:///:memory:")
    try:
        assert db.checkpointer is None
    finally:
        await db.dispose()


def test_a_long_wal_is_started_over_at_once_if_it_can_and_a_very_long_one_waits() -> None:
    assert sqlite_inline.restart_wait(sqlite_inline.RESTART_FRAMES - 1) is None
    assert sqlite_inline.restart_wait(sqlite_inline.RESTART_FRAMES) == 0.0
    assert sqlite_inline.restart_wait(sqlite_inline.RESTART_FRAMES_MAX) == (
        sqlite_inline.RESTART_WAIT_SECONDS
    )


async def test_after_a_closing_checkpoint_everything_is_copied_and_the_wal_starts_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With RESTART in the closing checkpoint: every commit in the database file, and the
    next commit writes the WAL from its start (its few pages are the whole WAL)."""
    monkeypatch.setattr(sqlite_inline, "RESTART_FRAMES", 1)
    path = tmp_path / "restarted.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{path}")
    assert db.checkpointer is not None
    db.checkpointer.interval = 3600.0
    try:
        await _make_table(db)
        for x in range(50):
            async with db.engine.begin() as connection:
                await connection.execute(text("INSERT INTO t VALUES (:x)"), {"x": x})
        await db.checkpointer.close()
        async with db.engine.begin() as connection:
            await connection.execute(text("INSERT INTO t VALUES (50)"))
        probe = sqlite3.connect(path)
        try:
            frames = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        finally:
            probe.close()
        assert 0 < frames < 10
        assert _in_database_file(path) == [(x,) for x in range(51)]
    finally:
        await db.dispose()
