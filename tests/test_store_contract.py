"""The event log's contract, run against SQLite and PostgreSQL alike (the `db_url` fixture)."""

from __future__ import annotations

import hashlib
import itertools
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import orjson
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import events as ev
from monitor import upcast
from monitor.errors import AppendOnlyError, ConflictError, StoreError, WrongDatabaseError
from monitor.store import GENESIS, EventStore, NewEvent, Recorded, rawsql, schema
from monitor.store.verify import verify as verify_chain

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[EventStore]:
    opened = EventStore.open(db_url)
    yield opened
    opened.close()


def sighted(item: str, feed: str = "nedo-press") -> ev.ItemSighted:
    return ev.ItemSighted(item_id=item, feed_id=feed)


def changed(milestone: str, to: str = "reported") -> ev.MilestoneStatusChanged:
    return ev.MilestoneStatusChanged(
        milestone_id=milestone, from_status="pending", to_status=to, reason="test"
    )


# --- atomic batches and optimistic concurrency (test 1) -------------------------------------


def test_batch_with_a_stale_expected_version_leaves_no_row(store: EventStore) -> None:
    store.append([NewEvent(changed("train"))])
    batch = [
        NewEvent(sighted("a"), expected_version=0),
        NewEvent(changed("train"), expected_version=0),  # the stream is at 1
    ]
    with pytest.raises(ConflictError) as caught:
        store.append(batch)
    assert (caught.value.stream, caught.value.expected, caught.value.actual) == (
        "milestone:train",
        0,
        1,
    )
    assert [r.stream for r in store.read()] == ["milestone:train"]
    assert store.stream_version("item:a") == 0


def test_conflict_caught_inside_a_transaction_wrote_nothing_of_its_batch(
    store: EventStore,
) -> None:
    with store.transaction() as tx:
        with pytest.raises(ConflictError):
            tx.append([NewEvent(sighted("a")), NewEvent(sighted("b"), expected_version=3)])
        tx.append([NewEvent(sighted("c"))])
    assert [r.stream for r in store.read()] == ["item:c"]
    assert [r.position for r in store.read()] == [1]


def test_expected_versions_count_earlier_events_of_the_same_batch(store: EventStore) -> None:
    batch = [NewEvent(changed("m"), expected_version=v) for v in range(3)]
    assert [a.position for a in store.append(batch)] == [1, 2, 3]
    assert [r.stream_version for r in store.read(stream="milestone:m")] == [1, 2, 3]
    assert store.stream_version("milestone:m") == 3


def test_positions_are_gapless_across_batches_and_streams(store: EventStore) -> None:
    store.append([NewEvent(sighted("a")), NewEvent(changed("m"))])
    store.append([NewEvent(sighted("a"))])
    store.append([NewEvent(changed("m")), NewEvent(sighted("b"))])
    records = list(store.read())
    assert [r.position for r in records] == [1, 2, 3, 4, 5]
    assert [(r.stream, r.stream_version) for r in records] == [
        ("item:a", 1),
        ("milestone:m", 1),
        ("item:a", 2),
        ("milestone:m", 2),
        ("item:b", 1),
    ]


# --- idempotency (test 3) -------------------------------------------------------------------


def test_reappending_a_known_event_id_returns_the_original_position(db_url: str) -> None:
    store = EventStore.open(db_url)
    first = NewEvent(sighted("a"), event_id="11111111-1111-4111-8111-111111111111")
    store.append([NewEvent(sighted("x"))])
    [original] = store.append([first])
    [again] = store.append([first])
    assert (again.position, again.existed, again.hash) == (2, True, original.hash)
    store.close()
    reopened = EventStore.open(db_url)
    [after_reopen] = reopened.append([NewEvent(sighted("other"), event_id=first.event_id)])
    assert (after_reopen.position, after_reopen.existed) == (2, True)
    assert [r.position for r in reopened.read()] == [1, 2]
    reopened.close()


def test_reappending_a_known_dedupe_key_is_a_no_op_after_reopening(db_url: str) -> None:
    store = EventStore.open(db_url)
    [original] = store.append([NewEvent(sighted("a"), dedupe_key="item:a")])
    store.close()
    reopened = EventStore.open(db_url)
    [again] = reopened.append([NewEvent(sighted("a"), dedupe_key="item:a")])
    assert again == original.__class__(original.position, original.event_id, True, original.hash)
    assert reopened.stream_version("item:a") == 1
    reopened.close()


def test_a_dedupe_key_repeated_within_one_batch_is_inserted_once(store: EventStore) -> None:
    batch = [
        NewEvent(sighted("a"), dedupe_key="k"),
        NewEvent(sighted("b"), dedupe_key="k"),
        NewEvent(sighted("c")),
    ]
    results = store.append(batch)
    assert [(a.position, a.existed) for a in results] == [(1, False), (1, True), (2, False)]
    assert results[1].event_id == batch[0].event_id
    assert [r.stream for r in store.read()] == ["item:a", "item:c"]


def test_a_known_event_skips_its_expected_version_check(store: EventStore) -> None:
    retry = NewEvent(changed("m"), expected_version=0)
    store.append([retry])
    [again] = store.append([retry])  # a retried decision, not a conflict
    assert again.existed and again.position == 1


def test_an_event_whose_transaction_failed_is_appended_when_retried(store: EventStore) -> None:
    event = NewEvent(sighted("a"), dedupe_key="sighted:a")
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.append([event])
        raise RuntimeError("crash before commit")
    [again] = store.append([event])
    assert not again.existed and again.event_id == event.event_id
    [third] = store.append([event])
    assert third.existed and third.position == again.position


def test_made_event_ids_are_uuid7_in_the_order_they_were_made(store: EventStore) -> None:
    made = [NewEvent(sighted(str(n))) for n in range(50)]
    ids = [uuid.UUID(new.event_id) for new in made]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert [str(i) for i in ids] == [new.event_id for new in made]  # the canonical spelling
    stamps = [i.int >> 80 for i in ids]  # the 48-bit millisecond prefix
    assert stamps == sorted(stamps)
    assert abs(stamps[0] / 1000 - datetime.now(UTC).timestamp()) < 60
    assert len(set(ids)) == len(ids)
    store.append(made)
    assert [r.event_id for r in store.read()] == [new.event_id for new in made]


def test_expect_looks_up_a_batch_once_for_all_its_runs(sqlite_url: str) -> None:
    """What appending in runs needs (keys, streams; never an id made with its event) is read
    in one query each, up front: a run per matching item would otherwise query again."""
    store = EventStore.open(sqlite_url)
    store.append([NewEvent(sighted("old"), dedupe_key="sighted:old")])
    statements: list[str] = []
    batch = [NewEvent(sighted(str(n)), dedupe_key=f"sighted:{n}") for n in range(6)]
    batch.append(NewEvent(sighted("old"), dedupe_key="sighted:old"))
    with store.transaction() as tx:
        tx.conn.connection.dbapi_connection.set_trace_callback(statements.append)  # type: ignore[union-attr]
        tx.expect(batch)
        looked_up = list(statements)
        results = [*tx.append(batch[:2]), *tx.append(batch[2:5]), *tx.append(batch[5:])]
        after = statements[len(looked_up) :]
        tx.conn.connection.dbapi_connection.set_trace_callback(None)  # type: ignore[union-attr]
    reads = [s for s in looked_up if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 2, reads  # dedupe keys, stream versions
    assert not any("events.event_id IN" in s for s in looked_up)
    later = [s for s in after if s.lstrip().upper().startswith("SELECT")]
    assert len(later) == 1 and "ORDER BY events.position DESC" in later[0], later  # the head
    assert [r.existed for r in results] == [False] * 6 + [True]
    assert [r.stream for r in store.read()] == ["item:old", *(f"item:{n}" for n in range(6))]
    store.close()


def _version_work(store: EventStore, streams: list[str]) -> tuple[dict[str, int], int]:
    """The versions a fresh transaction reads for `streams`, and the work reading them takes:
    SQLite's virtual-machine steps; on PostgreSQL, the reads of events that are not the first
    row of an index (a scan under a LIMIT), in the plan EXPLAIN ANALYZE shows."""
    with store.transaction() as tx:
        dbapi = tx.conn.connection.dbapi_connection
        if tx.conn.dialect.name == "sqlite":
            steps = itertools.count()
            dbapi.set_progress_handler(lambda: next(steps) and 0, 1)  # type: ignore[union-attr]
            versions = {s: tx.stream_version(s) for s in streams}
            dbapi.set_progress_handler(None, 1)  # type: ignore[union-attr]
            return versions, next(steps)
        versions = {s: tx.stream_version(s) for s in streams}
        sql = rawsql.compiled(tx.conn.dialect, rawsql.versions_query("postgresql"))
        cursor = dbapi.cursor()  # type: ignore[union-attr]
        explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {sql.sql}"
        cursor.execute(explain, sql.params(rawsql.members(streams)))
        nodes = [(None, cursor.fetchone()[0][0]["Plan"])]
        unbounded = 0
        while nodes:
            parent, node = nodes.pop()
            nodes.extend((node, child) for child in node.get("Plans", []))
            if node.get("Relation Name") == "events":
                unbounded += parent is None or parent["Node Type"] != "Limit"
        return versions, unbounded


def test_reading_a_streams_version_does_not_grow_with_the_stream(db_url: str) -> None:
    """A stream's version is read off the end of its index: a milestone's stream gains an event
    with every match, for ever, and every poll that matches reads its version."""
    store = EventStore.open(db_url)
    store.append([NewEvent(changed("short")) for _ in range(3)])
    store.append([NewEvent(changed("long")) for _ in range(1500)])
    short, short_work = _version_work(store, ["milestone:short", "milestone:none"])
    long, long_work = _version_work(store, ["milestone:long", "milestone:none"])
    assert short == {"milestone:short": 3, "milestone:none": 0}
    assert long == {"milestone:long": 1500, "milestone:none": 0}
    if store.engine.dialect.name == "sqlite":
        assert long_work <= short_work + 50, (short_work, long_work)
    else:
        assert (short_work, long_work) == (0, 0)
    store.close()


def test_last_is_the_last_record_of_its_stream(store: EventStore) -> None:
    assert store.last("milestone:m") is None
    store.append(
        [NewEvent(changed("m")), NewEvent(sighted("a")), NewEvent(changed("m", "at_risk"))]
    )
    store.append([NewEvent(sighted("b"))])
    last = store.last("milestone:m")
    assert last is not None
    assert (last.position, last.stream_version, last.data["to_status"]) == (3, 2, "at_risk")


def _indexes(store: EventStore) -> set[str]:
    sql = (
        "SELECT name FROM sqlite_master WHERE type = 'index'"
        if store.dialect == "sqlite"
        else "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    )
    with store.engine.connect() as conn:
        return set(conn.exec_driver_sql(sql).scalars())


def test_a_log_made_before_the_outbox_index_gains_it_when_a_writer_opens_it(db_url: str) -> None:
    store = EventStore.open(db_url)
    assert schema.OUTBOX_INDEX in _indexes(store)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP INDEX {schema.OUTBOX_INDEX}")
    store.close()
    reader = EventStore.open(db_url, read_only=True)  # creates nothing
    assert schema.OUTBOX_INDEX not in _indexes(reader)
    reader.close()
    store = EventStore.open(db_url)
    assert schema.OUTBOX_INDEX in _indexes(store)
    store.close()


def test_appending_compiles_no_statement_again(sqlite_url: str) -> None:
    """Statements are compiled once per dialect and kept: one built per call (an INSERT, say)
    would be compiled on every commit and kept for ever."""
    store = EventStore.open(sqlite_url)
    store.append([NewEvent(sighted("warm"), dedupe_key="warm")])
    before = len(rawsql._COMPILED)
    for n in range(5):
        store.append([NewEvent(sighted(str(n)), dedupe_key=f"k{n}")])
    assert len(rawsql._COMPILED) == before
    assert len(list(store.read())) == 6
    store.close()


def test_sqlite_keeps_positions_as_the_rowid(sqlite_url: str) -> None:
    """An INTEGER PRIMARY KEY is the rowid: no second index of positions is written."""
    store = EventStore.open(sqlite_url)
    store.append([NewEvent(sighted(str(n))) for n in range(3)])
    with store.engine.connect() as conn:
        indexes = [r[1] for r in conn.exec_driver_sql("PRAGMA index_list(events)")]
        columns = [
            [c[2] for c in conn.exec_driver_sql(f"PRAGMA index_info('{name}')")]
            for name in indexes
        ]
        rowids = conn.exec_driver_sql("SELECT rowid, position FROM events").all()
    assert ["position"] not in columns and ["event_id"] in columns
    assert [tuple(r) for r in rowids] == [(1, 1), (2, 2), (3, 3)]
    store.close()


# --- append-only (test 8) -------------------------------------------------------------------


def test_update_and_delete_are_refused_by_the_database(store: EventStore) -> None:
    store.append([NewEvent(sighted("a"))])
    for statement in ("UPDATE events SET type = 'Forged'", "DELETE FROM events"):
        with pytest.raises(AppendOnlyError), store.transaction() as tx:
            tx.conn.execute(sa.text(statement))
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as c:
            c.execute(sa.text(statement))
    [record] = store.read()
    assert record.type == "ItemSighted"
    assert store.verify().ok


@pytest.mark.postgres
def test_truncate_is_refused_on_postgresql(pg_url: str) -> None:
    store = EventStore.open(pg_url)
    store.append([NewEvent(sighted("a"))])
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE events"))
    assert store.head() is not None
    store.close()


# --- the hash chain (test 9) ----------------------------------------------------------------


def expected_hash(prev: str, record: Recorded) -> str:
    """The chain's definition, written out independently of the store's code."""
    body = {
        "position": record.position,
        "event_id": record.event_id,
        "stream": record.stream,
        "stream_version": record.stream_version,
        "type": record.type,
        "schema_version": record.schema_version,
        "recorded_at": record.recorded_at.isoformat(timespec="microseconds"),
        "data": record.data,
        "meta": record.meta,
        "dedupe_key": record.dedupe_key,
    }
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev.encode() + canonical).hexdigest()


def test_each_hash_is_sha256_of_the_previous_hash_and_the_canonical_record(
    store: EventStore,
) -> None:
    meta = {"causation": 1, "correlation": "c-1", "instance": "host-a"}
    store.append([NewEvent(sighted("a")), NewEvent(changed("m"), meta=meta, dedupe_key="d")])
    prev = GENESIS
    for record in store.read():
        assert record.prev_hash == prev
        assert record.hash == expected_hash(prev, record)
        prev = record.hash
    assert store.head() == (2, prev)


def tamper(store: EventStore, *statements: str) -> None:
    """Drop the append-only triggers (as an attacker with database access would) and edit."""
    drops = {
        "sqlite": ["DROP TRIGGER events_no_update", "DROP TRIGGER events_no_delete"],
        "postgresql": [
            "DROP TRIGGER events_no_update ON events",
            "DROP TRIGGER events_no_delete ON events",
        ],
    }[store.dialect]
    with store.engine.begin() as conn:
        for statement in [*drops, *statements]:
            conn.execute(sa.text(statement))


@pytest.fixture
def five(store: EventStore) -> EventStore:
    store.append([NewEvent(sighted(f"i{n}"), meta={"n": n}) for n in range(1, 6)])
    assert store.verify().ok
    return store


def test_verify_names_an_edited_record(five: EventStore) -> None:
    tamper(five, """UPDATE events SET data = '{"feed_id":"x","item_id":"i3"}' WHERE position = 3""")
    report = five.verify()
    assert (report.ok, report.first_bad, report.checked) == (False, 3, 2)
    assert report.problem == "position 3: hash does not match its record"


def test_verify_names_a_deleted_record(five: EventStore) -> None:
    tamper(five, "DELETE FROM events WHERE position = 3")
    report = five.verify()
    assert (report.ok, report.first_bad) == (False, 3)
    assert report.problem == "position 3: missing (the next record is at 4)"


def test_verify_names_swapped_records(five: EventStore) -> None:
    tamper(
        five,
        "UPDATE events SET position = -2 WHERE position = 2",
        "UPDATE events SET position = 2 WHERE position = 3",
        "UPDATE events SET position = 3 WHERE position = -2",
    )
    report = five.verify()
    assert (report.ok, report.first_bad) == (False, 2)
    assert report.problem == "position 2: previous hash does not match the record before it"


def test_verify_with_expect_catches_a_truncated_tail(five: EventStore) -> None:
    known = five.head()
    assert known is not None
    tamper(five, "DELETE FROM events WHERE position > 3")
    assert five.verify().ok  # the shorter chain is consistent in itself
    report = five.verify(expect=known)
    assert (report.ok, report.first_bad, report.head) == (False, 5, five.head())
    assert report.problem == "position 5: missing (the log ends at 3)"


def test_verify_with_expect_catches_a_rehashed_tail(five: EventStore) -> None:
    known = five.head()
    assert known is not None
    last = five.get(5)
    assert last is not None
    forged = Recorded(**{**_fields(last), "data": {"feed_id": "forged", "item_id": "i5"}})
    new_hash = expected_hash(last.prev_hash, forged)
    tamper(
        five,
        f"""UPDATE events SET data = '{
            orjson.dumps(forged.data, option=orjson.OPT_SORT_KEYS).decode()
        }', hash = '{new_hash}' WHERE position = 5""",
    )
    assert five.verify().ok
    report = five.verify(expect=known)
    assert (report.ok, report.first_bad) == (False, 5)
    assert report.problem == f"position 5: hash {new_hash} differs from expected {known[1]}"
    assert five.verify(expect=(5, new_hash)).ok


@pytest.mark.parametrize("batch", [1, 2, 4, 5])
def test_verify_reads_a_long_log_in_pages_without_skipping(five: EventStore, batch: int) -> None:
    """The default page (5000 records) is longer than any log here: smaller ones show the
    walk goes on from each page's last position."""
    report = verify_chain(five.engine, batch=batch)
    assert (report.ok, report.checked, report.head) == (True, 5, five.head())
    tamper(five, "DELETE FROM events WHERE position = 4")
    report = verify_chain(five.engine, batch=batch)
    assert (report.ok, report.first_bad) == (False, 4)
    assert report.problem == "position 4: missing (the next record is at 5)"


def test_verify_of_an_empty_log_is_ok_with_no_head(store: EventStore) -> None:
    report = store.verify()
    assert (report.ok, report.checked, report.head) == (True, 0, None)


def _fields(record: Recorded) -> dict[str, Any]:
    return {name: getattr(record, name) for name in Recorded.__dataclass_fields__}


# --- reading --------------------------------------------------------------------------------


def test_read_filters_by_stream_type_time_and_position_across_pages(store: EventStore) -> None:
    for hour in range(6):
        at = T0 + timedelta(hours=hour)
        store.append([NewEvent(sighted(f"i{hour % 2}")), NewEvent(changed("m"))], now=at)
    assert [r.position for r in store.read(after=3, until_position=7, batch=2)] == [4, 5, 6, 7]
    assert [r.stream_version for r in store.read(stream="item:i1", batch=1)] == [1, 2, 3]
    assert {r.type for r in store.read(types=["MilestoneStatusChanged"])} == {
        "MilestoneStatusChanged"
    }
    window = store.read(since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=4), batch=3)
    assert [r.position for r in window] == [5, 6, 7, 8]
    assert all(r.recorded_at.tzinfo is not None for r in store.read())


def test_a_time_window_holds_what_a_clock_set_back_recorded_out_of_order(
    store: EventStore,
) -> None:
    """Times come from the writer's clock: one set back records an earlier time later."""
    for hours in (0, 3, 1, 5, 2, 4):
        store.append([NewEvent(sighted(f"i{hours % 2}"))], now=T0 + timedelta(hours=hours))
    window = store.read(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3), batch=1)
    assert [r.position for r in window] == [3, 5]
    tail = store.read(since=T0 + timedelta(hours=4), stream="item:i0", after=2, batch=1)
    assert [(r.position, r.stream_version) for r in tail] == [(6, 3)]
    assert list(store.read(since=T0 + timedelta(hours=6))) == []


def _read_work(store: EventStore, **filters: Any) -> tuple[int, int]:
    """How many records `read` yields in pages of 10, and SQLite's virtual-machine steps."""
    steps = itertools.count()

    def count(dbapi: Any, *_: Any) -> None:
        dbapi.set_progress_handler(lambda: next(steps) and 0, 1)

    sa.event.listen(store.engine, "checkout", count)
    try:
        found = sum(1 for _ in store.read(batch=10, **filters))
    finally:
        sa.event.remove(store.engine, "checkout", count)
    return found, next(steps)


def test_reading_a_long_stream_in_pages_costs_in_proportion(sqlite_url: str) -> None:
    """Each page is the next run of the stream's index, not the rest of the stream sorted
    again: three times the events take about three times the work, where sorting took nine."""
    store = EventStore.open(sqlite_url)
    work = []
    for name, count in (("short", 200), ("long", 600)):
        for n in range(count):
            store.append([NewEvent(changed(name)), NewEvent(sighted(f"{name}{n}"))])
        found, steps = _read_work(store, stream=f"milestone:{name}")
        assert found == count
        work.append(steps)
    store.close()
    assert work[1] < 4 * work[0], work


def test_get_and_caused_by_follow_the_causation_in_meta(store: EventStore) -> None:
    [cause] = store.append([NewEvent(changed("m"))])
    store.append(
        [
            NewEvent(sighted("a"), meta={"causation": cause.position}),
            NewEvent(sighted("b")),
            NewEvent(sighted("c"), meta={"causation": cause.position, "correlation": "x"}),
        ]
    )
    assert [r.stream for r in store.caused_by(cause.position)] == ["item:a", "item:c"]
    got = store.get(3)
    assert got is not None and got.stream == "item:b" and got.meta == {}
    assert store.get(99) is None


def test_follow_yields_events_committed_while_it_waits(store: EventStore) -> None:
    store.append([NewEvent(sighted("before"))])
    seen: list[int] = []
    done = threading.Event()

    def follower() -> None:
        for record in store.follow(after=0, poll_seconds=0.01, stop=done.is_set):
            seen.append(record.position)
            if record.position == 4:
                done.set()

    thread = threading.Thread(target=follower)
    thread.start()
    for name in ("a", "b", "c"):
        store.append([NewEvent(sighted(name))])
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert seen == [1, 2, 3, 4]


def test_an_aware_now_is_stored_in_utc_and_a_naive_one_is_refused(store: EventStore) -> None:
    tokyo = datetime(2026, 7, 1, 18, 0, tzinfo=timezone(timedelta(hours=9)))
    store.append([NewEvent(sighted("a"))], now=tokyo)
    [record] = store.read()
    assert record.recorded_at == datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    assert record.recorded_at.utcoffset() == timedelta(0)
    with pytest.raises(StoreError, match="no time zone"):
        store.append([NewEvent(sighted("b"))], now=datetime(2026, 7, 1))


def test_a_naive_since_is_refused_with_a_sentence(store: EventStore) -> None:
    with pytest.raises(StoreError, match=r"^time 2026-07-01T00:00:00: has no time zone$"):
        list(store.read(since=datetime(2026, 7, 1)))


def test_a_payload_that_is_not_json_is_refused_before_anything_is_written(
    store: EventStore,
) -> None:
    odd = ev.AlertQueued(
        alert_id="a", channel_id="c", milestone_id="m", subject="s", payload={"x": {1, 2}}
    )
    with pytest.raises(StoreError, match=r"\(AlertQueued\): payload is not JSON"):
        store.append([NewEvent(sighted("fine")), NewEvent(odd)])
    assert store.head() is None


def test_an_unreachable_database_is_named_without_its_password(tmp_path: Any) -> None:
    missing = f"sqlite:///{tmp_path / 'no-such-dir' / 'events.db'}"
    opening = r"^database 'sqlite:///.*no-such-dir.*': cannot open: "
    with pytest.raises(WrongDatabaseError, match=opening) as caught:  # a mistyped path: exit 2
        EventStore.open(missing)
    assert str(caught.value).endswith(f"(its folder {tmp_path / 'no-such-dir'} does not exist)")
    assert not (tmp_path / "no-such-dir").exists()  # a mistyped path leaves no folder behind
    (tmp_path / "a-file").write_text("")
    with pytest.raises(WrongDatabaseError, match=r"cannot open: ") as caught:
        EventStore.open(f"sqlite:///{tmp_path / 'a-file' / 'events.db'}")
    assert str(caught.value).endswith(f"({tmp_path / 'a-file'} is not a folder)")
    closed_port = "postgresql+psycopg://monitor:s3cret@127.0.0.1:1/monitor"
    with pytest.raises(StoreError, match=r"cannot open") as caught:
        EventStore.open(closed_port)
    assert not isinstance(caught.value, WrongDatabaseError)  # a server down: exit 1
    assert "s3cret" not in str(caught.value) and "127.0.0.1:1" in str(caught.value)


# --- the caller's transaction ---------------------------------------------------------------


def test_a_failed_transaction_rolls_back_events_and_operational_rows(store: EventStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE work_state (feed_id TEXT PRIMARY KEY, etag TEXT)"))

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.transaction() as tx:
        tx.append([NewEvent(sighted("a"), dedupe_key="item:a")])
        tx.conn.execute(sa.text("INSERT INTO work_state VALUES ('f', 'W/1')"))
        assert tx.find_dedupe("item:a") == 1
        assert tx.stream_version("item:a") == 1
        raise Boom
    assert store.head() is None
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM work_state")).scalar() == 0
    with store.transaction() as tx:
        assert tx.find_dedupe("item:a") is None


# --- every event type round-trips; upcasters (test 11) --------------------------------------


def one_of_each() -> list[ev.Event]:
    at = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
    hit = {"group": "who", "term": "NEDO", "field": "title", "start": 0, "end": 4, "text": "NEDO"}
    return [
        ev.ConfigApplied(config_sha256="ab" * 32, feeds_added=("nedo-press",)),
        ev.FeedFailed(
            feed_id="f", url="https://e.org/f", kind="timeout", message="slow", next_poll_at=at
        ),
        ev.FeedRecovered(feed_id="f", url="https://e.org/f", after="timeout"),
        ev.FeedMoved(feed_id="f", old_url="http://e.org/f", new_url="https://e.org/f", status=301),
        ev.FeedStale(
            feed_id="f", url="https://e.org/f", newest_item_at=at, stale_after_seconds=86400
        ),
        ev.ItemDiscovered(
            item_id="i1",
            feed_id="f",
            url="https://e.org/1",
            guid="g1",
            title="NEDO selects Noetra",
            summary="日本AI基盤モデル開発",
            published_at=at,
            publisher="e.org",
            language="ja",
        ),
        ev.ItemSighted(item_id="i1", feed_id="g"),
        ev.ItemRevised(
            item_id="i1",
            feed_id="f",
            title="NEDO selects Noetra for stage 2",
            summary="日本AI基盤モデル開発",
            published_at=None,
            publisher="e.org",
            previous_title="NEDO selects Noetra",
            revision=1,
            content="full text",
        ),
        ev.MilestoneMatched(
            milestone_id="m",
            item_id="i1",
            kind="progress",
            rule="r0",
            hits=(hit,),
            publisher="e.org",
            authoritative=True,
            published_at=at,
        ),
        ev.MilestoneStatusChanged(
            milestone_id="m",
            from_status=ev.Status.PENDING,
            to_status=ev.Status.CONFIRMED,
            reason="baseline",
            evidence=("i1",),
            source="https://e.org/1",
            effective_at=at,
        ),
        ev.MilestoneSourceCorrected(
            milestone_id="m",
            status=ev.Status.CONFIRMED,
            source="https://e.org/2",
            previous_source="https://e.org/1",
            reason="the announcement itself",
        ),
        ev.AlertQueued(
            alert_id="a1",
            channel_id="ops",
            milestone_id="m",
            subject="confirmed",
            payload={"position": 9, "to": "confirmed"},
        ),
        ev.AlertDelivered(
            alert_id="a1",
            channel_id="ops",
            attempt=1,
            response="250 ok",
            recipients={"ops@e.org": "250 ok"},
        ),
        ev.AlertAttemptFailed(
            alert_id="a1",
            channel_id="ops",
            attempt=1,
            kind="timeout",
            message="no answer",
            retry_at=at,
        ),
        ev.AlertAbandoned(
            alert_id="a1", channel_id="ops", attempt=8, kind="http_4xx", message="403"
        ),
        ev.AlertRequeued(alert_id="a1", channel_id="ops", operator="kim", reason="fixed"),
        ev.ChannelDisabled(channel_id="hook", reason="410 gone", url_sha256="ab" * 32),
        ev.ChannelEnabled(channel_id="hook", reason="url fixed", operator="kim"),
    ]


def test_every_event_type_round_trips_through_the_store(store: EventStore) -> None:
    originals = one_of_each()
    assert {e.type for e in originals} == set(ev.EVENT_TYPES)
    store.append([NewEvent(e) for e in originals])
    decoded = [record.event for record in store.read()]
    assert decoded == originals
    assert [r.type for r in store.read()] == [e.type for e in originals]


def _note_taken_v1() -> type[ev.Event]:
    """Version 1 of a test-local event, named like its successor: the type is the class name."""

    @dataclass(frozen=True, slots=True, kw_only=True)
    class NoteTaken(ev.Event):
        note: str

        @property
        def stream(self) -> str:
            return "note:test"

    return NoteTaken


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteTaken(ev.Event):
    """Version 2 splits the text into a title and a body."""

    VERSION: ClassVar[int] = 2
    title: str
    body: str

    @property
    def stream(self) -> str:
        return "note:test"


def _note_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    title, _, body = data.pop("note").partition("\n")
    return {**data, "title": title, "body": body}


def test_an_old_payload_is_upcast_when_read_back(store: EventStore) -> None:
    old = _note_taken_v1()(note="training started\nper the NEDO release")  # type: ignore[call-arg]
    store.append([NewEvent(old)])
    [record] = store.read()
    assert (record.type, record.schema_version) == ("NoteTaken", 1)
    assert record.data == {"note": "training started\nper the NEDO release"}
    event = upcast.decode(
        record.type,
        record.schema_version,
        record.data,
        types={"NoteTaken": NoteTaken},
        upcasters={("NoteTaken", 1): _note_v1_to_v2},
    )
    assert event == NoteTaken(title="training started", body="per the NEDO release")
    with pytest.raises(upcast.UnknownEventTypeError):
        _ = record.event  # the default catalog does not know this test-local type


# --- concurrent writers and readers (tests 2, 5, 6) -----------------------------------------


def run_threads(*targets: Any) -> list[BaseException]:
    """Run each target in a thread of its own; return what they raised."""
    errors: list[BaseException] = []

    def guarded(target: Any) -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - reported to the test, not swallowed
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(thread.is_alive() for thread in threads)
    return errors


def test_eight_writers_with_expected_versions_leave_a_gapless_stream(db_url: str) -> None:
    EventStore.open(db_url).close()  # the schema exists before the race starts
    conflicts: list[int] = []

    def writer(n: int) -> None:
        store = EventStore.open(db_url)
        for i in range(50):
            while True:
                version = store.stream_version("milestone:shared")
                new = NewEvent(changed("shared"), expected_version=version, meta={"w": n, "i": i})
                try:
                    store.append([new])
                    break
                except ConflictError:
                    conflicts.append(n)
        store.close()

    errors = run_threads(*[lambda n=n: writer(n) for n in range(8)])
    assert errors == []
    store = EventStore.open(db_url)
    records = list(store.read(stream="milestone:shared"))
    assert [r.stream_version for r in records] == list(range(1, 401))
    assert [r.position for r in records] == list(range(1, 401))
    assert sorted((r.meta["w"], r.meta["i"]) for r in records) == [
        (n, i) for n in range(8) for i in range(50)
    ]
    assert store.verify().ok
    store.close()


def test_racing_batches_take_contiguous_position_ranges(db_url: str) -> None:
    EventStore.open(db_url).close()
    ranges: list[tuple[int, int]] = []

    def writer(name: str) -> None:
        store = EventStore.open(db_url)
        for b in range(20):
            batch = [NewEvent(sighted(f"{name}-{b}-{i}")) for i in range(50)]
            done = store.append(batch)
            ranges.append((done[0].position, done[-1].position))
            assert [a.position for a in done] == list(
                range(done[0].position, done[0].position + 50)
            )
        store.close()

    assert run_threads(lambda: writer("a"), lambda: writer("b")) == []
    ranges.sort()
    assert ranges[0][0] == 1 and ranges[-1][1] == 2000
    assert all(earlier[1] + 1 == later[0] for earlier, later in itertools.pairwise(ranges))


def test_readers_alongside_writers_see_positions_only_increase(db_url: str) -> None:
    EventStore.open(db_url).close()
    total = 600
    writers_done = threading.Event()

    def writer(name: str) -> None:
        store = EventStore.open(db_url)
        for b in range(total // 2 // 10):
            store.append([NewEvent(sighted(f"{name}-{b}-{i}")) for i in range(10)])
        store.close()

    def reader() -> None:
        store = EventStore.open(db_url)
        cursor = 0
        while cursor < total:
            finished = writers_done.is_set()
            for record in store.read(after=cursor, batch=7):
                assert record.position == cursor + 1, f"after {cursor} came {record.position}"
                cursor = record.position
            assert cursor == total or not finished, f"writers are done; reader stopped at {cursor}"
        store.close()

    def writers() -> None:
        assert run_threads(lambda: writer("a"), lambda: writer("b")) == []
        writers_done.set()

    assert run_threads(writers, reader, reader) == []


# --- PostgreSQL: a late commit is never skipped (test 4) ------------------------------------


class UnlockedStore(EventStore):
    """The store with PostgreSQL's writer lock taken out, to show the race test catches it."""

    lock_writers = False


@dataclass
class LateCommit:
    """What a follower and a second writer saw while the first writer held its commit back."""

    seen_while_open: list[int]
    seen_after: list[int]
    second: int | None
    errors: list[BaseException]


def late_commit_race(url: str, store_class: type[EventStore]) -> LateCommit:
    """Writer A takes position 2 and holds its commit; B appends meanwhile; C follows."""
    a, b, follower = store_class.open(url), store_class.open(url), EventStore.open(url)
    a.append([NewEvent(sighted("first"))])
    second: list[int] = []
    b_started = threading.Event()

    def writer_b() -> None:
        b_started.set()
        second.append(b.append([NewEvent(sighted("b"))])[0].position)

    errors: list[BaseException] = []
    try:
        with a.transaction() as tx:
            tx.append([NewEvent(sighted("a"))])
            thread = threading.Thread(target=lambda: errors.extend(run_threads(writer_b)))
            thread.start()
            b_started.wait()
            # B either waits for A (as it must) or commits around it; give it the time to do
            # the latter, then look at what a follower can see while A is still open
            thread.join(timeout=1.0)
            seen_open = [r.position for r in follower.read(after=1)]
    except StoreError as exc:  # A's rows reach the table at commit: A may be the one to fail
        errors.append(exc)
    thread.join(timeout=60)
    seen_after = [r.position for r in follower.read(after=max([1, *seen_open]))]
    for store in (a, b, follower):
        store.close()
    return LateCommit(seen_open, seen_after, second[0] if second else None, errors)


@pytest.mark.postgres
def test_a_follower_never_skips_a_position_committed_late(pg_url: str) -> None:
    outcome = late_commit_race(pg_url, EventStore)
    assert outcome.errors == []
    assert outcome.seen_while_open == []  # B waited for A's commit
    assert outcome.seen_after == [2, 3]
    assert outcome.second == 3


@pytest.mark.postgres
def test_the_race_test_detects_a_writer_without_the_lock(pg_url: str) -> None:
    outcome = late_commit_race(pg_url, UnlockedStore)
    # Without the lock B takes A's position too: it fails, or a follower misses a position.
    broken = (
        outcome.errors != []
        or outcome.seen_while_open != []
        or outcome.seen_after != [2, 3]
        or outcome.second != 3
    )
    assert broken
    assert any("duplicate" in str(e.__cause__ or e) for e in outcome.errors), outcome.errors


def test_a_feed_filter_decodes_only_that_feeds_events(
        store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.review import Filter

    tricky = "a_b%"  # LIKE's wildcards, taken literally
    store.append([NewEvent(sighted(f"i{n}", feed=("axb%" if n % 10 else tricky)))
                  for n in range(100)])
    store.append([NewEvent(ev.FeedFailed(feed_id=tricky, url="https://e.org/f", kind="gone",
                                         message="410"))])
    decoded = decoded_positions(monkeypatch)
    found = list(Filter(feed=tricky).select(store))
    assert [r.type for r in found] == ["ItemSighted"] * 10 + ["FeedFailed"]
    assert all(r.data["feed_id"] == tricky for r in found)
    assert len(decoded) == len(found)  # the other feed's 90 events were never decoded


def decoded_positions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The positions of the records the store decodes from now on, in order."""
    from monitor.store import logreads

    decoded: list[int] = []
    real = logreads.to_record

    def counted(row: Any) -> Recorded:
        decoded.append(row[0])
        return real(row)

    monkeypatch.setattr(logreads, "to_record", counted)
    return decoded


def failed(message: str, feed: str = "f") -> ev.FeedFailed:
    return ev.FeedFailed(feed_id=feed, url="https://e.org/f", kind="timeout", message=message)


def test_a_grep_decodes_only_the_payloads_that_may_hold_it(
        store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.review import Filter

    store.append([NewEvent(failed("Noetra POSTPONES training" if n % 10 == 0 else
                                  "read timed out after 30 s; Müller’s “quotes”"))
                  for n in range(100)])
    store.append([NewEvent(failed("Noetra poſtpones training"))])  # long s: folds to s
    decoded = decoded_positions(monkeypatch)
    found = list(Filter(grep="PostPones").select(store))
    assert len(found) == 11 and found[-1].data["message"] == "Noetra poſtpones training"
    assert len(decoded) == len(found)  # the 90 others were never decoded
    mullers = [r.position for r in store.read() if "Müller" in r.data["message"]]
    decoded.clear()
    assert [r.position for r in Filter(grep="müller’s").select(store)] == mullers
    assert len(decoded) == 90


# characters whose case folding differs from SQL's (ASCII only), JSON's escapes, LIKE's
# wildcards
TRICKY = "aAsSkKiIİıßẞſﬅﬆKﬁÉéΣσςιͅ学ノ\\\"/%_\n\u2028 "


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(texts=st.lists(st.text(TRICKY, max_size=10), min_size=1, max_size=6),
       needles=st.lists(st.text(TRICKY, min_size=1, max_size=4), min_size=1, max_size=4))
def test_a_grep_finds_what_decoding_every_payload_finds(
        store: EventStore, texts: list[str], needles: list[str]) -> None:
    from monitor.review import Filter

    start = (store.head() or (0, ""))[0]
    store.append([NewEvent(failed(t)) for t in texts])
    for needle in [*needles, *(t[1:4] for t in texts if t[1:4])]:
        chosen = Filter(grep=needle)
        every = [r.position for r in store.read(after=start) if chosen.accepts(r)]
        assert [r.position for r in chosen.select(store, after=start)] == every, needle


def test_a_grep_longer_than_a_like_pattern_sqlite_takes_is_looked_for_all_the_same(
        store: EventStore) -> None:
    from monitor.review import Filter

    long = "ab%_/" * 12_000  # 60,000 bytes, escaped to more: SQLite takes 50,000
    store.append([NewEvent(failed("x")), NewEvent(failed(long.upper() + "!"))])
    assert [r.data["message"] for r in Filter(grep=long).select(store)] == [long.upper() + "!"]


def test_no_character_beyond_the_scanned_planes_case_folds() -> None:
    from monitor import textfold

    beyond = (chr(cp) for cp in range(textfold._CASED_BELOW, 0x110000))
    assert not [ch for ch in beyond if ch.casefold() != ch]
