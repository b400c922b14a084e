"""What `monitor status` reads from the log, and how often, whatever the number of feeds."""

from __future__ import annotations

import itertools
from pathlib import Path

import sqlalchemy as sa

from monitor import reports
from monitor.events import FeedFailed
from monitor.runtime import open_store
from monitor.store import NewEvent
from tests.kit import load, write_config


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
