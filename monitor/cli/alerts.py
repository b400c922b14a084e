"""Commands about the outbox: list, re-queue, send a test alert, disable and enable a channel."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from monitor.cli.alertlisting import AlertListing
from monitor.cli.common import (
    JsonOpt,
    OperatorOpt,
    alerts_app,
    command,
    err,
    opened,
    operator_name,
    operator_text,
    out,
    print_json,
    takes_globals,
    utf8_text,
)
from monitor.errors import ConfigError, MonitorError, UsageError
from monitor.oneline import counted

if TYPE_CHECKING:
    from monitor.config import Config, EmailChannel, WebhookChannel

# `alerts test` holds its alert this long while it sends (a channel times out in 30 s); if the
# command dies meanwhile, a dispatcher sends it once the lease expires, under the same id.
TEST_LEASE_SECONDS = 300
# `monitor alerts` lists this many delivered alerts, the newest, unless asked for more: the
# outbox keeps every alert ever queued, and a delivered one needs nothing more
DELIVERED_SHOWN = 50


@alerts_app.callback()
@takes_globals
def alerts(
    ctx: typer.Context,
    json_: JsonOpt = False,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            min=0,
            help="the newest N delivered alerts (pending and abandoned ones are all listed)",
        ),
    ] = DELIVERED_SHOWN,
) -> None:
    """Pending, delivered and abandoned alerts."""
    if ctx.invoked_subcommand is not None:
        return
    command(_list)(json_, limit)


def _list(json_: bool, limit: int) -> None:
    from monitor import reports

    with opened(read_only=True) as (config, store):
        rows, older = reports.alert_rows(store, delivered=limit)
    left_out = (
        f"{counted(older, 'older delivered alert')} not listed: `monitor alerts --limit N` "
        "lists the newest N"
    )
    if json_:
        for row in rows:
            print_json(row)
        if older:  # stdout keeps one shape of object
            err.print(left_out)
        return
    out.print(AlertListing(rows, config.settings.timezone))
    if older:
        out.print(left_out)


@alerts_app.command()
@command
def retry(
    alert_id: str,
    reason: Annotated[str, typer.Option("--reason")] = "re-queued by an operator",
    operator: OperatorOpt = None,
) -> None:
    """Re-queue an abandoned alert: a new attempt with the same alert id."""
    from monitor import alertwork
    from monitor.events import AlertRequeued
    from monitor.store import NewEvent

    who, reason = operator_name(operator), operator_text("--reason", reason)
    utf8_text("alert", alert_id)
    with opened() as (config, store), store.transaction() as tx:
        row = tx.state("outbox", alert_id)
        if row is None:
            raise UsageError(
                f"alert '{alert_id}' does not exist", hint="`monitor alerts` lists the alert ids"
            )
        if row["status"] != "abandoned":
            raise UsageError(f"alert '{alert_id}' is {row['status']}, not abandoned")
        if row.get("test"):
            raise UsageError(
                f"alert '{alert_id}' is a test alert, which is sent once",
                hint=f"run `monitor alerts test {row['channel_id']}` again",
            )
        if row["channel_id"] not in {c.id for c in config.channels}:
            raise UsageError(
                f"alert '{alert_id}': channel '{row['channel_id']}' is not configured",
                hint="add the channel to feeds.toml again to deliver it",
            )
        channel = tx.state("channels", row["channel_id"]) or {}
        if channel.get("disabled"):
            raise UsageError(
                f"alert '{alert_id}': channel '{row['channel_id']}' is disabled: "
                f"{channel.get('reason')}",
                hint=f"`monitor alerts enable {row['channel_id']}` first",
            )
        now = datetime.now(UTC)
        event = AlertRequeued(
            alert_id=alert_id, channel_id=row["channel_id"], operator=who, reason=reason
        )
        tx.append([NewEvent(event, meta={"operator": who})])
        alertwork.queue_alert(tx.conn, alert_id, row["channel_id"], now.timestamp())
    out.print(f"alert {alert_id} re-queued")


def configured(config: Config, channel_id: str) -> EmailChannel | WebhookChannel:
    """The channel of that id, or a usage error naming it."""
    try:
        return config.channel(channel_id)
    except KeyError:
        raise UsageError(f"channel '{channel_id}' is not configured") from None


@alerts_app.command()
@command
def disable(
    channel_id: Annotated[str, typer.Argument(metavar="CHANNEL_ID")],
    reason: Annotated[str, typer.Option("--reason")] = "disabled by an operator",
    operator: OperatorOpt = None,
) -> None:
    """Stop alerts to a channel until `monitor alerts enable`: new alerts skip it and its
    pending ones are abandoned (`monitor alerts retry` re-queues one)."""
    from monitor.events import ChannelDisabled
    from monitor.store import NewEvent

    who, reason = operator_name(operator), operator_text("--reason", reason)
    with opened() as (config, store):
        configured(config, channel_id)
        with store.transaction() as tx:
            row = tx.state("channels", channel_id)
            if row and row.get("disabled"):
                raise UsageError(f"channel '{channel_id}' is already disabled: {row['reason']}")
            event = ChannelDisabled(channel_id=channel_id, reason=reason, operator=who)
            tx.append([NewEvent(event, meta={"operator": who})])
    out.print(
        f"channel '{escape(channel_id)}' disabled: no alert goes to it until "
        f"`monitor alerts enable {escape(channel_id)}`"
    )


@alerts_app.command()
@command
def enable(
    channel_id: Annotated[str, typer.Argument(metavar="CHANNEL_ID")],
    reason: Annotated[str, typer.Option("--reason")] = "enabled by an operator",
    operator: OperatorOpt = None,
) -> None:
    """Enable a channel disabled by an operator or after its webhook answered 410 Gone."""
    from monitor.events import ChannelEnabled
    from monitor.runtime import enabled_key
    from monitor.store import NewEvent

    who, reason = operator_name(operator), operator_text("--reason", reason)
    with opened() as (config, store):
        configured(config, channel_id)
        with store.transaction() as tx:
            row = tx.state("channels", channel_id)
            if not row or not row.get("disabled"):
                raise UsageError(f"channel '{channel_id}' is not disabled")
            event = ChannelEnabled(channel_id=channel_id, reason=reason, operator=who)
            key = enabled_key(channel_id, row)
            tx.append([NewEvent(event, dedupe_key=key, meta={"operator": who})])
        abandoned = store.find_states(
            "outbox",
            {"channel_id": [channel_id], "status": ["abandoned"]},
            order="queued_position",
            unless="test",  # tried once while an operator waited: nothing to re-send
        )
        stranded = [
            r["alert_id"]
            for r in abandoned
            if str(r.get("last_error")).startswith(("channel_disabled:", "gone:"))
        ]
    out.print(f"channel '{escape(channel_id)}' enabled: alerts to it are delivered again")
    if stranded:
        shown = ", ".join(stranded[:5]) + (", …" if len(stranded) > 5 else "")
        out.print(
            f"alerts to it abandoned while it was disabled: {len(stranded)} ({shown}); "
            "`monitor alerts retry ID` re-queues one"
        )


@alerts_app.command()
@command
def test(channel: str) -> None:
    """Send a clearly marked test alert through the real outbox and channel."""
    asyncio.run(_send_test(channel))


async def _send_test(channel_id: str) -> None:
    from monitor import alertwork, deliver, runtime
    from monitor.config import available_secrets, secret_problems
    from monitor.events import AlertQueued
    from monitor.fetch import guarded_client
    from monitor.runtime import instance_name
    from monitor.store import NewEvent

    with opened() as (config, store):
        channel = configured(config, channel_id)
        index = [c.id for c in config.channels].index(channel.id)
        problems = [p for p in secret_problems(config, os.environ) if f"channels[{index}]." in p]
        if problems:
            raise ConfigError(problems, hint="set the variable in this command's environment")
        secrets = available_secrets(config, os.environ)
        # a URL fixed after a 410 enables its channel, as it would when a daemon reloads
        runtime.enable_moved_channels(store, config, instance="cli")
        now = datetime.now(UTC)
        alert_id = f"alt_test_{uuid.uuid4().hex[:24]}"
        head = store.head()
        payload: dict[str, Any] = {
            "milestone": {
                "id": "test",
                "title": "Test alert from milestone-monitor",
                "expected_by": None,
            },
            "from": "pending",
            "to": "pending",
            "reason": "a test requested by an operator",
            "source": None,
            "operator": None,
            "evidence": [],
            "event_position": head[0] if head else 0,
            "chain_head": {"position": head[0] if head else 0, "hash": head[1] if head else ""},
            "test": True,
        }
        queued = AlertQueued(
            alert_id=alert_id,
            channel_id=channel.id,
            milestone_id="test",
            subject="[milestone-monitor] test alert",  # rendering marks it [TEST]
            payload=payload,
            test=True,
        )
        # leased to this command, which sends it now: a running daemon must not send it too
        lease = (instance_name(), now.timestamp() + TEST_LEASE_SECONDS)
        with store.transaction() as tx:
            tx.append([NewEvent(queued, meta={"instance": "cli"})])
            alertwork.queue_alert(tx.conn, alert_id, channel.id, now.timestamp(), leased_to=lease)
        s = config.settings
        # the outcome is this command's to say, once: not also as the dispatcher's log line
        quiet = logging.getLogger("monitor.deliver")
        quiet.disabled = True
        try:
            async with guarded_client(
                allow_private=s.allow_private_networks, timeout=30, user_agent=s.user_agent
            ) as client:
                d = deliver.Dispatcher(config, store, secrets, client, instance_name())
                outcome = await deliver.deliver_one(d, alert_id, now)
        finally:
            quiet.disabled = False
        if outcome.status != "delivered":
            raise MonitorError(
                f"test alert {alert_id} on '{channel_id}' was not delivered: {outcome.detail}",
                hint=_disabled_hint(store.state("channels", channel.id), channel.id),
            )
    out.print(
        f"test alert {alert_id} on '{escape(channel_id)}': {outcome.status}"
        + (f" ({escape(outcome.detail)})" if outcome.detail else "")
    )


def _disabled_hint(row: dict[str, Any] | None, channel_id: str) -> str | None:
    """What takes a disabled channel's alerts again: a 410 may be the URL's fault (the sha256
    of the URL that answered it is kept), an operator's disabling is not."""
    if not row or not row.get("disabled"):
        return None
    if row.get("url_sha256"):
        return (
            f"fix the channel's url, or run `monitor alerts enable {channel_id}` once the "
            "receiver is fixed"
        )
    return f"run `monitor alerts enable {channel_id}` first"
