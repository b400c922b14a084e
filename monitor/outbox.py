"""The alert outbox as pure code: alert ids, the retry schedule, and the outbox fold."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from monitor.eventbase import Event
from monitor.events import (
    AlertAbandoned,
    AlertAttemptFailed,
    AlertDelivered,
    AlertQueued,
    AlertRequeued,
)

JITTER = 0.2  # ±20 % on every scheduled delay
MIN_AFTER_429 = timedelta(seconds=60)


def alert_id(transition_event_id: str, channel_id: str) -> str:
    """The id a receiver deduplicates on: the same for every attempt of one alert."""
    digest = hashlib.sha256(f"{transition_event_id}\0{channel_id}".encode()).hexdigest()
    return f"alt_{digest[:32]}"


def next_attempt_at(
    schedule: Sequence[timedelta],
    attempts_made: int,
    *,
    now: datetime,
    rand: float,
    retry_after: float | None = None,
    rate_limited: bool = False,
) -> datetime | None:
    """When to try again after `attempts_made` failed attempts; None once the schedule is spent.

    `rand` in [0, 1) picks the jitter. A Retry-After is honoured within [1x, 2x] of the
    scheduled delay, and a 429 never retries sooner than 60 s.
    """
    if attempts_made < 1 or attempts_made > len(schedule):
        return None
    scheduled = schedule[attempts_made - 1] * (1 + JITTER * (2 * rand - 1))
    delay = scheduled
    if retry_after is not None and math.isfinite(retry_after):
        # compared in seconds first: a receiver may ask for more than timedelta can hold
        wait = min(max(retry_after, scheduled.total_seconds()), 2 * scheduled.total_seconds())
        delay = timedelta(seconds=wait)
    if rate_limited:
        delay = max(delay, MIN_AFTER_429)
    return now + delay


def fold(
    state: Mapping[str, Any] | None, event: Event, recorded_at: datetime, position: int
) -> dict[str, Any]:
    """Fold one alert event into the outbox row of its alert."""
    row: dict[str, Any] = dict(state or {})
    match event:
        case AlertQueued():
            row.update(
                alert_id=event.alert_id,
                channel_id=event.channel_id,
                milestone_id=event.milestone_id,
                subject=event.subject,
                test=event.test,
                status="pending",
                attempts=0,
                due_at=recorded_at.isoformat(),
                queued_position=position,
                queued_at=recorded_at.isoformat(),
                recipients={},
                last_error=None,
            )
        case AlertAttemptFailed():
            row.update(
                attempts=event.attempt,
                due_at=event.retry_at.isoformat(),
                last_error=f"{event.kind}: {event.message}",
            )
            row["recipients"] = {**row.get("recipients", {}), **event.recipients}
        case AlertDelivered():
            row.update(
                status="delivered",
                attempts=event.attempt,
                due_at=None,
                delivered_at=recorded_at.isoformat(),
                response=event.response,
            )
            row["recipients"] = {**row.get("recipients", {}), **event.recipients}
        case AlertAbandoned():
            row.update(
                status="abandoned",
                attempts=event.attempt,
                due_at=None,
                last_error=f"{event.kind}: {event.message}",
            )
            row["recipients"] = {**row.get("recipients", {}), **event.recipients}
        case AlertRequeued():
            # a fresh run of the schedule for the same alert id
            row.update(
                status="pending",
                due_at=recorded_at.isoformat(),
                schedule_base=row.get("attempts", 0),
            )
    return row


def attempts_in_schedule(row: Mapping[str, Any]) -> int:
    """Attempts made since the alert was queued or last re-queued by an operator."""
    return int(row.get("attempts", 0)) - int(row.get("schedule_base", 0))


def accepted_recipients(row: Mapping[str, Any]) -> set[str]:
    """Email recipients that already took the alert: never sent it again."""
    return {
        addr for addr, status in row.get("recipients", {}).items() if status.startswith("accepted")
    }
