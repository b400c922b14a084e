"""The shapes that cross the store's boundary, and the canonical hash that chains them."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from monitor.errors import StoreError
from monitor.eventbase import Event
from monitor.upcast import decode

GENESIS = "0" * 64


def new_event_id() -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. Ids made later
    sort later, so the event-id index grows at its end instead of touching a random page of
    it for every event."""
    ms = time.time_ns() // 1_000_000 & (1 << 48) - 1
    rand = int.from_bytes(os.urandom(10), "big")
    value = ms << 80 | 7 << 76 | (rand >> 64 & 0xFFF) << 64 | 2 << 62 | rand & (1 << 62) - 1
    h = f"{value:032x}"  # str(uuid.UUID(int=value)), without the object (a third of the cost)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event on its way into the log, with the facts only the writer knows.

    Appending the same event (the same id) again is a no-op, so a retried append is safe. An
    id left out is made here, and no log holds it until a writer takes the event: the writer
    looks ids up only from then on (`first_use`).
    """

    event: Event
    event_id: str = ""
    dedupe_key: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)  # causation, correlation, instance
    expected_version: int | None = None  # the stream must be at exactly this version
    _fresh: bool = field(default=False, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.event_id:
            object.__setattr__(self, "event_id", new_event_id())
            object.__setattr__(self, "_fresh", True)

    def first_use(self) -> bool:
        """True the first time a writer takes this event, when its id was made here."""
        fresh = self._fresh
        if fresh:
            object.__setattr__(self, "_fresh", False)
        return fresh


@dataclass(frozen=True, slots=True)
class Recorded:
    """One row of the log as stored."""

    position: int
    event_id: str
    stream: str
    stream_version: int
    type: str
    schema_version: int
    recorded_at: datetime
    data: dict[str, Any]
    meta: dict[str, Any]
    dedupe_key: str | None
    prev_hash: str
    hash: str
    # the decoded event, kept after first use: every projection asks for it during a fold
    _event: Event | None = field(default=None, compare=False, repr=False)

    @property
    def event(self) -> Event:
        """The stored payload decoded into its current event class (upcasters applied)."""
        if self._event is None:
            object.__setattr__(self, "_event", decode(self.type, self.schema_version, self.data))
        assert self._event is not None
        return self._event


@dataclass(frozen=True, slots=True)
class Appended:
    """Where an event went; `existed` means it was already there (an idempotent no-op)."""

    position: int
    event_id: str
    existed: bool
    hash: str


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of walking the chain; `problem` names the first bad position."""

    ok: bool
    checked: int
    head: tuple[int, str] | None
    first_bad: int | None
    problem: str | None


class Projection(Protocol):
    """A pure fold whose per-key state the store persists next to the events."""

    name: str

    def key(self, record: Recorded) -> str | None: ...

    def apply(self, state: dict[str, Any] | None, record: Recorded) -> dict[str, Any]: ...


def canonical_json(value: Any) -> bytes:
    """orjson with sorted keys: the one serialization the chain hashes."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def chain_hash(prev_hash: str, *, data: Any, meta: Any, **fields: Any) -> str:
    """sha256 over the previous hash (hex) followed by the record's canonical JSON.

    The record is {position, event_id, stream, stream_version, type, schema_version,
    recorded_at, data, meta, dedupe_key}, as `fields` plus the two payloads.
    """
    return record_hash(prev_hash, canonical_json(data), canonical_json(meta), **fields)


def record_hash(
    prev_hash: str,
    data_json: bytes,
    meta_json: bytes,
    *,
    position: int,
    event_id: str,
    stream: str,
    stream_version: int,
    type: str,
    schema_version: int,
    recorded_at: str,
    dedupe_key: str | None,
) -> str:
    """`chain_hash` for payloads already in canonical JSON, spliced in rather than re-encoded.

    Sorted key order: data, dedupe_key, event_id, meta, then the rest.
    """
    rest = canonical_json(
        {
            "position": position,
            "recorded_at": recorded_at,
            "schema_version": schema_version,
            "stream": stream,
            "stream_version": stream_version,
            "type": type,
        }
    )
    parts = (
        prev_hash.encode("ascii"),
        b'{"data":',
        data_json,
        b',"dedupe_key":',
        canonical_json(dedupe_key),
        b',"event_id":',
        canonical_json(event_id),
        b',"meta":',
        meta_json,
        b",",
        rest[1:],
    )
    return hashlib.sha256(b"".join(parts)).hexdigest()


def format_time(moment: datetime) -> str:
    """The stored form of `recorded_at`: fixed-width UTC ISO 8601, so text order is time order."""
    if moment.tzinfo is None:
        raise StoreError(
            f"time {moment.isoformat()}: has no time zone", hint="pass a timezone-aware datetime"
        )
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
