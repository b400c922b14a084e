"""One poll of one feed: fetch, parse, identify, match, decide — recorded in one transaction.

The log records facts, not heartbeats: a 304 or an unchanged body writes no event, only the
feed's working state (validators, next poll time). A failure is recorded as FeedFailed on the
transition from healthy; the first good poll after it records FeedRecovered.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor import evaluate, faults, identity, workstate
from monitor.config import Config, Feed
from monitor.errors import FetchError, ParseError
from monitor.events import (
    Event,
    FeedFailed,
    FeedMoved,
    FeedRecovered,
    FeedStale,
    ItemDiscovered,
    ItemSighted,
)
from monitor.fetch import Fetcher, FetchResult
from monitor.match import Matcher
from monitor.milestones import MilestoneState
from monitor.parse import Entry, ParsedFeed, parse_feed
from monitor.record import append_decisions
from monitor.store import EventStore, NewEvent, Transaction
from monitor.workstate import FeedWork

log = logging.getLogger("monitor.poll")

BACKOFF_BASE = timedelta(minutes=1)
POLLS_PLUS_ONE = workstate.feed_state.c.polls + 1


@dataclass
class Poller:
    """What every poll needs; built once per configuration by the daemon or a command."""

    config: Config
    store: EventStore
    matcher: Matcher
    fetcher: Fetcher
    instance: str
    rng: random.Random = field(default_factory=random.Random)


@dataclass(frozen=True, slots=True)
class PollReport:
    """What one poll did, for logs and `monitor poll`."""

    feed_id: str
    outcome: str  # new | unchanged | not_modified | failed
    discovered: int = 0
    sighted: int = 0
    transitions: int = 0
    error: str | None = None


def backoff(failures: int, *, ceiling: timedelta, rand: float) -> timedelta:
    """Exponential backoff with ±20 % jitter, capped; failing feeds are never given up."""
    exponent = min(max(failures - 1, 0), 30)
    delay: timedelta = min(BACKOFF_BASE * (2**exponent), ceiling)
    return delay * (0.8 + 0.4 * rand)


async def poll_feed(p: Poller, work: FeedWork, *, now: datetime | None = None) -> PollReport:
    """Poll one claimed feed and record the outcome; never raises for a bad feed."""
    feed = p.config.feed(work.feed_id)
    now = now or datetime.now(UTC)
    try:
        result = await p.fetcher.fetch(work.url, etag=work.etag, last_modified=work.last_modified)
    except FetchError as exc:
        return await asyncio.to_thread(_record_failure, p, feed, work, exc, now)
    body_hash = hashlib.sha256(result.body).hexdigest() if result.body is not None else None
    if result.status == 304 or body_hash == work.body_hash:
        return await asyncio.to_thread(_record_unchanged, p, feed, work, result, now)
    assert result.body is not None
    try:
        parsed = await asyncio.to_thread(
            parse_feed,
            result.body,
            now=now,
            content_type=result.content_type,
            max_bytes=p.config.settings.max_feed_bytes,
        )
    except ParseError as exc:
        return await asyncio.to_thread(_record_failure, p, feed, work, exc, now, result)
    for warning in parsed.warnings:
        log.warning("feed '%s': %s (entries recovered)", feed.id, warning)
    return await asyncio.to_thread(_record_entries, p, feed, work, result, parsed, body_hash, now)


def _meta(p: Poller, feed: Feed) -> dict[str, Any]:
    return {"instance": p.instance, "correlation": f"poll:{feed.id}"}


def _next_poll(p: Poller, feed: Feed, now: datetime) -> float:
    return (now + feed.effective_interval(p.config.settings)).timestamp()


def _health_events(tx: Transaction, feed: Feed, work: FeedWork, result: FetchResult) -> list[Event]:
    """FeedRecovered after a failure, FeedMoved after a permanent redirect."""
    out: list[Event] = []
    health = tx.state("feeds", feed.id) or {}
    if health.get("health") in ("failing", "gone"):
        out.append(FeedRecovered(feed_id=feed.id, url=result.url, after=health.get("kind") or ""))
    if result.moved_to and result.moved_to != work.url:
        out.append(
            FeedMoved(feed_id=feed.id, old_url=work.url, new_url=result.moved_to, status=301)
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
                url=url,
                newest_item_at=newest_at,
                stale_after_seconds=int(feed.stale_after.total_seconds()),
            )
        ]
    if not stale and health == "stale":
        return [FeedRecovered(feed_id=feed.id, url=url, after="stale")]
    return []


def _record_unchanged(
    p: Poller, feed: Feed, work: FeedWork, result: FetchResult, now: datetime
) -> PollReport:
    with p.store.transaction() as tx:
        events = _health_events(tx, feed, work, result)
        events += _stale_events(tx, feed, work.newest_item_at, result.url, now)
        tx.append([NewEvent(e, meta=_meta(p, feed)) for e in events], now=now)
        workstate.release_feed(
            tx.conn,
            feed.id,
            url=result.moved_to or work.url,
            failures=0,
            etag=result.etag or work.etag,
            last_modified=result.last_modified or work.last_modified,
            next_poll_at=_next_poll(p, feed, now),
            last_attempt_at=now.timestamp(),
            last_success_at=now.timestamp(),
            last_error=None,
            polls=POLLS_PLUS_ONE,
        )
    return PollReport(feed.id, "not_modified" if result.status == 304 else "unchanged")


def _record_failure(
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
        if retry_after:
            delay = max(delay, timedelta(seconds=retry_after))
    next_poll = now + delay
    with p.store.transaction() as tx:
        health = tx.state("feeds", feed.id) or {}
        if health.get("health") not in ("failing", "gone") or health.get("kind") != exc.kind:
            failed = FeedFailed(
                feed_id=feed.id,
                url=work.url,
                kind=exc.kind,
                message=str(exc),
                next_poll_at=next_poll,
            )
            tx.append([NewEvent(failed, meta=_meta(p, feed))], now=now)
        workstate.release_feed(
            tx.conn,
            feed.id,
            failures=failures,
            next_poll_at=next_poll.timestamp(),
            last_attempt_at=now.timestamp(),
            last_error=f"{exc.kind}: {exc}",
            polls=POLLS_PLUS_ONE,
        )
    log.warning(
        "feed '%s': %s [%s]; next poll in %s", feed.id, exc, exc.kind, str(delay).split(".")[0]
    )
    return PollReport(feed.id, "failed", error=f"{exc.kind}: {exc}")


def _record_entries(
    p: Poller,
    feed: Feed,
    work: FeedWork,
    result: FetchResult,
    parsed: ParsedFeed,
    body_hash: str | None,
    now: datetime,
) -> PollReport:
    meta = _meta(p, feed)
    discovered = sighted = transitions = 0
    newest = work.newest_item_at
    with p.store.transaction() as tx:
        tx.append([NewEvent(e, meta=meta) for e in _health_events(tx, feed, work, result)], now=now)
        states: dict[str, MilestoneState] = {}
        seen: set[str] = set()
        for entry in parsed.entries:
            if entry.published_at is not None:
                ts = entry.published_at.timestamp()
                newest = ts if newest is None else max(newest, ts)
            iid = _item_id(entry)
            if iid in seen:
                continue  # several entries sharing one GUID: the first one speaks
            seen.add(iid)
            outcome = _record_item(p, tx, feed, entry, iid, states, meta, now)
            discovered += outcome == "discovered"
            sighted += outcome == "sighted"
            transitions += outcome == "transition"
        tx.append(
            [NewEvent(e, meta=meta) for e in _stale_events(tx, feed, newest, result.url, now)],
            now=now,
        )
        workstate.release_feed(
            tx.conn,
            feed.id,
            url=result.moved_to or work.url,
            failures=0,
            etag=result.etag,
            last_modified=result.last_modified,
            body_hash=body_hash,
            next_poll_at=_next_poll(p, feed, now),
            last_attempt_at=now.timestamp(),
            last_success_at=now.timestamp(),
            last_error=None,
            newest_item_at=newest,
            polls=POLLS_PLUS_ONE,
        )
        faults.crash_point("poll:before_commit")
    return PollReport(feed.id, "new", discovered, sighted, transitions)


def _item_id(entry: Entry) -> str:
    return identity.item_id(
        guid=entry.guid, link=entry.link, title=entry.title, summary=entry.summary
    )


def _record_item(
    p: Poller,
    tx: Transaction,
    feed: Feed,
    entry: Entry,
    iid: str,
    states: dict[str, MilestoneState],
    meta: Mapping[str, Any],
    now: datetime,
) -> str:
    """Append what one entry means; returns discovered | sighted | transition | known."""
    if tx.find_dedupe(f"item:{iid}") is not None:
        known = tx.state("items", iid) or {}
        if feed.id in known.get("feeds", []):
            return "known"
        seen = ItemSighted(item_id=iid, feed_id=feed.id)
        tx.append([NewEvent(seen, dedupe_key=f"sighted:{iid}:{feed.id}", meta=dict(meta))], now=now)
        return "sighted"
    link = identity.canonical_url(entry.link) if entry.link else None
    publisher = identity.publisher(entry.source_url or entry.link)
    item = ItemDiscovered(
        item_id=iid,
        feed_id=feed.id,
        url=link,
        guid=entry.guid,
        title=entry.title,
        summary=entry.summary,
        content=entry.content,
        published_at=entry.published_at,
        publisher=publisher,
        language=entry.language,
    )
    [done] = tx.append([NewEvent(item, dedupe_key=f"item:{iid}", meta=dict(meta))], now=now)
    doc = evaluate.doc_of(entry.title, entry.summary, entry.content)
    verdicts = evaluate.evaluate(p.matcher, doc)
    if not verdicts:
        return "discovered"
    _load_states(tx, states, [v.milestone_id for v in verdicts])
    events = evaluate.item_events(
        p.config,
        p.matcher,
        states,
        item_id=iid,
        doc=doc,
        publisher=publisher,
        published_at=entry.published_at,
        now=now,
    )
    append_decisions(tx, p.config, events, now=now, meta={**meta, "causation": done.position})
    return "transition" if evaluate.notifying(events) else "discovered"


def _load_states(tx: Transaction, states: dict[str, MilestoneState], ids: Sequence[str]) -> None:
    for mid in ids:
        if mid not in states:
            states[mid] = MilestoneState.from_json(tx.state("milestones", mid))


def poller_for(config: Config, store: EventStore, fetcher: Fetcher, instance: str) -> Poller:
    return Poller(config, store, evaluate.compile_rules(config), fetcher, instance)
