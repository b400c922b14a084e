"""A changed feed's items whose bytes were in the last recorded body are not parsed again."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor import workstate
from monitor.runtime import open_store
from tests.feedserver import FeedServer
from tests.kit import cli, load, rss, write_config

NOW = datetime.now(UTC).replace(microsecond=0)


def item(n: int, title: str | None = None) -> dict[str, object]:
    return {"title": title or f"Harbour story {n}", "link": f"https://news.example.com/a/{n}",
            "guid": f"g{n}", "published": NOW - timedelta(hours=n)}


def discovered(path: Path) -> list[str]:
    store = open_store(load(path))
    try:
        return [r.data["guid"] for r in store.read(types=["ItemDiscovered"])]
    finally:
        store.close()


def prints(path: Path) -> str | None:
    store = open_store(load(path))
    try:
        return workstate.feed_rows(store)["a"].item_prints
    finally:
        store.close()


def test_a_new_item_beside_known_ones_is_the_only_one_parsed(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/a.xml", body=rss([item(1), item(2), item(3)]))
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")})
    first = cli(path, "poll", "a")
    assert first.returncode == 0, first.stderr
    assert "3 new items" in first.stdout and "not parsed again" not in first.stdout
    assert len((prints(path) or "").split()) == 3

    feed_server.route("/a.xml", body=rss([item(4), item(1), item(2), item(3)]))
    second = cli(path, "poll", "a")
    assert second.returncode == 0, second.stderr
    assert "1 new item," in second.stdout
    assert "3 unchanged items not parsed again" in second.stdout
    assert discovered(path) == ["g1", "g2", "g3", "g4"]
    assert len((prints(path) or "").split()) == 4


def test_an_edited_item_is_parsed_again_and_stays_one_item(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/a.xml", body=rss([item(1), item(2), item(3)]))
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")})
    assert cli(path, "poll", "a").returncode == 0
    feed_server.route("/a.xml", body=rss([item(1), item(2, "Harbour story 2, updated"), item(3)]))
    result = cli(path, "poll", "a")
    assert result.returncode == 0, result.stderr
    assert "0 new items" in result.stdout
    assert "2 unchanged items not parsed again" in result.stdout
    assert discovered(path) == ["g1", "g2", "g3"]


def test_a_new_feed_address_forgets_the_known_items(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/a.xml", body=rss([item(1)]))
    feed_server.route("/b.xml", body=rss([item(1), item(2)]))
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")})
    assert cli(path, "poll", "a").returncode == 0
    assert prints(path)
    path = write_config(tmp_path, feeds={"a": feed_server.url("/b.xml")})
    result = cli(path, "poll", "a")
    assert result.returncode == 0, result.stderr
    assert "1 new item," in result.stdout and "not parsed again" not in result.stdout


def test_a_working_table_from_before_the_column_gains_it(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE feed_state (feed_id VARCHAR(200) PRIMARY KEY, url TEXT NOT NULL,"
            " configured_url TEXT NOT NULL, etag TEXT, last_modified TEXT,"
            " body_hash VARCHAR(64), next_poll_at FLOAT NOT NULL, lease_owner VARCHAR(200),"
            " lease_expires FLOAT, failures INTEGER NOT NULL, last_attempt_at FLOAT,"
            " last_success_at FLOAT, last_error TEXT, newest_item_at FLOAT,"
            " polls INTEGER NOT NULL)")
        conn.execute("INSERT INTO feed_state VALUES ('a', 'https://e.org/f', 'https://e.org/f',"
                     " NULL, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, NULL, NULL, 0)")
    path = write_config(tmp_path, feeds={"a": "https://e.org/f"})
    store = open_store(load(path))
    try:
        workstate.ensure(store)
        assert workstate.feed_rows(store)["a"].item_prints is None
    finally:
        store.close()
    with sqlite3.connect(db) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(feed_state)")]
    assert columns[-1] == "item_prints"
