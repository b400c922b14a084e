"""Projection state kept by the store: folded in the append's transaction, rebuilt from scratch."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import events as ev
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
