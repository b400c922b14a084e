"""The daemon: APScheduler ticks that claim due work, signals, and configuration reload.

APScheduler only ticks. Each tick claims due feeds or alerts (leases in the database, so
several daemons can share one PostgreSQL log) and starts one task per claim; a hanging feed or
a silent mail server holds only its own task. A poll tick keeps claiming batches while feeds
are due (for up to about a tick), and writes its unchanged polls together at the end.
SIGTERM/SIGINT stop claiming and give in-flight work a few seconds to finish (each poll's
facts are one transaction, so an abandoned poll leaves nothing half-recorded; unchanged polls
are written before exit); a second signal exits at once. SIGHUP or a changed feeds.toml
reloads: a valid change records ConfigApplied, an invalid one is logged and the old
configuration keeps running.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import signal
import time
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor import alertwork, deliver, poll, runtime, workstate
from monitor.config import Config, available_secrets, load_config, secret_problems
from monitor.errors import ConfigError
from monitor.fetch import Fetcher, FetchLimits, guarded_client
from monitor.store import EventStore

log = logging.getLogger("monitor.daemon")

SHUTDOWN_GRACE = 7.0  # seconds in-flight work may take after SIGTERM (exit within 10 s)


def fetch_limits(config: Config) -> FetchLimits:
    s = config.settings
    return FetchLimits(
        deadline=s.fetch_timeout.total_seconds(),
        max_bytes=s.max_feed_bytes,
        max_redirects=s.max_redirects,
        allow_private=s.allow_private_networks,
        user_agent=s.user_agent,
        concurrency=s.concurrency,
        per_host=s.per_host_concurrency,
    )


class Daemon:
    """One monitor process: owns the store, the HTTP clients and the scheduler."""

    def __init__(self, config: Config, env: Mapping[str, str]) -> None:
        self.config, self.env = config, env
        self.instance = runtime.instance_name()
        self.store: EventStore = runtime.open_store(config)
        self.rng = random.Random()
        self.inflight: set[asyncio.Task[Any]] = set()
        self.claimed_alerts: set[str] = set()
        self.stopping = False
        self.stop_event = asyncio.Event()
        self.config_stamp = self._stamp()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        now = datetime.now(UTC)
        head = self.store.head()
        log.info("event log head: %s", f"{head[0]}:{head[1]}" if head else "empty")
        applied = runtime.apply_config(self.store, self.config, instance=self.instance, now=now)
        if applied is not None:
            log.info("configuration %s applied", applied.config_sha256[:12])
        runtime.record_baselines(self.store, self.config, instance=self.instance, now=now)
        workstate.sync_feeds(self.store, self.config, now=time.time(), rng=self.rng)
        for problem in secret_problems(self.config, self.env):
            log.warning("%s: alerts to that channel wait until it is set", problem)
        await self._open_clients()

    async def _open_clients(self) -> None:
        limits = fetch_limits(self.config)
        self.fetcher = await Fetcher(limits).__aenter__()
        self.client: httpx.AsyncClient = guarded_client(
            allow_private=limits.allow_private, timeout=30.0, user_agent=limits.user_agent
        )
        self.poller = poll.poller_for(self.config, self.store, self.fetcher, self.instance)
        self.poller.defer_unchanged = True
        self.dispatcher = deliver.Dispatcher(
            self.config,
            self.store,
            available_secrets(self.config, self.env),
            self.client,
            self.instance,
        )

    async def close(self) -> None:
        await self.fetcher.__aexit__(None, None, None)
        await self.client.aclose()
        await asyncio.to_thread(self.poller.close)
        self.store.close()

    async def run_once(self) -> int:
        """Every feed once, the deadline check, every due alert; then exit."""
        await self.start()
        try:
            ids = [f.id for f in self.config.feeds if f.enabled]
            works = workstate.claim_feeds(
                self.store,
                owner=self.instance,
                now=time.time(),
                lease=self._lease(),
                limit=len(ids) or 1,
                feed_ids=ids,
                due_only=False,
            )
            reports = await asyncio.gather(*(poll.poll_feed(self.poller, w) for w in works))
            await poll.flush_unchanged(self.poller)
            for r in reports:
                if r.outcome == "failed":
                    poll.log_failure(r)
                    continue
                log.info(
                    "feed '%s': %s, %d new, %d transitions",
                    r.feed_id,
                    r.outcome,
                    r.discovered,
                    r.transitions,
                )
            runtime.check_deadlines(
                self.store, self.config, instance=self.instance, now=datetime.now(UTC)
            )
            await deliver.deliver_due(self.dispatcher)
        finally:
            await self.close()
        return 0

    async def run_forever(self) -> int:
        await self.start()
        # What start-up built (configuration, rules, the public-suffix list, tables) lives as
        # long as the daemon: full collections need not walk it again (about 0.4 ms a changed
        # poll in `make bench`, where a full collection walked some 100,000 objects).
        gc.freeze()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self._reload("SIGHUP")))
        scheduler = AsyncIOScheduler(timezone=UTC)
        tick = self.config.settings.tick.total_seconds()
        # coalesce + max_instances=1: a late tick runs once instead of piling up;
        # misfire_grace_time=None: never silently skip a late tick (3.x skips after 1 s).
        common: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        scheduler.add_job(self.poll_tick, "interval", seconds=tick, next_run_time=_now(), **common)
        scheduler.add_job(
            self._deliver_tick, "interval", seconds=tick, next_run_time=_now(), **common
        )
        scheduler.add_job(
            self._deadline_tick,
            "interval",
            next_run_time=_now(),
            seconds=self.config.settings.deadline_check_interval.total_seconds(),
            **common,
        )
        scheduler.add_job(self._watch_config, "interval", seconds=2, **common)
        scheduler.start()
        log.info(
            "monitoring %d feeds and %d milestones as %s",
            len(self.config.feeds),
            len(self.config.milestones),
            self.instance,
        )
        await self.stop_event.wait()
        scheduler.shutdown(wait=False)
        if self.inflight:
            log.info(
                "waiting up to %.0f s for %d in-flight tasks", SHUTDOWN_GRACE, len(self.inflight)
            )
            _, pending = await asyncio.wait(self.inflight, timeout=SHUTDOWN_GRACE)
            for task in pending:
                task.cancel()
        await poll.flush_unchanged(self.poller)
        await self.close()
        log.info("stopped")
        return 0

    def _on_stop_signal(self) -> None:
        if self.stopping:
            log.warning("second signal: exiting at once")
            os._exit(1)
        log.info("stopping: no new work is claimed")
        self.stopping = True
        self.stop_event.set()

    # --- ticks ----------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(self._guard(coro))
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    async def _guard(self, coro: Coroutine[Any, Any, Any]) -> None:
        """The per-job wrapper: log anything unexpected, keep the daemon alive."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unexpected error in a background task")

    def _lease(self) -> float:
        """Long enough for a fetch and its recording; a dead owner's lease soon expires."""
        return self.config.settings.fetch_timeout.total_seconds() * 2 + 10

    def _heartbeat(self) -> None:
        """Touch MONITOR_HEARTBEAT (if set) so `monitor health` can tell the daemon is alive."""
        path = self.env.get("MONITOR_HEARTBEAT")
        if path:
            Path(path).write_text(f"{time.time():.0f} {self.instance}\n")

    async def poll_tick(self) -> None:
        """Claim due feeds in batches and keep claiming while more are due, for about a tick.

        At most `concurrency * 4` polls are in flight (a lease must outlast the queue behind
        it); a batch is claimed once half of that is free, so a busy tick costs a few claim
        transactions rather than one per feed. Unchanged polls are written together at the end.
        """
        self._heartbeat()
        cap = self.config.settings.concurrency * 4
        loop = asyncio.get_running_loop()
        until = loop.time() + self.config.settings.tick.total_seconds() * 0.9
        ids = frozenset(f.id for f in self.config.feeds if f.enabled)
        try:
            while not self.stopping and loop.time() < until:
                room = cap - len(self.inflight)
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
                    lease=self._lease(),
                    limit=room,
                    feed_ids=ids,
                )
                for work in works:
                    self._spawn(self._poll_one(work))
                if len(works) < room:
                    break  # nothing more is due now
        finally:
            await poll.flush_unchanged(self.poller)

    async def _poll_one(self, work: workstate.FeedWork) -> None:
        report = await poll.poll_feed(self.poller, work)
        log.debug("feed '%s': %s", report.feed_id, report.outcome)
        if report.outcome == "failed":
            poll.log_failure(report)
        if report.discovered or report.transitions:
            log.info(
                "feed '%s': %d new items, %d transitions",
                report.feed_id,
                report.discovered,
                report.transitions,
            )

    async def _deliver_tick(self) -> None:
        if self.stopping:
            return
        d = self.dispatcher
        now = datetime.now(UTC)
        claimed = await asyncio.to_thread(
            alertwork.claim_alerts,
            self.store,
            owner=self.instance,
            now=now.timestamp(),
            lease=deliver.LEASE_SECONDS,
            limit=50,
        )
        for alert_id, _ in claimed:
            self._spawn(deliver.deliver_one(d, alert_id, now))

    async def _deadline_tick(self) -> None:
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
            log.warning("milestone '%s' is overdue: %s", change.milestone_id, change.reason)

    # --- reload ---------------------------------------------------------------------------

    def _stamp(self) -> tuple[float, int] | None:
        try:
            st = Path(self.config.path).stat()
        except OSError:
            return None
        return (st.st_mtime, st.st_size)

    async def _watch_config(self) -> None:
        stamp = self._stamp()
        if stamp != self.config_stamp and stamp is not None:
            self.config_stamp = stamp
            await self._reload("file changed")

    async def _reload(self, why: str) -> None:
        self.config_stamp = self._stamp()  # the watcher need not read this same file again
        try:
            new = load_config(Path(self.config.path), self.env)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload (%s) refused: %s", why, problem)
            log.error("the previous configuration keeps running")
            return
        if not new.feeds:  # an editor caught mid-save, most likely: never drop every feed
            log.error("reload (%s) refused: %s has no [[feeds]]", why, new.path)
            log.error("the previous configuration keeps running")
            return
        if new.sha256 == self.config.sha256:
            return
        if new.settings.database_url != self.config.settings.database_url:
            log.warning("database_url changed: takes effect at the next start")
        old_fetcher, old_client, old_poller = self.fetcher, self.client, self.poller
        self.config = new.model_copy(
            update={
                "settings": new.settings.model_copy(
                    update={"database_url": self.config.settings.database_url}
                )
            }
        )
        runtime.apply_config(self.store, self.config, instance=self.instance, now=datetime.now(UTC))
        runtime.record_baselines(
            self.store, self.config, instance=self.instance, now=datetime.now(UTC)
        )
        workstate.sync_feeds(self.store, self.config, now=time.time(), rng=self.rng)
        await self._open_clients()
        log.info("configuration reloaded (%s)", why)
        self._spawn(_close_later(old_fetcher, old_client, old_poller, self._lease()))


async def _close_later(
    fetcher: Fetcher, client: httpx.AsyncClient, poller: poll.Poller, delay: float
) -> None:
    """Once polls started before a reload are done: their deferred writes, then the clients."""
    await poll.flush_unchanged(poller)
    await asyncio.sleep(delay)
    await poll.flush_unchanged(poller)
    await fetcher.__aexit__(None, None, None)
    await client.aclose()
    await asyncio.to_thread(poller.close)


def _now() -> datetime:
    return datetime.now(UTC)


async def run(config: Config, env: Mapping[str, str], *, once: bool) -> int:
    daemon = Daemon(config, env)
    return await (daemon.run_once() if once else daemon.run_forever())
