"""A poll's outcome, recorded in one transaction: unchanged, failed, or changed.

The log records facts, not heartbeats: a 304 or an unchanged body writes no event, only the
feed's working state (validators, next poll time). A failure is recorded as FeedFailed on the
transition from healthy; the first good poll after it records FeedRecovered. A changed body's
entries (sightings, discoveries, milestone decisions) are recorded by `monitor.items`, inside
this module's transaction. These run on the poller's writer thread (`monitor.poll`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from monitor import faults, items, workstate
from monitor.config import Feed
from monitor.entries import DraftFeed
from monitor.errors import FetchError, ParseError
from monitor.eventbase import Event
from monitor.events import FeedFailed, FeedMoved, FeedRecovered, FeedStale
from monitor.fetch import FetchResult
from monitor.oneline import counted
from monitor.parse import parse_drafts
from monitor.redact import redact_url, redacted_line
from monitor.store import NewEvent, Transaction
from monitor.workstate import FeedWork

if TYPE_CHECKING:
    from monitor.poll import Poller

log = logging.getLogger("monitor.poll")

BACKOFF_BASE = timedelta(minutes=1)
RETRY_AFTER_CEILING = 7 * 86400.0  # seconds: a Retry-After beyond a week is taken as a week
# an `unexpected` failure is a bug in the monitor, not in the feed
UNFORESEEN_HINT = "report it with the logged traceback; `monitor --debug poll FEED_ID` prints it"


@dataclass(frozen=True, slots=True)
class PollReport:
    """What one poll did, for the daemon's log and `monitor poll`. A failure is not logged
    where it is recorded: whoever handles the report says it once (the daemon in its log,
    the command in its one line)."""

    feed_id: str
    outcome: str  # new | unchanged | not_modified | failed
    discovered: int = 0
    sighted: int = 0
    transitions: int = 0
    error: str | None = None  # a failed poll's "kind: message"
    skipped: int = 0  # items known from the last recorded body, not parsed again
    hint: str | None = None  # what an operator may do about the failure
    retry_in: timedelta | None = None  # a failed poll's wait before the next poll
    revised: int = 0  # known items whose text this feed changed (ItemRevised)


def backoff(failures: int, *, ceiling: timedelta, rand: float) -> timedelta:
    """Exponential backoff with ±20 % jitter, never above the ceiling; failing feeds are never
    given up. At the ceiling the jitter only shortens the wait, so feeds that failed together
    still spread out."""
    exponent = min(max(failures - 1, 0), 30)
    delay: timedelta = BACKOFF_BASE * (2**exponent)
    if delay * 1.2 >= ceiling:  # at the ceiling: spread below it, not pile onto it
        return min(delay * (0.8 + 0.4 * rand), ceiling * (0.8 + 0.2 * rand))
    return delay * (0.8 + 0.4 * rand)


def _meta(p: Poller, feed: Feed) -> dict[str, Any]:
    return {"instance": p.instance, "correlation": f"poll:{feed.id}"}


def next_poll(p: Poller, feed: Feed, now: datetime) -> float:
    return (now + feed.effective_interval(p.config.settings)).timestamp()


def _health_events(tx: Transaction, feed: Feed, work: FeedWork, result: FetchResult) -> list[Event]:
    """FeedRecovered after a failure, FeedMoved after a permanent redirect.

    A feed its claim found healthy has no failure to recover from: only the lease holder
    records feed events, so that holds while the lease does, and a poll that outlived its lease
    leaves the recovery to the next poll, whose claim reads the health again. Any other health,
    or none, is read in the transaction."""
    out: list[Event] = []
    health = {} if work.health == "ok" else tx.state("feeds", feed.id) or {}
    if health.get("health") in ("failing", "gone"):
        out.append(
            FeedRecovered(
                feed_id=feed.id, url=redact_url(result.url), after=health.get("kind") or ""
            )
        )
    if result.moved_to and result.moved_to != work.url:
        out.append(
            FeedMoved(
                feed_id=feed.id,
                old_url=redact_url(work.url),
                new_url=redact_url(result.moved_to),
                status=result.moved_status,
            )
        )
    return out


def _stale_events(
    tx: Transaction, feed: Feed, newest: float | None, url: str, now: datetime
) -> list[Event]:
    """FeedStale when the newest item is older than `stale_after`; FeedRecovered when fresh."""
    if feed.stale_after is None:
        return []
    health = (tx.state("feeds", feed.id) or {}).get("health")
    cutoff = (now - feed.stale_after).timestamp()
    stale = newest is None or newest < cutoff
    if stale and health != "stale":
        newest_at = datetime.fromtimestamp(newest, UTC) if newest is not None else None
        return [
            FeedStale(
                feed_id=feed.id,
                url=redact_url(url),
                newest_item_at=newest_at,
                stale_after_seconds=int(feed.stale_after.total_seconds()),
            )
        ]
    if not stale and health == "stale":
        return [FeedRecovered(feed_id=feed.id, url=redact_url(url), after="stale")]
    return []


def record_unchanged(
    p: Poller, feed: Feed, work: FeedWork, result: FetchResult, now: datetime
) -> PollReport:
    with p.store.transaction() as tx:
        events = _health_events(tx, feed, work, result)
        events += _stale_events(tx, feed, work.newest_item_at, result.url, now)
        tx.append([NewEvent(e, meta=_meta(p, feed)) for e in events])
        workstate.release_feed(
            tx.conn,
            feed.id,
            owner=p.instance,
            url=result.moved_to or work.url,
            failures=0,
            etag=result.etag or work.etag,
            last_modified=result.last_modified or work.last_modified,
            next_poll_at=next_poll(p, feed, now),
            last_attempt_at=now.timestamp(),
            last_success_at=now.timestamp(),
            last_error=None,
        )
    return PollReport(feed.id, "not_modified" if result.status == 304 else "unchanged")


def record_failure(
    p: Poller,
    feed: Feed,
    work: FeedWork,
    exc: FetchError | ParseError,
    now: datetime,
    result: FetchResult | None = None,
) -> PollReport:
    settings = p.config.settings
    failures = work.failures + 1
    if exc.kind == "gone":
        delay = settings.backoff_ceiling
    else:
        delay = backoff(failures, ceiling=settings.backoff_ceiling, rand=p.rng.random())
        retry_after = getattr(exc, "retry_after", None)
        if retry_after and math.isfinite(retry_after):  # a server's wish, within reason
            delay = max(delay, timedelta(seconds=min(retry_after, RETRY_AFTER_CEILING)))
    next_poll = now + delay
    # a fetch error names the URL already; a parse error names only what the body is
    message = redacted_line(str(exc) if isinstance(exc, FetchError) else f"{work.url}: {exc}")
    with p.store.transaction() as tx:
        health = tx.state("feeds", feed.id) or {}
        if health.get("health") not in ("failing", "gone") or health.get("kind") != exc.kind:
            failed = FeedFailed(
                feed_id=feed.id,
                url=redact_url(work.url),
                kind=exc.kind,
                message=message,
                next_poll_at=next_poll,
            )
            tx.append([NewEvent(failed, meta=_meta(p, feed))])
        workstate.release_feed(
            tx.conn,
            feed.id,
            owner=p.instance,
            failures=failures,
            next_poll_at=next_poll.timestamp(),
            last_attempt_at=now.timestamp(),
            last_error=f"{exc.kind}: {message}",
        )
    return PollReport(
        feed.id, "failed", error=f"{exc.kind}: {message}", hint=exc.hint, retry_in=delay
    )


def parse_and_record(
    p: Poller, feed: Feed, work: FeedWork, result: FetchResult, body_hash: str | None, now: datetime
) -> PollReport:
    parsed = parse_body(p, feed, result, now, work.item_prints)
    return record_parsed(p, feed, work, result, parsed, body_hash, now)


def parse_body(
    p: Poller, feed: Feed, result: FetchResult, now: datetime, item_prints: str | None
) -> DraftFeed | ParseError:
    """The body's entries, or why it has none. Pure but for the log: it runs on whichever
    thread the poll chose (`monitor.poll`) and touches no database."""
    assert result.body is not None
    try:
        return parse_drafts(
            result.body,
            now=now,
            content_type=result.content_type,
            max_bytes=p.config.settings.max_feed_bytes,
            known=frozenset((item_prints or "").split()),
            base=result.url,
            max_items=p.config.settings.max_feed_items,
        )
    except ParseError as exc:
        return exc
    except Exception as exc:  # a body no rule foresaw fails this feed, not the daemon
        log.exception("feed '%s': unexpected error while parsing", feed.id)
        return ParseError(
            "unexpected", f"unexpected {type(exc).__name__}: {exc}", hint=UNFORESEEN_HINT
        )


def record_parsed(
    p: Poller,
    feed: Feed,
    work: FeedWork,
    result: FetchResult,
    parsed: DraftFeed | ParseError,
    body_hash: str | None,
    now: datetime,
) -> PollReport:
    """Record what `parse_body` found: the feed's failure, or its entries."""
    if isinstance(parsed, ParseError):
        return record_failure(p, feed, work, parsed, now, result)
    for warning in parsed.warnings:
        log.warning("feed '%s': %s (entries recovered)", feed.id, warning)
    if parsed.unread:
        cap = p.config.settings.max_feed_items
        log.warning(
            "feed '%s': %s left unread, over max_feed_items (%d): %s",
            feed.id,
            counted(parsed.unread, "item"),
            cap,
            f"they are read at the next polls, {cap} at a time"
            if parsed.prints
            else f"only the first {cap} entries of this feed are read",
            extra={"feed": feed.id},
        )
    return _record_changed(p, feed, work, result, parsed, body_hash, now)


def _record_changed(
    p: Poller,
    feed: Feed,
    work: FeedWork,
    result: FetchResult,
    parsed: DraftFeed,
    body_hash: str | None,
    now: datetime,
) -> PollReport:
    meta = _meta(p, feed)
    newest = items.newest_published(parsed.entries, work.newest_item_at)
    entries = items.by_item_id(parsed.entries)
    # items left unread of a cut body: the same body is fetched and read again at the next poll
    # (no validators, no body hash to find it unchanged by), up to the cap again
    again = bool(parsed.unread and parsed.prints)
    with p.store.transaction() as tx:
        tx.append([NewEvent(e, meta=meta) for e in _health_events(tx, feed, work, result)])
        counts = items.record_items(tx, p.config, p.matcher, feed, entries, meta=meta, now=now)
        tx.append(
            [NewEvent(e, meta=meta) for e in _stale_events(tx, feed, newest, result.url, now)]
        )
        workstate.release_feed(
            tx.conn,
            feed.id,
            owner=p.instance,
            url=result.moved_to or work.url,
            failures=0,
            etag=None if again else result.etag,
            last_modified=None if again else result.last_modified,
            body_hash=None if again else body_hash,
            next_poll_at=next_poll(p, feed, now),
            last_attempt_at=now.timestamp(),
            last_success_at=now.timestamp(),
            last_error=None,
            newest_item_at=newest,
            item_prints=" ".join(parsed.prints) or None,
        )
        faults.crash_point("poll:before_commit")
    return PollReport(
        feed.id,
        "new",
        counts.discovered,
        counts.sighted,
        counts.transitions,
        skipped=parsed.skipped,
        revised=counts.revised,
    )
