"""The daemon: start-up, APScheduler running the jobs of ticks.py, signals, configuration reload.

APScheduler only ticks; what a tick claims and starts is ticks.py's. SIGTERM/SIGINT stop
claiming and give in-flight work a few seconds to finish (each poll's facts are one
transaction, so an abandoned poll leaves nothing half-recorded; unchanged polls are written
before exit); a second signal exits at once. SIGHUP or a changed feeds.toml reloads
(reload.py): a valid change records ConfigApplied, an invalid one is logged and the old
configuration keeps running.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor import deliver, logs, poll, runtime, workstate
from monitor.clients import Clients
from monitor.config import Config, secret_problems, secret_values, short_secrets
from monitor.oneline import counted
from monitor.reload import config_stamp, reloaded
from monitor.ticks import Ticks

log = logging.getLogger("monitor.daemon")

BATCH = 50  # alerts `run --once` claims at a time
SHUTDOWN_GRACE = 7.0  # seconds in-flight work may take after SIGTERM (exit within 10 s)


class Daemon(Ticks):
    """One monitor process: the ticks' store and clients, the scheduler, signals and reload."""

    def __init__(self, config: Config, env: Mapping[str, str]) -> None:
        super().__init__(config, env)
        self.stop_event = asyncio.Event()
        self.config_stamp = config_stamp(config)
        self.scheduler: AsyncIOScheduler | None = None  # run_forever's
        # clients replaced by a reload, closed once the polls and sends that use them are done:
        # not in-flight work, so a stop waits for none of them and closes them at once
        self.retiring: set[asyncio.Task[bool]] = set()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        now = datetime.now(UTC)
        head = self.store.head()
        log.info("event log head: %s", f"{head[0]}:{head[1]}" if head else "empty")
        self._take_config(now)
        self._warn_held()
        self.clients = await Clients.open(self.config, self.store, self.env, self.instance)

    async def close(self) -> None:
        await self.clients.close()
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
                lease=self.lease(),
                limit=len(ids) or 1,
                feed_ids=ids,
                due_only=False,
            )
            keeper = asyncio.ensure_future(self.keep_leases())
            try:
                reports = await asyncio.gather(*(poll.poll_feed(self.poller, w) for w in works))
            finally:
                keeper.cancel()
            await poll.flush_unchanged(self.poller)
            for r in reports:
                if r.outcome == "failed":
                    poll.log_failure(r)
                    continue
                log.info(
                    "feed '%s': %s, %d new, %s%s",
                    r.feed_id,
                    r.outcome,
                    r.discovered,
                    f"{r.revised} revised, " if r.revised else "",
                    counted(r.transitions, "transition"),
                    extra={"feed": r.feed_id},
                )
            runtime.check_deadlines(
                self.store, self.config, instance=self.instance, now=datetime.now(UTC)
            )
            # every alert due now, batch after batch; one retried is due later, not again now
            due_by, d = datetime.now(UTC), self.clients.dispatcher
            while len(await deliver.deliver_due(d, due_by=due_by, limit=BATCH)) == BATCH:
                pass
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
        loop.add_signal_handler(signal.SIGHUP, lambda: self.spawn(self._reload("SIGHUP")))
        self.scheduler = scheduler = AsyncIOScheduler(timezone=UTC)
        # coalesce + max_instances=1: a late tick runs once instead of piling up;
        # misfire_grace_time=None: never silently skip a late tick (3.x skips after 1 s).
        common: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        for job, seconds in self._intervals().items():
            scheduler.add_job(
                self.scheduled, "interval", args=[job], id=job, seconds=seconds,
                next_run_time=_now(), **common,
            )  # fmt: skip
        scheduler.add_job(self._watch_config, "interval", seconds=2, **common)
        scheduler.start()
        keeper = asyncio.ensure_future(self.keep_leases())  # of polls in flight, until the end
        log.info(
            "monitoring %s and %s as %s",
            counted(len(self.config.feeds), "feed"),
            counted(len(self.config.milestones), "milestone"),
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
        keeper.cancel()
        for task in self.retiring:
            task.cancel()
        await asyncio.gather(*self.retiring, return_exceptions=True)
        await poll.flush_unchanged(self.poller)
        await self.close()
        log.info("stopped")
        return 0

    def _intervals(self) -> dict[str, float]:
        """Each scheduled tick's interval in seconds, as the configuration sets it."""
        settings = self.config.settings
        tick = settings.tick.total_seconds()
        return {
            "poll_tick": tick,
            "deliver_tick": tick,
            "deadline_tick": settings.deadline_check_interval.total_seconds(),
        }

    def _on_stop_signal(self) -> None:
        if self.stopping:
            log.warning("second signal: exiting at once")
            os._exit(1)
        log.info("stopping: no new work is claimed")
        self.stopping = True
        self.stop_event.set()

    def _enable_moved(self) -> None:
        for e in runtime.enable_moved_channels(self.store, self.config, instance=self.instance):
            log.info("channel '%s' enabled: %s", e.channel_id, e.reason)

    def _take_config(self, now: datetime) -> None:
        """What the configuration in effect records at start and reload: ConfigApplied, webhook
        channels enabled again, baselines; then the feeds' rows."""
        applied = runtime.apply_config(self.store, self.config, instance=self.instance)
        if applied is not None:
            log.info("configuration %s applied", applied.config_sha256[:12])
        self._enable_moved()
        runtime.record_baselines(self.store, self.config, instance=self.instance, now=now)
        for problem in runtime.baseline_conflicts(self.store, self.config):
            log.warning("%s", problem)
        workstate.sync_feeds(self.store, self.config, now=time.time(), rng=self.rng)

    def _warn_held(self) -> None:
        """Name each channel whose alerts are held for a secret this process does not have,
        and each whose secret is too short to be scrubbed from the words of log lines."""
        for problem in secret_problems(self.config, self.env):
            log.warning(
                "%s: alerts to that channel are held (not attempted, no retry used) until a "
                "daemon that has it delivers them",
                problem,
            )
        for warning in short_secrets(self.config, self.env):
            log.warning("%s", warning)

    # --- reload ---------------------------------------------------------------------------

    async def _watch_config(self) -> None:
        stamp = config_stamp(self.config)
        if stamp != self.config_stamp and stamp is not None:
            self.config_stamp = stamp
            await self._reload("file changed")

    async def _reload(self, why: str) -> None:
        self.config_stamp = config_stamp(self.config)  # the watcher need not read it again
        new = reloaded(self.config, self.env, why)
        if new is None:
            return
        old, intervals = self.clients, self._intervals()
        self.config = new
        if self.scheduler is not None:
            for job, seconds in self._intervals().items():
                if seconds != intervals[job]:
                    self.scheduler.reschedule_job(job, trigger="interval", seconds=seconds)
        self._take_config(datetime.now(UTC))
        logs.scrub_also(secret_values(self.config, self.env))
        self._warn_held()
        self.clients = await Clients.open(self.config, self.store, self.env, self.instance)
        # the polls still running on the old poller (a long body's parse) are renewed with the
        # new one's: each tick renews the current poller's leases only
        self.clients.poller.leases = old.poller.leases
        log.info("configuration reloaded (%s)", why)
        retiring = asyncio.create_task(self._guard(old.close_later(self.lease())))
        self.retiring.add(retiring)
        retiring.add_done_callback(self.retiring.discard)


def _now() -> datetime:
    return datetime.now(UTC)


async def run(config: Config, env: Mapping[str, str], *, once: bool) -> int:
    daemon = Daemon(config, env)
    return await (daemon.run_once() if once else daemon.run_forever())
