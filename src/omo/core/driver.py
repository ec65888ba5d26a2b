"""Prebuilt Core statements run on SQLite's driver connection, inside an ORM session's
transaction.

A statement through `session.execute` costs SQLAlchemy's execution context, its result object
and a greenlet hop: 150-250 µs, against 10-30 µs for SQLite to run it (a payment's scan made
nine of them; docs/BENCHMARKS.md). A `DriverStatement` is compiled once for the session's
dialect and, on SQLite (`omo.core.sqlite_inline`), handed straight to the cursor of the
connection under the session's transaction, its parameters and result columns converted by
the columns' own types, so the values written and read are the ones SQLAlchemy would write
and read. On other databases it runs through the session as before.

Nothing is flushed first: a caller that added ORM objects the statement depends on must
flush them itself. A driver error is raised as SQLAlchemy's exception of the same kind
(`IntegrityError` for a unique key), as `session.execute` would.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, exc
from sqlalchemy.ext.asyncio import AsyncSession

from omo.core.sqlite_inline import InlineConnection

_KEY = "omo.core.driver"


async def inline_connection(session: AsyncSession) -> tuple[InlineConnection, Any] | None:
    """The SQLite connection under this session's transaction and its dialect; None on other
    databases. Looked up once per session (it begins the session's transaction)."""
    found: tuple[InlineConnection, Any] | bool | None = session.info.get(_KEY)
    if found is None:
        found = False
        connection = await session.connection()
        if connection.dialect.name == "sqlite":
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            if isinstance(driver, InlineConnection):
                found = (driver, connection.dialect)
        session.info[_KEY] = found
    return found if isinstance(found, tuple) else None


class _Compiled:
    def __init__(self, statement: Any, dialect: Any, column_keys: Sequence[str] | None) -> None:
        compiled = (
            statement.compile(dialect=dialect, column_keys=list(column_keys))
            if column_keys is not None
            else statement.compile(dialect=dialect)
        )
        self.sql: str = compiled.string
        self.names: list[str] = list(compiled.positiontup or ())
        # Values written into the statement itself (not given by the caller) keep theirs.
        self.fixed = {
            name: compiled.binds[name].effective_value
            for name in self.names
            if not compiled.binds[name].required
        }
        self.binds = [
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in self.names
        ]
        columns = list(getattr(statement, "exported_columns", ()) or ())
        self.results = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]

    def values(self, params: dict[str, Any]) -> tuple[Any, ...]:
        out = []
        for name, process in zip(self.names, self.binds, strict=True):
            value = params[name] if name in params else self.fixed.get(name)
            # An absent or None value is SQL NULL (a JSON column's too, never 'null').
            out.append(value if process is None or value is None else process(value))
        return tuple(out)

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            value if process is None else process(value)
            for value, process in zip(raw, self.results, strict=True)
        )


class DriverStatement:
    """A module-level Core statement (SELECT, DML, DML … RETURNING) for hot paths.

    `column_keys` names an INSERT's columns on SQLite (the others get their server defaults
    or NULL): a named column missing from a row, or None, is written as SQL NULL (a JSON
    column's too, never 'null'). Elsewhere the statement runs through the session with the
    parameters as given."""

    def __init__(self, statement: Any, column_keys: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.column_keys = list(column_keys) if column_keys is not None else None
        self._compiled: _Compiled | None = None

    def _prepare(self, dialect: Any) -> _Compiled:
        if self._compiled is None:
            self._compiled = _Compiled(self.statement, dialect, self.column_keys)
        return self._compiled

    async def rows(self, session: AsyncSession, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run it; the rows it returns (none for DML without RETURNING)."""
        found = await inline_connection(session)
        if found is None:
            result = cast(CursorResult[Any], await session.execute(self.statement, params))
            return [tuple(row) for row in result] if result.returns_rows else []
        driver, dialect = found
        compiled = self._prepare(dialect)
        values = compiled.values(params)
        cursor = driver._conn.cursor()
        try:
            await driver._retry(lambda: cursor.execute(compiled.sql, values))
            fetched = cursor.fetchall() if cursor.description is not None else []
        except sqlite3.Error as error:
            raise _translated(compiled.sql, error) from error
        finally:
            cursor.close()
        return [compiled.row(row) for row in fetched]

    async def first(self, session: AsyncSession, params: dict[str, Any]) -> tuple[Any, ...] | None:
        rows = await self.rows(session, params)
        return rows[0] if rows else None

    async def many(self, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
        """Run it once per row (executemany)."""
        found = await inline_connection(session)
        if found is None:
            await session.execute(self.statement, list(rows))
            return
        driver, dialect = found
        compiled = self._prepare(dialect)
        values = [compiled.values(row) for row in rows]
        cursor = driver._conn.cursor()
        try:
            await driver._retry(lambda: cursor.executemany(compiled.sql, values))
        except sqlite3.Error as error:
            raise _translated(compiled.sql, error) from error
        finally:
            cursor.close()


def _translated(sql: str, error: sqlite3.Error) -> Exception:
    return exc.DBAPIError.instance(sql, None, error, sqlite3.Error, hide_parameters=True)
