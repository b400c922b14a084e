"""What `monitor status` reads from the log, and how often, whatever the number of feeds."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from monitor import reports
from monitor.events import AlertAbandoned, AlertDelivered, AlertQueued, FeedFailed
from monitor.runtime import open_store
from monitor.store import EventStore, NewEvent
from tests.kit import cli, database_work, json_out, load, write_config


def _feed_rows_and_checkouts(tmp_path: Path, feeds: int) -> tuple[list[dict[str, object]], int]:
    folder = tmp_path / str(feeds)
    folder.mkdir()
    urls = {f"f{n}": f"http://127.0.0.1:9/{n}.xml" for n in range(feeds)}
    config = load(write_config(folder, feeds=urls))
    store = open_store(config)
    failed = FeedFailed(feed_id="f1", url=urls["f1"], kind="timeout", message="timed out")
    store.append([NewEvent(failed)])
    checkouts = itertools.count()
    sa.event.listen(store.engine, "checkout", lambda *_: next(checkouts))
    try:
        rows = reports.feed_rows(store, config)
    finally:
        store.close()
    return rows, next(checkouts)


def test_status_reads_the_health_of_every_feed_at_once(tmp_path: Path) -> None:
    """A connection (and on PostgreSQL a ping) per feed took seconds for a few thousand feeds."""
    few, few_reads = _feed_rows_and_checkouts(tmp_path, 3)
    many, many_reads = _feed_rows_and_checkouts(tmp_path, 60)
    assert [r["health"] for r in few] == ["not_polled", "failing", "not_polled"]
    assert [r["health"] for r in many][:3] == ["not_polled", "failing", "not_polled"]
    assert many_reads == few_reads, (few_reads, many_reads)


def _outbox(tmp_path: Path, db_url: str) -> tuple[Path, EventStore]:
    """60 alerts: every tenth from 3 abandoned, from 5 pending, the others delivered; one test
    alert among the abandoned ones."""
    path = write_config(tmp_path, feeds={}, db_url=db_url)
    store = open_store(load(path))
    batch = []
    for n in range(60):
        alert, channel = f"alt_{n:03d}", "hook" if n % 2 else "team"
        batch.append(NewEvent(AlertQueued(alert_id=alert, channel_id=channel, milestone_id="m",
                                          subject=f"alert {n}", payload={}, test=n == 13)))
        if n % 10 == 3:
            batch.append(NewEvent(AlertAbandoned(alert_id=alert, channel_id=channel, attempt=1,
                                                 kind="channel_disabled", message="disabled")))
        elif n % 10 != 5:
            batch.append(NewEvent(AlertDelivered(alert_id=alert, channel_id=channel, attempt=1,
                                                 response="ok")))
    store.append(batch)
    return path, store


def _decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = orjson.loads

    def counted(text: Any) -> Any:
        calls.append(1)
        return real(text)

    monkeypatch.setattr(orjson, "loads", counted)
    return calls


def test_alerts_and_status_read_only_the_alerts_they_show(
        tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """They read every alert ever queued (the outbox only grows): the database counts them now,
    and sends the rows shown."""
    path, store = _outbox(tmp_path, db_url)
    every = sorted(store.states("outbox").values(), key=lambda r: r["queued_position"])
    delivered = [r for r in every if r["status"] == "delivered"]
    decoded = _decoded(monkeypatch)
    try:
        rows, older = reports.alert_rows(store, delivered=5)
        assert (len(decoded), older) == (len(rows), len(delivered) - 5)
        assert rows == [r for r in every if r["status"] != "delivered" or r in delivered[-5:]]
        assert reports.alert_rows(store, delivered=None) == (every, 0)
        assert reports.alert_rows(store, delivered=len(delivered)) == (every, 0)
        decoded.clear()
        counts, abandoned = reports.alert_summary(store)
        shown = [r for r in every if not r["test"]]
        assert abandoned == [r for r in shown if r["status"] == "abandoned"]
        assert len(decoded) == len(abandoned) == 5
        assert counts == {"pending": 6, "abandoned": 5, "delivered": len(delivered)}
    finally:
        store.close()
    monkeypatch.undo()
    table = cli(path, "alerts", "--limit", "2").stdout
    assert len([line for line in table.splitlines() if line.startswith("alt_")]) == 6 + 6 + 2
    assert table.splitlines()[-1] == (
        "46 older delivered alerts not listed: `monitor alerts --limit N` lists the newest N")
    listed = [r["alert_id"] for r in json_out(path, "alerts", "--limit", "0")]
    assert listed == [r["alert_id"] for r in every if r["status"] != "delivered"]



def _delivered(store: EventStore, numbers: range) -> None:
    batch = []
    for n in numbers:
        alert = f"alt_{n:04d}"
        batch += [NewEvent(AlertQueued(alert_id=alert, channel_id="team", milestone_id="m",
                                       subject=f"alert {n}", payload={})),
                  NewEvent(AlertDelivered(alert_id=alert, channel_id="team", attempt=1,
                                          response="ok"))]
    store.append(batch)


def test_status_counts_the_alerts_by_the_outbox_index(tmp_path: Path, db_url: str) -> None:
    """The outbox keeps every alert ever queued, and `monitor status` counts them and lists the
    abandoned ones: the database read and decoded each alert's state twice for it, to count it
    and to pick the abandoned ones (20,000 alerts: 180-220 ms, SQLite; 520-640 ms,
    PostgreSQL). The outbox's index finds the pending and abandoned ones now, and the
    delivered ones are counted from indexes: SQLite steps through each alert's index entries
    (8 steps an alert, where reading its state took 30), PostgreSQL reads no delivered
    alert's state."""
    _, store = _outbox(tmp_path, db_url)
    work = []
    try:
        for more in (0, 1000):
            _delivered(store, range(100, 100 + more))
            counts, abandoned = reports.alert_summary(store)
            assert counts == {"pending": 6, "abandoned": 5, "delivered": 48 + more}
            assert [a["alert_id"] for a in abandoned] == [f"alt_0{n}3" for n in "02345"]
            work.append(database_work(store, lambda: reports.alert_summary(store),
                                      "projection_state", "state"))
    finally:
        store.close()
    few, many = work
    if db_url.startswith("sqlite"):
        assert (many - few) / 1000 < 15, work
    else:
        assert many <= few, work
