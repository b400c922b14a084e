"""The writer's hot statements, compiled once per dialect and run on the DBAPI cursor.

A changed poll runs a dozen small statements; SQLAlchemy's execution machinery (contexts,
events, result objects) costs several times what SQLite itself spends on each. The statements
stay SQLAlchemy expressions, so each database gets its own spelling; only their execution
skips the machinery. Driver errors are re-raised as SQLAlchemy's, as `Connection.execute`
would, so callers handle one exception family.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa


@dataclass(frozen=True, slots=True)
class Compiled:
    """A statement's SQL text for one dialect and the order of its parameters."""

    sql: str
    order: tuple[str, ...] | None  # positional paramstyle: names in order; None when named
    fixed: Mapping[str, Any]  # values the statement binds itself (a LIMIT, say)

    def params(self, values: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        given = {**self.fixed, **values} if self.fixed else values
        return given if self.order is None else tuple(given[n] for n in self.order)


_COMPILED: dict[tuple[str, str, sa.Executable, tuple[str, ...]], Compiled] = {}


def compiled(dialect: sa.Dialect, stmt: sa.Executable, keys: tuple[str, ...] = ()) -> Compiled:
    """`stmt` compiled for `dialect` (an INSERT for the columns `keys`), once per backend."""
    key = (dialect.name, dialect.paramstyle, stmt, keys)
    found = _COMPILED.get(key)
    if found is None:
        done = stmt.compile(dialect=dialect, column_keys=list(keys) or None)  # type: ignore[attr-defined]
        order = tuple(done.positiontup) if done.positional else None
        fixed = {name: b.value for name, b in done.binds.items() if b.value is not None}
        found = _COMPILED[key] = Compiled(str(done), order, fixed)
    return found


def fetch(conn: sa.Connection, stmt: sa.Executable, values: Mapping[str, Any]) -> list[Any]:
    """Every row `stmt` returns for `values`, as tuples."""
    sql = compiled(conn.dialect, stmt)
    cursor = _cursor(conn)
    try:
        cursor.execute(sql.sql, sql.params(values))
        return list(cursor.fetchall())
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _wrapped(conn, sql.sql, values, exc) from exc
    finally:
        cursor.close()


def execute_many(
    conn: sa.Connection, stmt: sa.Executable, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Run `stmt` once per row (the rows share one set of keys)."""
    if not rows:
        return
    sql = compiled(conn.dialect, stmt, tuple(rows[0]))
    cursor = _cursor(conn)
    try:
        cursor.executemany(sql.sql, [sql.params(r) for r in rows])
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _wrapped(conn, sql.sql, rows[0], exc) from exc
    finally:
        cursor.close()


def _cursor(conn: sa.Connection) -> Any:
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def _wrapped(conn: sa.Connection, sql: str, values: Any, exc: Exception) -> sa.exc.StatementError:
    """The driver's error as SQLAlchemy would raise it (IntegrityError, OperationalError…)."""
    return sa.exc.DBAPIError.instance(sql, values, exc, conn.dialect.loaded_dbapi.Error)
