"""Projection state kept by the store: folded in the append's transaction, rebuilt from scratch."""

from __future__ import annotations

import itertools
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import events as ev
from monitor.projections import all_projections
from monitor.store import EventStore, NewEvent, Recorded


class StreamTally:
    """Per stream: how many events, which types in order, the last position."""

    name = "stream_tally"

    def key(self, record: Recorded) -> str | None:
        return record.stream

    def apply(self, state: dict[str, Any] | None, record: Recorded) -> dict[str, Any]:
        state = state or {"count": 0, "types": []}
        return {
            "count": state["count"] + 1,
            "types": [*state["types"], record.type],
            "last": record.position,
        }


class FeedsPerItem:
    """Only item events: the feeds an item was seen in, first sighting first."""

    name = "feeds_per_item"

    def key(self, record: Recorded) -> str | None:
        return record.data["item_id"] if record.stream.startswith("item:") else None

    def apply(self, state: dict[str, Any] | None, record: Recorded) -> dict[str, Any]:
        feeds = list((state or {}).get("feeds", []))
        if record.data["feed_id"] not in feeds:
            feeds.append(record.data["feed_id"])
        return {"feeds": feeds}


PROJECTIONS = (StreamTally(), FeedsPerItem())


def make_event(kind: int, n: int) -> ev.Event:
    if kind == 0:
        return ev.ItemSighted(item_id=f"i{n % 3}", feed_id=f"f{n % 4}")
    if kind == 1:
        return ev.ChannelDisabled(channel_id=f"c{n % 2}", reason="gone")
    return ev.FeedRecovered(feed_id=f"f{n % 4}", url="https://e.org/f", after="timeout")


def all_states(store: EventStore) -> dict[str, dict[str, dict[str, Any]]]:
    return {p.name: store.states(p.name) for p in PROJECTIONS}


def append_all(store: EventStore, batches: list[list[tuple[int, int, bool]]]) -> None:
    for batch in batches:
        store.append(
            [
                NewEvent(make_event(kind, n), dedupe_key=f"d{n}" if dedupe else None)
                for kind, n, dedupe in batch
            ]
        )


batches_strategy = st.lists(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 20), st.booleans()), min_size=1, max_size=8
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=batches_strategy)
def test_rebuilt_projections_equal_incremental_ones(
    batches: list[list[tuple[int, int, bool]]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = EventStore.open(f"sqlite:///{Path(tmp) / 'e.db'}", projections=PROJECTIONS)
        append_all(store, batches)
        incremental = all_states(store)
        replayed = store.rebuild()
        assert replayed == sum(1 for _ in store.read())
        assert all_states(store) == incremental
        store.close()


def test_rebuild_equals_incremental_on_each_database(db_url: str) -> None:
    store = EventStore.open(db_url, projections=PROJECTIONS)
    batches = [[(n % 3, n, n % 5 == 0) for n in range(start, start + 7)] for start in (0, 7, 3)]
    append_all(store, batches)
    incremental = all_states(store)
    assert incremental["stream_tally"]["item:i0"]["count"] >= 1
    progress: list[int] = []
    assert store.rebuild(progress=progress.append, batch=4) == 20  # n=5 twice: deduped
    assert progress[-1] == 20 and progress == sorted(progress)
    assert all_states(store) == incremental
    store.close()


def test_state_follows_each_append_and_skips_events_without_a_key(db_url: str) -> None:
    store = EventStore.open(db_url, projections=PROJECTIONS)
    store.append([NewEvent(make_event(0, 0)), NewEvent(make_event(1, 0))])
    store.append([NewEvent(make_event(0, 4))])  # item i1 from f0
    store.append([NewEvent(make_event(0, 3))])  # item i0 from f3
    assert store.state("feeds_per_item", "i0") == {"feeds": ["f0", "f3"]}
    assert store.state("feeds_per_item", "c0") is None
    assert store.state("stream_tally", "channel:c0") == {
        "count": 1,
        "types": ["ChannelDisabled"],
        "last": 2,
    }
    assert set(store.states("feeds_per_item")) == {"i0", "i1"}
    store.close()


def test_a_transaction_sees_its_own_projection_writes_and_loses_them_on_rollback(
    db_url: str,
) -> None:
    store = EventStore.open(db_url, projections=PROJECTIONS)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.append([NewEvent(make_event(0, 0))])
        assert tx.state("feeds_per_item", "i0") == {"feeds": ["f0"]}
        raise RuntimeError("abandon the poll")
    assert store.state("feeds_per_item", "i0") is None
    assert store.states("stream_tally") == {}
    store.close()


def test_rebuild_replaces_state_left_by_an_older_fold(db_url: str) -> None:
    EventStore.open(db_url, projections=[StreamTally()]).append([NewEvent(make_event(1, 0))])

    class TallyV2(StreamTally):
        def apply(self, state: dict[str, Any] | None, record: Recorded) -> dict[str, Any]:
            return {"count": (state or {"count": 0})["count"] + 1}

    store = EventStore.open(db_url, projections=[TallyV2()])
    assert store.state("stream_tally", "channel:c0") == {
        "count": 1,
        "types": ["ChannelDisabled"],
        "last": 1,
    }
    assert store.rebuild() == 1
    assert store.state("stream_tally", "channel:c0") == {"count": 1}
    store.close()


# --- the real projections over a realistic log -----------------------------------------------

AT = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
HIT = {"group": 0, "term": "Noetra", "field": "title", "start": 0, "end": 6, "text": "Noetra"}


def item(n: int, feed: str, publisher: str) -> ev.ItemDiscovered:
    return ev.ItemDiscovered(item_id=f"i{n}", feed_id=feed, url=f"https://{publisher}/{n}",
                             guid=f"g{n}", title=f"Noetra story {n}", summary="",
                             published_at=AT + timedelta(hours=n), publisher=publisher)


def matched(n: int, publisher: str, kind: str = "progress") -> ev.MilestoneMatched:
    return ev.MilestoneMatched(milestone_id="training-start", item_id=f"i{n}", kind=kind,
                               rule=f"training-start:{kind}", hits=(HIT,), publisher=publisher,
                               authoritative=publisher == "nedo.go.jp",
                               published_at=AT + timedelta(hours=n))


def changed(old: str, new: str, **extra: Any) -> ev.MilestoneStatusChanged:
    return ev.MilestoneStatusChanged(milestone_id="training-start", from_status=old,
                                     to_status=new, reason=f"{old} to {new}", **extra)


def queued(alert: str, channel: str, to: str) -> ev.AlertQueued:
    return ev.AlertQueued(alert_id=alert, channel_id=channel, milestone_id="training-start",
                          subject=f"training-start — {to}", payload={"to": to})


# One poll, transaction or command per batch, in the order the daemon would write them.
REALISTIC: list[list[ev.Event]] = [
    [changed("pending", "reported", source="https://www.meti.go.jp/guess",
             effective_at=AT - timedelta(days=30))],  # a baseline
    [ev.MilestoneSourceCorrected(milestone_id="training-start", status="reported",
                                 source="https://www.meti.go.jp/real",
                                 previous_source="https://www.meti.go.jp/guess", reason="fixed")],
    [item(1, "nhk", "nhk.or.jp"), matched(1, "nhk.or.jp"), item(2, "itm", "itmedia.co.jp")],
    [ev.ItemSighted(item_id="i1", feed_id="itm"), item(3, "itm", "itmedia.co.jp"),
     matched(3, "itmedia.co.jp"), changed("reported", "confirmed", evidence=("i1", "i3")),
     queued("a1", "team", "confirmed"), queued("a2", "hook", "confirmed"),
     queued("a3", "old-hook", "confirmed")],
    [ev.AlertAttemptFailed(alert_id="a1", channel_id="team", attempt=1, kind="timeout",
                           message="no answer", retry_at=AT + timedelta(minutes=5),
                           recipients={"ops@e.org": "451 later"})],
    [ev.AlertDelivered(alert_id="a2", channel_id="hook", attempt=1, response="200 OK")],
    [ev.AlertAbandoned(alert_id="a3", channel_id="old-hook", attempt=1, kind="gone",
                       message="410 Gone"),
     ev.ChannelDisabled(channel_id="old-hook", reason="410 gone")],
    [ev.AlertDelivered(alert_id="a1", channel_id="team", attempt=2, response="250 ok",
                       recipients={"ops@e.org": "250 ok"})],
    [ev.FeedFailed(feed_id="nhk", url="https://nhk.or.jp/rss", kind="http_5xx",
                   message="503", next_poll_at=AT + timedelta(minutes=10))],
    [ev.FeedMoved(feed_id="itm", old_url="http://itm/rss", new_url="https://itm/rss",
                  status=301)],
    [ev.FeedRecovered(feed_id="nhk", url="https://nhk.or.jp/rss", after="http_5xx"),
     ev.FeedStale(feed_id="itm", url="https://itm/rss", newest_item_at=AT,
                  stale_after_seconds=86400)],
    [item(4, "nhk", "nhk.or.jp"), matched(4, "nhk.or.jp", "setback"),
     changed("confirmed", "at_risk", source="https://www.meti.go.jp/cut"),
     queued("a4", "team", "at_risk")],
    [ev.ItemRevised(item_id="i2", feed_id="itm", title="Noetra story 2, delayed", summary="",
                    published_at=AT, publisher="itmedia.co.jp", previous_title="Noetra story 2",
                    revision=1),
     matched(2, "itmedia.co.jp", "setback")],  # an edited item, evidence again
    [ev.AlertAbandoned(alert_id="a4", channel_id="team", attempt=1, kind="recipients_refused",
                       message="550 no such user")],
    [ev.AlertRequeued(alert_id="a4", channel_id="team", operator="kim", reason="fixed")],
    [ev.FeedFailed(feed_id="gone-feed", url="https://e.org/x", kind="gone", message="410",
                   next_poll_at=None)],
]


def real_states(store: EventStore) -> dict[str, dict[str, dict[str, Any]]]:
    return {p.name: store.states(p.name) for p in all_projections()}


def test_the_real_projections_rebuild_to_what_the_appends_kept(db_url: str) -> None:
    store = EventStore.open(db_url, projections=all_projections())
    for batch in REALISTIC:
        store.append([NewEvent(e) for e in batch])
    incremental = real_states(store)
    # the sequence reaches every projection and every outcome it is meant to cover
    outbox = incremental["outbox"]
    assert {a: row["status"] for a, row in outbox.items()} == {
        "a1": "delivered", "a2": "delivered", "a3": "abandoned", "a4": "pending"}
    assert incremental["channels"]["old-hook"]["disabled"] is True
    assert {f: row["health"] for f, row in incremental["feeds"].items()} == {
        "nhk": "ok", "itm": "stale", "gone-feed": "gone"}
    milestone = incremental["milestones"]["training-start"]
    assert (milestone["status"], milestone["source"], milestone["changes"]) == (
        "at_risk", "https://www.meti.go.jp/cut", 3)
    assert incremental["items"]["i1"]["feeds"] == ["nhk", "itm"]
    assert incremental["items"]["i4"]["terms"]["training-start"][0]["term"] == "Noetra"
    revised = incremental["items"]["i2"]
    assert (revised["title"], revised["discovered_title"], revised["revisions"]) == (
        "Noetra story 2, delayed", "Noetra story 2", 1)
    total = sum(len(b) for b in REALISTIC)
    assert store.rebuild(batch=4) == total  # pages that cut through a poll's batch
    assert real_states(store) == incremental
    store.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.sets(st.integers(1, sum(len(b) for b in REALISTIC) - 1)),
       page=st.integers(1, 40))
def test_the_real_projections_do_not_depend_on_how_the_log_was_batched(
        cuts: set[int], page: int) -> None:
    flat = [e for batch in REALISTIC for e in batch]
    bounds = [0, *sorted(cuts), len(flat)]
    with tempfile.TemporaryDirectory() as tmp:
        store = EventStore.open(f"sqlite:///{Path(tmp) / 'e.db'}", projections=all_projections())
        for start, end in itertools.pairwise(bounds):
            store.append([NewEvent(e) for e in flat[start:end]])
        incremental = real_states(store)
        store.rebuild(batch=page)
        rebuilt = real_states(store)
        store.close()
    assert rebuilt == incremental
    assert set(rebuilt) == {"milestones", "items", "outbox", "feeds", "channels"}
