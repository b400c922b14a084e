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
from functools import cache
from typing import Any

import orjson
import sqlalchemy as sa

from monitor.store.schema import events, projection_state


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
    """`stmt` compiled for `dialect` (an INSERT for the columns `keys`), once per backend.

    Statements are kept by identity, so each must be built once (a module constant or a
    cached function), never per call: a new object is a new entry here."""
    key = (dialect.name, dialect.paramstyle, stmt, keys)
    found = _COMPILED.get(key)
    if found is None:
        done = stmt.compile(dialect=dialect, column_keys=list(keys) or None)  # type: ignore[attr-defined]
        order = tuple(done.positiontup) if done.positional else None
        fixed = {done.bind_names[b]: b.value for b in done.binds.values() if not b.required}
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


# --- the statements; built once per dialect: building one costs more than running it ---
HEAD = sa.select(events.c.position, events.c.hash).order_by(events.c.position.desc()).limit(1)
INSERT_EVENT = events.insert()  # one object: statements are compiled once per object


@cache
def known_query(dialect: str, column: str) -> sa.Select[Any]:
    cols = (events.c.position, events.c.event_id, events.c.hash, events.c.dedupe_key)
    return sa.select(*cols).where(member(dialect, events.c[column]))


@cache
def streams_query(dialect: str) -> sa.Select[Any]:
    """The events of the streams in `members`, in log order."""
    cols = (events.c.stream, events.c.type, events.c.data)
    return sa.select(*cols).where(member(dialect, events.c.stream)).order_by(events.c.position)


@cache
def keyed_query(dialect: str) -> sa.Select[Any]:
    """The payloads of the events recorded under the dedupe keys in `members`."""
    return sa.select(events.c.dedupe_key, events.c.data).where(member(dialect, events.c.dedupe_key))


@cache
def upsert_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT (name, key) DO UPDATE, in the dialect's own spelling."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(projection_state)
    return stmt.on_conflict_do_update(
        index_elements=["name", "key"],
        set_={"state": stmt.excluded.state, "position": stmt.excluded.position},
    )


@cache
def versions_query(dialect: str) -> sa.Select[Any]:
    """Each stream's current version, None for an empty one. A subquery per stream, not
    `max … GROUP BY stream`: only the subquery reads the version off the index's end; the
    grouped form reads every event of the stream, and a milestone's stream never stops growing."""
    stream = _members_table(dialect).c.value
    head = sa.select(sa.func.max(events.c.stream_version)).where(events.c.stream == stream)
    return sa.select(stream, head.scalar_subquery())


@cache
def states_query(dialect: str) -> sa.Select[Any]:
    table = projection_state
    return sa.select(table.c.key, table.c.state).where(
        table.c.name == sa.bindparam("name"), member(dialect, table.c.key)
    )


def members(values: Sequence[str]) -> dict[str, str]:
    """The parameter `member` binds: the values as one JSON array."""
    return {"members": orjson.dumps(list(values)).decode()}


def load_states(conn: sa.Connection, name: str, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The state rows of projection `name` for `keys` that exist, in one query."""
    query = states_query(conn.dialect.name)
    rows = fetch(conn, query, {"name": name, **members(keys)})
    return {key: orjson.loads(state) for key, state in rows}


def _members_table(dialect: str) -> sa.TableValuedAlias:
    """The bound JSON text `members` (see `members`) as a table of one column, `value`."""
    doc = sa.bindparam("members", type_=sa.Text)
    if dialect == "postgresql":  # a set of text is one column named for its alias
        each = sa.func.json_array_elements_text(sa.cast(doc, sa.JSON))
        return each.table_valued("value").render_derived(name="members")
    return sa.func.json_each(doc).table_valued("value").alias("members")


def member(dialect: str, column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """`column IN :members`, the list bound as one JSON text value: the statement compiles
    once, no list meets a bound-parameter limit, and it is several times faster than
    an expanding IN or a PostgreSQL array parameter at a hundred values."""
    return column.in_(sa.select(_members_table(dialect).c.value))
