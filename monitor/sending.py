"""One delivery attempt through its channel, and the events that record what came of it.

A webhook is delivered or not as a whole; an email recipient by recipient: a retry goes only
to the recipients not yet accepted, and a recipient refused once keeps the alert from success.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from monitor import outbox
from monitor.channels import email as smtp
from monitor.channels import webhook
from monitor.channels.render import AlertMessage, email_message, webhook_body
from monitor.config import EmailChannel, WebhookChannel
from monitor.errors import DeliveryError
from monitor.eventbase import Event
from monitor.events import (
    AlertAbandoned,
    AlertAttemptFailed,
    AlertDelivered,
    AlertQueued,
    ChannelDisabled,
)
from monitor.redact import redacted_line

if TYPE_CHECKING:
    from monitor.deliver import Dispatcher

# An SMTP session holds a thread for up to its channel's timeout. Sessions get threads of their
# own: on asyncio's default executor, a silent mail server would take the threads that the feed
# and alert claims and the poll's writes wait for, and hold every feed up with it.
SMTP_SESSIONS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="monitor-smtp")


async def send(
    d: Dispatcher,
    channel: EmailChannel | WebhookChannel,
    message: AlertMessage,
    row: Mapping[str, Any],
    attempt: int,
    now: datetime,
) -> tuple[list[Event], float | None]:
    """Try once; the events to append, and when to try again (None: done, either way).

    `now` is when the attempt began; the next one is timed from the answer: a slow answer
    must not bring it closer (a 429's minute is a minute after the 429).
    """
    started = time.monotonic()

    def answered() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    if isinstance(channel, WebhookChannel):
        return await _send_webhook(d, channel, message, row, attempt, answered)
    return await _send_email(d, channel, message, row, attempt, answered)


async def _send_webhook(
    d: Dispatcher,
    channel: WebhookChannel,
    message: AlertMessage,
    row: Mapping[str, Any],
    attempt: int,
    answered: Callable[[], datetime],
) -> tuple[list[Event], float | None]:
    body = webhook_body(message)
    try:
        response = await webhook.send_webhook(
            d.client,
            url=channel.url,
            secrets=d.secrets[channel.id],
            alert_id=message.alert_id,
            body=body,
            timestamp=int(datetime.now(UTC).timestamp()),
            timeout=channel.timeout.total_seconds(),
        )
    except DeliveryError as exc:
        return failed(d, channel, message, row, attempt, exc, answered(), {})
    return [
        AlertDelivered(
            alert_id=message.alert_id, channel_id=channel.id, attempt=attempt, response=response
        )
    ], None


async def _send_email(
    d: Dispatcher,
    channel: EmailChannel,
    message: AlertMessage,
    row: Mapping[str, Any],
    attempt: int,
    answered: Callable[[], datetime],
) -> tuple[list[Event], float | None]:
    done = outbox.accepted_recipients(row)
    pending = [r for r in channel.recipients if r not in done]
    mail = email_message(
        message,
        sender=channel.sender,
        recipients=channel.recipients,
        timezone=d.config.settings.timezone,
    )
    try:
        session = functools.partial(
            smtp.send_email,
            host=channel.host,
            port=channel.port,
            security=channel.security,
            username=channel.username,
            password=d.secrets.get(channel.id),
            allow_insecure=channel.allow_insecure,
            message=mail,
            recipients=pending,
            timeout=channel.timeout.total_seconds(),
        )
        outcomes = await asyncio.get_running_loop().run_in_executor(SMTP_SESSIONS, session)
    except DeliveryError as exc:
        return failed(d, channel, message, row, attempt, exc, answered(), {})
    replies = {addr: f"{o.status}: {o.code} {o.reply}".strip() for addr, o in outcomes.items()}
    # earlier attempts count too: a recipient refused before keeps this alert from "success",
    # unless it is no longer configured (the operator took the address out, then retried)
    earlier = {a: r for a, r in row.get("recipients", {}).items() if a in channel.recipients}
    merged = {**earlier, **replies}
    retry = [a for a, r in replies.items() if r.startswith("retry")]
    refused = [a for a, r in merged.items() if r.startswith("refused")]
    if retry:
        deferred = DeliveryError("recipients_deferred", "deferred by " + ", ".join(retry))
        return failed(d, channel, message, row, attempt, deferred, answered(), replies)
    if refused:
        return [
            _abandon_msg(
                message, attempt, "recipients_refused", "refused by " + ", ".join(refused), replies
            )
        ], None
    return [
        AlertDelivered(
            alert_id=message.alert_id,
            channel_id=channel.id,
            attempt=attempt,
            response="all recipients accepted",
            recipients=replies,
        )
    ], None


def failed(
    d: Dispatcher,
    channel: EmailChannel | WebhookChannel,
    message: AlertMessage,
    row: Mapping[str, Any],
    attempt: int,
    exc: DeliveryError,
    now: datetime,
    replies: Mapping[str, str],
) -> tuple[list[Event], float | None]:
    events: list[Event] = []
    text = redacted_line(str(exc))
    if exc.disable_channel:
        url = channel.url if isinstance(channel, WebhookChannel) else None
        events.append(
            ChannelDisabled(
                channel_id=channel.id,
                reason=text,
                url_sha256=webhook.url_sha256(url) if url is not None else None,
            )
        )
    retry_at = None
    if not exc.permanent and not message.test:  # a test alert is tried once, while one waits
        retry_at = outbox.next_attempt_at(
            channel.retry_schedule,
            outbox.attempts_in_schedule(row) + 1,
            now=now,
            rand=d.rng.random(),
            retry_after=exc.retry_after,
            rate_limited=exc.kind == "rate_limited",
        )
    answer = redacted_line(exc.response) if exc.response else None
    if retry_at is None:
        kind = exc.kind if exc.permanent or message.test else "retries_exhausted"
        events.append(_abandon_msg(message, attempt, kind, text, replies, answer))
        return events, None
    events.append(
        AlertAttemptFailed(
            alert_id=message.alert_id,
            channel_id=channel.id,
            attempt=attempt,
            kind=exc.kind,
            message=text,
            retry_at=retry_at,
            recipients=dict(replies),
            response=answer,
        )
    )
    return events, retry_at.timestamp()


def abandon(queued: AlertQueued, attempt: int, kind: str, message: str) -> AlertAbandoned:
    return AlertAbandoned(
        alert_id=queued.alert_id,
        channel_id=queued.channel_id,
        attempt=attempt,
        kind=kind,
        message=message,
    )


def _abandon_msg(
    message: AlertMessage,
    attempt: int,
    kind: str,
    text: str,
    replies: Mapping[str, str],
    response: str | None = None,
) -> AlertAbandoned:
    return AlertAbandoned(
        alert_id=message.alert_id,
        channel_id=message.channel_id,
        attempt=attempt,
        kind=kind,
        message=text,
        recipients=dict(replies),
        response=response,
    )
