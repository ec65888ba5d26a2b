"""Prebuilt Core statements run on the driver's connection, inside an ORM session's
transaction.

A statement through `session.execute` costs SQLAlchemy's execution context, its result object
and a greenlet hop: 150-250 µs, against 10-30 µs for SQLite to run it (a payment's scan made
nine of them; docs/BENCHMARKS.md). A `DriverStatement` is compiled once per dialect and handed
straight to the connection under the session's transaction: SQLite's cursor
(`omo.core.sqlite_inline`) or asyncpg's connection (in the transaction SQLAlchemy's adapter
began, or begins here as it would), its parameters and result columns converted by the
columns' own types, so the values written and read are the ones SQLAlchemy would write and
read. Any other driver runs the statement through the session.

Nothing is flushed first: a caller that added ORM objects the statement depends on must
flush them itself. A driver error is raised as SQLAlchemy's exception of the same kind
(`IntegrityError` for a unique key), as `session.execute` would.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, exc
from sqlalchemy.ext.asyncio import AsyncSession

from omo.core.sqlite_inline import InlineConnection

_KEY = "omo.core.driver"


class _Sqlite:
    def __init__(self, driver: InlineConnection, dialect: Any) -> None:
        self.driver, self.dialect = driver, dialect

    async def rows(self, sql: str, values: tuple[Any, ...]) -> list[Any]:
        return await self._run(sql, lambda cursor: cursor.execute(sql, values))

    async def many(self, sql: str, values: list[tuple[Any, ...]]) -> None:
        await self._run(sql, lambda cursor: cursor.executemany(sql, values))

    async def _run(self, sql: str, call: Callable[[sqlite3.Cursor], object]) -> list[Any]:
        """`call` on a fresh cursor (retried while the file is busy); its rows, if any. A
        driver error is raised as SQLAlchemy's exception of the same kind."""
        cursor = self.driver._conn.cursor()
        try:
            await self.driver._retry(lambda: call(cursor))
            return cursor.fetchall() if cursor.description is not None else []
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance(
                sql, None, error, sqlite3.Error, hide_parameters=True
            ) from error
        finally:
            cursor.close()


class _Asyncpg:
    """asyncpg's connection under SQLAlchemy's adapter, in the adapter's transaction (begun
    here as the adapter begins it, if no statement has run yet). Errors are translated as the
    adapter translates them."""

    def __init__(self, adapter: Any, dialect: Any) -> None:
        self.adapter, self.dialect = adapter, dialect
        self.connection = adapter._connection

    async def _begun(self) -> None:
        if self.adapter._transaction is None:
            async with self.adapter._execute_mutex:
                if self.adapter._transaction is None:
                    await self.adapter._start_transaction()

    def _translated(self, sql: str, error: Exception) -> Exception:
        dbapi = self.dialect.dbapi
        mapping = dbapi._asyncpg_error_translate
        translated: Exception = error
        for super_ in type(error).__mro__:
            if super_ in mapping:
                translated = mapping[super_](error.args[0] if error.args else str(error), error)
                break
        else:
            translated = dbapi.Error(str(error))
        return exc.DBAPIError.instance(sql, None, translated, dbapi.Error, hide_parameters=True)

    async def rows(self, sql: str, values: tuple[Any, ...]) -> list[Any]:
        await self._begun()
        try:
            async with self.adapter._execute_mutex:
                return list(await self.connection.fetch(sql, *values))
        except Exception as error:
            if isinstance(error, exc.SQLAlchemyError):
                raise
            raise self._translated(sql, error) from error

    async def many(self, sql: str, values: list[tuple[Any, ...]]) -> None:
        await self._begun()
        try:
            async with self.adapter._execute_mutex:
                await self.connection.executemany(sql, values)
        except Exception as error:
            if isinstance(error, exc.SQLAlchemyError):
                raise
            raise self._translated(sql, error) from error


_Driver = _Sqlite | _Asyncpg


async def _driver(session: AsyncSession) -> _Driver | None:
    """The driver connection under this session's transaction; None when it is neither
    `sqlite_inline` nor asyncpg. Looked up once per session."""
    found: _Driver | bool | None = session.info.get(_KEY)
    if found is None:
        found = False
        connection = await session.connection()
        dialect = connection.dialect
        raw = await connection.get_raw_connection()
        if dialect.name == "sqlite" and isinstance(raw.driver_connection, InlineConnection):
            found = _Sqlite(raw.driver_connection, dialect)
        elif dialect.driver == "asyncpg" and hasattr(raw.dbapi_connection, "_start_transaction"):
            found = _Asyncpg(raw.dbapi_connection, dialect)
        session.info[_KEY] = found
    return found if isinstance(found, _Sqlite | _Asyncpg) else None


class CompiledStatement:
    """A Core statement compiled once for one dialect, with its parameters' and result
    columns' own type conversions (the values SQLAlchemy would send and return)."""

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
        self._compiled: dict[str, CompiledStatement] = {}

    def _prepare(self, dialect: Any) -> CompiledStatement:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = CompiledStatement(
                self.statement, dialect, self.column_keys
            )
        return compiled

    async def rows(self, session: AsyncSession, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run it; the rows it returns (none for DML without RETURNING)."""
        driver = await _driver(session)
        if driver is None:
            result = cast(CursorResult[Any], await session.execute(self.statement, params))
            return [tuple(row) for row in result] if result.returns_rows else []
        compiled = self._prepare(driver.dialect)
        return [
            compiled.row(row) for row in await driver.rows(compiled.sql, compiled.values(params))
        ]

    async def first(self, session: AsyncSession, params: dict[str, Any]) -> tuple[Any, ...] | None:
        rows = await self.rows(session, params)
        return rows[0] if rows else None

    async def on_sqlite(
        self, connection: InlineConnection, dialect: Any, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        """Run it on a SQLite connection of the caller's own (`Database.sqlite_writer`),
        in whatever transaction the caller began there; the rows it returns."""
        compiled = self._prepare(dialect)
        driver = _Sqlite(connection, dialect)
        return [
            compiled.row(row) for row in await driver.rows(compiled.sql, compiled.values(params))
        ]

    async def many(self, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
        """Run it once per row (executemany)."""
        driver = await _driver(session)
        if driver is None:
            await session.execute(self.statement, list(rows))
            return
        compiled = self._prepare(driver.dialect)
        await driver.many(compiled.sql, [compiled.values(row) for row in rows])
