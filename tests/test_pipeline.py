"""Polling end to end against a real feed server: events written, nothing doubled, nothing lost."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from monitor import workstate
from monitor.runtime import open_store
from monitor.store import EventStore
from tests.feedserver import FeedServer
from tests.kit import load, rss, run_once, write_config

NOW = datetime.now(UTC)


def item(n: int, **extra: object) -> dict[str, object]:
    return {"title": f"Unrelated story {n}", "link": f"https://news.example.com/a/{n}",
            "guid": f"g{n}", "published": NOW - timedelta(hours=n), **extra}


def types(store: EventStore) -> list[str]:
    return [r.type for r in store.read()]


def opened(path: Path) -> EventStore:
    return open_store(load(path))


def test_not_modified_and_unchanged_polls_write_no_event(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/a.xml", body=rss([item(1), item(2)]), etag='"v1"')
    feed_server.route("/b.xml", body=rss([item(3)]))  # no validators: unchanged body
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml"),
                                         "b": feed_server.url("/b.xml")})
    run_once(path)
    store = opened(path)
    first = types(store)
    assert first.count("ItemDiscovered") == 3
    run_once(path)
    run_once(path)
    assert types(store) == first
    assert feed_server.requests("/a.xml")[-1].get("If-None-Match") == '"v1"'
    feed_server.route("/a.xml", body=rss([item(1), item(2), item(4)]), etag='"v2"')
    run_once(path)
    new = [r for r in store.read() if r.type == "ItemDiscovered"][3:]
    assert [r.data["guid"] for r in new] == ["g4"]
    store.close()


def test_failure_kinds_backoff_recovery_and_move(tmp_path: Path,
                                                 feed_server: FeedServer) -> None:
    feed_server.route("/f.xml", status=503, headers={"Retry-After": "1"})
    path = write_config(tmp_path, feeds={"f": feed_server.url("/f.xml")})
    delays = []
    for _ in range(3):
        run_once(path)
        store = opened(path)
        row = workstate.feed_rows(store)["f"]
        delays.append(row.next_poll_at - row.last_attempt_at)
        store.close()
    assert delays[0] < delays[1] < delays[2]
    store = opened(path)
    failed = [r for r in store.read() if r.type == "FeedFailed"]
    assert len(failed) == 1 and failed[0].data["kind"] == "http_5xx"  # transition only
    feed_server.route("/f.xml", status=404)
    run_once(path)
    feed_server.route("/new.xml", body=rss([item(1)]))
    feed_server.route("/f.xml", status=301, redirect_to="/new.xml")
    run_once(path)
    kinds = [(r.type, r.data.get("kind")) for r in store.read() if r.stream == "feed:f"]
    assert kinds == [("FeedFailed", "http_5xx"), ("FeedFailed", "http_4xx"),
                     ("FeedRecovered", None), ("FeedMoved", None)]
    assert workstate.feed_rows(store)["f"].url == feed_server.url("/new.xml")
    run_once(path)
    assert feed_server.hits("/new.xml") == 2 and feed_server.hits("/f.xml") == 5
    store.close()


def test_gone_feed_is_marked_and_polled_rarely(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/g.xml", status=410)
    path = write_config(tmp_path, feeds={"g": feed_server.url("/g.xml")})
    run_once(path)
    store = opened(path)
    [failed] = [r for r in store.read() if r.type == "FeedFailed"]
    assert failed.data["kind"] == "gone"
    row = workstate.feed_rows(store)["g"]
    assert row.next_poll_at - row.last_attempt_at >= 6 * 3600 - 1
    assert store.state("feeds", "g") == {**store.state("feeds", "g"), "health": "gone"}
    store.close()


def test_not_a_feed_is_named(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/h.xml", body=b"<html><head><title>Access denied</title></head></html>",
                      headers={"Content-Type": "text/html"})
    path = write_config(tmp_path, feeds={"h": feed_server.url("/h.xml")})
    run_once(path)
    store = opened(path)
    [failed] = [r for r in store.read() if r.type == "FeedFailed"]
    assert failed.data["kind"] == "not_a_feed"
    assert "Access denied" in failed.data["message"]
    store.close()


def test_same_item_in_two_feeds_is_discovered_once_then_sighted(
        tmp_path: Path, feed_server: FeedServer) -> None:
    shared = item(1)
    feed_server.route("/a.xml", body=rss([shared]))
    feed_server.route("/b.xml", body=rss([shared, item(2)]))
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml"),
                                         "b": feed_server.url("/b.xml")})
    run_once(path)
    run_once(path)
    store = opened(path)
    assert types(store).count("ItemDiscovered") == 2
    assert types(store).count("ItemSighted") == 1
    store.close()


def test_items_without_guid_or_link_and_shared_guids_are_not_doubled(
        tmp_path: Path, feed_server: FeedServer) -> None:
    bare = {"title": "No guid, no link", "description": "just text"}
    twins = [{"title": "Twin A", "guid": "same"}, {"title": "Twin B", "guid": "same"}]
    feed_server.route("/a.xml", body=rss([bare, *twins]))
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")})
    run_once(path)
    feed_server.route("/a.xml", body=rss([bare, *twins, item(9)]))
    run_once(path)
    store = opened(path)
    titles = [r.data["title"] for r in store.read() if r.type == "ItemDiscovered"]
    assert titles == ["No guid, no link", "Twin A", "Unrelated story 9"]
    store.close()


def test_stale_feed_is_recorded_once_while_it_keeps_answering(
        tmp_path: Path, feed_server: FeedServer) -> None:
    old = {"title": "June news", "guid": "june", "published": NOW - timedelta(days=90)}
    feed_server.route("/meti.xml", body=rss([old]), etag='"june"')
    path = write_config(tmp_path, feeds={"meti": feed_server.url("/meti.xml")})
    text = path.read_text().replace('id = "meti"', 'id = "meti"\nstale_after = "14d"')
    path.write_text(text)
    run_once(path)
    run_once(path)  # 304: still stale, nothing new
    store = opened(path)
    assert types(store).count("FeedStale") == 1
    feed_server.route("/meti.xml", body=rss([old, {"title": "Fresh", "guid": "new",
                                                   "published": NOW}]), etag='"nov"')
    run_once(path)
    assert [r.type for r in store.read() if r.stream == "feed:meti"] == [
        "FeedStale", "FeedRecovered"]
    store.close()


def test_first_polls_after_restart_are_spread(tmp_path: Path) -> None:
    feeds = {f"f{i}": f"http://127.0.0.1:9/{i}.xml" for i in range(40)}
    path = write_config(tmp_path, feeds=feeds, interval="10m")
    store = opened(path)
    import random

    now = time.time()
    workstate.sync_feeds(store, load(path), now=now, rng=random.Random(1))
    due = [r.next_poll_at - now for r in workstate.feed_rows(store).values()]
    assert min(due) >= 0 and max(due) <= 1  # startup_spread = "1s"
    assert len({round(d, 2) for d in due}) > 10  # not all at once
    with store.engine.begin() as conn:  # a long downtime: everything overdue
        conn.execute(sa.update(workstate.feed_state).values(next_poll_at=now - 3600))
    workstate.sync_feeds(store, load(path), now=now, rng=random.Random(2))
    due = [r.next_poll_at - now for r in workstate.feed_rows(store).values()]
    assert min(due) >= 0 and max(due) <= 1  # each polled once soon, none skipped
    store.close()


def test_a_starting_daemon_leaves_feeds_another_one_holds_or_has_polled(
        tmp_path: Path, db_url: str) -> None:
    # Two daemons starting together: the second spreads overdue first polls, but a feed the
    # first has leased, or has polled since, keeps its next poll time (else it is polled twice)
    import random

    path = write_config(tmp_path, feeds={f"f{i}": f"http://127.0.0.1:9/{i}.xml" for i in range(3)},
                        db_url=db_url, interval="10m")
    store = opened(path)
    now = time.time()
    workstate.sync_feeds(store, load(path), now=now, rng=random.Random(3))  # the rows
    c = workstate.feed_state.c
    with store.engine.begin() as conn:
        conn.execute(sa.update(workstate.feed_state).values(next_poll_at=now - 3600))
        conn.execute(sa.update(workstate.feed_state).where(c.feed_id == "f1")
                     .values(lease_owner="other", lease_expires=now + 60))
        conn.execute(sa.update(workstate.feed_state).where(c.feed_id == "f2")
                     .values(next_poll_at=now + 600))
    workstate.sync_feeds(store, load(path), now=now, rng=random.Random(3))
    rows = workstate.feed_rows(store)
    assert now <= rows["f0"].next_poll_at <= now + 1  # overdue and free: spread
    assert rows["f1"].next_poll_at == now - 3600  # its holder sets the next poll time
    assert rows["f2"].next_poll_at == now + 600
    store.close()
