"""The event log: open, write transactions, streaming reads, projections, verification."""

from __future__ import annotations

import string
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from monitor.errors import AppendOnlyError, StoreError, WrongDatabaseError
from monitor.redact import redact_url
from monitor.store import readonly, schema, verify
from monitor.store.rawsql import load_states
from monitor.store.records import (
    Appended,
    NewEvent,
    Projection,
    Recorded,
    VerifyReport,
    format_time,
)
from monitor.store.schema import READ_COLUMNS, events, projection_state, to_record
from monitor.store.writer import Transaction
from monitor.textfold import folded_from

# `read(payload_folded=…)`: a text whose characters more than this many others fold into
# (Greek ι: 71) is looked for in every payload's text by `read` instead of by the database
MAX_FOLDING = 16
# SQLite refuses a LIKE pattern longer than this many bytes (SQLITE_MAX_LIKE_PATTERN_LENGTH)
SQLITE_LIKE_BYTES = 50_000


def _never() -> bool:
    return False


class EventStore:
    """An append-only, hash-chained log on SQLite or PostgreSQL, with persisted projections."""

    # Writers take the table lock on PostgreSQL; a test turns it off to prove it matters.
    lock_writers = True

    def __init__(
        self,
        engine: sa.Engine,
        projections: Sequence[Projection],
        *,
        snapshot: readonly.Snapshot | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._projections = tuple(projections)
        self._snapshot = snapshot

    @classmethod
    def open(
        cls, url: str, *, projections: Sequence[Projection] = (), read_only: bool = False
    ) -> EventStore:
        """Connect, creating the tables and append-only triggers when missing.

        `read_only` creates and writes nothing (see `monitor.store.readonly`), and refuses a
        database without the log's tables.
        """
        snapshot = None
        try:
            if read_only:
                engine, snapshot = readonly.open_engine(url)
            else:
                engine = schema.create_engine(url)
        except sa.exc.ArgumentError as exc:  # the URL itself is not echoed: it may hold a password
            raise WrongDatabaseError(f"database URL: {exc}") from None
        try:
            if read_only:
                readonly.check_tables(engine, url)
            else:
                schema.refuse_foreign(engine.url)
                schema.create_schema(engine)
        except sa.exc.DBAPIError as exc:
            engine.dispose()
            folder = schema.missing_folder(engine)  # a mistyped path: the configuration's fault
            raise (WrongDatabaseError if folder else StoreError)(
                f"database '{_safe(url)}': cannot open: {_first_line(exc)}{folder}"
            ) from None
        except StoreError:
            engine.dispose()
            raise
        return cls(engine, projections, snapshot=snapshot)

    @property
    def immutable(self) -> bool:
        """Opened as a file nothing writes (`monitor.store.readonly`): it shows no new event."""
        return self._snapshot is not None

    def close(self) -> None:
        """Let go of the database; a file opened immutable that changed meanwhile is an error."""
        self.engine.dispose()
        if self._snapshot is not None:
            self._snapshot.check()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A serialized write transaction: commit on exit, roll back on an exception."""
        try:
            connect = self.engine.connect().execution_options(store_write=True)
            with connect as conn, conn.begin():
                schema.begin_write(conn, lock=self.lock_writers)
                tx = Transaction(conn, self._projections)
                yield tx
                tx.flush()
        except sa.exc.DBAPIError as exc:
            if schema.APPEND_ONLY in str(exc.orig):
                raise AppendOnlyError(
                    "events: recorded events cannot be changed or removed",
                    hint="append a new event that corrects the old one",
                ) from None
            raise StoreError(f"event log: write failed: {_first_line(exc)}") from exc

    @contextmanager
    def _reading(self, *, one_snapshot: bool = False) -> Iterator[sa.Connection]:
        """A connection to read with; `one_snapshot`: its statements see the log as of one
        moment (SQLite's read transaction does already; PostgreSQL's READ COMMITTED would
        give each statement a snapshot of its own)."""
        try:
            with self.engine.connect() as conn:
                if one_snapshot and self.dialect == "postgresql":
                    conn = conn.execution_options(isolation_level="REPEATABLE READ")
                yield conn
        except sa.exc.DBAPIError as exc:
            raise StoreError(f"event log: read failed: {_first_line(exc)}") from exc

    def append(self, batch: Sequence[NewEvent], *, now: datetime | None = None) -> list[Appended]:
        """Append one batch in a transaction of its own."""
        with self.transaction() as tx:
            return tx.append(batch, now=now)

    def read(
        self,
        *,
        after: int = 0,
        until_position: int | None = None,
        stream: str | None = None,
        types: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        batch: int = 1000,
        payload_has: str | None = None,
        payload_folded: str | None = None,
    ) -> Iterator[Recorded]:
        """Records after `after` in position order, fetched `batch` rows at a time.

        `since` is inclusive and `until` exclusive (recorded_at); `until_position` inclusive.
        `payload_has`: only records whose stored payload (its canonical JSON text) contains
        this text, found by the database without decoding the others. `payload_folded`: only
        those whose stored payload, case-folded (`str.casefold`), contains this folded text;
        the others are not decoded either.
        """
        where: list[sa.ColumnElement[bool]] = []
        if payload_has is not None:
            where.append(events.c.data.contains(payload_has, autoescape=True))
        if payload_folded is not None:
            where.append(self._may_fold_to(payload_folded))
        if until_position is not None:
            where.append(events.c.position <= until_position)
        if types:
            where.append(events.c.type.in_(list(types)))
        if since is not None:
            where.append(events.c.recorded_at >= format_time(since))
        if until is not None:
            where.append(events.c.recorded_at < format_time(until))
        for rows in self._batches(after, where, batch, stream=stream):
            if payload_folded is not None:
                rows = [row for row in rows if payload_folded in row[7].casefold()]
            yield from map(to_record, rows)

    def _may_fold_to(self, folded: str) -> sa.ColumnElement[bool]:
        """The payloads whose casefold() may contain `folded`, as the database can tell.

        A text case-folds as its ASCII capitals lowered, which LIKE sees (SQLite's LIKE ignores
        the case of ASCII letters, and only theirs; PostgreSQL's minds case, so the capitals
        are lowered first: ILIKE and lower() follow the locale, which may fold I to ı), unless
        it holds a character that folds into one of `folded`'s (ß into ss, K into k), which
        only a text that is not ASCII can. Each such character costs the database a pass over
        the texts that are not ASCII: past MAX_FOLDING of them, every text is left to `read`.
        """
        data = events.c.data
        text: sa.ColumnElement[str] = data
        other: sa.ColumnElement[bool]
        if self.dialect == "sqlite":  # more bytes than characters: not ASCII
            other = sa.func.length(data) != sa.func.length(sa.cast(data, sa.LargeBinary))
        else:  # a byte above 127, in a UTF8 or an SQL_ASCII database alike
            upper, lower = string.ascii_uppercase, string.ascii_lowercase
            text = sa.func.translate(data, upper, lower, type_=sa.Text)
            other = data.regexp_match("[^\x01-\x7f]")
        folding = sorted(folded_from(folded))
        if len(folding) > MAX_FOLDING or (
            self.dialect == "sqlite" and 2 * len(folded.encode()) + 2 > SQLITE_LIKE_BYTES
        ):  # a pattern SQLite refuses ("LIKE or GLOB pattern too complex"): `read` looks
            return sa.true()
        found = text.contains(folded, autoescape=True)
        if not folding:
            return found
        holds = [data.contains(ch, autoescape=True) for ch in folding]
        return sa.or_(found, sa.and_(other, sa.or_(*holds)))

    def read_raw(
        self, *, after: int = 0, types: Sequence[str] = (), batch: int = 5000
    ) -> Iterator[tuple[int, str, int, dict[str, Any]]]:
        """(position, type, schema_version, data) only: the fast path for replays and folds."""
        where: list[sa.ColumnElement[bool]] = [events.c.type.in_(list(types))] if types else []
        columns = (events.c.position, events.c.type, events.c.schema_version, events.c.data)
        loads = orjson.loads
        for rows in self._batches(after, where, batch, columns):
            for position, type_, version, data in rows:
                yield position, type_, version, loads(data)

    def _batches(
        self,
        after: int,
        where: list[sa.ColumnElement[bool]],
        batch: int,
        columns: Sequence[sa.ColumnElement[Any]] = READ_COLUMNS,
        *,
        stream: str | None = None,
    ) -> Iterator[Sequence[schema.Row]]:
        # Keyset pages, each in a short read transaction of its own: memory stays one page,
        # and no reader pins a snapshot (or a WAL checkpoint) for the length of a replay.
        # A stream's pages follow its index, in version order, which is position order (the
        # writer numbers both under its lock). Ordered by position, SQLite sorted the rest of
        # the stream again for each page, and PostgreSQL walked every position of the log.
        cursor, version = after, 0
        while True:
            if stream is None:
                query = sa.select(*columns).where(events.c.position > cursor, *where)
                query = query.order_by(events.c.position)
            else:
                query = sa.select(*columns).where(
                    events.c.stream == stream,
                    events.c.stream_version > version,
                    events.c.position > after,
                    *where,
                )
                query = query.order_by(events.c.stream_version)
            with self._reading() as conn:
                rows = conn.execute(query.limit(batch)).all()
            if not rows:
                return
            yield rows
            cursor = rows[-1][0]
            if stream is not None:
                version = rows[-1].stream_version

    def follow(
        self, *, after: int = 0, poll_seconds: float = 0.5, stop: Callable[[], bool] = _never
    ) -> Iterator[Recorded]:
        """Records as they are committed, polling when caught up, until `stop()` is true."""
        cursor = after
        while not stop():
            caught_up = True
            for record in self.read(after=cursor):
                caught_up = False
                cursor = record.position
                yield record
                if stop():
                    return
            if caught_up:
                time.sleep(poll_seconds)

    def get(self, position: int) -> Recorded | None:
        query = sa.select(*READ_COLUMNS).where(events.c.position == position)
        with self._reading() as conn:
            row = conn.execute(query).first()
        return None if row is None else to_record(row)

    def caused_by(self, position: int) -> list[Recorded]:
        """Events whose meta.causation is `position`, in position order."""
        query = sa.select(*READ_COLUMNS).where(events.c.causation == position)
        with self._reading() as conn:
            rows = conn.execute(query.order_by(events.c.position)).all()
        return [to_record(row) for row in rows]

    def head(self) -> tuple[int, str] | None:
        """(position, hash) of the last record, or None for an empty log."""
        query = sa.select(events.c.position, events.c.hash).order_by(events.c.position.desc())
        with self._reading() as conn:
            row = conn.execute(query.limit(1)).first()
        return None if row is None else (int(row[0]), str(row[1]))

    def last(self, stream: str) -> Recorded | None:
        """The stream's last record, or None for an empty stream: read off the end of the
        stream's index, so it costs the same at any length of stream."""
        query = sa.select(*READ_COLUMNS).where(events.c.stream == stream)
        query = query.order_by(events.c.stream_version.desc()).limit(1)
        with self._reading() as conn:
            row = conn.execute(query).first()
        return None if row is None else to_record(row)

    def stream_version(self, stream: str) -> int:
        query = sa.select(sa.func.max(events.c.stream_version)).where(events.c.stream == stream)
        with self._reading() as conn:
            return int(conn.execute(query).scalar() or 0)

    def verify(self, *, expect: tuple[int, str] | None = None) -> VerifyReport:
        """Walk the chain from position 1; see `monitor.store.verify`."""
        try:
            return verify.verify(self.engine, expect=expect)
        except sa.exc.DBAPIError as exc:
            raise StoreError(f"event log: verify failed: {_first_line(exc)}") from exc

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

    def rebuild(self, *, progress: Callable[[int], None] | None = None, batch: int = 2000) -> int:
        """Clear the projections' state and replay every event from position 1."""
        names = [p.name for p in self._projections]
        replayed = 0
        with self.transaction() as tx:
            tx.conn.execute(projection_state.delete().where(projection_state.c.name.in_(names)))
            cursor = 0
            while True:
                query = sa.select(*READ_COLUMNS).where(events.c.position > cursor)
                page = tx.conn.execute(query.order_by(events.c.position).limit(batch)).all()
                if not page:
                    break
                tx.fold([to_record(row) for row in page])
                tx.flush(forget=True)
                replayed += len(page)
                cursor = page[-1].position
                if progress is not None:
                    progress(replayed)
        return replayed


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


def _first_line(exc: sa.exc.DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc).__name__


def _safe(url: str) -> str:
    """The URL without its password or credential-like query values, for messages."""
    return redact_url(url)
