"""Operational working state beside the log: feed schedules, HTTP validators, leases.

The alert queue's table is defined here with the others; its operations are `alertwork`.
None of this is history: it may be lost without losing a fact (`monitor rebuild` restores the
alert queue from the outbox projection; feeds are simply polled again). Times are epoch
seconds so both databases compare them the same way. Claims take leases with an owner and an
expiry, using `FOR UPDATE SKIP LOCKED` on PostgreSQL so several daemons share the work.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import sqlalchemy as sa

from monitor.config import Config
from monitor.store import EventStore, rawsql

metadata = sa.MetaData()

feed_state = sa.Table(
    "feed_state",
    metadata,
    sa.Column("feed_id", sa.String(200), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),  # the URL polled now (follows FeedMoved)
    sa.Column("configured_url", sa.Text, nullable=False),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("body_hash", sa.String(64)),
    sa.Column("next_poll_at", sa.Float, nullable=False),
    sa.Column("lease_owner", sa.String(200)),
    sa.Column("lease_expires", sa.Float),
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("last_attempt_at", sa.Float),
    sa.Column("last_success_at", sa.Float),
    sa.Column("last_error", sa.Text),
    sa.Column("newest_item_at", sa.Float),
    sa.Column("polls", sa.Integer, nullable=False, default=0),
    # fingerprints of the items in the last recorded body (monitor.chunks): the next changed
    # body's items with these exact bytes are known and not parsed again
    sa.Column("item_prints", sa.Text),
)
# claims walk due feeds in next-poll order and stop at the batch size
next_poll_index = sa.Index("ix_feed_state_next_poll_at", feed_state.c.next_poll_at)

alert_work = sa.Table(
    "alert_work",
    metadata,
    sa.Column("alert_id", sa.String(80), primary_key=True),
    sa.Column("channel_id", sa.String(200), nullable=False),
    sa.Column("due_at", sa.Float),  # NULL: nothing more to do
    sa.Column("lease_owner", sa.String(200)),
    sa.Column("lease_expires", sa.Float),
)


@dataclass(frozen=True, slots=True)
class FeedWork:
    """A claimed feed: what the poller needs to fetch it conditionally."""

    feed_id: str
    url: str
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    failures: int
    newest_item_at: float | None
    # the feed's health in the log ("ok" when it never changed) as of the claim; None: unknown.
    # Only the lease holder records feed events, so it still holds while the lease does.
    health: str | None = None
    item_prints: str | None = None  # see feed_state.item_prints; read only by changed polls


def ensure(store: EventStore) -> None:
    """Create the working tables if missing; several daemons (and commands) may start at once.

    On SQLite this takes the writer lock up front (a deferred transaction that reads, then
    writes, fails at once with "database is locked" when another writer holds the lock).
    """
    with work_tx(store) as conn:
        if store.dialect == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7305917206)")
        metadata.create_all(conn)
        next_poll_index.create(conn, checkfirst=True)  # tables made before the index existed
        columns = {c["name"] for c in sa.inspect(conn).get_columns("feed_state")}
        if "item_prints" not in columns:  # tables made before the column existed
            conn.exec_driver_sql("ALTER TABLE feed_state ADD COLUMN item_prints TEXT")


@contextmanager
def work_tx(store: EventStore) -> Iterator[sa.Connection]:
    """A short write transaction for leases: row locks on PostgreSQL, the writer lock on SQLite."""
    if store.dialect == "postgresql":
        with store.engine.begin() as conn:
            yield conn
    else:
        with store.transaction() as tx:
            yield tx.conn


def sync_feeds(store: EventStore, config: Config, *, now: float, rng: random.Random) -> None:
    """Add rows for new feeds and spread overdue first polls so a restart is not a stampede."""
    with work_tx(store) as conn:
        if store.dialect == "postgresql":  # two daemons starting together sync one at a time
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7305917207)")
        rows = {r.feed_id: r for r in conn.execute(sa.select(feed_state))}
        for feed in config.feeds:
            interval = feed.effective_interval(config.settings).total_seconds()
            spread = min(interval, config.settings.startup_spread.total_seconds())
            row = rows.get(feed.id)
            if row is None:
                conn.execute(
                    feed_state.insert().values(
                        feed_id=feed.id,
                        url=feed.url,
                        configured_url=feed.url,
                        failures=0,
                        polls=0,
                        next_poll_at=now + rng.uniform(0, spread),
                    )
                )
            elif row.configured_url != feed.url:
                conn.execute(
                    feed_state.update()
                    .where(feed_state.c.feed_id == feed.id)
                    .values(
                        url=feed.url,
                        configured_url=feed.url,
                        etag=None,
                        last_modified=None,
                        body_hash=None,
                        item_prints=None,
                        next_poll_at=now + rng.uniform(0, spread),
                    )
                )
            elif row.next_poll_at < now:
                # Decided again on the row as it is now: another daemon may have polled the
                # feed since it was read (or be polling it), and its next poll time stands.
                c = feed_state.c
                free = sa.or_(c.lease_expires.is_(None), c.lease_expires < now)
                conn.execute(
                    feed_state.update()
                    .where(c.feed_id == feed.id, c.next_poll_at < now, free)
                    .values(next_poll_at=now + rng.uniform(0, spread))
                )


def claim_feeds(
    store: EventStore,
    *,
    owner: str,
    now: float,
    lease: float,
    limit: int,
    feed_ids: Collection[str],
    due_only: bool = True,
) -> list[FeedWork]:
    """Lease up to `limit` due feeds (all of `feed_ids` when due_only is False)."""
    if not feed_ids:
        return []
    values: dict[str, Any] = {"now": now}
    if store.dialect == "postgresql":
        values.update(limit=limit, **rawsql.members(list(feed_ids)))
    with work_tx(store) as conn:
        found: Iterable[Any] = conn.execute(_claim_query(store.dialect, due_only), values)
        if store.dialect != "postgresql":
            # Under SQLite's writer lock, walking the next-poll index and skipping feeds not
            # configured here costs far less than matching every row against 10,000 ids.
            wanted = feed_ids if isinstance(feed_ids, AbstractSet) else frozenset(feed_ids)
            found = (r for r in found if r.feed_id in wanted)
        rows = list(itertools.islice(found, limit))
        if not rows:
            return []
        claimed = [r.feed_id for r in rows]
        until = {"owner": owner, "until": now + lease, **rawsql.members(claimed)}
        conn.execute(_lease_statement(store.dialect), until)
    # Read once the claim commits: only the lease holder records feed events, so it still holds.
    health = {k: str(s.get("health")) for k, s in store.states_of("feeds", claimed).items()}
    return [
        FeedWork(
            r.feed_id,
            r.url,
            r.etag,
            r.last_modified,
            r.body_hash,
            r.failures,
            r.newest_item_at,
            health.get(r.feed_id, "ok"),
            r.item_prints,
        )
        for r in rows
    ]


@cache
def _claim_query(dialect: str, due_only: bool) -> sa.Select[Any]:
    """Free feeds (and due, with `due_only`) in next-poll order; on PostgreSQL only those in
    `members`, at most `limit`, locked, skipping those another claim holds. Built once: a
    claim is short, and building its statements cost more than running them."""
    c = feed_state.c
    now: sa.BindParameter[float] = sa.bindparam("now")
    query = sa.select(feed_state).where(sa.or_(c.lease_expires.is_(None), c.lease_expires < now))
    if due_only:
        query = query.where(c.next_poll_at <= now)
    query = query.order_by(c.next_poll_at)
    if dialect == "postgresql":
        query = query.where(rawsql.member(dialect, c.feed_id)).limit(sa.bindparam("limit"))
        query = query.with_for_update(skip_locked=True)
    return query


@cache
def _lease_statement(dialect: str) -> sa.Update:
    """The feeds in `members` leased to `owner` until `until`."""
    return (
        feed_state.update()
        .where(rawsql.member(dialect, feed_state.c.feed_id))
        .values(lease_owner=sa.bindparam("owner"), lease_expires=sa.bindparam("until"))
    )


@cache
def _renew_statement(dialect: str) -> sa.Update:
    """`owner`'s leases of the feeds in `members` extended to `until`."""
    c = feed_state.c
    return (
        feed_state.update()
        .where(rawsql.member(dialect, c.feed_id), c.lease_owner == sa.bindparam("owner"))
        .values(lease_expires=sa.bindparam("until"))
    )


def renew_leases(store: EventStore, *, owner: str, feed_ids: Sequence[str], until: float) -> None:
    """Extend `owner`'s leases of these feeds to `until`; a lease another has taken stays."""
    values = {"owner": owner, "until": until, **rawsql.members(list(feed_ids))}
    with work_tx(store) as conn:
        conn.execute(_renew_statement(store.dialect), values)


def release_feed(conn: sa.Connection, feed_id: str, *, owner: str, **values: Any) -> None:
    """Record a poll's outcome, count the poll and give `owner`'s lease back (inside the poll's
    transaction). One statement per set of columns, built once: a changed poll is short."""
    params = {f"v_{k}": v for k, v in values.items()}
    params.update(v__feed_id=feed_id, v__owner=owner)
    rawsql.execute_many(conn, _release_statement(tuple(sorted(values))), [params])


@cache
def _release_statement(columns: tuple[str, ...]) -> sa.Update:
    c = feed_state.c
    values: dict[str, Any] = {k: sa.bindparam(f"v_{k}") for k in columns}
    values.update(polls=c.polls + 1, **_given_back(sa.bindparam("v__owner")))
    return feed_state.update().where(c.feed_id == sa.bindparam("v__feed_id")).values(values)


def _given_back(owner: sa.BindParameter[str]) -> dict[str, Any]:
    """The lease columns once `owner` gives the lease back: cleared if the lease is still
    `owner`'s; one that lapsed and another daemon took meanwhile stays that daemon's."""
    c = feed_state.c
    mine = c.lease_owner == owner
    return {
        "lease_owner": sa.case((mine, sa.null()), else_=c.lease_owner),
        "lease_expires": sa.case((mine, sa.null()), else_=c.lease_expires),
    }


def release_unchanged(store: EventStore, polls: Sequence[Mapping[str, Any]]) -> None:
    """Record many unchanged polls (no event) in one transaction and give their leases back.

    Each of `polls` holds feed_id, owner, etag, last_modified, next_poll_at and attempted_at. Losing
    these in a crash loses only next-poll times: the leases expire and the feeds are polled again.
    """
    if not polls:
        return
    with work_tx(store) as conn:
        rows = [{f"b_{k}": v for k, v in poll.items()} for poll in polls]
        rawsql.execute_many(conn, _unchanged_statement(), rows)


@cache
def _unchanged_statement() -> sa.Update:
    c = feed_state.c
    return (
        feed_state.update()
        .where(c.feed_id == sa.bindparam("b_feed_id"))
        .values(
            etag=sa.bindparam("b_etag"),
            last_modified=sa.bindparam("b_last_modified"),
            next_poll_at=sa.bindparam("b_next_poll_at"),
            last_attempt_at=sa.bindparam("b_attempted_at"),
            last_success_at=sa.bindparam("b_attempted_at"),
            failures=0,
            last_error=None,
            polls=c.polls + 1,
            **_given_back(sa.bindparam("b_owner")),
        )
    )


def feed_rows(store: EventStore) -> dict[str, Any]:
    with store.engine.connect() as conn:
        return {r.feed_id: r for r in conn.execute(sa.select(feed_state))}
