"""The read models kept beside the log: pure folds the store persists in the same transaction.

Each projection names the state row an event touches (`key`) and folds the event into that
row's JSON state (`apply`). `monitor rebuild` replays the whole log through the same folds, so
rebuilt state always equals incrementally maintained state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from monitor import milestones, outbox
from monitor.eventbase import Event
from monitor.events import (
    AlertAbandoned,
    AlertAttemptFailed,
    AlertDelivered,
    AlertQueued,
    AlertRequeued,
    ChannelDisabled,
    ChannelEnabled,
    FeedFailed,
    FeedMoved,
    FeedRecovered,
    FeedStale,
    ItemDiscovered,
    ItemRevised,
    ItemSighted,
    MilestoneMatched,
    MilestoneSourceCorrected,
    MilestoneStatusChanged,
)


class RecordLike(Protocol):
    """What a fold needs of a recorded event (monitor.store.Recorded satisfies it)."""

    @property
    def position(self) -> int: ...
    @property
    def event(self) -> Event: ...
    @property
    def recorded_at(self) -> Any: ...


class Milestones:
    """milestone id -> status, since, evidence, cited source: `MilestoneState.to_json()` of the fold
    `milestones.apply`, plus the position and the number of changes.

    The fold works on the JSON row itself: decoding every evidence entry on each match would
    cost in proportion to the evidence kept (tests/test_milestones.py holds the two equal).
    """

    name = "milestones"

    def key(self, record: RecordLike) -> str | None:
        e = record.event
        kinds = MilestoneMatched | MilestoneStatusChanged | MilestoneSourceCorrected
        return e.milestone_id if isinstance(e, kinds) else None

    def apply(self, state: dict[str, Any] | None, record: RecordLike) -> dict[str, Any]:
        e = record.event
        row = dict(state or milestones.MilestoneState().to_json())
        if isinstance(e, MilestoneMatched):
            new = milestones.Evidence.of(e, record.recorded_at).to_json()
            kept = row.get("evidence", [])[-(milestones.MAX_EVIDENCE - 1) :]
            row["evidence"] = [*kept, new]
        elif isinstance(e, MilestoneStatusChanged):
            row["status"] = e.to_status
            row["since"] = milestones.since_of(e, record.recorded_at).isoformat()
            row["source"] = e.source
        elif isinstance(e, MilestoneSourceCorrected) and e.status == row["status"]:
            row["source"] = e.source
        row["position"] = record.position
        row["changes"] = row.get("changes", 0) + isinstance(e, MilestoneStatusChanged)
        return row


class Items:
    """item id -> what alerts and corroboration need: title (its latest revision's), url,
    publisher, feeds, revisions, and the terms each milestone matched in it (so an alert can
    explain its evidence); a revised item keeps the title it was discovered with, which tells
    its article apart (`items._same_article`)."""

    name = "items"

    def key(self, record: RecordLike) -> str | None:
        e = record.event
        kinds = ItemDiscovered | ItemSighted | ItemRevised | MilestoneMatched
        return e.item_id if isinstance(e, kinds) else None

    def apply(self, state: dict[str, Any] | None, record: RecordLike) -> dict[str, Any]:
        e = record.event
        row = dict(state or {})
        if isinstance(e, ItemDiscovered):
            row.update(
                title=e.title,
                url=e.url,
                publisher=e.publisher,
                position=record.position,
                published_at=e.published_at.isoformat() if e.published_at else None,
                feeds=[e.feed_id],
            )
        elif isinstance(e, ItemSighted) and e.feed_id not in row.get("feeds", []):
            row["feeds"] = [*row.get("feeds", []), e.feed_id]
        elif isinstance(e, ItemRevised):  # alerts show the text as it reads now
            row.setdefault("discovered_title", row.get("title"))
            row.update(title=e.title, revisions=e.revision)
        elif isinstance(e, MilestoneMatched):
            terms = [{k: h.get(k) for k in ("group", "term", "field", "text")} for h in e.hits]
            row["terms"] = {**row.get("terms", {}), e.milestone_id: terms}
        return row


class Outbox:
    """alert id -> pending / delivered / abandoned, attempts, next attempt, recipients."""

    name = "outbox"
    _types = (AlertQueued, AlertDelivered, AlertAttemptFailed, AlertAbandoned, AlertRequeued)

    def key(self, record: RecordLike) -> str | None:
        e = record.event
        return e.alert_id if isinstance(e, self._types) else None

    def apply(self, state: dict[str, Any] | None, record: RecordLike) -> dict[str, Any]:
        return outbox.fold(state, record.event, record.recorded_at, record.position)


class Feeds:
    """feed id -> health (ok, failing, stale), since when, current URL."""

    name = "feeds"

    def key(self, record: RecordLike) -> str | None:
        e = record.event
        kinds = FeedFailed | FeedRecovered | FeedMoved | FeedStale
        return e.feed_id if isinstance(e, kinds) else None

    def apply(self, state: dict[str, Any] | None, record: RecordLike) -> dict[str, Any]:
        e, row = record.event, dict(state or {"health": "ok"})
        since = record.recorded_at.isoformat()
        if isinstance(e, FeedFailed):
            row.update(
                health="gone" if e.kind == "gone" else "failing",
                kind=e.kind,
                message=e.message,
                since=since,
            )
        elif isinstance(e, FeedStale):
            row.update(
                health="stale",
                kind="stale",
                since=since,
                message=f"newest item from {e.newest_item_at}",
            )
        elif isinstance(e, FeedRecovered):
            row.update(health="ok", kind=None, message=None, since=since)
        elif isinstance(e, FeedMoved):
            row["url"] = e.new_url
        return row


class Channels:
    """channel id -> disabled or not, why, since when, and the URL (its sha256) that was gone."""

    name = "channels"

    def key(self, record: RecordLike) -> str | None:
        e = record.event
        return e.channel_id if isinstance(e, ChannelDisabled | ChannelEnabled) else None

    def apply(self, state: dict[str, Any] | None, record: RecordLike) -> dict[str, Any]:
        e = record.event
        since = record.recorded_at.isoformat()
        if isinstance(e, ChannelEnabled):
            return {"disabled": False, "reason": e.reason, "since": since}
        assert isinstance(e, ChannelDisabled)
        return {"disabled": True, "reason": e.reason, "since": since, "url_sha256": e.url_sha256}


def all_projections() -> Sequence[Any]:
    """The projections the daemon and the commands open the store with."""
    return (Milestones(), Items(), Outbox(), Feeds(), Channels())
