"""Reading the event log: records in pages, raw payloads, the follow loop, one stream's end."""

from __future__ import annotations

import string
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from monitor.store import schema
from monitor.store.records import Recorded, format_time
from monitor.store.schema import READ_COLUMNS, events, to_record
from monitor.textfold import folded_from

# `read(payload_folded=…)`: a text whose characters more than this many others fold into
# (Greek ι: 71) is looked for in every payload's text by `read` instead of by the database
MAX_FOLDING = 16
# SQLite refuses a LIKE pattern longer than this many bytes (SQLITE_MAX_LIKE_PATTERN_LENGTH)
SQLITE_LIKE_BYTES = 50_000


def _never() -> bool:
    return False


class Reads:
    """What a mixin of EventStore's reads relies on: EventStore provides both."""

    dialect: str

    if TYPE_CHECKING:

        def _reading(
            self, *, one_snapshot: bool = False
        ) -> AbstractContextManager[sa.Connection]: ...


class LogReads(Reads):
    """The log's reads, for EventStore."""

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
