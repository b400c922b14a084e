"""Delivery across crashes and processes: at least once, duplicates carry the same id."""

from __future__ import annotations

import asyncio
import email
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor import alertwork, deliver, workstate
from monitor.config import available_secrets
from monitor.daemon import Daemon
from monitor.events import AlertQueued
from monitor.fetch import guarded_client
from monitor.runtime import open_store
from monitor.store import NewEvent
from tests.feedserver import FeedServer
from tests.kit import ROOT, load, rss, webhook_channel, write_config
from tests.receivers import Reply, SmtpServer, WebhookReceiver
from tests.test_delivery import CONFIRMING, ENV, channels, deliver_at


def run_once_process(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", "--config", str(path), "run",
                           "--once"], cwd=ROOT, capture_output=True, text=True, timeout=90, check=False,
                          env={**os.environ, **env})


@pytest.mark.parametrize("step", ["poll:before_commit", "deliver:before_send",
                                  "deliver:after_send"])
def test_kill_9_at_each_step_delivers_at_least_once_with_the_same_ids(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver, smtp: SmtpServer,
        step: str) -> None:
    feed_server.route("/news.xml", body=rss([CONFIRMING]))
    path = write_config(tmp_path, feeds={"news": feed_server.url("/news.xml")},
                        channels=channels(smtp.port, receiver.url()), notify=("team", "hook"))
    crashed = run_once_process(path, {**ENV, "MONITOR_CRASH_AT": step})
    assert crashed.returncode == -signal.SIGKILL
    if step == "poll:before_commit":
        assert receiver.received == [] and smtp.messages == []
        store = open_store(load(path, ENV))
        assert list(store.read(types=("AlertQueued",))) == []
        with store.engine.begin() as conn:
            conn.execute(workstate.feed_state.update().values(lease_expires=0))
        store.close()
        assert run_once_process(path, ENV).returncode == 0
    # after the dead process's lease expires, another dispatcher delivers
    later = datetime.now(UTC) + timedelta(seconds=deliver.LEASE_SECONDS + 1)
    deliver_at(path, later)
    hooks = receiver.received
    assert len(hooks) >= 1 and len({h.webhook_id for h in hooks}) == 1
    assert all(h.verified for h in hooks)
    ids = {email.message_from_bytes(m.content)["Message-ID"] for m in smtp.messages}
    assert len(smtp.messages) >= 1 and len(ids) == 1
    expected_copies = 2 if step == "deliver:after_send" else 1
    assert len(hooks) <= expected_copies and len(smtp.messages) <= expected_copies
    store = open_store(load(path, ENV))
    delivered = sorted(r.data["channel_id"] for r in store.read(types=("AlertDelivered",)))
    assert delivered == ["hook", "team"]
    store.close()


@pytest.mark.slow
def test_three_dispatchers_deliver_two_thousand_alerts_exactly_once(
        tmp_path: Path, pg_url: str, receiver: WebhookReceiver) -> None:
    hook = webhook_channel(receiver.url())
    path = write_config(tmp_path, feeds={}, db_url=pg_url, channels=hook, notify=("hook",))
    store = open_store(load(path, ENV))
    now = datetime.now(UTC)
    ids = [f"alt_{n:032x}" for n in range(2000)]
    for chunk in range(0, 2000, 500):
        with store.transaction() as tx:
            for alert_id in ids[chunk:chunk + 500]:
                queued = AlertQueued(alert_id=alert_id, channel_id="hook",
                                     milestone_id="training-start", subject="s",
                                     payload={"n": alert_id})
                tx.append([NewEvent(queued)], now=now)
                alertwork.queue_alert(tx.conn, alert_id, "hook", now.timestamp())
    store.close()
    script = [sys.executable, "-m", "tests.scripts.dispatch_until_done", str(path)]
    procs = [subprocess.Popen(script, cwd=ROOT, env={**os.environ, **ENV}) for _ in range(3)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0
    seen = [r.webhook_id for r in receiver.received]
    assert len(seen) == 2000 and set(seen) == set(ids)  # 0 duplicates, 0 missing
    assert all(r.verified for r in receiver.received)
    store = open_store(load(path, ENV))
    assert sum(1 for _ in store.read(types=("AlertDelivered",))) == 2000
    instances = {r.meta["instance"] for r in store.read(types=("AlertDelivered",))}
    assert len(instances) >= 2
    store.close()


def _queue_one(path: Path, env: dict[str, str], now: datetime) -> str:
    store = open_store(load(path, env))
    queued = AlertQueued(alert_id="alt_" + "7" * 32, channel_id="hook",
                         milestone_id="training-start", subject="s", payload={"n": 1})
    with store.transaction() as tx:
        tx.append([NewEvent(queued)], now=now)
        alertwork.queue_alert(tx.conn, queued.alert_id, "hook", now.timestamp())
    store.close()
    return queued.alert_id


@pytest.mark.parametrize("late_answer", [200, 500, 400])
def test_a_lease_that_expires_during_a_slow_delivery_records_one_outcome(
        tmp_path: Path, pg_url: str, receiver: WebhookReceiver, late_answer: int) -> None:
    # Dispatcher a's request hangs past its lease; b claims the alert and delivers it; then
    # a's answer arrives. The receiver saw one id twice (at least once), but the log must not
    # say the delivered alert was delivered twice, is due again, or was abandoned.
    hook = webhook_channel(receiver.url())
    path = write_config(tmp_path, feeds={}, db_url=pg_url, channels=hook, notify=("hook",))
    now = datetime.now(UTC)
    alert_id = _queue_one(path, ENV, now)
    gate = threading.Event()
    receiver.respond(Reply(status=late_answer, hold=gate), Reply(status=200))
    config = load(path, ENV)

    async def race() -> tuple[list[deliver.Outcome], list[deliver.Outcome]]:
        stores = [open_store(config), open_store(config)]
        try:
            async with guarded_client(allow_private=True, timeout=30, user_agent="t") as client:
                a, b = (deliver.Dispatcher(config, s, available_secrets(config, ENV), client, n)
                        for s, n in zip(stores, ("a", "b"), strict=True))
                first = asyncio.ensure_future(deliver.deliver_due(a, now=now))
                while not receiver.received:
                    await asyncio.sleep(0.01)
                later = now + timedelta(seconds=deliver.LEASE_SECONDS + 1)
                second = await deliver.deliver_due(b, now=later)
                gate.set()
                return await first, second
        finally:
            gate.set()
            for s in stores:
                s.close()

    _, second = asyncio.run(race())
    assert [o.status for o in second] == ["delivered"]
    assert [r.webhook_id for r in receiver.received] == [alert_id, alert_id]
    store = open_store(config)
    try:
        kinds = [r.type for r in store.read() if r.stream == f"alert:{alert_id}"]
        assert kinds == ["AlertQueued", "AlertDelivered"]
        row = store.state("outbox", alert_id)
        assert row is not None and row["status"] == "delivered" and row["due_at"] is None
        with store.engine.begin() as conn:
            [work] = conn.execute(workstate.alert_work.select()).all()
        assert work.due_at is None
        assert store.verify().ok
    finally:
        store.close()


def test_a_daemon_sends_an_alert_once_though_its_lease_runs_out_while_it_sends(
        tmp_path: Path, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    # A delivery can outlast its lease (a channel's long timeout, or sends queued behind a
    # silent mail server's); the next tick finds it claimable again, but this daemon is still
    # sending it: it must not start a second send of its own.
    hook = webhook_channel(receiver.url())
    path = write_config(tmp_path, feeds={}, channels=hook, notify=("hook",))
    alert_id = _queue_one(path, ENV, datetime.now(UTC))
    gate = threading.Event()
    receiver.respond(Reply(status=200, hold=gate))
    monkeypatch.setattr(deliver, "LEASE_SECONDS", -1.0)  # every lease has run out at once

    async def two_ticks() -> None:
        daemon = Daemon(load(path, ENV), ENV)
        await daemon.start()
        try:
            await daemon.deliver_tick()
            while not receiver.received:
                await asyncio.sleep(0.01)
            await daemon.deliver_tick()
            gate.set()
            await asyncio.gather(*daemon.inflight)
        finally:
            gate.set()
            await daemon.close()

    asyncio.run(two_ticks())
    assert [r.webhook_id for r in receiver.received] == [alert_id]
    store = open_store(load(path, ENV))
    try:
        kinds = [r.type for r in store.read() if r.stream == f"alert:{alert_id}"]
        assert kinds == ["AlertQueued", "AlertDelivered"]
    finally:
        store.close()
