"""The event catalog: the facts the log records, each a frozen, past-tense event.

A breaking change to a payload bumps the class's VERSION and registers an upcaster
(`monitor.upcast`). What every event shares (stream, payload encoding) is `monitor.eventbase`.
Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from monitor.eventbase import Event


class Status(StrEnum):
    """The states a milestone moves through."""

    PENDING = "pending"
    REPORTED = "reported"
    CONFIRMED = "confirmed"
    AT_RISK = "at_risk"
    OVERDUE = "overdue"


# --- configuration -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigApplied(Event):
    """The daemon started with, or reloaded, a configuration that differs from the last one."""

    config_sha256: str
    feeds_added: tuple[str, ...] = ()
    feeds_removed: tuple[str, ...] = ()
    feeds_changed: tuple[str, ...] = ()
    milestones_added: tuple[str, ...] = ()
    milestones_removed: tuple[str, ...] = ()
    milestones_changed: tuple[str, ...] = ()
    channels_added: tuple[str, ...] = ()
    channels_removed: tuple[str, ...] = ()
    channels_changed: tuple[str, ...] = ()
    # kind ("feeds", "milestones", "channels", "settings") -> id -> sha256 of its settings,
    # so the next start can tell what changed without the old file
    fingerprints: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def stream(self) -> str:
        return "config:main"


# --- feeds ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedFailed(Event):
    """A feed turned bad (recorded on the transition only)."""

    feed_id: str
    url: str
    kind: str
    message: str
    next_poll_at: datetime | None = None

    STREAM = ("feed", "feed_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedRecovered(Event):
    """A failing or stale feed works again."""

    feed_id: str
    url: str
    after: str  # the kind it recovered from: a FeedFailed kind, or "stale"

    STREAM = ("feed", "feed_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedMoved(Event):
    """A permanent redirect (301/308); polling follows the new URL."""

    feed_id: str
    old_url: str
    new_url: str
    status: int

    STREAM = ("feed", "feed_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedStale(Event):
    """A feed answers, but its newest item is older than its `stale_after`."""

    feed_id: str
    url: str
    newest_item_at: datetime | None
    stale_after_seconds: int

    STREAM = ("feed", "feed_id")


# --- items ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemDiscovered(Event):
    """A new item, seen for the first time in any feed."""

    item_id: str
    feed_id: str
    url: str | None
    guid: str | None
    title: str
    summary: str
    published_at: datetime | None
    publisher: str | None
    language: str | None = None
    content: str = ""

    STREAM = ("item", "item_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemSighted(Event):
    """An already known item appeared in another feed."""

    item_id: str
    feed_id: str

    STREAM = ("item", "item_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemRevised(Event):
    """A known item's title or summary changed in the feed that first carried it: the new
    text (capped as ItemDiscovered's), the title it replaces, which revision this is, and the
    publisher its discovery named."""

    item_id: str
    feed_id: str
    title: str
    summary: str
    published_at: datetime | None
    publisher: str | None
    previous_title: str
    revision: int
    content: str = ""

    STREAM = ("item", "item_id")


# --- milestones ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MilestoneMatched(Event):
    """An item satisfies one of a milestone's rules; `hits` explain why."""

    milestone_id: str
    item_id: str
    kind: str  # "progress" or "setback"
    rule: str
    hits: tuple[Mapping[str, Any], ...]  # {group, term, field, start, end, text}
    publisher: str | None
    authoritative: bool
    published_at: datetime | None = None

    STREAM = ("milestone", "milestone_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class MilestoneStatusChanged(Event):
    """A milestone moved from one state to another."""

    milestone_id: str
    from_status: str
    to_status: str
    reason: str
    evidence: tuple[str, ...] = ()  # item ids, oldest first
    source: str | None = None  # for a baseline or an operator's note
    effective_at: datetime | None = None  # when it happened in the world, if not now

    STREAM = ("milestone", "milestone_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class MilestoneSourceCorrected(Event):
    """The source cited for a milestone's declared status was replaced; the status stays."""

    milestone_id: str
    status: str  # the declared status whose source this corrects
    source: str
    previous_source: str | None
    reason: str

    STREAM = ("milestone", "milestone_id")


# --- alerts --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertQueued(Event):
    """One channel is to be told about one transition."""

    alert_id: str
    channel_id: str
    milestone_id: str
    subject: str
    payload: Mapping[str, Any]
    test: bool = False

    STREAM = ("alert", "alert_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertDelivered(Event):
    """The channel accepted the alert."""

    alert_id: str
    channel_id: str
    attempt: int
    response: str
    recipients: Mapping[str, str] = field(default_factory=dict)  # email: address -> reply

    STREAM = ("alert", "alert_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertAttemptFailed(Event):
    """One attempt failed; another follows at `retry_at`."""

    alert_id: str
    channel_id: str
    attempt: int
    kind: str
    message: str
    retry_at: datetime
    recipients: Mapping[str, str] = field(default_factory=dict)
    response: str | None = None  # a webhook's answer: status line and body (capped), one line

    STREAM = ("alert", "alert_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertAbandoned(Event):
    """No further attempt will be made unless an operator re-queues the alert."""

    alert_id: str
    channel_id: str
    attempt: int
    kind: str
    message: str
    recipients: Mapping[str, str] = field(default_factory=dict)
    response: str | None = None  # a webhook's answer: status line and body (capped), one line

    STREAM = ("alert", "alert_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRequeued(Event):
    """An operator asked for an abandoned alert to be tried again (same alert id)."""

    alert_id: str
    channel_id: str
    operator: str
    reason: str = ""

    STREAM = ("alert", "alert_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelDisabled(Event):
    """A webhook endpoint answered 410, or an operator disabled the channel: no alert goes to
    it until it is enabled."""

    channel_id: str
    reason: str
    # sha256 of the webhook URL that answered 410 (never the URL: its path may hold a token);
    # None for an operator's disabling and in events recorded before it was kept
    url_sha256: str | None = None
    operator: str | None = None  # who disabled it; None when a 410 did

    STREAM = ("channel", "channel_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelEnabled(Event):
    """A disabled channel takes alerts again: an operator enabled it, or its URL changed."""

    channel_id: str
    reason: str
    operator: str | None = None  # None when the daemon saw the configured URL change

    STREAM = ("channel", "channel_id")


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        ConfigApplied,
        FeedFailed,
        FeedRecovered,
        FeedMoved,
        FeedStale,
        ItemDiscovered,
        ItemSighted,
        ItemRevised,
        MilestoneMatched,
        MilestoneStatusChanged,
        MilestoneSourceCorrected,
        AlertQueued,
        AlertDelivered,
        AlertAttemptFailed,
        AlertAbandoned,
        AlertRequeued,
        ChannelDisabled,
        ChannelEnabled,
    )
}
