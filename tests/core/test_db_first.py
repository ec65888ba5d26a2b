"""`Database.first`: the prebuilt read every request makes sees every commit at once and
converts its columns as the engine would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Column, MetaData, String, Table, Uuid, bindparam, insert, select, update

from omo.core.db import Database, UtcDateTime

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(20)),
    Column("seen_at", UtcDateTime),
)
_BY_ID = select(things.c.id, things.c.name, things.c.seen_at).where(things.c.id == bindparam("id"))
_NAMED = select(things.c.id).where(things.c.name == "fixed", things.c.id == bindparam("id"))


async def test_first_sees_each_commit_at_once_with_converted_columns(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'first.sqlite3'}")
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        thing, moment = uuid.uuid4(), datetime(2026, 12, 3, 20, 0, 1, 5, tzinfo=UTC)
        assert await db.first(_BY_ID, {"id": thing}) is None
        async with db.engine.begin() as connection:
            await connection.execute(insert(things).values(id=thing, name="a", seen_at=moment))
        assert await db.first(_BY_ID, {"id": thing}) == (thing, "a", moment)
        async with db.engine.begin() as connection:
            await connection.execute(update(things).values(name="fixed"))
        # The next read sees the change: no snapshot is held between reads.
        assert await db.first(_BY_ID, {"id": thing}) == (thing, "fixed", moment)
        # A value written into the statement itself is bound too.
        assert await db.first(_NAMED, {"id": thing}) == (thing,)
    finally:
        await db.dispose()
