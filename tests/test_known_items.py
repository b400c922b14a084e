"""A changed feed's items whose bytes were in the last recorded body are not parsed again."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import jsonfeed, parse, workstate
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


def tiny(count: int, first: int = 0) -> bytes:
    return rss([{"title": f"t{n}", "guid": f"g{n}"} for n in range(first, first + count)])


@settings(max_examples=40, deadline=None)
@given(count=st.integers(0, 40), cap=st.integers(2, 12), added=st.integers(0, 1))
def test_items_over_the_cap_are_read_as_the_feed_changes_each_once(
        count: int, cap: int, added: int) -> None:
    """Polls of a body of `count` items read at most `cap` each, the first unread ones; an
    unread item never passes for known, so every item is read once, though `added` new items
    land on top of the body at every poll."""
    first, known, read = 0, frozenset[str](), list[str]()
    for _ in range(count // (cap - added) + 2):
        drafts = parse.parse_drafts(tiny(count - first, first), now=NOW, known=known,
                                    max_items=cap)
        got = [str(d.guid) for d in drafts.entries]
        assert len(got) <= cap
        read += got
        in_body = {f"g{n}" for n in range(first, count)}
        assert drafts.unread == len(in_body - set(read))
        known = frozenset(drafts.prints)
        first -= added
    assert len(read) == len(set(read))  # none read twice
    assert set(read) >= {f"g{n}" for n in range(first + added, count)}  # all read


def test_the_cap_keeps_feedparser_from_reading_the_items_over_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = parse._feedparser

    def counting(data: bytes, headers: dict[str, str]) -> object:
        seen.append(data.count(b"<item>"))
        return real(data, headers)

    monkeypatch.setattr(parse, "_feedparser", counting)
    drafts = parse.parse_drafts(tiny(5000), now=NOW, max_items=100)
    assert seen == [100]
    assert [d.guid for d in drafts.entries] == [f"g{n}" for n in range(100)]
    assert (drafts.unread, len(drafts.prints)) == (4900, 100)


@pytest.mark.parametrize("body", [
    # a JSON Feed and a UTF-16 body cannot be cut into items: the first entries are read
    json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "j", "items": [
        {"id": f"g{n}", "title": f"t{n}"} for n in range(30)]}).encode(),
    tiny(30).decode().replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16"),
])
def test_a_body_that_cannot_be_cut_reads_its_first_entries(
        body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    made = []
    entry = jsonfeed._json_entry
    monkeypatch.setattr(jsonfeed, "_json_entry", lambda *a: made.append(1) or entry(*a))
    drafts = parse.parse_drafts(body, now=NOW, max_items=10)
    assert len(made) in (0, 10)  # a JSON Feed's items over the cap are not even read
    assert [d.guid for d in drafts.entries] == [f"g{n}" for n in range(10)]
    assert (drafts.unread, drafts.prints) == (20, ())


def test_a_poll_records_at_most_max_feed_items_and_says_so(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/a.xml", body=tiny(25))
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")},
                        extra_settings="max_feed_items = 10")
    first = cli(path, "poll", "a")
    assert first.returncode == 0, first.stderr
    assert "10 new items" in first.stdout
    assert ("15 items left unread, over max_feed_items (10): they are read at the next polls"
            in first.stderr)
    feed_server.route("/a.xml", body=tiny(26, -1))  # g-1 on top
    second = cli(path, "poll", "a")
    assert second.returncode == 0, second.stderr
    assert "10 new items" in second.stdout and "left unread" in second.stderr
    assert discovered(path) == [f"g{n}" for n in range(10)] + ["g-1"] + [
        f"g{n}" for n in range(10, 19)]


def test_a_cut_body_read_whole_after_all_reads_the_rest_as_it_changes() -> None:
    """A body whose reduced document feedparser cannot read strictly (an undefined entity in
    its first item) is read whole after all (`parse._faithful`): its first entries are the ones
    read, and their prints are kept, so a change of the body reads on past them instead of
    reading those again, and no other item, ever."""
    def body(count: int, first: int = 0) -> bytes:
        return tiny(count - first, first).replace(b"<title>t0</title>", b"<title>t0 &nbsp;</title>")

    drafts = parse.parse_drafts(body(25), now=NOW, max_items=10)
    assert [d.guid for d in drafts.entries] == [f"g{n}" for n in range(10)]
    assert drafts.unread == 15
    read = [str(d.guid) for d in drafts.entries]
    first, known = 0, frozenset(drafts.prints)
    for _ in range(4):
        first -= 1  # one new item on top of each change
        drafts = parse.parse_drafts(body(25, first), now=NOW, known=known, max_items=10)
        read += [str(d.guid) for d in drafts.entries]
        known = frozenset(drafts.prints)
    assert len(read) == len(set(read))  # none read twice
    assert set(read) == {f"g{n}" for n in range(first, 25)}  # all read


def test_items_over_the_cap_of_a_body_that_does_not_change_are_read_at_the_next_polls(
        tmp_path: Path, feed_server: FeedServer) -> None:
    """A feed of 25 items that never changes (an archive), 10 read a poll: the body is fetched
    again without validators until every item is read, then the feed is unchanged as any."""
    feed_server.route("/a.xml", body=tiny(25), etag='"v1"')
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")},
                        extra_settings="max_feed_items = 10")
    said = [cli(path, "poll", "a") for _ in range(4)]
    assert all(r.returncode == 0 for r in said), [r.stderr for r in said]
    assert ["10 new items" in said[0].stdout, "10 new items" in said[1].stdout,
            "5 new items" in said[2].stdout] == [True, True, True]
    assert "left unread" in said[1].stderr and "left unread" not in said[2].stderr
    assert "not_modified" in said[3].stdout
    assert discovered(path) == [f"g{n}" for n in range(25)]
    conditional = [bool(h.get("If-None-Match")) for h in feed_server.requests("/a.xml")]
    assert conditional == [False, False, False, True]  # the last poll: a 304


def dated(first: int, stop: int, *, oldest_first: bool = True) -> bytes:
    """Items g{first} … g{stop - 1}, g{n} dated n minutes after a day ago: oldest first, as some
    archives and ministries list them, or newest first."""
    numbers = range(first, stop) if oldest_first else range(stop - 1, first - 1, -1)
    return rss([{"title": f"t{n}", "guid": f"g{n}",
                 "published": NOW - timedelta(days=1) + timedelta(minutes=n)} for n in numbers])


@settings(max_examples=40, deadline=None)
@given(count=st.integers(0, 40), cap=st.integers(2, 12), added=st.integers(0, 1),
       oldest_first=st.booleans())
def test_items_over_the_cap_are_read_newest_first_whichever_way_the_body_runs(
        count: int, cap: int, added: int, oldest_first: bool) -> None:
    """A dated body read `cap` items a poll gives each poll its newest unread items, at the
    end of a body listed oldest first as at the top of one listed newest first; every item is
    read once, though `added` new items come out at every poll."""
    stop, known, read = count, frozenset[str](), list[str]()
    for _ in range(count // (cap - added) + 2):
        body = dated(0, stop, oldest_first=oldest_first)
        drafts = parse.parse_drafts(body, now=NOW, known=known, max_items=cap)
        got = [str(d.guid) for d in drafts.entries]
        numbers = range(stop) if oldest_first else range(stop - 1, -1, -1)
        unread = [f"g{n}" for n in numbers if f"g{n}" not in read]  # in the body's order
        assert got == (unread[-cap:] if oldest_first else unread[:cap])
        assert drafts.unread == len(unread) - len(got)
        read += got
        known = frozenset(drafts.prints)
        stop += added
    assert len(read) == len(set(read))  # none read twice
    assert set(read) == {f"g{n}" for n in range(stop - added)}  # all read


def test_an_oldest_first_body_read_whole_after_all_gives_its_last_entries() -> None:
    """Its newest item holds an entity feedparser's strict reading refuses, so the whole body
    is read after all (`parse._faithful`): its last entries are the ones read, and the rest are
    read at the next polls, none twice."""
    def body(stop: int) -> bytes:
        return dated(0, stop).replace(b"<title>t24</title>", b"<title>t24 &nbsp;</title>")

    drafts = parse.parse_drafts(body(25), now=NOW, max_items=10)
    assert [d.guid for d in drafts.entries] == [f"g{n}" for n in range(15, 25)]
    assert drafts.unread == 15
    read, known = [str(d.guid) for d in drafts.entries], frozenset(drafts.prints)
    for _ in range(2):
        drafts = parse.parse_drafts(body(25), now=NOW, known=known, max_items=10)
        read += [str(d.guid) for d in drafts.entries]
        known = frozenset(drafts.prints)
    assert read == [f"g{n}" for n in [*range(15, 25), *range(5, 15), *range(5)]]


def test_a_poll_of_an_oldest_first_feed_over_the_cap_records_its_newest_items_first(
        tmp_path: Path, feed_server: FeedServer) -> None:
    """An archive of 25 items listed oldest first, 10 read a poll: the first poll records the
    10 newest, an item added at the end is read at the next poll, and once every item is read
    the feed is unchanged as any (a 304)."""
    feed_server.route("/a.xml", body=dated(0, 25), etag='"v1"')
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")},
                        extra_settings="max_feed_items = 10")
    first = cli(path, "poll", "a")
    assert first.returncode == 0, first.stderr
    assert "10 new items" in first.stdout and "15 items left unread" in first.stderr
    assert discovered(path) == [f"g{n}" for n in range(15, 25)]
    feed_server.route("/a.xml", body=dated(0, 26), etag='"v2"')  # g25 at the end
    said = [cli(path, "poll", "a") for _ in range(3)]
    assert all(r.returncode == 0 for r in said), [r.stderr for r in said]
    assert ["10 new items" in said[0].stdout, "6 new items" in said[1].stdout] == [True, True]
    assert "not_modified" in said[2].stdout
    assert discovered(path) == [f"g{n}" for n in [*range(15, 25), *range(6, 15), 25, *range(6)]]
    conditional = [bool(h.get("If-None-Match")) for h in feed_server.requests("/a.xml")]
    assert conditional == [False, False, False, True]  # the last poll: a 304
