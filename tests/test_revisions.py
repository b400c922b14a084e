"""Edited items: a known item whose title or summary its own feed changed is recorded as
ItemRevised and matched again, once per kind of evidence; nothing else is a revision."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor import revisions
from monitor.entries import Entry
from monitor.evaluate import MilestoneHit
from monitor.review import summary
from monitor.runtime import open_store
from monitor.store import EventStore
from tests.conftest import SECRET
from tests.feedserver import FeedServer
from tests.kit import cli, load, rss, run_once, webhook_channel, write_config
from tests.receivers import WebhookReceiver

NOW = datetime.now(UTC)
STARTS = "Noetra starts training its first model"
DELAYED = "Noetra postpones training of its first model"


def story(title: str, description: str = "", guid: str = "noetra-1") -> dict[str, object]:
    return {"title": title, "link": "https://www.nikkei.com/a/1", "guid": guid,
            "description": description, "published": NOW - timedelta(hours=1)}


def entry(title: str, summary: str = "") -> Entry:
    return Entry(guid="g", link=None, title=title, summary=summary, content="",
                 published_at=None, language=None, source_url=None, source_title=None)


def opened(path: Path) -> EventStore:
    return open_store(load(path))


def item_events(store: EventStore) -> list[tuple[str, str]]:
    return [(r.type, r.data.get("title", "")) for r in store.read() if r.stream.startswith("item:")]


# --- the pure rules -----------------------------------------------------------------------


def test_the_last_text_is_the_latest_revisions_and_counts_them() -> None:
    history = [
        ("ItemDiscovered", {"title": "a", "summary": "s", "publisher": "nikkei.com"}),
        ("ItemSighted", {"feed_id": "other"}),
        ("ItemRevised", {"title": "b", "summary": "t"}),
        ("ItemRevised", {"title": "c", "summary": "u"}),
    ]
    seen = frozenset(revisions.text_key(t, u) for t, u in (("a", "s"), ("b", "t"), ("c", "u")))
    assert revisions.last_text(history) == revisions.LastText("c", "u", "nikkei.com", 2, seen)
    assert revisions.last_text(history[1:]) is None  # no discovery, nothing to revise


@given(st.text(max_size=40), st.text(max_size=40), st.sampled_from([str.upper, str.lower]),
       st.sampled_from(["", " ", "\n\t "]))
def test_case_and_white_space_are_not_a_revision(
        title: str, text: str, case: object, pad: str) -> None:
    last = revisions.LastText(title, text, None, 0)
    assert callable(case)
    same = entry(pad + case(title) + pad, text.replace(" ", "  ") + pad)
    assert revisions.revised("f", "i", same, last) is None


def test_a_changed_title_or_summary_is_the_next_revision() -> None:
    last = revisions.LastText(STARTS, "summary", "nikkei.com", 3)
    by_title = revisions.revised("f", "i", entry(DELAYED, "summary"), last)
    assert by_title is not None
    assert (by_title.revision, by_title.previous_title, by_title.publisher) == (4, STARTS,
                                                                                 "nikkei.com")
    by_summary = revisions.revised("f", "i", entry(STARTS, "now postponed"), last)
    assert by_summary is not None and by_summary.summary == "now postponed"
    assert revisions.dedupe_key(by_title) != revisions.dedupe_key(by_summary)


def test_no_revision_is_recorded_past_the_cap() -> None:
    last = revisions.LastText(STARTS, "", None, revisions.MAX_REVISIONS)
    assert revisions.revised("f", "i", entry(DELAYED), last) is None
    below = revisions.LastText(STARTS, "", None, revisions.MAX_REVISIONS - 1)
    assert revisions.revised("f", "i", entry(DELAYED), below) is not None


def test_only_evidence_of_a_new_kind_is_fresh() -> None:
    hit = MilestoneHit("m", "setback", match=None)  # type: ignore[arg-type]
    other = MilestoneHit("n", "progress", match=None)  # type: ignore[arg-type]
    assert revisions.fresh([hit, other], {("m", "progress"), ("n", "progress")}) == [hit]
    assert revisions.fresh([hit], {("m", "setback")}) == []


# --- polled end to end --------------------------------------------------------------------


def test_a_headline_rewritten_as_a_setback_puts_the_milestone_at_risk_and_alerts(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver, db_url: str) -> None:
    env = {"MONITOR_WEBHOOK_SECRET": SECRET}
    feed_server.route("/n.xml", body=rss([story(STARTS)]))
    path = write_config(tmp_path, feeds={"nikkei": feed_server.url("/n.xml")}, db_url=db_url,
                        channels=webhook_channel(receiver.url()), notify=["hook"])
    run_once(path, env)
    feed_server.route("/n.xml", body=rss([story(DELAYED)]))
    run_once(path, env)
    run_once(path, env)  # the same text again: nothing more
    store = open_store(load(path, env))
    try:
        assert item_events(store) == [("ItemDiscovered", STARTS), ("ItemRevised", DELAYED)]
        [revised] = store.read(types=("ItemRevised",))
        assert (revised.data["revision"], revised.data["previous_title"]) == (1, STARTS)
        assert revised.data["publisher"] == "nikkei.com"
        matches = [(r.data["kind"], r.dedupe_key) for r in store.read(types=("MilestoneMatched",))]
        iid = revised.data["item_id"]
        assert matches == [("progress", f"match:training-start:{iid}"),
                           ("setback", f"match:training-start:{iid}:setback")]
        changes = list(store.read(types=("MilestoneStatusChanged",)))
        assert [c.data["to_status"] for c in changes] == ["reported", "at_risk"]
        assert changes[-1].meta["causation"] == revised.position
        assert store.state("items", iid)["title"] == DELAYED  # alerts show the text as it reads
    finally:
        store.close()
    hooks = [orjson.loads(h.body) for h in receiver.received if h.verified]
    assert [h["data"]["to"] for h in hooks] == ["reported", "at_risk"]
    assert hooks[-1]["data"]["evidence"][0]["title"] == DELAYED


def test_a_text_the_item_had_before_is_not_a_revision(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/n.xml", body=rss([story(STARTS)]))
    path = write_config(tmp_path, feeds={"nikkei": feed_server.url("/n.xml")})
    run_once(path)
    for title in (DELAYED, STARTS, DELAYED, STARTS):  # a feed flipping between two versions
        feed_server.route("/n.xml", body=rss([story(title)]))
        run_once(path)
    store = opened(path)
    try:
        assert item_events(store) == [("ItemDiscovered", STARTS), ("ItemRevised", DELAYED)]
        assert [r.data["kind"] for r in store.read(types=("MilestoneMatched",))] == [
            "progress", "setback"]
    finally:
        store.close()


def test_a_revision_gives_only_evidence_of_a_kind_the_item_has_not_given(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/n.xml", body=rss([story(STARTS)]))
    path = write_config(tmp_path, feeds={"nikkei": feed_server.url("/n.xml")})
    run_once(path)
    revised_titles = (STARTS + " in Tokyo", DELAYED, DELAYED + " again")
    for title in revised_titles:
        feed_server.route("/n.xml", body=rss([story(title)]))
        run_once(path)
    store = opened(path)
    try:
        assert [t for _, t in item_events(store)] == [STARTS, *revised_titles]
        assert [r.data["kind"] for r in store.read(types=("MilestoneMatched",))] == [
            "progress", "setback"]
    finally:
        store.close()


def test_only_the_feed_that_discovered_an_item_revises_it(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/n.xml", body=rss([story(STARTS, "long summary of the article")]))
    feed_server.route("/g.xml", body=rss([story(DELAYED, "short")]))
    run_once(write_config(tmp_path, feeds={"nikkei": feed_server.url("/n.xml")}))
    path = write_config(tmp_path, feeds={"nikkei": feed_server.url("/n.xml"),
                                         "aggregator": feed_server.url("/g.xml")})
    run_once(path)  # the aggregator's shorter text is a sighting, not an edit
    feed_server.route("/g.xml", body=rss([story(DELAYED + " (updated)", "shorter")]))
    run_once(path)
    store = opened(path)
    try:
        assert [t for t, _ in item_events(store)] == ["ItemDiscovered", "ItemSighted"]
    finally:
        store.close()


def test_white_space_and_a_new_date_do_not_revise_an_item(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/n.xml", body=rss([story(STARTS, "a summary")]))
    path = write_config(tmp_path, feeds={"nikkei": feed_server.url("/n.xml")})
    run_once(path)
    moved = {**story("  " + STARTS.upper(), "a   summary "), "published": NOW}
    feed_server.route("/n.xml", body=rss([moved]))
    run_once(path)
    store = opened(path)
    try:
        assert [t for t, _ in item_events(store)] == ["ItemDiscovered"]
    finally:
        store.close()


def test_the_last_revision_recorded_says_so_in_the_log(
        tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(revisions, "MAX_REVISIONS", 2)
    feed_server.route("/n.xml", body=rss([story("Version 0")]))
    path = write_config(tmp_path, feeds={"nikkei": feed_server.url("/n.xml")})
    run_once(path)
    with caplog.at_level(logging.WARNING, logger="monitor.poll"):
        for n in (1, 2, 3):
            feed_server.route("/n.xml", body=rss([story(f"Version {n}")]))
            run_once(path)
    store = opened(path)
    try:
        assert [t for _, t in item_events(store)] == ["Version 0", "Version 1", "Version 2"]
    finally:
        store.close()
    warned = [r.getMessage() for r in caplog.records if "revised" in r.getMessage()]
    assert len(warned) == 1 and "revised 2 times; later revisions are not recorded" in warned[0]


def test_backtest_replays_revisions_as_the_poll_decided_them(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/n.xml", body=rss([story(STARTS)]))
    path = write_config(tmp_path, feeds={"nikkei": feed_server.url("/n.xml")})
    run_once(path)
    for title in (DELAYED, STARTS):
        feed_server.route("/n.xml", body=rss([story(title)]))
        run_once(path)
    done = cli(path, "backtest", "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["to"], r["item_title"]) for r in rows] == [("reported", STARTS),
                                                          ("at_risk", DELAYED)]


def test_the_log_shows_a_revision_with_the_title_it_replaced(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/n.xml", body=rss([story(STARTS)]))
    path = write_config(tmp_path, feeds={"nikkei": feed_server.url("/n.xml")})
    run_once(path)
    feed_server.route("/n.xml", body=rss([story(DELAYED)]))
    run_once(path)
    store = opened(path)
    try:
        [revised] = store.read(types=("ItemRevised",))
        assert summary(revised) == f"revision 1: {DELAYED} (was: {STARTS})"
    finally:
        store.close()
    feed_server.route("/n.xml", body=rss([story(DELAYED + " until 2027")]))
    shown = cli(path, "poll", "nikkei")
    assert shown.returncode == 0, shown.stderr
    assert "0 new items, 0 seen elsewhere, 1 revised, 0 transitions" in shown.stdout


def test_a_revised_title_does_not_part_a_short_guid_from_its_article(
        tmp_path: Path, feed_server: FeedServer) -> None:
    """Where no publisher or link tells a short GUID's article apart, its title does: an
    aggregator carrying the title the item was discovered with still carries that item."""
    first = {"title": STARTS, "link": "http://localhost/a/1", "guid": "1"}  # no publisher
    feed_server.route("/a.xml", body=rss([first]))
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")})
    run_once(path)
    feed_server.route("/a.xml", body=rss([{**first, "title": STARTS + " in Tokyo"}]))
    run_once(path)
    feed_server.route("/c.xml", body=rss([{"title": STARTS, "guid": "1"}]))
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml"),
                                         "c": feed_server.url("/c.xml")})
    run_once(path)
    store = opened(path)
    try:
        assert [t for t, _ in item_events(store)] == [
            "ItemDiscovered", "ItemRevised", "ItemSighted"]
    finally:
        store.close()
