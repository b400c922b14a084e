"""Reading the projections' state rows: one, some, all, counted or picked by the database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from monitor.store import schema
from monitor.store.logreads import Reads
from monitor.store.rawsql import load_states
from monitor.store.schema import projection_state


class StateReads(Reads):
    """The projections' reads, for EventStore."""

    def state(self, projection: str, key: str) -> dict[str, Any] | None:
        table = projection_state
        query = sa.select(table.c.state).where(table.c.name == projection, table.c.key == key)
        with self._reading() as conn:
            found = conn.execute(query).scalar_one_or_none()
        return None if found is None else dict(orjson.loads(found))

    def states_of(self, projection: str, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The state rows of `keys` that exist, in one query outside any write transaction."""
        if not keys:
            return {}
        with self._reading() as conn:
            return load_states(conn, projection, keys)

    def states(self, projection: str) -> dict[str, dict[str, Any]]:
        table = projection_state
        query = sa.select(table.c.key, table.c.state).where(table.c.name == projection)
        with self._reading() as conn:
            return {key: orjson.loads(state) for key, state in conn.execute(query)}

    def count_states(
        self, projection: str, by: str, *, unless: str | None = None
    ) -> dict[Any, int]:
        """How many state rows hold each value of their field `by`, counted by the database;
        rows whose field `unless` is true are left out."""
        value = _field(self.dialect, by)
        query = sa.select(value, sa.func.count()).where(*_rows(self.dialect, projection, unless))
        with self._reading() as conn:
            return {found: int(n) for found, n in conn.execute(query.group_by(value))}

    def count_states_among(
        self, projection: str, by: str, among: Sequence[str], *, unless: str | None = None
    ) -> tuple[dict[str, int], int]:
        """How many state rows hold each of the values `among` of their field `by`, and how
        many hold another (or none); rows whose field `unless` is true are left out.

        The database finds the first through an index of the field (the outbox's,
        `schema.outbox_index`) and counts the others as all the rows less the first and those
        left out, from indexes too, so that their states are not read: the outbox keeps every
        alert ever queued, nearly all of them delivered, and PostgreSQL answers no GROUP BY of
        a field from the index alone (it scans no index of expressions without the table).
        The counts are taken in one snapshot, so that they add up."""
        table, value = projection_state, _field(self.dialect, by)
        rows = _rows(self.dialect, projection, unless)
        query = sa.select(value, sa.func.count()).where(*rows, value.in_(list(among)))
        every = sa.select(sa.func.count()).where(table.c.name == projection)
        with self._reading(one_snapshot=True) as conn:
            found = {str(v): int(n) for v, n in conn.execute(query.group_by(value))}
            others = int(conn.execute(every).scalar_one()) - sum(found.values())
            if unless is not None:
                flagged = _field(self.dialect, unless) == _TRUE[self.dialect]
                others -= int(conn.execute(every.where(flagged)).scalar_one())
        return found, others

    def find_states(
        self,
        projection: str,
        where: Mapping[str, Sequence[str]],
        *,
        order: str,
        unless: str | None = None,
        last: int | None = None,
    ) -> list[dict[str, Any]]:
        """The state rows whose fields hold one of the values `where` names, in the order of
        their integer field `order` (0 when missing; then by key); `last`: the last N only.
        The database picks them: the other rows are neither sent nor decoded."""
        table = projection_state
        wanted = [_field(self.dialect, f).in_(list(v)) for f, v in where.items()]
        position = sa.func.coalesce(_field(self.dialect, order, sa.BigInteger), 0)
        query = sa.select(table.c.state).where(*_rows(self.dialect, projection, unless), *wanted)
        if last is None:
            query = query.order_by(position, table.c.key)
        else:
            query = query.order_by(position.desc(), table.c.key.desc()).limit(last)
        with self._reading() as conn:
            rows = [orjson.loads(state) for (state,) in conn.execute(query)]
        return rows if last is None else rows[::-1]


def _field(
    dialect: str, name: str, kind: type[sa.types.TypeEngine[Any]] = sa.Text
) -> sa.ColumnElement[Any]:
    """A top-level field of a projection's JSON state, read by the database (text, or `kind`)
    and spelled as the outbox's index spells it (`schema.state_field`)."""
    field = schema.state_field(dialect, name)
    if kind is sa.Text:
        return field
    if dialect == "sqlite":  # json_extract gives numbers as numbers already
        return sa.type_coerce(field, kind)
    return sa.cast(field, kind)


# a true field as `_field` reads it
_TRUE: dict[str, Any] = {"sqlite": 1, "postgresql": "true"}


def _rows(dialect: str, projection: str, unless: str | None) -> list[sa.ColumnElement[bool]]:
    """The projection's rows, without those whose field `unless` is true."""
    where = [projection_state.c.name == projection]
    if unless is not None:
        flag = _field(dialect, unless)
        where.append(sa.func.coalesce(flag, "") != _TRUE[dialect])
    return where
