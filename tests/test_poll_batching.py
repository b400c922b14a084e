"""The daemon's fast poll path: claims in batches, unchanged polls written together, no fact lost."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor import logs, parse, poll, pollrecord, workstate
from monitor.clients import Clients, fetch_limits
from monitor.daemon import Daemon
from monitor.fetch import Fetcher
from monitor.runtime import open_store
from monitor.store import EventStore, Transaction
from tests.feedserver import FeedServer
from tests.kit import kept_logging, load, rss, run_once, write_config

BODY = rss([{"title": "Unrelated story", "guid": "g1", "link": "https://news.example.com/1"}])
LONG_BODY = (
    b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title><item><title>Long"
    b"</title><guid>long-1</guid><description>"
    + b"<a></a>" * 220_000  # about 1.5 MB of markup: feedparser reads about 1 MB a second
    + b"</description></item></channel></rss>"
)


def feed_types(path: Path, feed_id: str) -> list[str]:
    store = open_store(load(path))
    try:
        return [r.type for r in store.read(stream=f"feed:{feed_id}")]
    finally:
        store.close()


def make_all_due(store: EventStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.update(workstate.feed_state).values(next_poll_at=0))


def test_recovery_is_recorded_when_the_first_good_answer_is_a_304(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.route("/a.xml", body=BODY, etag='"v1"')
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")})
    run_once(path)
    feed_server.route("/a.xml", status=503)
    run_once(path)
    feed_server.route("/a.xml", body=BODY, etag='"v1"')
    run_once(path)
    run_once(path)
    assert feed_server.requests("/a.xml")[-1].get("If-None-Match") == '"v1"'
    assert feed_types(path, "a") == ["FeedFailed", "FeedRecovered"]


def test_a_changed_poll_reads_the_feeds_health_only_when_its_claim_found_it_unwell(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim reads each feed's health; a changed poll of a feed it found healthy has no
    failure to recover from and spares the read in its transaction, one it found failing reads
    it there and records the recovery."""
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")})
    read: list[tuple[str, str]] = []
    real_state = Transaction.state

    def state(tx: Transaction, projection: str, key: str) -> dict[str, Any] | None:
        read.append((projection, key))
        return real_state(tx, projection, key)

    monkeypatch.setattr(Transaction, "state", state)
    story = {"title": "Unrelated story", "link": "https://news.example.com/"}
    for n, status in enumerate([200, 500, 200, 200]):  # new body, failure, new body, new body
        feed_server.route("/a.xml", status=status, body=rss([{**story, "guid": f"g{n}"}]))
        read.clear()
        run_once(path)
        failing_before = n == 2
        assert (("feeds", "a") in read) == (status == 500 or failing_before), n
    assert feed_types(path, "a") == ["FeedFailed", "FeedRecovered"]


def test_one_tick_claims_batch_after_batch_and_writes_unchanged_polls(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feeds = {f"f{n}": feed_server.url(f"/{n}.xml") for n in range(30)}
    for n in range(30):
        feed_server.route(f"/{n}.xml", body=BODY, etag=f'"{n}"')
    # concurrency 2: at most 8 polls in flight, so one tick needs several claims
    path = write_config(tmp_path, feeds=feeds, extra_settings="concurrency = 2")
    run_once(path)

    async def one_tick() -> None:
        daemon = Daemon(load(path), {})
        await daemon.start()
        make_all_due(daemon.store)
        await daemon.poll_tick()
        await asyncio.gather(*daemon.inflight)
        await poll.flush_unchanged(daemon.poller)
        await daemon.close()

    started = time.time()
    asyncio.run(one_tick())
    store = open_store(load(path))
    rows = workstate.feed_rows(store)
    assert all(feed_server.hits(f"/{n}.xml") == 2 for n in range(30))
    assert {r.polls for r in rows.values()} == {2}
    assert all(r.lease_owner is None and r.last_attempt_at >= started for r in rows.values())
    assert all(r.next_poll_at >= started + 29 * 60 for r in rows.values())  # interval 30m
    assert [r.type for r in store.read(types=["FeedFailed", "FeedRecovered"])] == []
    store.close()


def test_unchanged_polls_lost_before_their_write_are_polled_again_after_the_lease(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.route("/a.xml", body=BODY, etag='"v1"')
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")})
    run_once(path)
    config = load(path)
    store = open_store(config)
    head = store.head()
    now = time.time()

    async def poll_without_flush() -> pollrecord.PollReport:
        [work] = workstate.claim_feeds(
            store, owner="crashing", now=now, lease=60, limit=1, feed_ids=["a"], due_only=False
        )
        async with Fetcher(fetch_limits(config)) as fetcher:
            poller = poll.poller_for(config, store, fetcher, "crashing")
            poller.defer_unchanged = True
            return await poll.poll_feed(poller, work)  # the process "dies" before a flush

    assert asyncio.run(poll_without_flush()).outcome == "not_modified"
    assert store.head() == head  # nothing recorded, nothing half-recorded
    claim = functools.partial(
        workstate.claim_feeds, store, owner="other", lease=60, limit=1, feed_ids=["a"]
    )
    assert claim(now=now + 1, due_only=False) == []  # still leased to the dead poller
    [again] = claim(now=now + 61, due_only=False)
    assert again.etag == '"v1"'
    store.close()


def test_claims_skip_feeds_not_configured_here_and_carry_health(
    tmp_path: Path, feed_server: FeedServer, db_url: str
) -> None:
    for name in ("ok", "other"):
        feed_server.route(f"/{name}.xml", body=BODY)
    feed_server.route("/bad.xml", status=500)
    feeds = {name: feed_server.url(f"/{name}.xml") for name in ("ok", "bad", "other")}
    path = write_config(tmp_path, feeds=feeds, db_url=db_url)
    run_once(path)
    store = open_store(load(path))
    make_all_due(store)
    works = workstate.claim_feeds(
        store, owner="t", now=time.time(), lease=60, limit=10, feed_ids={"ok", "bad"}
    )
    assert {w.feed_id: w.health for w in works} == {"ok": "ok", "bad": "failing"}
    store.close()


def test_a_feed_a_reload_removed_after_its_claim_is_not_polled(
    tmp_path: Path, feed_server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A tick's claim reads the configuration it began with; a reload meanwhile may remove a
    claimed feed. That feed is not fetched nor recorded (it was a KeyError's traceback, logged
    as a bug), and the others are polled."""
    for name in ("a", "b"):
        feed_server.route(f"/{name}.xml", body=BODY)
    both = {name: feed_server.url(f"/{name}.xml") for name in ("a", "b")}
    path = write_config(tmp_path, feeds=both)

    async def claim_then_reload() -> None:
        daemon = Daemon(load(path), {})
        await daemon.start()
        try:
            make_all_due(daemon.store)
            works = workstate.claim_feeds(
                daemon.store, owner=daemon.instance, now=time.time(), lease=60, limit=10,
                feed_ids={"a", "b"},
            )  # fmt: skip
            write_config(tmp_path, feeds={"a": both["a"]})
            await daemon._reload("test")
            for work in sorted(works, key=lambda w: w.feed_id):
                await daemon._poll_one(work)
        finally:
            await daemon.close()

    with caplog.at_level(logging.DEBUG, logger="monitor"):
        asyncio.run(claim_then_reload())
    assert (feed_server.hits("/a.xml"), feed_server.hits("/b.xml")) == (1, 0)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "feed 'b': removed by a reload since it was claimed" in caplog.text
    store = open_store(load(path))
    found = {r.data.get("feed_id") for r in store.read(types=("ItemDiscovered",))}
    store.close()
    assert found == {"a"}


def test_a_heartbeat_that_cannot_be_written_stops_no_poll(
    tmp_path: Path, feed_server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    feed_server.route("/a.xml", body=BODY)
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")})
    beat = tmp_path / "no-such-folder" / "heartbeat"

    async def two_ticks() -> None:
        daemon = Daemon(load(path), {"MONITOR_HEARTBEAT": str(beat)})
        await daemon.start()
        for _ in range(2):
            make_all_due(daemon.store)
            await daemon.poll_tick()
            await asyncio.gather(*daemon.inflight)
        await daemon.close()

    with caplog.at_level(logging.WARNING, logger="monitor.daemon"):
        asyncio.run(two_ticks())
    assert feed_server.hits("/a.xml") == 2
    warned = [r.getMessage() for r in caplog.records if "heartbeat" in r.getMessage()]
    assert len(warned) == 1 and "cannot be written" in warned[0], warned


def test_a_reload_reschedules_changed_ticks_and_scrubs_new_channels_secrets(
    tmp_path: Path, feed_server: FeedServer, capfd: pytest.CaptureFixture[str]
) -> None:
    feed_server.route("/a.xml", body=BODY)
    feeds = {"a": feed_server.url("/a.xml")}
    path = write_config(tmp_path, feeds=feeds, extra_settings='tick = "1s"')
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    hook = (
        '[[channels]]\nid = "hook"\ntype = "webhook"\nurl = "https://hooks.example.org/h"\n'
        'secret_env = "RELOAD_TEST_SECRET"\n'
    )

    def run_settings(daemon: Daemon) -> set[tuple[Any, ...]]:
        assert daemon.scheduler is not None
        jobs = daemon.scheduler.get_jobs()
        return {(j.coalesce, j.max_instances, j.misfire_grace_time) for j in jobs}

    async def reload_while_running() -> tuple[dict[str, timedelta], list[set[tuple[Any, ...]]]]:
        daemon = Daemon(load(path), {"RELOAD_TEST_SECRET": secret})
        running = asyncio.ensure_future(daemon.run_forever())
        while daemon.scheduler is None or not daemon.scheduler.running:
            await asyncio.sleep(0.05)
        settings = [run_settings(daemon)]
        write_config(
            tmp_path, feeds=feeds, channels=hook,
            extra_settings='tick = "7s"\ndeadline_check_interval = "2h"',
        )  # fmt: skip
        await daemon._reload("test")
        logging.getLogger("monitor.daemon").warning("the channel's secret is %s", secret)
        jobs = {j.id: j.trigger.interval for j in daemon.scheduler.get_jobs() if j.id}
        settings.append(run_settings(daemon))
        daemon.stop_event.set()
        await running
        return jobs, settings

    with kept_logging():
        logs.setup(secrets=[])
        jobs, settings = asyncio.run(reload_while_running())
    # every job, before and after the reload: a late tick runs once, never skipped (3.x's
    # default grace of 1 s would skip it silently), never two of one job at once
    assert settings == [{(True, 1, None)}] * 2
    assert jobs["poll_tick"] == jobs["deliver_tick"] == timedelta(seconds=7)
    assert jobs["deadline_tick"] == timedelta(hours=2)
    err = capfd.readouterr().err
    assert "the channel's secret is <redacted>" in err and secret not in err


def test_a_long_body_is_parsed_apart_while_the_writer_records_other_feeds(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long body's parse (here one of about a second and a half) does not hold the writer:
    a feed polled while it runs is recorded first."""
    monkeypatch.setattr(poll, "BIG_BODY", 100_000)
    assert len(LONG_BODY) > poll.BIG_BODY > len(BODY)
    built_on: dict[str, str] = {}  # an entry's title -> the thread that built its text
    entry = parse._entry

    def noting(draft: Any, e: Any, language: Any, cap: int) -> Any:
        made = entry(draft, e, language, cap)
        built_on[made.title] = threading.current_thread().name
        return made

    monkeypatch.setattr(parse, "_entry", noting)
    feed_server.route("/long.xml", body=LONG_BODY)
    feed_server.route("/short.xml", body=BODY)
    feeds = {"long": feed_server.url("/long.xml"), "short": feed_server.url("/short.xml")}
    config = load(write_config(tmp_path, feeds=feeds))
    store = open_store(config)
    workstate.sync_feeds(store, config, now=time.time(), rng=random.Random(1))

    async def short_while_long_parses() -> tuple[pollrecord.PollReport, pollrecord.PollReport]:
        works = {
            w.feed_id: w
            for w in workstate.claim_feeds(
                store,
                owner="t",
                now=time.time(),
                lease=60,
                limit=2,
                feed_ids=list(feeds),
                due_only=False,
            )
        }
        async with Fetcher(fetch_limits(config)) as fetcher:
            poller = poll.poller_for(config, store, fetcher, "t")
            long = asyncio.create_task(poll.poll_feed(poller, works["long"]))
            while not feed_server.hits("/long.xml"):
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)  # its body read, its parse begun
            short = await poll.poll_feed(poller, works["short"])
            assert not long.done()  # the short feed was recorded while the long one parsed
            reports = short, await long
            poller.close()
            return reports

    short, long = asyncio.run(short_while_long_parses())
    assert (short.outcome, short.discovered) == ("new", 1)
    assert (long.outcome, long.discovered) == ("new", 1)
    found = [r.data["feed_id"] for r in store.read(types=("ItemDiscovered",))]
    assert found == ["short", "long"]
    # the long body's text was made on its parse's thread, not on the writer as it recorded
    assert built_on["Long"] == "monitor-parser"
    assert built_on["Unrelated story"].startswith("monitor-writer")
    assert store.verify().ok
    store.close()


def test_a_reload_does_not_close_the_writer_under_a_long_parse(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients replaced by a reload are closed once their lease has passed; a poll whose long
    body is still being parsed then (behind other long bodies, or a lease shortened by the
    reload) is recorded on their writer all the same, not refused by a writer shut down."""
    monkeypatch.setattr(poll, "BIG_BODY", 100_000)
    feed_server.route("/long.xml", body=LONG_BODY)
    config = load(write_config(tmp_path, feeds={"long": feed_server.url("/long.xml")}))
    store = open_store(config)
    workstate.sync_feeds(store, config, now=time.time(), rng=random.Random(1))

    async def reload_while_long_parses() -> pollrecord.PollReport:
        [work] = workstate.claim_feeds(
            store, owner="t", now=time.time(), lease=60, limit=1, feed_ids=["long"],
            due_only=False,
        )  # fmt: skip
        old = await Clients.open(config, store, {}, "t")
        long = asyncio.create_task(poll.poll_feed(old.poller, work))
        while not feed_server.hits("/long.xml"):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # its body read, its parse begun
        await old.close_later(0.1)  # the lease a reload waits has passed: the clients close
        return await long

    report = asyncio.run(reload_while_long_parses())
    assert (report.outcome, report.discovered) == ("new", 1)
    assert [r.data["feed_id"] for r in store.read(types=("ItemDiscovered",))] == ["long"]
    store.close()


def test_a_poll_longer_than_its_lease_keeps_it_and_is_not_polled_twice(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lease of 2 s and a feed that answers after 4 s: the ticks renew the lease of the poll
    in flight, so no tick claims the feed again, and the lease is still this daemon's."""
    feed_server.route("/slow.xml", body=BODY, delay=4)
    path = write_config(tmp_path, feeds={"slow": feed_server.url("/slow.xml")})
    monkeypatch.setattr(Daemon, "lease", lambda self: 2.0)

    async def ticking() -> tuple[list[str | None], int]:
        daemon = Daemon(load(path), {})
        await daemon.start()
        make_all_due(daemon.store)
        await daemon.poll_tick()  # claims the slow feed
        try:
            return await owners_while_slow_polls(daemon)
        finally:
            await daemon.close()

    owners, polls = asyncio.run(ticking())
    assert feed_server.hits("/slow.xml") == 1
    assert polls == 1
    assert set(owners[:6]) == {owners[0]} and owners[0] is not None  # held while in flight


async def owners_while_slow_polls(daemon: Daemon) -> tuple[list[str | None], int]:
    """The slow feed's lease owner after each of nine ticks, half a second apart, while its
    poll runs; then, that poll done, how many polls the feed counts."""
    owners = []
    for _ in range(9):
        await asyncio.sleep(0.5)
        await daemon.poll_tick()
        owners.append(workstate.feed_rows(daemon.store)["slow"].lease_owner)
    await asyncio.gather(*daemon.inflight)
    return owners, workstate.feed_rows(daemon.store)["slow"].polls


def run_once_beside_another_claim(
    tmp_path: Path, feed_server: FeedServer, *, tick: str, after: float
) -> list[workstate.FeedWork]:
    """What another daemon's claim takes, `after` seconds in, of the one feed a `run --once`
    is polling (it answers in 4 s; the caller patches Daemon.lease to 2 s); the feed is fetched
    once."""
    feed_server.route("/slow.xml", body=BODY, delay=4)
    path = write_config(
        tmp_path, feeds={"slow": feed_server.url("/slow.xml")}, extra_settings=f'tick = "{tick}"'
    )

    async def other_claims_meanwhile() -> list[workstate.FeedWork]:
        daemon = Daemon(load(path), {})
        once = asyncio.ensure_future(daemon.run_once())
        await asyncio.sleep(after)
        store = open_store(load(path))
        claim = functools.partial(
            workstate.claim_feeds, store, owner="other", now=time.time(), lease=60, limit=1,
            feed_ids=["slow"], due_only=False,
        )  # fmt: skip
        taken = await asyncio.to_thread(claim)
        store.close()
        assert await once == 0
        return taken

    taken = asyncio.run(other_claims_meanwhile())
    assert feed_server.hits("/slow.xml") == 1
    return taken


def test_run_once_keeps_the_leases_of_its_long_polls(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run --once` claims every feed at its start: a poll still running after its lease would
    be up keeps it, so another daemon cannot claim the feed meanwhile."""
    monkeypatch.setattr(Daemon, "lease", lambda self: 2.0)
    # past the lease the run took at its start
    assert run_once_beside_another_claim(tmp_path, feed_server, tick="1s", after=3) == []


def test_a_reload_keeps_renewing_the_leases_of_the_polls_it_left_running(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reload replaces the poller while a slow poll runs on the old one: the ticks after it
    renew that poll's lease all the same, so no claim takes the feed and polls it twice."""
    feed_server.route("/slow.xml", body=BODY, delay=4)
    feeds = {"slow": feed_server.url("/slow.xml")}
    path = write_config(tmp_path, feeds=feeds)
    monkeypatch.setattr(Daemon, "lease", lambda self: 2.0)

    async def ticking() -> tuple[list[str | None], int]:
        daemon = Daemon(load(path), {})
        await daemon.start()
        make_all_due(daemon.store)
        await daemon.poll_tick()
        while not feed_server.hits("/slow.xml"):  # the slow poll runs on the first poller
            await asyncio.sleep(0.01)
        write_config(tmp_path, feeds=feeds, extra_settings='user_agent = "reloaded/1.0"')
        await daemon._reload("test")
        owners, polls = await owners_while_slow_polls(daemon)
        for task in daemon.retiring:
            task.cancel()
        await asyncio.gather(*daemon.retiring, return_exceptions=True)
        await daemon.close()
        return owners, polls

    owners, polls = asyncio.run(ticking())
    assert feed_server.hits("/slow.xml") == 1
    assert polls == 1
    assert set(owners[:6]) == {owners[0]} and owners[0] is not None  # held while in flight


def test_a_renewal_that_postgresql_refuses_is_one_line_not_an_error_raised(
    tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """On PostgreSQL the leases' transaction is the engine's own, so a server out of reach
    raises SQLAlchemy's errors, not StoreError: a renewal that fails is logged in one line (and
    tried again at the next tick), not raised into the tick or `run --once`'s lease keeper."""
    config = load(write_config(tmp_path, feeds={"a": "https://news.example.com/a.xml"},
                               db_url=pg_url))  # fmt: skip
    store = open_store(config)
    reachable = store.engine
    store.engine = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:1/test")
    p = poll.Poller(config, store, None, None, "me")  # type: ignore[arg-type]
    p.leases["a"] = time.time() - 60  # in flight for longer than half a lease
    with kept_logging(), caplog.at_level(logging.WARNING, logger="monitor"):
        asyncio.run(poll.renew_leases(p, 2.0))
    store.engine.dispose()
    store.engine = reachable
    store.close()
    [line] = [r.getMessage() for r in caplog.records if "not renewed" in r.getMessage()]
    assert "\n" not in line and "[SQL" not in line, line


def test_leases_are_renewed_in_time_when_a_tick_is_longer_than_half_a_lease(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tick of 3 s and a lease of 2 s: renewing once a tick, the lease would lapse a second
    before the next renewal and another daemon could claim the feed meanwhile."""
    monkeypatch.setattr(Daemon, "lease", lambda self: 2.0)
    # past the lease the run took at its start, before a tick
    assert run_once_beside_another_claim(tmp_path, feed_server, tick="3s", after=2.5) == []


@pytest.mark.parametrize("unchanged", [False, True])
def test_a_poll_whose_lapsed_lease_another_daemon_took_leaves_that_lease(
    tmp_path: Path, feed_server: FeedServer, unchanged: bool
) -> None:
    """A poll outlives its lease and another daemon claims the feed: giving the lease back, the
    late poll leaves the other's claim alone (else a third could claim and poll the feed),
    whether it records in a transaction of its own or with the unchanged polls at a flush."""
    feed_server.route("/a.xml", body=BODY, etag='"v1"', delay=1)
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")})
    if unchanged:
        run_once(path)  # the next answer is a 304
    config = load(path)
    store = open_store(config)
    workstate.sync_feeds(store, config, now=time.time(), rng=random.Random(1))

    def claim(owner: str, lease: float) -> list[workstate.FeedWork]:
        return workstate.claim_feeds(
            store, owner=owner, now=time.time(), lease=lease, limit=1, feed_ids=["a"],
            due_only=False,
        )  # fmt: skip

    async def late_poll() -> pollrecord.PollReport:
        [work] = claim("late", 0.5)
        async with Fetcher(fetch_limits(config)) as fetcher:
            poller = poll.poller_for(config, store, fetcher, "late")
            poller.defer_unchanged = unchanged
            polling = asyncio.create_task(poll.poll_feed(poller, work))
            await asyncio.sleep(0.7)  # the lease lapsed while the answer is awaited
            assert len(await asyncio.to_thread(claim, "other", 60)) == 1
            report = await polling
            await poll.flush_unchanged(poller)
            poller.close()
            return report

    report = asyncio.run(late_poll())
    assert report.outcome == ("not_modified" if unchanged else "new")
    row = workstate.feed_rows(store)["a"]
    assert row.lease_owner == "other"
    store.close()
