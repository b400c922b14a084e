"""The log opened read-only, on SQLite and PostgreSQL: reads as written, creates and writes nothing.

Run here as the user who owns the files; `test_cli_readonly.py` runs the commands as a user
who cannot write them.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor import events as ev
from monitor.errors import StoreError, WrongDatabaseError
from monitor.store import EventStore, NewEvent, Recorded
from monitor.store.readonly import Snapshot


class Tally:
    """Events per stream: gives the log projection rows to read back."""

    name = "tally"

    def key(self, record: Recorded) -> str | None:
        return record.stream

    def apply(self, state: dict[str, Any] | None, record: Recorded) -> dict[str, Any]:
        return {"count": (state or {"count": 0})["count"] + 1}


def _sighted(n: int) -> NewEvent:
    return NewEvent(ev.ItemSighted(item_id=f"i{n % 3}", feed_id="f"))


@pytest.fixture
def written(db_url: str) -> Iterator[str]:
    """A log with five events and their projection rows, its writer closed."""
    store = EventStore.open(db_url, projections=[Tally()])
    store.append([_sighted(n) for n in range(5)])
    store.close()
    yield db_url


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _sqlite_file(url: str) -> Path | None:
    parsed = sa.make_url(url)
    return Path(parsed.database or "") if parsed.get_backend_name() == "sqlite" else None


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_read_only_opening_reads_what_was_written(written: str) -> None:
    writer = EventStore.open(written, projections=[Tally()])
    expected = ([r.hash for r in writer.read()], writer.verify(), writer.states("tally"))
    writer.close()
    reader = EventStore.open(written, read_only=True)
    try:
        assert ([r.hash for r in reader.read()], reader.verify(), reader.states("tally")) == (
            expected
        )
        assert reader.states("tally")["item:i0"] == {"count": 2}
        assert not reader.immutable  # the owner can write the folder: shared with writers
    finally:
        reader.close()


def test_a_read_only_opening_changes_nothing_and_cannot_append(written: str) -> None:
    tables = _tables(written)
    path = _sqlite_file(written)
    before = _digest(path) if path else None
    reader = EventStore.open(written, read_only=True)
    try:
        with pytest.raises(StoreError, match=r"^event log: write failed: .*read-?only"):
            reader.append([_sighted(9)])
        assert reader.head() is not None and reader.head()[0] == 5  # type: ignore[index]
    finally:
        reader.close()
    assert _tables(written) == tables
    if path is not None:
        assert _digest(path) == before


def test_a_database_without_the_logs_tables_is_not_a_log_and_stays_so(
    db_url: str, tmp_path: Path
) -> None:
    path = _sqlite_file(db_url)
    if path is not None:  # an existing SQLite file of something else
        with sqlite3.connect(path) as other:
            other.execute("CREATE TABLE notes (text TEXT)")
        other.close()
    tables = _tables(db_url)
    with pytest.raises(WrongDatabaseError) as caught:  # the configuration's fault: exit 2
        EventStore.open(db_url, read_only=True)
    assert "not a monitor event log (no events table)" in str(caught.value)
    assert caught.value.hint is not None and "database_url" in caught.value.hint
    assert _tables(db_url) == tables  # the old opening created the schema here


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("missing.db", None, "cannot open: no such file"),
        ("text.db", b"not a database, a note\n" * 100, "not a monitor event log (not a SQLite"),
        ("folder.db", "dir", "cannot open: not a file"),
    ],
)
def test_a_read_only_opening_of_a_file_that_is_not_a_log_errors_in_one_line(
    tmp_path: Path, name: str, content: bytes | str | None, says: str
) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(WrongDatabaseError) as caught:
        EventStore.open(f"sqlite:///{path}", read_only=True)
    assert says in str(caught.value) and str(path) in str(caught.value)
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing made, not even -wal


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///x.db?timeout=3"])
def test_a_read_only_opening_needs_a_plain_file_path(url: str) -> None:
    with pytest.raises(WrongDatabaseError, match="a command that only reads needs a plain file path"):
        EventStore.open(url, read_only=True)


def test_a_snapshot_notices_a_changed_file_or_a_writers_wal(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    path.write_bytes(b"x" * 100)
    Snapshot.of(path).check()  # unchanged: fine
    grown = Snapshot.of(path)
    with path.open("ab") as f:
        f.write(b"y")
    with pytest.raises(StoreError, match="changed while this command read it"):
        grown.check()
    joined = Snapshot.of(path)
    (tmp_path / "events.db-wal").write_bytes(b"")
    with pytest.raises(StoreError, match="changed while this command read it"):
        joined.check()
