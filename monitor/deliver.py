"""The outbox dispatcher: claim due alerts, deliver them, append each outcome.

Delivery is at-least-once. A crash after sending and before recording re-sends on the next
claim with the same alert id, which receivers see as the same `webhook-id` / `Message-ID`.
Abandonment is loud: an error log line, an AlertAbandoned event, and a line in
`monitor status`; an alert is never dropped silently.

An alert whose channel lacks its secret (the environment variable is unset or malformed) is
held: not claimed, not attempted, and so never counted toward its retry schedule; it is
delivered once a daemon that has the secret claims it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from monitor import alertwork, faults, runtime, sending, workstate
from monitor.channels.render import AlertMessage
from monitor.channels.webhook import url_sha256
from monitor.config import Config, EmailChannel, WebhookChannel
from monitor.eventbase import Event
from monitor.events import (
    AlertAbandoned,
    AlertAttemptFailed,
    AlertDelivered,
    AlertQueued,
    ChannelDisabled,
)
from monitor.store import EventStore, NewEvent

log = logging.getLogger("monitor.deliver")

LEASE_SECONDS = 300.0
# A held alert that reaches deliver_one anyway (its caller claimed it without skipping the
# held channels) is released for this long, not attempted.
HOLD_SECONDS = 60.0


@dataclass
class Dispatcher:
    """What every delivery needs; built once per configuration."""

    config: Config
    store: EventStore
    secrets: Mapping[str, str]
    client: httpx.AsyncClient
    instance: str
    rng: random.Random = field(default_factory=random.Random)
    # alerts being delivered, and whether there are none: clients a reload replaced close
    # their webhook client only then, as a slow receiver may answer after the lease they
    # wait (Clients.close_later); closed under a send, it fails the send and spends a retry
    sends: int = 0
    idle: asyncio.Event = field(default_factory=lambda: _set(asyncio.Event()))

    def missing_secret(self, channel: EmailChannel | WebhookChannel) -> str | None:
        """The variable the channel's secret comes from, if this dispatcher does not have it."""
        variable = (
            channel.secret_env if isinstance(channel, WebhookChannel) else channel.password_env
        )
        return variable if variable is not None and channel.id not in self.secrets else None

    def held_channels(self) -> frozenset[str]:
        """The channels whose alerts wait for their secret."""
        return frozenset(c.id for c in self.config.channels if self.missing_secret(c))


def _set(event: asyncio.Event) -> asyncio.Event:
    event.set()
    return event


@dataclass(frozen=True, slots=True)
class Outcome:
    alert_id: str
    status: str  # delivered | retry | abandoned | skipped | held
    detail: str = ""


async def deliver_due(
    d: Dispatcher,
    *,
    now: datetime | None = None,
    limit: int = 50,
    due_by: datetime | None = None,
) -> list[Outcome]:
    """Claim the alerts due by `due_by` (default `now`) and deliver them concurrently; one slow
    channel delays no other."""
    now = now or datetime.now(UTC)
    claimed = await asyncio.to_thread(
        alertwork.claim_alerts,
        d.store,
        owner=d.instance,
        now=now.timestamp(),
        lease=LEASE_SECONDS,
        limit=limit,
        skip_channels=d.held_channels(),
        due_by=(due_by or now).timestamp(),
    )
    return list(await asyncio.gather(*(deliver_one(d, a, now) for a, _ in claimed)))


async def deliver_one(d: Dispatcher, alert_id: str, now: datetime) -> Outcome:
    """Attempt one claimed alert and record the outcome, counted among `d`'s sends meanwhile."""
    d.sends += 1
    d.idle.clear()
    try:
        return await _deliver_one(d, alert_id, now)
    finally:
        d.sends -= 1
        if not d.sends:
            d.idle.set()


async def _deliver_one(d: Dispatcher, alert_id: str, now: datetime) -> Outcome:
    row = d.store.state("outbox", alert_id)
    if row is None or row.get("status") != "pending":
        await asyncio.to_thread(_finish, d, alert_id, None)
        return Outcome(alert_id, "skipped", "not pending")
    queued = _queued(d.store, row)
    attempt = int(row.get("attempts", 0)) + 1
    try:
        channel = d.config.channel(queued.channel_id)
    except KeyError:
        return await _record(
            d,
            row,
            [
                sending.abandon(
                    queued,
                    attempt,
                    "channel_removed",
                    f"channel '{queued.channel_id}' is no longer configured",
                )
            ],
            None,
        )
    variable = d.missing_secret(channel)
    if variable is not None:
        await asyncio.to_thread(_finish, d, alert_id, now.timestamp() + HOLD_SECONDS)
        why = f"environment variable {variable} is not set (or not well formed)"
        about = {"alert": alert_id, "channel": channel.id}
        log.warning("alert %s on channel '%s' held: %s", alert_id, channel.id, why, extra=about)
        return Outcome(alert_id, "held", why)
    disabled = d.store.state("channels", channel.id)
    if disabled and disabled.get("disabled") and _gone_elsewhere(channel, disabled):
        # a 410 from the URL this configuration replaced (an attempt begun before a reload,
        # or by a daemon not yet reloaded), recorded after the reload looked for moved channels
        await asyncio.to_thread(_enable_moved, d)
        disabled = d.store.state("channels", channel.id)
    if disabled and disabled.get("disabled"):
        return await _record(
            d,
            row,
            [
                sending.abandon(
                    queued,
                    attempt,
                    "channel_disabled",
                    f"channel '{channel.id}' is disabled: {disabled.get('reason')}",
                )
            ],
            None,
        )
    message = AlertMessage(
        alert_id=queued.alert_id,
        channel_id=channel.id,
        subject=queued.subject,
        payload=queued.payload,
        queued_at=datetime.fromisoformat(row["queued_at"]),
        test=queued.test,
    )
    faults.crash_point("deliver:before_send")
    events, due = await sending.send(d, channel, message, row, attempt, now)
    faults.crash_point("deliver:after_send")
    return await _record(d, row, events, due)


def _queued(store: EventStore, row: Mapping[str, Any]) -> AlertQueued:
    record = store.get(int(row["queued_position"]))
    assert record is not None and isinstance(record.event, AlertQueued)
    return record.event


async def _record(
    d: Dispatcher, row: Mapping[str, Any], events: list[Event], due: float | None
) -> Outcome:
    return await asyncio.to_thread(_record_sync, d, row, events, due)


def _record_sync(
    d: Dispatcher, row: Mapping[str, Any], events: list[Event], due: float | None
) -> Outcome:
    alert_id = str(row["alert_id"])
    meta = {"instance": d.instance, "causation": row["queued_position"]}
    with d.store.transaction() as tx:
        now_row = tx.state("outbox", alert_id) or {}
        stale = _moved_on(row, now_row)
        if stale:
            # Another dispatcher recorded an attempt since this one read the row (this one's
            # lease ran out while it sent): its outcome stands, but a delivery is still news.
            delivered = now_row.get("status") == "delivered"
            events = [e for e in events if isinstance(e, AlertDelivered) and not delivered]
            due = None
        tx.append([NewEvent(e, meta=meta) for e in events])
        if events or not stale:
            alertwork.finish_alert(tx.conn, alert_id, due)
    if not events:
        log.warning(
            "alert %s: the outcome of this attempt is not recorded: another dispatcher "
            "recorded attempt %s meanwhile (%s)",
            alert_id,
            now_row.get("attempts"),
            now_row.get("status"),
            extra={"alert": alert_id, "channel": now_row.get("channel_id")},
        )
        return Outcome(alert_id, "skipped", "another dispatcher recorded this attempt")
    for e in events:
        if isinstance(e, ChannelDisabled):
            log.error(
                "channel '%s' disabled: %s", e.channel_id, e.reason, extra={"channel": e.channel_id}
            )
    last = events[-1]
    about = {"alert": alert_id, "channel": getattr(last, "channel_id", None)}
    if isinstance(last, AlertAbandoned):
        # a disabled or removed channel is not called: that attempt was never made
        unsent = last.kind in ("channel_disabled", "channel_removed")
        log.error(
            "alert %s on channel '%s' abandoned %s attempt %d: %s: %s",
            alert_id,
            last.channel_id,
            "before" if unsent else "after",
            last.attempt,
            last.kind,
            last.message,
            extra=about,
        )
        return Outcome(alert_id, "abandoned", f"{last.kind}: {last.message}")
    if isinstance(last, AlertAttemptFailed):
        log.warning(
            "alert %s on channel '%s' attempt %d failed: %s: %s; retry at %s",
            alert_id,
            last.channel_id,
            last.attempt,
            last.kind,
            last.message,
            last.retry_at.isoformat(timespec="seconds"),
            extra=about,
        )
        return Outcome(alert_id, "retry", f"{last.kind}: {last.message}")
    return Outcome(alert_id, "delivered", getattr(last, "response", ""))


def _gone_elsewhere(channel: EmailChannel | WebhookChannel, row: Mapping[str, Any]) -> bool:
    """Whether a disabling came from a 410 of a URL other than the channel's configured one."""
    gone = row.get("url_sha256")
    return isinstance(channel, WebhookChannel) and gone not in (None, url_sha256(channel.url))


def _enable_moved(d: Dispatcher) -> None:
    for e in runtime.enable_moved_channels(d.store, d.config, instance=d.instance):
        log.info(
            "channel '%s' enabled: %s", e.channel_id, e.reason, extra={"channel": e.channel_id}
        )


def _moved_on(read: Mapping[str, Any], now: Mapping[str, Any]) -> bool:
    """Whether the outbox row changed since the attempt read it: another attempt was recorded
    (each one counts), or an operator re-queued the alert."""
    keys = ("status", "attempts", "schedule_base")
    return any(read.get(k) != now.get(k) for k in keys)


def _finish(d: Dispatcher, alert_id: str, due: float | None) -> None:
    with workstate.work_tx(d.store) as conn:
        alertwork.finish_alert(conn, alert_id, due)
