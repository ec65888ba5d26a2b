"""`DriverStatement`: the statement on the driver's connection writes and reads the values
SQLAlchemy would, inside the session's transaction, with SQLAlchemy's errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import (
    JSON,
    Column,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from omo.core import driver
from omo.core.config import Settings
from omo.core.db import Database, UtcDateTime


def _table() -> Table:
    return Table(
        f"driver_things_{uuid.uuid4().hex[:8]}",
        MetaData(),
        Column("id", Uuid, primary_key=True),
        Column("name", String(20)),
        Column("seen_at", UtcDateTime),
        Column("extra", JSON, nullable=True),
    )


async def test_driver_statements_match_sqlalchemy(settings: Settings) -> None:
    db = Database(settings.resolved_database_url)
    things = _table()
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(things.metadata.create_all)
        add = driver.DriverStatement(insert(things), column_keys=["id", "name", "seen_at", "extra"])
        rename = driver.DriverStatement(
            update(things)
            .where(things.c.id == bindparam("the_id"), things.c.name == "a")
            .values(name=bindparam("new_name"))
            .returning(things.c.id, things.c.seen_at)
        )
        first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        moment = datetime(2026, 12, 7, 21, 0, 1, 5, tzinfo=UTC)
        async with db.transaction() as session:
            await add.rows(
                session, {"id": first, "name": "a", "seen_at": moment, "extra": {"k": [1]}}
            )
            await add.many(
                session,
                [
                    {"id": second, "name": "b", "seen_at": moment, "extra": None},
                    {"id": third, "name": "c", "seen_at": moment},
                ],
            )
            # The driver connection under the session, not a fallback through it.
            assert isinstance(session.info[driver._KEY], driver._Sqlite | driver._Asyncpg)
            assert await rename.rows(session, {"the_id": first, "new_name": "z"}) == [
                (first, moment)
            ]
            assert await rename.first(session, {"the_id": first, "new_name": "y"}) is None
        async with db.sessions() as session:
            rows = (
                await session.execute(
                    select(things.c.id, things.c.name, things.c.seen_at, things.c.extra)
                )
            ).all()
            assert sorted(map(tuple, rows), key=lambda row: row[1]) == [
                (second, "b", moment, None),
                (third, "c", moment, None),
                (first, "z", moment, {"k": [1]}),
            ]
            # None is SQL NULL, never JSON 'null' (as a Core INSERT leaving the column out).
            nulls = await session.scalar(
                select(func.count()).select_from(things).where(text("extra IS NULL"))
            )
            assert nulls == 2
        # A unique key is SQLAlchemy's IntegrityError, and the transaction rolls back whole.
        fourth = uuid.uuid4()

        async def duplicate() -> None:
            async with db.transaction() as session:
                await add.rows(session, {"id": fourth, "name": "d", "seen_at": moment})
                await add.rows(session, {"id": first, "name": "e", "seen_at": moment})

        with pytest.raises(IntegrityError):
            await duplicate()
        async with db.sessions() as session:
            count = await session.scalar(select(things.c.id).where(things.c.id == fourth))
            assert count is None
    finally:
        async with db.engine.begin() as connection:
            await connection.run_sync(things.metadata.drop_all)
        await db.dispose()
