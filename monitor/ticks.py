"""What each scheduler tick does: claim due feeds and alerts, check deadlines; a task per claim.

Claims are leases in the database, so several daemons can share one PostgreSQL log; each claim
becomes one task, so a hanging feed or a silent mail server holds only its own. A poll tick
keeps claiming batches while feeds are due (for up to about a tick), and writes its unchanged
polls together at the end.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from monitor import alertwork, deliver, poll, runtime, workstate
from monitor.clients import Clients
from monitor.config import Config
from monitor.errors import StoreError
from monitor.oneline import counted, first_line
from monitor.redact import redacted_line
from monitor.store import EventStore

log = logging.getLogger("monitor.daemon")  # the daemon's work: its log lines keep its name


class Ticks:
    """The jobs of one process over its store; a reload replaces `config` and `clients`."""

    clients: Clients  # opened at start-up

    def __init__(self, config: Config, env: Mapping[str, str]) -> None:
        self.config, self.env = config, env
        self.instance = runtime.instance_name()
        self.store: EventStore = runtime.open_store(config)
        self.rng = random.Random()
        self.inflight: set[asyncio.Task[Any]] = set()
        self.delivering: set[str] = set()  # alert ids this process is sending now
        self.stopping = False
        self.heartbeat_failing = False
        # the jobs that met an event log out of reach since it was said to be (a poll's and a
        # delivery's: the tick's that started them; "task": another's, a reload's)
        self.unreachable: set[str] = set()

    @property
    def poller(self) -> poll.Poller:
        """The current configuration's poller."""
        return self.clients.poller

    def spawn(self, coro: Coroutine[Any, Any, Any], job: str = "task") -> None:
        task = asyncio.ensure_future(self._guard(coro, job))
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    async def _guard(self, coro: Coroutine[Any, Any, Any], job: str = "task") -> bool:
        """The per-job wrapper, keeping the daemon alive: an event log out of reach is said in
        one line once (`_log_unreachable`), a log that refuses what a job does in one line, and
        anything else, a bug, with its traceback. True when the job ended well."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if out_of_reach(exc):
                self._log_unreachable(exc, job)
            elif isinstance(exc, StoreError):  # our own sentence: a damaged log, say
                log.error("%s", redacted_line(str(exc)))
            else:
                log.exception("unexpected error in a background task")
        else:
            return True
        return False

    async def scheduled(self, job: str) -> None:
        """A scheduled tick (`job` names it). The event log is back when a job that met it out
        of reach ends well: not any job, as a full disk fails the claims of a poll tick while a
        deliver tick with nothing to send ends well (it would be said back every tick), and
        not every job, as the deadline tick may run an hour later."""
        try:
            if not await self._guard(getattr(self, job)(), job):
                return
        except asyncio.CancelledError:
            if self.stopping:  # the stop cancels a tick still waiting for room: no error
                return
            raise
        if job in self.unreachable or self.unreachable == {"task"}:
            self.unreachable.clear()
            log.info("event log reachable again")

    def _log_unreachable(self, exc: Exception, job: str) -> None:
        """An event log out of reach (a server down or restarting, a full disk) stops no tick:
        each tries again. Said once, in one line, until the jobs that met it end well."""
        said = bool(self.unreachable)
        self.unreachable.add(job)
        if said:
            return
        log.error(
            "event log out of reach: %s; every tick tries again", redacted_line(first_line(exc))
        )

    def lease(self) -> float:
        """Long enough for a fetch and its recording; a dead owner's lease soon expires."""
        return self.config.settings.fetch_timeout.total_seconds() * 2 + 10

    def _heartbeat(self) -> None:
        """Touch MONITOR_HEARTBEAT (if set) so `monitor health` can tell the daemon is alive.

        A heartbeat that cannot be written is logged once (and its return), never a reason
        to stop polling: `monitor health` reports the stale file, which is the right signal.
        """
        path = self.env.get("MONITOR_HEARTBEAT")
        if not path:
            return
        try:
            Path(path).write_text(f"{time.time():.0f} {self.instance}\n")
        except OSError as exc:
            if not self.heartbeat_failing:
                log.warning("heartbeat %s cannot be written (%s); polling goes on", path, exc)
            self.heartbeat_failing = True
            return
        if self.heartbeat_failing:
            log.info("heartbeat %s is written again", path)
        self.heartbeat_failing = False

    async def poll_tick(self) -> None:
        """Claim due feeds in batches and keep claiming while more are due, for about a tick.

        At most `concurrency * 4` polls are in flight (a lease must outlast the queue behind
        it); a batch is claimed once half of that is free, so a busy tick costs a few claim
        transactions rather than one per feed. Polls that wait for their own host only do not
        count (`Fetcher.host_queued`): 45 feeds of one hanging host filled the cap, and the
        other feeds went unpolled until the hanging fetches timed out, two at a time (leases
        are renewed while polls wait). Unchanged polls are written together at the end.
        """
        self._heartbeat()
        await poll.renew_leases(self.poller, self.lease())
        cap = self.config.settings.concurrency * 4
        loop = asyncio.get_running_loop()
        until = loop.time() + self.config.settings.tick.total_seconds() * 0.9
        ids = frozenset(f.id for f in self.config.feeds if f.enabled)
        try:
            while not self.stopping and loop.time() < until:
                room = cap - len(self.inflight) + self.poller.fetcher.host_queued
                if room < max(cap // 2, 1):
                    await asyncio.wait(
                        set(self.inflight),
                        timeout=until - loop.time(),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    continue
                works = await asyncio.to_thread(
                    workstate.claim_feeds,
                    self.store,
                    owner=self.instance,
                    now=time.time(),
                    lease=self.lease(),
                    limit=room,
                    feed_ids=ids,
                )
                for work in works:
                    self.spawn(self._poll_one(work), "poll_tick")
                if len(works) < room:
                    break  # nothing more is due now
        finally:
            await poll.flush_unchanged(self.poller)

    def lease_period(self) -> float:
        """How often the leases of polls in flight are looked at: a tick, or a quarter of a
        lease when that is sooner, so that a lease renewed once half of it has passed is
        renewed again before it lapses (a tick of 30 s and a lease of 50 s: it would lapse)."""
        return min(self.config.settings.tick.total_seconds(), self.lease() / 4)

    async def keep_leases(self) -> None:
        """Renew the leases of long polls every `lease_period`, until cancelled (the daemon's,
        whose poll ticks may come too seldom for them, and `run --once`'s, which has none)."""
        while True:
            await asyncio.sleep(self.lease_period())
            await self._guard(poll.renew_leases(self.poller, self.lease()))

    async def _poll_one(self, work: workstate.FeedWork) -> None:
        try:
            self.poller.config.feed(work.feed_id)
        except KeyError:  # claimed under the configuration a reload replaced, which removed it:
            # not polled (its lease lapses; nothing is recorded of a feed no longer watched)
            log.debug("feed '%s': removed by a reload since it was claimed", work.feed_id)
            return
        report = await poll.poll_feed(self.poller, work)
        log.debug("feed '%s': %s", report.feed_id, report.outcome)
        if report.outcome == "failed":
            poll.log_failure(report)
        if report.discovered or report.revised or report.transitions:
            revised = f", {report.revised} revised" if report.revised else ""
            log.info(
                "feed '%s': %s%s, %s",
                report.feed_id,
                counted(report.discovered, "new item"),
                revised,
                counted(report.transitions, "transition"),
                extra={"feed": report.feed_id},
            )

    async def deliver_tick(self) -> None:
        """Claim the due alerts and send each in a task of its own.

        The dispatcher is the one in effect once the claim returns, not when it began: a claim
        can wait longer than a reload's lease (a database slow to answer), and the clients the
        reload replaced are closed once that lease has passed and their dispatcher is idle.
        """
        if self.stopping:
            return
        now = datetime.now(UTC)
        claimed = await asyncio.to_thread(
            alertwork.claim_alerts,
            self.store,
            owner=self.instance,
            now=now.timestamp(),
            lease=deliver.LEASE_SECONDS,
            limit=50,
            skip_channels=self.clients.dispatcher.held_channels(),
        )
        d = self.clients.dispatcher
        for alert_id, _ in claimed:
            if alert_id in self.delivering:
                continue  # its lease ran out while this process sends it: the claim renewed it
            self.delivering.add(alert_id)
            self.spawn(self._deliver_one(d, alert_id, now), "deliver_tick")

    async def _deliver_one(self, d: deliver.Dispatcher, alert_id: str, now: datetime) -> None:
        try:
            await deliver.deliver_one(d, alert_id, now)
        finally:
            self.delivering.discard(alert_id)

    async def deadline_tick(self) -> None:
        if self.stopping:
            return
        changes = await asyncio.to_thread(
            runtime.check_deadlines,
            self.store,
            self.config,
            instance=self.instance,
            now=datetime.now(UTC),
        )
        for change in changes:
            log.warning(
                "milestone '%s' is overdue: %s",
                change.milestone_id,
                change.reason,
                extra={"milestone": change.milestone_id},
            )


# The errors of a database the daemon cannot reach now: the server down or restarting, a lost
# connection, the pool's wait, a lock held too long, a full disk (SQLite's are all operational).
_UNREACHABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)


def out_of_reach(exc: BaseException) -> bool:
    """Whether an error says the event log is out of reach, directly or as the cause of the
    store's own StoreError; not a constraint or a statement the log refuses, which is a bug."""
    cause = exc.__cause__ if isinstance(exc, StoreError) else exc
    return isinstance(cause, _UNREACHABLE)
