"""Event log throughput: appends beside raw sqlite3, and a 1 M event replay with its peak RSS.

Run: .venv/bin/python -m bench.bench_store   (about two minutes; PostgreSQL if reachable)
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from bench.peak import peak_rss_mib
from monitor.events import ItemSighted
from monitor.store import GENESIS, EventStore, NewEvent, canonical_json
from monitor.store.records import new_event_id, record_hash
from monitor.store.schema import events

REPLAY_EVENTS = 1_000_000
PG_URL = os.environ.get("MONITOR_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
APPENDS = {1: 500, 100: 30_000, 1000: 50_000}  # batch size -> events appended


def line(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<44} {value:>16}  {note}".rstrip())


def new_events(count: int, tag: str) -> list[NewEvent]:
    return [
        NewEvent(ItemSighted(item_id=f"{tag}-{n}", feed_id=f"feed-{n % 50}")) for n in range(count)
    ]


def store_append_rate(url: str, batch: int, count: int) -> float:
    store = EventStore.open(url)
    pending = new_events(count, f"b{batch}")
    started = time.perf_counter()
    for start in range(0, count, batch):
        store.append(pending[start : start + batch])
    elapsed = time.perf_counter() - started
    store.close()
    return count / elapsed


def raw_append_rate(path: Path, batch: int, count: int) -> float:
    """sqlite3 executemany into the same table definition, rows prepared in advance (with
    event ids of the kind the store makes: where they fall in the index matters)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    dialect = sa.create_engine("sqlite://").dialect
    conn.execute(str(CreateTable(events).compile(dialect=dialect)))
    for index in events.indexes:
        conn.execute(str(CreateIndex(index).compile(dialect=dialect)))
    rows = [
        (n + 1, new_event_id(), f"item:r-{n}", 1, "ItemSighted", 1,
         "2026-07-01T09:00:00.000000+00:00", f'{{"feed_id":"feed-{n % 50}","item_id":"r-{n}"}}',
         "{}", None, None, GENESIS, uuid.uuid4().hex * 2)
        for n in range(count)
    ]  # fmt: skip
    insert = f"INSERT INTO events VALUES ({', '.join('?' * 13)})"
    started = time.perf_counter()
    for start in range(0, count, batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert, rows[start : start + batch])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return count / elapsed


def bench_appends(tmp: Path) -> None:
    print("append, SQLite WAL synchronous=FULL (one transaction per batch)")
    for batch, count in APPENDS.items():
        ours = store_append_rate(f"sqlite:///{tmp / f'store-{batch}.db'}", batch, count)
        raw = raw_append_rate(tmp / f"raw-{batch}.db", batch, count)
        line(f"batch {batch:>4}: EventStore", f"{ours:>7,.0f} /s", f"{ours / raw:.2f}x raw")
        line(f"batch {batch:>4}: raw sqlite3 executemany", f"{raw:>7,.0f} /s")


def bench_postgres() -> None:
    import psycopg

    plain = PG_URL.replace("+psycopg", "")
    try:
        psycopg.connect(plain, connect_timeout=3).close()
    except psycopg.Error as exc:
        print(f"append, PostgreSQL: skipped ({str(exc).splitlines()[0]})")
        return
    schema = "bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        print("append, PostgreSQL (LOCK TABLE events IN EXCLUSIVE MODE per batch)")
        url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
        for batch, count in ((100, 20_000), (1000, 30_000)):
            rate = store_append_rate(url, batch, count)
            line(f"batch {batch:>4}: EventStore", f"{rate:>7,.0f} /s")
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def generate_log(path: Path, count: int) -> None:
    """A valid hash-chained log written in bulk, far faster than through append()."""
    EventStore.open(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    insert = f"INSERT INTO events VALUES ({', '.join('?' * 13)})"
    prev, at = GENESIS, "2026-07-01T09:00:00.000000+00:00"
    conn.execute("BEGIN")
    for start in range(0, count, 50_000):
        rows = []
        for position in range(start + 1, min(start + 50_000, count) + 1):
            event_id, stream = str(uuid.uuid4()), f"item:g-{position}"
            data = canonical_json({"feed_id": f"feed-{position % 50}", "item_id": f"g-{position}"})
            digest = record_hash(
                prev, data, b"{}", position=position, event_id=event_id, stream=stream,
                stream_version=1, type="ItemSighted", schema_version=1, recorded_at=at,
                dedupe_key=None,
            )  # fmt: skip
            rows.append((position, event_id, stream, 1, "ItemSighted", 1, at, data.decode(),
                         "{}", None, None, prev, digest))  # fmt: skip
            prev = digest
        conn.executemany(insert, rows)
    conn.execute("COMMIT")
    conn.close()


def replay(path: str, mode: str) -> None:
    """Child process: fold the whole log, then print count, seconds and peak RSS."""
    store = EventStore.open(f"sqlite:///{path}")
    per_feed: dict[str, int] = {}
    started = time.perf_counter()
    count = 0
    if mode == "read_raw":
        for _, _, _, data in store.read_raw():
            per_feed[data["feed_id"]] = per_feed.get(data["feed_id"], 0) + 1
            count += 1
    else:
        decode = mode == "read+event"
        for record in store.read():
            feed = record.event.feed_id if decode else record.data["feed_id"]  # type: ignore[attr-defined]
            per_feed[feed] = per_feed.get(feed, 0) + 1
            count += 1
    elapsed = time.perf_counter() - started
    peak_mib = peak_rss_mib()
    print(count, elapsed, peak_mib, sum(per_feed.values()))


def bench_replay(tmp: Path) -> None:
    path = tmp / "replay.db"
    started = time.perf_counter()
    generate_log(path, REPLAY_EVENTS)
    print(f"replay of {REPLAY_EVENTS:,} events (log generated in bulk in "
          f"{time.perf_counter() - started:.0f} s; {path.stat().st_size / 2**20:.0f} MiB)")  # fmt: skip
    for mode, what in (
        ("read", "read() + fold on record.data"),
        ("read+event", "read() + record.event (decode) + fold"),
        ("read_raw", "read_raw() + fold"),
    ):
        out = subprocess.run(
            [sys.executable, "-m", "bench.bench_store", "--replay", str(path), mode],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        count, seconds, peak = int(out[0]), float(out[1]), float(out[2])
        line(what, f"{count / seconds:>7,.0f} /s", f"peak RSS {peak:.0f} MiB (whole process)")
    print("  read() streams keyset pages of 1,000 rows; it never holds the log in memory")
    small = tmp / "small.db"
    generate_log(small, 10_000)
    for db, count in ((small, 10_000), (path, REPLAY_EVENTS)):
        seconds, peak = log_json(db, tmp)
        line(
            f"`monitor log --json`, {count:>9,} events",
            f"{count / seconds:>7,.0f} /s",
            f"peak RSS {peak:.0f} MiB",
        )
    print("  the same peak RSS at 10 k and 1 M events: `monitor log --json` streams")


def log_json(db: Path, tmp: Path) -> tuple[float, float]:
    """Run the real command over a log in a child process; (seconds, peak RSS MiB)."""
    config = tmp / f"{db.stem}.toml"
    config.write_text(f'[settings]\ndatabase_url = "sqlite:///{db}"\n')
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_store", "--log-json", str(config)],
        capture_output=True, text=True, check=True,
    ).stderr.split()  # fmt: skip
    return float(out[-2]), float(out[-1])


def log_json_child(config: str) -> None:
    """Child process: `monitor log --json` with stdout discarded; timing and RSS on stderr."""
    from monitor.cli import app

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    started = time.perf_counter()
    try:
        app(["--config", config, "log", "--json"], standalone_mode=False)
    finally:
        elapsed = time.perf_counter() - started
        peak_mib = peak_rss_mib()
        print(elapsed, peak_mib, file=sys.stderr)


def run() -> None:
    timed: Callable[[], float] = time.perf_counter
    started = timed()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        bench_appends(Path(tmp))
        bench_postgres()
        bench_replay(Path(tmp))
    print(f"(bench took {timed() - started:.0f} s)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--replay":
        replay(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "--log-json":
        log_json_child(sys.argv[2])
    else:
        run()
