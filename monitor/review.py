"""Reading the log for people and scripts: filters, one-line summaries, JSON and CSV rows.

Everything here streams: a filter is applied to events as the store yields them, so
`monitor log --json` over a million events never holds them all.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from monitor.errors import UsageError
from monitor.events import EVENT_TYPES
from monitor.redact import shown_source
from monitor.store import EventStore, Recorded


def parse_when(text: str, *, timezone: str, end: bool = False, option: str = "--since") -> datetime:
    """A date (`2026-06-30`) or an ISO 8601 time; a bare date means local midnight (or the
    day's end, with `end`). Errors name `option`."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.max if end else time.min)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{option} '{text}': not a date or time",
            hint="use 2026-06-30 or 2026-06-30T09:00+09:00",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01 in a timezone east of UTC began in year 0
        raise UsageError(
            f"{option} '{text}': out of range in UTC",
            hint="use a date between 0001-01-02 and 9999-12-30",
        ) from None


@dataclass(frozen=True, slots=True)
class Filter:
    """What `monitor log` and `monitor export` select."""

    types: tuple[str, ...] = ()
    stream: str | None = None
    milestone: str | None = None
    feed: str | None = None
    grep: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise UsageError(
                f"--since {self.since.isoformat()} is after --until {self.until.isoformat()}: "
                "nothing can match"
            )
        unknown = [t for t in self.types if t not in EVENT_TYPES]
        if unknown:
            raise UsageError(
                f"--type {unknown[0]}: unknown event type",
                hint="known types: " + ", ".join(sorted(EVENT_TYPES)),
            )

    def accepts(self, r: Recorded) -> bool:
        if self.milestone and r.data.get("milestone_id") != self.milestone:
            return False
        if self.feed and r.data.get("feed_id") != self.feed:
            return False
        if self.grep:
            needle = self.grep.casefold()
            if needle not in orjson.dumps(r.data).decode().casefold():
                return False
        return True

    def matches(self, r: Recorded) -> bool:
        """Every criterion, for events that arrive by `follow` (the same as `select`)."""
        if self.types and r.type not in self.types:
            return False
        if (stream := self._stream()) and r.stream != stream:
            return False
        if self.since and r.recorded_at < self.since:
            return False
        if self.until and r.recorded_at >= self.until:
            return False
        return self.accepts(r)

    def _stream(self) -> str | None:
        if self.stream is None and self.milestone:
            return f"milestone:{self.milestone}"
        return self.stream

    def select(self, store: EventStore, *, after: int = 0) -> Iterator[Recorded]:
        records = store.read(
            after=after,
            stream=self._stream(),
            types=self.types,
            since=self.since,
            until=self.until,
            payload_has=self._payload_text(),
            # --grep looks in the payload as orjson writes it: the stored text (the writer
            # stores canonical JSON, and orjson keeps the key order it reads), which the
            # database and `read` can therefore search before anything is decoded
            payload_folded=self.grep.casefold() if self.grep else None,
        )
        return (r for r in records if self.accepts(r))

    def _payload_text(self) -> str | None:
        """Text every selected payload holds as stored (canonical JSON: sorted keys, no spaces),
        so the database leaves the others undecoded; `accepts` still decides. For --feed: a
        log of a million events is decoded whole otherwise, to find one feed's few."""
        if not self.feed:
            return None
        return '"feed_id":' + orjson.dumps(self.feed).decode()


def as_json(r: Recorded) -> dict[str, Any]:
    return {
        "position": r.position,
        "event_id": r.event_id,
        "type": r.type,
        "stream": r.stream,
        "stream_version": r.stream_version,
        "recorded_at": r.recorded_at.isoformat(),
        "data": r.data,
        "meta": r.meta,
        "hash": r.hash,
    }


def json_lines(records: Iterable[Recorded]) -> Iterator[bytes]:
    for r in records:
        yield orjson.dumps(as_json(r)) + b"\n"


CSV_COLUMNS = (
    "position",
    "recorded_at",
    "type",
    "stream",
    "stream_version",
    "event_id",
    "summary",
    "data",
    "meta",
    "hash",
)


def csv_lines(records: Iterable[Recorded]) -> Iterator[str]:
    """The header line, then one line an event."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    yield buf.getvalue()
    buf.seek(0)
    buf.truncate()
    for r in records:
        writer.writerow(
            [
                r.position,
                r.recorded_at.isoformat(),
                r.type,
                r.stream,
                r.stream_version,
                r.event_id,
                summary(r),
                orjson.dumps(r.data).decode(),
                orjson.dumps(r.meta).decode(),
                r.hash,
            ]
        )
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()


def summary(r: Recorded, timezone: str = "UTC") -> str:
    """One line a person can read, for the log table; times in `timezone`."""
    d = r.data
    match r.type:
        case "ItemDiscovered":
            return f"{d.get('title', '')} ({d.get('publisher') or 'unknown publisher'})"
        case "ItemSighted":
            return f"also in feed {d['feed_id']}"
        case "ItemRevised":
            return f"revision {d['revision']}: {d['title']} (was: {d['previous_title']})"
        case "MilestoneMatched":
            terms = ", ".join(str(h.get("text", "")) for h in d.get("hits", []))
            return f"{d['milestone_id']}: {d['kind']} evidence [{terms}]"
        case "MilestoneStatusChanged":
            return f"{d['milestone_id']}: {d['from_status']} → {d['to_status']} ({d['reason']})"
        case "MilestoneSourceCorrected":
            cited = shown_source(str(d["source"]))
            return (
                f"{d['milestone_id']}: {d['status']}, source corrected to {cited} ({d['reason']})"
            )
        case "FeedFailed":
            return f"{d['feed_id']}: {d['kind']}: {d['message']}"
        case "FeedRecovered":
            return f"{d['feed_id']}: recovered from {d.get('after') or 'failure'}"
        case "FeedMoved":
            return f"{d['feed_id']}: {d['old_url']} → {d['new_url']}"
        case "FeedStale":
            newest = local(d["newest_item_at"], timezone) if d.get("newest_item_at") else "unknown"
            return f"{d['feed_id']}: newest item {newest}"
        case "AlertQueued":
            return f"{d['channel_id']}: {d['subject']}"
        case "AlertDelivered":
            return f"{d['channel_id']}: attempt {d['attempt']}: {d['response']}"
        case "AlertAttemptFailed":
            return (
                f"{d['channel_id']}: attempt {d['attempt']}: {d['kind']}: {d['message']}; "
                f"retry at {local(d['retry_at'], timezone)}"
            )
        case "AlertAbandoned":
            return f"{d['channel_id']}: {d['kind']}: {d['message']}"
        case "AlertRequeued":
            return f"{d['channel_id']}: re-queued by {d['operator']}: {d['reason']}"
        case "ChannelDisabled" | "ChannelEnabled":
            done = "disabled" if r.type == "ChannelDisabled" else "enabled"
            by = f" by {d['operator']}" if d.get("operator") else ""
            return f"{d['channel_id']}: {done}{by}: {d['reason']}"
        case "ConfigApplied":
            changed = [
                f"{k.replace('_', ' ')}: " + ", ".join(v[:3]) + (", …" if len(v) > 3 else "")
                for k, v in d.items()
                if k.endswith(("_added", "_removed", "_changed")) and v
            ]
            return f"config {d['config_sha256'][:12]}" + "".join(f"; {c}" for c in changed)
        case _:
            return ", ".join(f"{k}={v}" for k, v in d.items())[:200]


def local(moment: datetime | str | None, timezone: str) -> str:
    if moment is None:
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S %Z")


HEX = "0123456789abcdef"


def parse_expect(text: str) -> tuple[int, str]:
    """POSITION:HASH as `monitor verify` prints it; an empty or malformed value is a usage
    error (a script whose variable is unset must not pass unchecked)."""
    position, sep, digest = text.strip().partition(":")
    digest = digest.lower()
    ascii_digits = position.isascii() and position.isdigit()  # '²' is a digit to isdigit()
    if not sep or not ascii_digits or int(position) < 1 or len(digest) != 64 or digest.strip(HEX):
        raise UsageError(
            f"--expect '{text}': not POSITION:HASH (a position from 1 and 64 hex digits)",
            hint="copy the head printed by `monitor verify` or an alert",
        )
    return int(position), digest


def columns(records: Sequence[Recorded], timezone: str) -> list[tuple[str, ...]]:
    return [
        (str(r.position), local(r.recorded_at, timezone), r.type, r.stream, summary(r, timezone))
        for r in records
    ]
