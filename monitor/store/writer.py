"""One write transaction: appending batches under the writer lock and folding projections."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from monitor.errors import ConflictError, StoreError
from monitor.eventbase import Event
from monitor.store import rawsql
from monitor.store.records import (
    GENESIS,
    Appended,
    NewEvent,
    Projection,
    Recorded,
    canonical_json,
    format_time,
    record_hash,
)
from monitor.store.schema import events

_Seen = tuple[int, str, str]  # position, event_id, hash of an event already recorded


class Transaction:
    """The caller's write transaction; `conn` is shared with operational tables.

    The transaction is a unit of work: appended events get their positions and hashes at once,
    projections fold in memory, and the rows reach the database together when it flushes
    (before commit, see EventStore.transaction). Reads through this object see its own writes;
    `conn` is for the operational tables only and never sees unflushed events.
    """

    def __init__(self, conn: sa.Connection, projections: Sequence[Projection]) -> None:
        self.conn = conn
        self._projections = tuple(projections)
        self._head: tuple[int, str] | None = None
        self._versions: dict[str, int] = {}  # streams this transaction has read or written
        self._seen: dict[tuple[str, str], _Seen] = {}  # events appended or looked up
        # ids and keys looked up and not recorded: the writer lock keeps them so until commit
        self._absent: set[tuple[str, str]] = set()
        self._rows: list[dict[str, Any]] = []  # appended, not yet inserted
        self._states: dict[str, dict[str, dict[str, Any] | None]] = {}  # name -> key -> state
        self._dirty: dict[str, dict[str, int]] = {}  # name -> key -> position of last change

    def append(self, batch: Sequence[NewEvent], *, now: datetime | None = None) -> list[Appended]:
        """Append a batch atomically; known event ids and dedupe keys are no-ops."""
        if not batch:
            return []
        recorded_at = _stored_time(now)
        known = self._known(batch)
        versions = self._stream_versions({new.event.stream for new in batch})
        position, prev = self._head or self._read_head()
        results: list[Appended] = []
        rows: list[dict[str, Any]] = []
        appended: list[tuple[Event, dict[str, Any], dict[str, Any]]] = []  # event, data, meta
        for new in batch:
            seen = known.get(("id", new.event_id)) or (
                known.get(("key", new.dedupe_key)) if new.dedupe_key is not None else None
            )
            if seen is not None:
                results.append(Appended(seen[0], seen[1], True, seen[2]))
                continue
            stream = new.event.stream
            version = versions.get(stream, 0)
            if new.expected_version is not None and new.expected_version != version:
                raise ConflictError(stream, new.expected_version, version)
            position += 1
            data, meta = new.event.to_data(), dict(new.meta)
            row = _row(new, data, meta, position, version + 1, recorded_at, prev)
            prev = row["hash"]
            versions[stream] = version + 1
            rows.append(row)
            appended.append((new.event, data, meta))
            results.append(Appended(position, new.event_id, False, row["hash"]))
            known[("id", new.event_id)] = (position, new.event_id, row["hash"])
            if new.dedupe_key is not None:
                known[("key", new.dedupe_key)] = (position, new.event_id, row["hash"])
        # a batch is all or nothing: nothing above is kept when a conflict stops it
        self._seen.update(known)
        self._versions.update(versions)
        self._head = (position, prev)
        if rows:
            self._rows.extend(rows)
            if self._projections:
                moment = datetime.fromisoformat(recorded_at)
                self.fold([_recorded(r, moment, *a) for r, a in zip(rows, appended, strict=True)])
        return results

    def flush(self, *, forget: bool = False) -> None:
        """Write the appended rows and the changed projection states; `forget` drops the
        cached states afterwards (a replay of the whole log would otherwise hold them all)."""
        if self._rows:
            rawsql.execute_many(self.conn, rawsql.INSERT_EVENT, self._rows)
            self._rows = []
        for name, last in self._dirty.items():
            if last:
                self._upsert(name, self._states[name], last)
        self._dirty = {}
        if forget:
            self._states = {}

    def expect(self, batch: Sequence[NewEvent]) -> None:
        """Look up at once what appending `batch` will need, when it is appended in several
        runs (each run would otherwise look up its own): which of its ids and keys are
        recorded, and the versions of its streams."""
        self._known(batch)
        self._stream_versions({new.event.stream for new in batch})

    def stream_version(self, stream: str) -> int:
        """The stream's current version as this transaction sees it; 0 when empty."""
        return self._stream_versions({stream}).get(stream, 0)

    def state(self, projection: str, key: str) -> dict[str, Any] | None:
        """A projection's state row, including this transaction's own writes."""
        return self.states(projection, [key]).get(key)

    def states(self, projection: str, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The state rows of `keys` that exist, this transaction's writes included."""
        cached = self._cached(projection, keys)
        return {k: v for k in keys if (v := cached.get(k)) is not None}

    def history(self, streams: Sequence[str]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """Each of `streams`' events as (type, payload), in log order, this transaction's own
        included; a stream with none is left out. For short streams (an item's)."""
        self.flush()
        found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        if streams:
            query = rawsql.streams_query(self.conn.dialect.name)
            for stream, kind, data in rawsql.fetch(self.conn, query, rawsql.members(streams)):
                found.setdefault(stream, []).append((kind, orjson.loads(data)))
        return found

    def keyed(self, dedupe_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The payloads of the events recorded under `dedupe_keys`, this transaction's own
        included, by key."""
        self.flush()
        if not dedupe_keys:
            return {}
        query = rawsql.keyed_query(self.conn.dialect.name)
        rows = rawsql.fetch(self.conn, query, rawsql.members(dedupe_keys))
        return {key: orjson.loads(data) for key, data in rows}

    def find_dedupe(self, dedupe_key: str) -> int | None:
        """The position of the event recorded under this dedupe key, or None."""
        seen = self._seen.get(("key", dedupe_key))
        if seen is not None:
            return seen[0]
        query = sa.select(events.c.position).where(events.c.dedupe_key == dedupe_key)
        return self.conn.execute(query).scalar_one_or_none()

    def fold(self, records: Sequence[Recorded]) -> None:
        """Apply records to every projection; the changed rows are written at flush."""
        for projection in self._projections:
            keyed = [(projection.key(r), r) for r in records]
            wanted = [k for k, _ in keyed if k is not None]
            if not wanted:
                continue
            states = self._cached(projection.name, wanted)
            dirty = self._dirty.setdefault(projection.name, {})
            for key, record in keyed:
                if key is not None:
                    states[key] = projection.apply(states.get(key), record)
                    dirty[key] = record.position

    def _cached(self, name: str, keys: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """The projection's state cache, holding at least `keys` (None: no row yet)."""
        cache = self._states.setdefault(name, {})
        missing = sorted({k for k in keys if k not in cache})
        if missing:
            found = rawsql.load_states(self.conn, name, missing)
            for key in missing:
                cache[key] = found.get(key)
        return cache

    def _upsert(
        self, name: str, states: dict[str, dict[str, Any] | None], last: dict[str, int]
    ) -> None:
        rows = [
            {"name": name, "key": k, "state": canonical_json(states[k]).decode(), "position": p}
            for k, p in last.items()
        ]
        rawsql.execute_many(self.conn, rawsql.upsert_statement(self.conn.dialect.name), rows)

    def _known(self, batch: Sequence[NewEvent]) -> dict[tuple[str, str], _Seen]:
        """Events of this batch already recorded, by ("id", event_id) and ("key", dedupe).
        An id made with its event and never appended before is not looked up."""
        wanted: list[tuple[str, str]] = []
        for new in batch:
            if new.first_use():
                self._absent.add(("id", new.event_id))
            wanted.append(("id", new.event_id))
            if new.dedupe_key is not None:
                wanted.append(("key", new.dedupe_key))
        missing = {w for w in wanted if w not in self._seen and w not in self._absent}
        dialect = self.conn.dialect.name
        for column, tag in (("event_id", "id"), ("dedupe_key", "key")):
            values = sorted(name for t, name in missing if t == tag)
            if not values:
                continue
            query = rawsql.known_query(dialect, column)
            for position, event_id, hash_, dedupe_key in rawsql.fetch(
                self.conn, query, rawsql.members(values)
            ):
                name = event_id if tag == "id" else dedupe_key
                self._seen[(tag, name)] = (int(position), str(event_id), str(hash_))
        self._absent.update(w for w in missing if w not in self._seen)
        return {w: self._seen[w] for w in wanted if w in self._seen}

    def _stream_versions(self, streams: set[str]) -> dict[str, int]:
        """Current versions of `streams` (absent: empty), the database read once per stream."""
        missing = sorted(s for s in streams if s not in self._versions)
        if missing:
            query = rawsql.versions_query(self.conn.dialect.name)
            for stream, version in rawsql.fetch(self.conn, query, rawsql.members(missing)):
                self._versions[stream] = 0 if version is None else int(version)
        return {s: self._versions[s] for s in streams}

    def _read_head(self) -> tuple[int, str]:
        rows = rawsql.fetch(self.conn, rawsql.HEAD, {})
        self._head = (0, GENESIS) if not rows else (int(rows[0][0]), str(rows[0][1]))
        return self._head


def _stored_time(now: datetime | None) -> str:
    return format_time(now if now is not None else datetime.now(UTC))


def _row(
    new: NewEvent,
    data: dict[str, Any],
    meta: dict[str, Any],
    position: int,
    version: int,
    recorded_at: str,
    prev: str,
) -> dict[str, Any]:
    event = new.event
    try:
        data_json = canonical_json(data)
        meta_json = canonical_json(meta)
    except TypeError as exc:
        problem = f"event {new.event_id} ({event.type}): payload is not JSON: {exc}"
        raise StoreError(problem) from None
    causation = new.meta.get("causation")
    row: dict[str, Any] = {
        "position": position,
        "event_id": new.event_id,
        "stream": event.stream,
        "stream_version": version,
        "type": event.type,
        "schema_version": event.VERSION,
        "recorded_at": recorded_at,
        "dedupe_key": new.dedupe_key,
    }
    row["hash"] = record_hash(prev, data_json, meta_json, **row)
    row["prev_hash"] = prev
    row["data"] = data_json.decode()
    row["meta"] = meta_json.decode()
    row["causation"] = causation if type(causation) is int else None
    return row


def _recorded(
    row: dict[str, Any], recorded_at: datetime, event: Event, data: dict[str, Any], meta: Any
) -> Recorded:
    """The record as a reader will load it back, made from what it was stored from: the JSON
    of `data` and `meta` reads back equal, and so does the event (tests/test_store_contract.py,
    test_every_event_type_round_trips_through_the_store)."""
    return Recorded(
        position=row["position"],
        event_id=row["event_id"],
        stream=row["stream"],
        stream_version=row["stream_version"],
        type=row["type"],
        schema_version=row["schema_version"],
        recorded_at=recorded_at,
        data=data,
        meta=meta,
        dedupe_key=row["dedupe_key"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        _event=event,
    )
