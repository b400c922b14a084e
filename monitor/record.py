"""Appending milestone decisions inside the caller's transaction, with the alerts they cause.

A MilestoneStatusChanged and its AlertQueued events (one per notified channel) are always
appended together, in the transaction of whatever caused them: a poll, the deadline check, a
baseline, an operator's note. The alert id derives from the transition's event id and the
channel, and the dedupe key from the transition's position, so no transition queues twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from monitor import alertwork
from monitor.config import Config
from monitor.eventbase import Event
from monitor.events import AlertQueued, MilestoneMatched, MilestoneStatusChanged
from monitor.outbox import alert_id
from monitor.store import Appended, NewEvent, Transaction


def append_decisions(
    tx: Transaction,
    config: Config,
    events: Sequence[Event],
    *,
    now: datetime,
    meta: Mapping[str, Any],
    dedupe: Mapping[int, str] | None = None,
    alert: bool = True,
) -> list[Appended]:
    """Append milestone events in order, as one batch; every new transition queues its alerts."""
    batch = []
    for i, event in enumerate(events):
        key = (dedupe or {}).get(i)
        if isinstance(event, MilestoneMatched):
            key = key or f"match:{event.milestone_id}:{event.item_id}"
        batch.append(NewEvent(event, dedupe_key=key, meta=dict(meta)))
    appended = tx.append(batch)
    for event, done in zip(events, appended, strict=True):
        if isinstance(event, MilestoneStatusChanged) and alert and not done.existed:
            queue_alerts(tx, config, event, done, now=now, meta=meta)
    return appended


def queue_alerts(
    tx: Transaction,
    config: Config,
    change: MilestoneStatusChanged,
    done: Appended,
    *,
    now: datetime,
    meta: Mapping[str, Any],
) -> None:
    """One AlertQueued per notified channel that is not disabled, and its delivery work."""
    milestone = config.milestone(change.milestone_id)
    channels = tx.states("channels", list(milestone.notify))
    notify = [c for c in milestone.notify if not channels.get(c, {}).get("disabled")]
    if not notify:
        return
    payload = alert_payload(tx, config, change, done, operator=meta.get("operator"))
    queued = [
        AlertQueued(
            alert_id=alert_id(done.event_id, channel_id),
            channel_id=channel_id,
            milestone_id=milestone.id,
            subject=f"[milestone-monitor] {milestone.title} — {change.to_status}",
            payload=payload,
        )
        for channel_id in notify
    ]
    caused = {**meta, "causation": done.position}
    batch = [
        NewEvent(q, dedupe_key=f"alert:{done.position}:{q.channel_id}", meta=caused) for q in queued
    ]
    for q, result in zip(queued, tx.append(batch), strict=True):
        if not result.existed:
            alertwork.queue_alert(tx.conn, q.alert_id, q.channel_id, now.timestamp())


def alert_payload(
    tx: Transaction,
    config: Config,
    change: MilestoneStatusChanged,
    done: Appended,
    *,
    operator: str | None = None,
) -> dict[str, Any]:
    """The webhook `data` object (docs/webhook.schema.json); email renders the same.
    `operator`: who declared the status (`monitor note`), None when the evidence or the
    deadline moved it."""
    milestone = config.milestone(change.milestone_id)
    items = tx.states("items", list(change.evidence))
    evidence = []
    for item_id in change.evidence:
        item = items.get(item_id, {})
        evidence.append(
            {
                "item_id": item_id,
                "title": item.get("title", ""),
                "url": item.get("url"),
                "publisher": item.get("publisher"),
                "published_at": item.get("published_at"),
                "matched_terms": item.get("terms", {}).get(milestone.id, []),
            }
        )
    return {
        "milestone": {
            "id": milestone.id,
            "title": milestone.title,
            "expected_by": milestone.expected_by.isoformat() if milestone.expected_by else None,
        },
        "from": change.from_status,
        "to": change.to_status,
        "reason": change.reason,
        "source": change.source,
        "operator": operator,
        "evidence": evidence,
        "event_position": done.position,
        "chain_head": {"position": done.position, "hash": done.hash},
        "test": False,
    }
