"""A write transaction on a plain SQLite connection of one's own (`InlineConnection.immediate`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from omo.core import sqlite_inline
from omo.core.sqlite_inline import InlineConnection

pytestmark = pytest.mark.asyncio


async def _connection(tmp_path: Path) -> InlineConnection:
    connection: InlineConnection = await sqlite_inline.connector(str(tmp_path / "t.sqlite3"))()
    connection.isolation_level = None
    await (await connection.execute("CREATE TABLE notes (text TEXT)")).close()
    return connection


async def _notes(connection: InlineConnection) -> list[str]:
    cursor = await connection.execute("SELECT text FROM notes")
    rows = [row[0] for row in await cursor.fetchall()]
    await cursor.close()
    return rows


async def test_a_block_that_ends_normally_is_committed(tmp_path: Path) -> None:
    connection = await _connection(tmp_path)
    async with connection.immediate():
        assert connection.in_transaction
        await (await connection.execute("INSERT INTO notes VALUES ('kept')")).close()
    assert not connection.in_transaction
    assert await _notes(connection) == ["kept"]
    await connection.close()


async def test_a_block_that_fails_is_rolled_back_and_its_error_raised(tmp_path: Path) -> None:
    connection = await _connection(tmp_path)

    async def write_then_fail() -> None:
        async with connection.immediate():
            await (await connection.execute("INSERT INTO notes VALUES ('lost')")).close()
            raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        await write_then_fail()
    assert not connection.in_transaction
    assert await _notes(connection) == []
    await connection.close()
