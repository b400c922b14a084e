"""The event log: open, close, write transactions, verification and the projections' rebuild."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa

from monitor.errors import AppendOnlyError, StoreError, WrongDatabaseError
from monitor.redact import redact_url
from monitor.store import readonly, schema, verify
from monitor.store.logreads import LogReads
from monitor.store.records import Appended, NewEvent, Projection, VerifyReport
from monitor.store.schema import READ_COLUMNS, events, projection_state, to_record
from monitor.store.statereads import StateReads
from monitor.store.writer import Transaction


class EventStore(LogReads, StateReads):
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

    def verify(self, *, expect: tuple[int, str] | None = None) -> VerifyReport:
        """Walk the chain from position 1; see `monitor.store.verify`."""
        try:
            return verify.verify(self.engine, expect=expect)
        except sa.exc.DBAPIError as exc:
            raise StoreError(f"event log: verify failed: {_first_line(exc)}") from exc

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


def _first_line(exc: sa.exc.DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc).__name__


def _safe(url: str) -> str:
    """The URL without its password or credential-like query values, for messages."""
    return redact_url(url)
