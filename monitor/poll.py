"""One poll of one feed: fetch it, then record the outcome on the writer thread.

An unchanged poll that cannot append an event is most of a daemon's polls; the daemon defers
its working-state write and writes hundreds together (`flush_unchanged`), with no thread hop.
A crash before that write loses only next-poll times (the lease expires, the feed is polled
again), never a fact; a poll that may append an event records in its own transaction
(`monitor.pollrecord`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from monitor import evaluate, identity, workstate
from monitor.config import Config, Feed
from monitor.entries import DraftFeed, built
from monitor.errors import FetchError, ParseError, StoreError
from monitor.fetch import Fetcher, FetchResult
from monitor.match import Matcher
from monitor.oneline import counted, first_line
from monitor.pollrecord import (
    UNFORESEEN_HINT,
    PollReport,
    next_poll,
    parse_and_record,
    parse_body,
    record_failure,
    record_parsed,
    record_unchanged,
)
from monitor.redact import redacted_line
from monitor.store import EventStore
from monitor.workstate import FeedWork

log = logging.getLogger("monitor.poll")
T = TypeVar("T")

FLUSH_EVERY = 500  # deferred unchanged polls written per transaction, at most
# A body this long, or gzip data (it may inflate to the cap), is parsed on a thread of its own
# (`_parse_apart`): feedparser reads about a megabyte of dense markup a second here, so a body
# at the 15 MiB cap would hold the writer, and a stop waiting for it, some 15 s.
BIG_BODY = 1024 * 1024


@dataclass
class Poller:
    """What every poll needs; built once per configuration by the daemon or a command."""

    config: Config
    store: EventStore
    matcher: Matcher
    fetcher: Fetcher
    instance: str
    rng: random.Random = field(default_factory=random.Random)
    # The daemon defers the working-state write of polls that record no event and writes them
    # together (flush_unchanged); a one-off poll writes its own.
    defer_unchanged: bool = False
    deferred: list[dict[str, Any]] = field(default_factory=list)
    # parsing and recording run here, one at a time, off the event loop (see _in_writer)
    writer: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="monitor-writer")
    )
    big_parses: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))
    # polls in flight, and whether there are none: clients a reload replaced close their writer
    # only then, as a long body's parse may outlast the lease they wait (Clients.close_later)
    polls: int = 0
    idle: asyncio.Event = field(default_factory=lambda: _set(asyncio.Event()))
    # feed id -> when (epoch s) the lease of its poll in flight was taken or last renewed
    leases: dict[str, float] = field(default_factory=dict)

    def close(self) -> None:
        """Wait for the writer thread's work, then stop it."""
        self.writer.shutdown(wait=True)


def _set(event: asyncio.Event) -> asyncio.Event:
    event.set()
    return event


async def poll_feed(p: Poller, work: FeedWork, *, now: datetime | None = None) -> PollReport:
    """Poll one claimed feed and record the outcome; never raises for a bad feed."""
    p.polls += 1
    p.idle.clear()
    p.leases[work.feed_id] = time.time()  # claimed just now
    try:
        return await _poll(p, work, now or datetime.now(UTC))
    finally:
        p.polls -= 1
        p.leases.pop(work.feed_id, None)
        if not p.polls:
            p.idle.set()


async def renew_leases(p: Poller, lease: float) -> None:
    """Renew the leases of polls in flight for half a lease or more (a long body's parse, and
    the queue of such parses, can outlast one): else a claim, this daemon's next or another's,
    would take the feed and poll it twice. A renewal that fails is logged."""
    now = time.time()
    old = [feed_id for feed_id, since in p.leases.items() if now - since >= lease / 2]
    if not old:
        return
    try:
        await asyncio.to_thread(
            workstate.renew_leases, p.store, owner=p.instance, feed_ids=old, until=now + lease
        )
    except (StoreError, sa.exc.SQLAlchemyError) as exc:  # PostgreSQL's work_tx: SQLAlchemy's
        log.warning(
            "leases of %s not renewed: %s",
            counted(len(old), "poll"),
            redacted_line(first_line(exc)),
        )
        return
    for feed_id in old:
        if feed_id in p.leases:
            p.leases[feed_id] = now


async def _poll(p: Poller, work: FeedWork, now: datetime) -> PollReport:
    feed = p.config.feed(work.feed_id)
    try:
        result = await p.fetcher.fetch(work.url, etag=work.etag, last_modified=work.last_modified)
    except FetchError as exc:
        return await _in_writer(p, record_failure, p, feed, work, exc, now)
    except Exception as exc:  # noqa: BLE001 (logged by _unforeseen): an answer no rule foresaw
        message = f"{work.url}: unexpected {type(exc).__name__}: {exc}"
        return await _unforeseen(p, feed, work, now, "fetching", message)
    body_hash = hashlib.sha256(result.body).hexdigest() if result.body is not None else None
    if result.status == 304 or body_hash == work.body_hash:
        if p.defer_unchanged and not _may_record(feed, work, result, now):
            return await _defer_unchanged(p, feed, work, result, now)
        return await _in_writer(p, record_unchanged, p, feed, work, result, now)
    # parsing and recording share one thread hop: a hop costs about as much CPU as recording
    try:
        if _parses_long(result.body or b""):
            parsed = await _parse_apart(p, feed, work, result, now)
            return await _in_writer(p, record_parsed, p, feed, work, result, parsed, body_hash, now)
        return await _in_writer(p, parse_and_record, p, feed, work, result, body_hash, now)
    except StoreError:
        raise  # the log cannot be written: not this feed's failure, nor one it could record
    except Exception as exc:  # noqa: BLE001 (logged by _unforeseen): a bug met while recording
        message = f"unexpected {type(exc).__name__} while recording: {exc}"
        return await _unforeseen(p, feed, work, now, "recording", message, result)


async def _unforeseen(
    p: Poller,
    feed: Feed,
    work: FeedWork,
    now: datetime,
    doing: str,
    message: str,
    result: FetchResult | None = None,
) -> PollReport:
    """An error no rule foresaw, met while `doing`: logged with its traceback (call this in the
    `except` block), recorded as the feed's failure of kind `unexpected`, backed off."""
    log.exception("feed '%s': unexpected error while %s", feed.id, doing)
    error = FetchError("unexpected", message, hint=UNFORESEEN_HINT)
    return await _in_writer(p, record_failure, p, feed, work, error, now, result)


async def _parse_apart(
    p: Poller, feed: Feed, work: FeedWork, result: FetchResult, now: datetime
) -> DraftFeed | ParseError:
    """`parse_body` on a daemon thread, one such parse at a time, while the writer records
    other polls. A stop does not wait for it: the poll is abandoned with nothing recorded
    (its lease runs out and the feed is polled again), and the thread ends with the process."""
    async with p.big_parses:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[DraftFeed | ParseError] = loop.create_future()

        def run() -> None:
            settle: Callable[[], None]
            try:
                settle = functools.partial(
                    done.set_result, _built(parse_body(p, feed, result, now, work.item_prints))
                )
            except BaseException as exc:  # noqa: BLE001 (parse_body returns a feed's errors)
                settle = functools.partial(done.set_exception, exc)
            with contextlib.suppress(RuntimeError):  # the loop is closed: the daemon stopped
                loop.call_soon_threadsafe(_unless_done, done, settle)

        threading.Thread(target=run, name="monitor-parser", daemon=True).start()
        return await done


def _built(parsed: DraftFeed | ParseError) -> DraftFeed | ParseError:
    """The entries built here, on the parse's thread: a long body's text (a megabyte of markup
    in one description) would otherwise be made on the writer, as it records."""
    if isinstance(parsed, ParseError):
        return parsed
    return dataclasses.replace(parsed, entries=tuple(built(d.build()) for d in parsed.entries))


def _unless_done(done: asyncio.Future[Any], settle: Callable[[], None]) -> None:
    if not done.done():  # else the poll was cancelled meanwhile
        settle()


def _parses_long(body: bytes) -> bool:
    """Whether a body is parsed apart (see BIG_BODY); gzip data may inflate to the cap."""
    return len(body) >= BIG_BODY or body.startswith(b"\x1f\x8b")


def log_failure(report: PollReport) -> None:
    """The daemon's one log line for a failed poll (`monitor poll` prints its own instead)."""
    wait = str(report.retry_in).split(".")[0] if report.retry_in is not None else "unknown"
    log.warning(
        "feed '%s': %s; next poll in %s",
        report.feed_id,
        report.error,
        wait,
        extra={"feed": report.feed_id},
    )


def _in_writer(p: Poller, work: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Run `work` on the poller's writer thread: transactions serialize on the writer lock
    anyway, and one thread holding the GIL spares the switching that several cost."""
    return asyncio.get_running_loop().run_in_executor(p.writer, functools.partial(work, *args))


async def flush_unchanged(p: Poller) -> int:
    """Write the deferred unchanged polls in one transaction; returns how many."""
    batch, p.deferred = p.deferred, []
    if batch:
        await _in_writer(p, workstate.release_unchanged, p.store, batch)
    return len(batch)


def _may_record(feed: Feed, work: FeedWork, result: FetchResult, now: datetime) -> bool:
    """Whether an unchanged poll might append an event: recovered, moved or stale changed.

    Decided on the health the claim read; when in doubt, the poll records in a transaction of
    its own, which decides again under the writer lock.
    """
    if work.health not in ("ok", "stale"):
        return True
    if result.moved_to and result.moved_to != work.url:
        return True
    if feed.stale_after is None:
        return False
    newest = work.newest_item_at
    stale = newest is None or newest < (now - feed.stale_after).timestamp()
    return stale != (work.health == "stale")


async def _defer_unchanged(
    p: Poller, feed: Feed, work: FeedWork, result: FetchResult, now: datetime
) -> PollReport:
    p.deferred.append(
        {
            "feed_id": feed.id,
            "owner": p.instance,
            "etag": result.etag or work.etag,
            "last_modified": result.last_modified or work.last_modified,
            "next_poll_at": next_poll(p, feed, now),
            "attempted_at": now.timestamp(),
        }
    )
    if len(p.deferred) >= FLUSH_EVERY:
        await flush_unchanged(p)
    return PollReport(feed.id, "not_modified" if result.status == 304 else "unchanged")


def poller_for(config: Config, store: EventStore, fetcher: Fetcher, instance: str) -> Poller:
    identity.prepare()
    return Poller(config, store, evaluate.compile_rules(config), fetcher, instance)
