"""Polling end to end against a real feed server: events written, nothing doubled, nothing lost."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor import items, poll, workstate
from monitor.clients import fetch_limits
from monitor.fetch import Fetcher
from monitor.items import newest_published
from monitor.parse import parse_drafts
from monitor.pollrecord import PollReport
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


def test_a_relative_item_link_is_recorded_against_the_url_the_feed_came_from(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/old.xml", status=301, redirect_to="/rss/news.xml")
    feed_server.route("/rss/news.xml", body=rss([item(1, link="/a/5"), item(2, link="b?id=2")]))
    run_once(write_config(tmp_path, feeds={"a": feed_server.url("/old.xml")}))
    store = opened(tmp_path / "feeds.toml")
    urls = [r.data["url"] for r in store.read(types=("ItemDiscovered",))]
    store.close()
    assert urls == [feed_server.url("/a/5"), feed_server.url("/rss/b?id=2")]


@pytest.mark.parametrize(("hops", "recorded"), [([301], 301), ([308], 308), ([308, 301], 308)])
def test_feed_moved_records_the_status_that_moved_it(
        tmp_path: Path, feed_server: FeedServer, hops: list[int], recorded: int) -> None:
    paths = [f"/{n}.xml" for n in range(len(hops) + 1)]
    for status, here, there in zip(hops, paths, paths[1:], strict=False):
        feed_server.route(here, status=status, redirect_to=there)
    feed_server.route(paths[-1], body=rss([item(1)]))
    run_once(write_config(tmp_path, feeds={"a": feed_server.url(paths[0])}))
    store = opened(tmp_path / "feeds.toml")
    [moved] = store.read(types=("FeedMoved",))
    store.close()
    assert moved.data["status"] == recorded
    assert moved.data["new_url"] == feed_server.url(paths[-1])


def test_a_page_configured_as_a_feed_fails_naming_the_feed_it_links_to(
        tmp_path: Path, feed_server: FeedServer) -> None:
    page = (b'<html><head><title>News</title><link rel="alternate" '
            b'type="application/rss+xml" href="rss/news.xml"></head></html>')
    feed_server.route("/news/", body=page, headers={"Content-Type": "text/html"})
    run_once(write_config(tmp_path, feeds={"a": feed_server.url("/news/")}))
    store = opened(tmp_path / "feeds.toml")
    [failed] = store.read(types=("FeedFailed",))
    store.close()
    assert failed.data["kind"] == "not_a_feed"
    assert failed.data["message"].endswith(
        f"it links to the feed {feed_server.url('/news/rss/news.xml')}")


def test_a_broken_feed_keeps_the_entries_feedparser_recovers_and_logs_why(
        tmp_path: Path, feed_server: FeedServer, caplog: pytest.LogCaptureFixture) -> None:
    body = (b"<?xml version='1.0'?><rss version='2.0'><channel><title>T</title>"
            b"<item><title>Good</title><guid>g1</guid></item>"
            b"<item><title>Bad &amp & worse</title><guid>g2</guid></item></channel></rss>")
    feed_server.route("/f.xml", body=body)
    path = write_config(tmp_path, feeds={"a": feed_server.url("/f.xml")})
    with caplog.at_level("WARNING", logger="monitor"):
        assert run_once(path) == 0
    store = opened(path)
    try:
        assert "Good" in [r.data["title"] for r in store.read(types=("ItemDiscovered",))]
        assert list(store.read(types=("FeedFailed",))) == []
    finally:
        store.close()
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(m.startswith("feed 'a': ") and "not well-formed" in m
               and m.endswith("(entries recovered)") for m in warned), warned


def test_a_bug_met_while_recording_fails_that_feed_and_the_run_goes_on(
        tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    # No server can make the monitor's own code fail: a stand-in bug, for one feed only.
    real = items.record_items

    def buggy(tx: Any, config: Any, matcher: Any, feed: Any, *args: Any, **kw: Any) -> Any:
        if feed.id == "bad":
            raise KeyError("no such thing")
        return real(tx, config, matcher, feed, *args, **kw)

    monkeypatch.setattr(items, "record_items", buggy)
    feed_server.route("/bad.xml", body=rss([item(1)]))
    feed_server.route("/good.xml", body=rss([item(2)]))
    path = write_config(tmp_path, feeds={"bad": feed_server.url("/bad.xml"),
                                         "good": feed_server.url("/good.xml")})
    assert run_once(path) == 0
    store = opened(path)
    try:
        [failed] = store.read(types=("FeedFailed",))
        assert (failed.data["feed_id"], failed.data["kind"]) == ("bad", "unexpected")
        assert "unexpected KeyError while recording: 'no such thing'" in failed.data["message"]
        assert [r.data["feed_id"] for r in store.read(types=("ItemDiscovered",))] == ["good"]
        assert workstate.feed_rows(store)["bad"].failures == 1  # backs off like any failure
    finally:
        store.close()
    traced = [r for r in caplog.records if r.exc_info and "while recording" in r.getMessage()]
    assert len(traced) == 1


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
    # a Retry-After shorter than the backoff does not shorten it (longer ones: below)
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


@pytest.mark.parametrize(("status", "kind"), [(429, "rate_limited"), (503, "http_5xx")])
@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_longer_than_the_backoff_sets_the_next_poll(
        tmp_path: Path, feed_server: FeedServer, status: int, kind: str, form: str) -> None:
    # A first failure backs off about a minute (at most 72 s); the server asks for an hour.
    before = time.time()
    when = datetime.fromtimestamp(before, UTC) + timedelta(hours=1)
    value = "3600" if form == "seconds" else format_datetime(when, usegmt=True)
    feed_server.route("/f.xml", status=status, headers={"Retry-After": value})
    path = write_config(tmp_path, feeds={"f": feed_server.url("/f.xml")})
    run_once(path)
    after = time.time()
    store = opened(path)
    row = workstate.feed_rows(store)["f"]
    delay = row.next_poll_at - row.last_attempt_at
    if form == "seconds":
        assert delay == pytest.approx(3600, abs=0.01)
    else:  # the date, less the time between the poll's start and the server's answer
        date = when.replace(microsecond=0).timestamp()  # an HTTP-date has whole seconds
        assert date - after <= delay <= date - row.last_attempt_at + 0.01
        assert delay >= 3600 - 60
    [failed] = [r for r in store.read() if r.type == "FeedFailed"]
    assert failed.data["kind"] == kind
    assert f"server answered {status} " in failed.data["message"]
    recorded_next = datetime.fromisoformat(failed.data["next_poll_at"]).timestamp()
    assert recorded_next == pytest.approx(row.next_poll_at, abs=0.01)
    store.close()


def poll_now(path: Path, feed_id: str, *, deferred: bool) -> PollReport:
    """One poll of one feed through `poll.poll_feed`, the path both `monitor poll FEED`
    (deferred=False) and the daemon (deferred=True: unchanged polls written in a batch) take."""
    config = load(path)
    store = open_store(config)

    async def one() -> PollReport:
        workstate.sync_feeds(store, config, now=time.time(), rng=random.Random(1))
        [work] = workstate.claim_feeds(store, owner="test", now=time.time(), lease=60, limit=1,
                                       feed_ids=[feed_id], due_only=False)
        async with Fetcher(fetch_limits(config)) as fetcher:
            poller = poll.poller_for(config, store, fetcher, "test")
            poller.defer_unchanged = deferred
            try:
                report = await poll.poll_feed(poller, work)
                await poll.flush_unchanged(poller)
                return report
            finally:
                poller.close()

    try:
        return asyncio.run(one())
    finally:
        store.close()


@pytest.mark.parametrize("deferred", [False, True], ids=["monitor poll", "daemon"])
def test_an_unchanged_body_is_not_parsed_again(
        tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch,
        deferred: bool) -> None:
    # No ETag and no Last-Modified: every poll is a 200 with the same bytes.
    feed_server.route("/a.xml", body=rss([item(1), item(2)]))
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")})
    parsed: list[bytes] = []
    real = parse_drafts

    def counting(body: bytes, **kwargs: Any) -> Any:
        parsed.append(body)
        return real(body, **kwargs)

    monkeypatch.setattr("monitor.pollrecord.parse_drafts", counting)  # the name it calls
    first = poll_now(path, "a", deferred=deferred)
    assert (first.outcome, first.discovered, len(parsed)) == ("new", 2, 1)
    store = opened(path)
    head = store.head()
    again = poll_now(path, "a", deferred=deferred)
    assert (again.outcome, again.discovered) == ("unchanged", 0)
    assert len(parsed) == 1  # the second body was never handed to the parser
    assert feed_server.hits("/a.xml") == 2  # it was fetched, a 200 and not a 304
    assert "If-None-Match" not in feed_server.requests("/a.xml")[-1]
    assert store.head() == head  # and it wrote no event
    feed_server.route("/a.xml", body=rss([item(1), item(2), item(3)]))  # a changed body is parsed
    assert poll_now(path, "a", deferred=deferred).outcome == "new" and len(parsed) == 2
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


def test_a_short_guid_names_one_article_per_publisher_not_everywhere(
        tmp_path: Path, feed_server: FeedServer) -> None:
    """`1` in one publisher's feed and `1` in another's are two articles; the same publisher's
    `1` in two of its feeds is one; a GUID with a scheme is one article everywhere."""
    training = {"title": "Noetra starts training", "link": "https://news.example.com/a/1",
                "guid": "1"}
    factory = {"title": "Acme's Osaka factory opens", "link": "https://blog.example.net/p/77",
               "guid": "1"}
    bare = {"title": "A note with no link", "guid": "1"}  # told apart by its title
    again = {**training, "link": "https://news.example.com/tech/1"}  # the publisher's other feed
    permalink = {"title": "Elsewhere", "link": "https://x.example.org/1",
                 "guid": "https://news.example.com/a/1"}
    bodies = {"a": [training, permalink], "b": [factory], "c": [bare], "d": [again],
              "e": [{**permalink, "link": "https://y.example.org/2"}]}
    for name, entries in bodies.items():
        feed_server.route(f"/{name}.xml", body=rss(entries))
    path = write_config(tmp_path, feeds={n: feed_server.url(f"/{n}.xml") for n in bodies})
    run_once(path)
    run_once(path)
    store = opened(path)
    found = [(r.type, r.data["feed_id"], r.data["item_id"]) for r in store.read()
             if r.type in ("ItemDiscovered", "ItemSighted")]
    store.close()
    items: dict[str, list[tuple[str, str]]] = {}
    for kind, feed, iid in found:
        items.setdefault(iid, []).append((kind, feed))
    # d carries a's article, e a's permalink item (polled in either order); b and c their own
    assert sorted(sorted(feed for _, feed in seen) for seen in items.values()) == [
        ["a", "d"], ["a", "e"], ["b"], ["c"]], found
    assert all([kind for kind, _ in seen].count("ItemDiscovered") == 1 for seen in items.values())


def test_a_short_guid_without_a_publisher_is_told_apart_by_link_then_title(
        tmp_path: Path, feed_server: FeedServer) -> None:
    """Where the first holder of `1` names no publisher (a host with no registrable domain),
    an entry is its article when the canonical links agree, or with no link the titles; an
    entry of another publisher is scoped to that publisher, so its two feeds share one item."""
    first = {"title": "Noetra starts training", "link": "http://localhost/a/1?utm_source=a",
             "guid": "1"}
    same_link = {"title": "Retitled", "link": "http://localhost/a/1?utm_source=b", "guid": "1"}
    same_title = {"title": "Noetra starts training", "guid": "1"}
    publisher = {"title": "Acme's factory", "link": "https://blog.example.net/p/77", "guid": "1"}
    bodies = {"a": [first], "b": [same_link], "c": [same_title], "d1": [publisher],
              "d2": [{**publisher, "link": "https://blog.example.net/other/77"}]}
    for name, entries in bodies.items():
        feed_server.route(f"/{name}.xml", body=rss(entries))
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")})
    run_once(path)  # a holds `1` first
    write_config(tmp_path, feeds={n: feed_server.url(f"/{n}.xml") for n in bodies})
    run_once(path)
    store = opened(path)
    items: dict[str, list[str]] = {}
    for r in store.read(types=("ItemDiscovered", "ItemSighted")):
        items.setdefault(r.data["item_id"], []).append(r.data["feed_id"])
    store.close()
    assert sorted(sorted(feeds) for feeds in items.values()) == [["a", "b", "c"], ["d1", "d2"]]


def test_an_edited_item_of_the_same_feed_is_neither_new_nor_seen_elsewhere(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/a.xml", body=rss([item(1), item(2)]))
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")})
    first = poll_now(path, "a", deferred=False)
    assert (first.discovered, first.sighted) == (2, 0)
    edited = {**item(1), "title": "Unrelated story 1 (updated)"}  # parsed again: it changed
    feed_server.route("/a.xml", body=rss([edited, item(2), item(3)]))
    again = poll_now(path, "a", deferred=False)
    assert (again.outcome, again.discovered, again.sighted) == ("new", 1, 0)
    store = opened(path)
    assert types(store).count("ItemSighted") == 0
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


def test_monitor_poll_records_a_stale_feed_once_and_a_feed_without_dates_as_stale(
        tmp_path: Path, feed_server: FeedServer) -> None:
    """`monitor poll` writes an unchanged poll in a transaction of its own, which must decide
    again that the feed was already stale; a feed whose items carry no date is stale too."""
    old = {"title": "June news", "guid": "june", "published": NOW - timedelta(days=90)}
    undated = {"title": "Undated", "guid": "u1"}
    feed_server.route("/meti.xml", body=rss([old]), etag='"june"')
    feed_server.route("/undated.xml", body=rss([undated]))
    path = write_config(tmp_path, feeds={"meti": feed_server.url("/meti.xml"),
                                         "undated": feed_server.url("/undated.xml")})
    text = path.read_text().replace('id = "meti"', 'id = "meti"\nstale_after = "14d"')
    path.write_text(text.replace('id = "undated"', 'id = "undated"\nstale_after = "14d"'))
    for _ in range(3):
        for feed_id in ("meti", "undated"):
            poll_now(path, feed_id, deferred=False)
    assert feed_server.requests("/meti.xml")[-1].get("If-None-Match") == '"june"'
    store = opened(path)
    stale = [(r.stream, r.data["newest_item_at"]) for r in store.read(types=("FeedStale",))]
    store.close()
    assert sorted(stale, key=lambda s: s[0]) == [
        ("feed:meti", (NOW - timedelta(days=90)).replace(microsecond=0).isoformat()),
        ("feed:undated", None)]


def test_a_gone_feed_that_answers_again_recovers_and_backs_off_from_scratch(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/g.xml", status=410)
    path = write_config(tmp_path, feeds={"g": feed_server.url("/g.xml")})
    poll_now(path, "g", deferred=False)
    feed_server.route("/g.xml", body=rss([item(1)]))
    assert poll_now(path, "g", deferred=False).outcome == "new"
    store = opened(path)
    assert [(r.type, r.data.get("kind"), r.data.get("after"))
            for r in store.read() if r.stream == "feed:g"] == [
        ("FeedFailed", "gone", None), ("FeedRecovered", None, "gone")]
    assert workstate.feed_rows(store)["g"].failures == 0
    store.close()
    feed_server.route("/g.xml", status=503)
    failed = poll_now(path, "g", deferred=False)  # the first failure since: about a minute
    assert failed.retry_in is not None and failed.retry_in <= timedelta(seconds=72)


def test_a_retry_after_beyond_a_week_is_taken_as_a_week(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/f.xml", status=503, headers={"Retry-After": "999999999"})
    path = write_config(tmp_path, feeds={"f": feed_server.url("/f.xml")})
    assert poll_now(path, "f", deferred=False).retry_in == timedelta(days=7)


def test_the_newest_publication_time_is_the_latest_in_any_entry_order() -> None:
    entries = parse_drafts(rss([item(3), item(1), item(5)]), now=NOW).entries
    newest = (NOW - timedelta(hours=1)).replace(microsecond=0).timestamp()
    assert newest_published(entries, None) == newest
    assert newest_published(entries, newest + 60) == newest + 60  # what was known stands


def test_first_polls_after_restart_are_spread(tmp_path: Path) -> None:
    feeds = {f"f{i}": f"http://127.0.0.1:9/{i}.xml" for i in range(40)}
    path = write_config(tmp_path, feeds=feeds, interval="10m")
    store = opened(path)
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
