"""The event catalog: frozen, past-tense facts, their schema versions and upcasters.

The class name is the stored `type` and is never renamed. `*_at` fields are UTC-aware
datetimes (ISO 8601 in JSON); `*_id` fields are strings. A breaking change to a payload bumps
the class's VERSION and registers a pure `dict -> dict` upcaster from the old version.
Standard library only.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, TypeVar


class Status(StrEnum):
    """The states a milestone moves through."""

    PENDING = "pending"
    REPORTED = "reported"
    CONFIRMED = "confirmed"
    AT_RISK = "at_risk"
    OVERDUE = "overdue"


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every recorded fact; subclasses name their stream."""

    VERSION: ClassVar[int] = 1

    @property
    def stream(self) -> str:
        raise NotImplementedError

    @property
    def type(self) -> str:
        return type(self).__name__

    def to_data(self) -> dict[str, Any]:
        """The JSON payload: datetimes as ISO 8601 strings, tuples as lists."""
        return {name: _encode(getattr(self, name)) for name in _field_names(type(self))}

    @classmethod
    def from_data(cls: builtins.type[E], data: Mapping[str, Any]) -> E:
        names = _field_names(cls)
        kwargs = {k: _decode(k, v) for k, v in data.items() if k in names}
        return cls(**kwargs)


E = TypeVar("E", bound=Event)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    # dataclasses.fields() walks the class on every call; events are appended in bulk
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _encode(value: Any) -> Any:
    if type(value) in _PLAIN or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(name: str, value: Any) -> Any:
    if name.endswith("_at") and isinstance(value, str):
        return datetime.fromisoformat(value)
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _freeze(value: Any) -> Any:
    return tuple(_freeze(v) for v in value) if isinstance(value, list) else value


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

    @property
    def stream(self) -> str:
        return f"feed:{self.feed_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedRecovered(Event):
    """A failing or stale feed works again."""

    feed_id: str
    url: str
    after: str  # the kind it recovered from: a FeedFailed kind, or "stale"

    @property
    def stream(self) -> str:
        return f"feed:{self.feed_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedMoved(Event):
    """A permanent redirect (301/308); polling follows the new URL."""

    feed_id: str
    old_url: str
    new_url: str
    status: int

    @property
    def stream(self) -> str:
        return f"feed:{self.feed_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedStale(Event):
    """A feed answers, but its newest item is older than its `stale_after`."""

    feed_id: str
    url: str
    newest_item_at: datetime | None
    stale_after_seconds: int

    @property
    def stream(self) -> str:
        return f"feed:{self.feed_id}"


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

    @property
    def stream(self) -> str:
        return f"item:{self.item_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemSighted(Event):
    """An already known item appeared in another feed."""

    item_id: str
    feed_id: str

    @property
    def stream(self) -> str:
        return f"item:{self.item_id}"


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

    @property
    def stream(self) -> str:
        return f"milestone:{self.milestone_id}"


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

    @property
    def stream(self) -> str:
        return f"milestone:{self.milestone_id}"


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

    @property
    def stream(self) -> str:
        return f"alert:{self.alert_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertDelivered(Event):
    """The channel accepted the alert."""

    alert_id: str
    channel_id: str
    attempt: int
    response: str
    recipients: Mapping[str, str] = field(default_factory=dict)  # email: address -> reply

    @property
    def stream(self) -> str:
        return f"alert:{self.alert_id}"


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

    @property
    def stream(self) -> str:
        return f"alert:{self.alert_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertAbandoned(Event):
    """No further attempt will be made unless an operator re-queues the alert."""

    alert_id: str
    channel_id: str
    attempt: int
    kind: str
    message: str
    recipients: Mapping[str, str] = field(default_factory=dict)

    @property
    def stream(self) -> str:
        return f"alert:{self.alert_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRequeued(Event):
    """An operator asked for an abandoned alert to be tried again (same alert id)."""

    alert_id: str
    channel_id: str
    operator: str
    reason: str = ""

    @property
    def stream(self) -> str:
        return f"alert:{self.alert_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelDisabled(Event):
    """A webhook endpoint answered 410, or an operator disabled the channel."""

    channel_id: str
    reason: str

    @property
    def stream(self) -> str:
        return f"channel:{self.channel_id}"


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
        MilestoneMatched,
        MilestoneStatusChanged,
        AlertQueued,
        AlertDelivered,
        AlertAttemptFailed,
        AlertAbandoned,
        AlertRequeued,
        ChannelDisabled,
    )
}

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

# (type, from_version) -> upcaster producing version from_version + 1. None registered yet:
# every type is at version 1. Add entries here when a VERSION is bumped.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class UnknownEventTypeError(LookupError):
    """A stored type that this code does not know (written by a newer version)."""


def upcast(
    type_name: str,
    version: int,
    data: dict[str, Any],
    *,
    types: Mapping[str, type[Event]] = EVENT_TYPES,
    upcasters: Mapping[tuple[str, int], Upcaster] = UPCASTERS,
) -> dict[str, Any]:
    """Bring a stored payload forward to the current VERSION of its type."""
    try:
        current = types[type_name].VERSION
    except KeyError:
        raise UnknownEventTypeError(f"event type '{type_name}' is unknown") from None
    while version < current:
        data = upcasters[(type_name, version)](dict(data))
        version += 1
    return data


def decode(
    type_name: str,
    version: int,
    data: dict[str, Any],
    *,
    types: Mapping[str, type[Event]] = EVENT_TYPES,
    upcasters: Mapping[tuple[str, int], Upcaster] = UPCASTERS,
) -> Event:
    """Turn a stored (type, schema_version, data) back into its event, upcasting first."""
    payload = upcast(type_name, version, data, types=types, upcasters=upcasters)
    return types[type_name].from_data(payload)
