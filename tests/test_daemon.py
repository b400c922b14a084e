"""The daemon as a process: crashes, signals, reload, sharing one PostgreSQL log."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor import workstate
from monitor.runtime import open_store
from tests.conftest import SECRET
from tests.feedserver import FeedServer
from tests.kit import ROOT, load, rss, run_once, write_config
from tests.receivers import WebhookReceiver

NOW = datetime.now(UTC)


def items(feed: int, count: int) -> list[dict[str, object]]:
    return [{"title": f"Feed {feed} story {n}", "link": f"https://f{feed}.example.com/{n}",
             "guid": f"f{feed}-{n}", "published": NOW - timedelta(minutes=n)}
            for n in range(count)]


STARTED: list[subprocess.Popen[str]] = []


def start(path: Path, env: dict[str, str] | None = None, *args: str) -> subprocess.Popen[str]:
    """`monitor run` in a child process; its log goes to a file (a pipe could fill and block)."""
    log = (path.parent / f"daemon-{len(STARTED)}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(path), "run", *args],
        cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
        stderr=log, text=True)
    log.close()
    STARTED.append(proc)
    return proc


def stderr_of(proc: subprocess.Popen[str], path: Path) -> str:
    return (path.parent / f"daemon-{STARTED.index(proc)}.log").read_text()


@pytest.fixture(autouse=True)
def _no_daemon_outlives_its_test() -> Iterator[None]:
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def count(path: Path, event_type: str) -> int:
    """Events of a type in the test's SQLite log (read without the config, which may be bad)."""
    from monitor.projections import all_projections
    from monitor.store import EventStore

    store = EventStore.open(f"sqlite:///{path.parent / 'events.db'}",
                            projections=all_projections())
    try:
        return sum(1 for _ in store.read(types=(event_type,)))
    finally:
        store.close()


def expire_leases(path: Path) -> None:
    """What time does for a dead process's leases, without waiting for it."""
    from monitor.workstate import alert_work, feed_state

    store = open_store(load(path))
    with store.engine.begin() as conn:
        conn.execute(feed_state.update().values(lease_expires=0))
        conn.execute(alert_work.update().values(lease_expires=0))
    store.close()


def leased(path: Path) -> int:
    """How many feeds a poll holds now."""
    store = open_store(load(path))
    rows = workstate.feed_rows(store).values()
    store.close()
    return sum(1 for row in rows if (row.lease_expires or 0) > time.time())


def test_kill_9_at_random_moments_loses_and_doubles_nothing(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feeds = {}
    for f in range(15):  # answers spread over 1.5 s, so a poll cycle is under way that long
        feed_server.route(f"/{f}.xml", body=rss(items(f, 20)), delay=0.1 * f)
        feeds[f"f{f}"] = feed_server.url(f"/{f}.xml")
    path = write_config(tmp_path, feeds=feeds, interval="2s", extra_settings='tick = "1s"')

    def requests() -> int:
        return sum(feed_server.hits(f"/{f}.xml") for f in range(15))

    rng = random.Random(7)
    after_kills = []
    for kill in range(6):
        if kill:
            expire_leases(path)  # the killed daemon's polls are due again at once
        before = requests()
        proc = start(path)
        # timed from the daemon's first request, not from its launch: a loaded machine takes
        # seconds to start Python, and a kill before any poll would test nothing
        wait_for(lambda b=before, p=proc: requests() > b or p.poll() is not None)
        time.sleep(rng.uniform(0.0, 1.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        after_kills.append(count(path, "ItemDiscovered"))
    # at least one kill landed part-way through the items, not before or after all of them
    assert any(0 < n < 300 for n in after_kills), after_kills
    expire_leases(path)
    assert run_once(path) == 0
    store = open_store(load(path))
    discovered = [r.data["guid"] for r in store.read(types=("ItemDiscovered",))]
    assert sorted(discovered) == sorted(f"f{f}-{n}" for f in range(15) for n in range(20))
    assert store.verify().ok
    store.close()


def test_crash_before_the_poll_commits_records_nothing_of_that_poll(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/a.xml", body=rss(items(1, 5)))
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")})
    proc = subprocess.run([sys.executable, "-m", "monitor", "--config", str(path), "run",
                           "--once"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "MONITOR_CRASH_AT": "poll:before_commit"})
    assert proc.returncode == -signal.SIGKILL
    assert count(path, "ItemDiscovered") == 0
    expire_leases(path)  # --once ignores schedules, but not a live lease
    assert run_once(path) == 0
    assert count(path, "ItemDiscovered") == 5


def test_sigterm_while_polling_exits_zero_quickly_and_the_log_verifies(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feeds = {}
    for f in range(10):
        feed_server.route(f"/{f}.xml", body=rss(items(f, 3)))
        feeds[f"f{f}"] = feed_server.url(f"/{f}.xml")
    feed_server.route("/slow.xml", body=rss(items(99, 3)) * 50, trickle=200)
    feeds["slow"] = feed_server.url("/slow.xml")
    path = write_config(tmp_path, feeds=feeds, interval="5m", extra_settings='tick = "1s"')
    proc = start(path)
    wait_for(lambda: feed_server.hits("/slow.xml") > 0 and count(path, "ItemDiscovered") >= 30)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0  # exits 0 within 10 s
    assert "stopping" in stderr_of(proc, path)
    store = open_store(load(path))
    assert store.verify().ok
    store.close()


def test_sigterm_while_a_poll_tick_waits_for_room_is_no_error(
        tmp_path: Path, feed_server: FeedServer) -> None:
    # concurrency 1: room for 4 polls in flight, and a batch claimed once 2 are free. Once 3
    # hanging feeds are claimed, the tick that claimed them waits for one to end (up to 0.9
    # of its 5 s), and the stop cancels it there.
    feeds = {}
    for f in range(4):
        feed_server.route(f"/h{f}.xml", delay=60)
        feeds[f"h{f}"] = feed_server.url(f"/h{f}.xml")
    path = write_config(tmp_path, feeds=feeds, extra_settings=(
        'tick = "5s"\nfetch_timeout = "50s"\nconcurrency = 1\nper_host_concurrency = 4'))
    proc = start(path)
    wait_for(lambda: leased(path) >= 3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    logged = stderr_of(proc, path)
    assert "stopped" in logged
    assert "Traceback" not in logged and "raised an exception" not in logged, logged[-3000:]


def dense_feed(megabytes: float) -> bytes:
    """One item whose description is `megabytes` of empty elements: feedparser reads about a
    megabyte of them a second here, in a body well under the size cap."""
    head = (b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title><item>"
            b"<title>Dense</title><guid>dense-1</guid><description>")
    return head + b"<a></a>" * int(megabytes * 2**20 / 7) + b"</description></item></channel></rss>"


def test_sigterm_while_a_long_body_is_parsed_exits_zero_quickly(
        tmp_path: Path, feed_server: FeedServer) -> None:
    """14 MiB of markup takes feedparser longer than a stop may: the poll is abandoned with
    nothing recorded (its parse runs on a thread the exit does not wait for)."""
    feed_server.route("/dense.xml", body=dense_feed(14))
    path = write_config(tmp_path, feeds={"dense": feed_server.url("/dense.xml")},
                        extra_settings='tick = "1s"')
    proc = start(path)
    wait_for(lambda: feed_server.hits("/dense.xml") > 0)
    time.sleep(1)  # the body is read and its parse begun
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0  # exits 0 within 10 s
    assert count(path, "ItemDiscovered") == 0
    store = open_store(load(path))
    assert store.verify().ok
    store.close()


def test_second_signal_exits_at_once(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/hang.xml", delay=60)
    path = write_config(tmp_path, feeds={"h": feed_server.url("/hang.xml")},
                        extra_settings='tick = "1s"\nfetch_timeout = "50s"')
    proc = start(path)
    wait_for(lambda: feed_server.hits("/hang.xml") > 0)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) != 0


def test_reload_applies_a_valid_change_and_refuses_an_invalid_one(
        tmp_path: Path, feed_server: FeedServer) -> None:
    """An edit is picked up by the file watcher: a valid one is applied and recorded."""
    feed_server.route("/a.xml", body=rss(items(1, 2)))
    feed_server.route("/b.xml", body=rss(items(2, 2)))
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")},
                        extra_settings='tick = "1s"')
    proc = start(path)
    try:
        wait_for(lambda: count(path, "ConfigApplied") == 1)
        good = path.read_text().replace(
            '[[feeds]]', f'[[feeds]]\nid = "b"\nurl = "{feed_server.url("/b.xml")}"\n\n'
            '[[feeds]]', 1)
        path.write_text(good)
        wait_for(lambda: count(path, "ConfigApplied") == 2)
        wait_for(lambda: feed_server.hits("/b.xml") > 0)
        store = open_store(load(path))
        last = list(store.read(types=("ConfigApplied",)))[-1]
        assert last.data["feeds_added"] == ["b"]
        store.close()
        path.write_text(good.replace('poll_interval = "30m"', 'poll_interval = "often"'))
        wait_for(lambda: "the previous configuration keeps running" in stderr_of(proc, path))
        assert proc.poll() is None  # still running on the old configuration
        assert count(path, "ConfigApplied") == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    stderr = stderr_of(proc, path)
    assert "reload (file changed) refused" in stderr and "poll_interval" in stderr


def started_on_one_feed(tmp_path: Path, feed_server: FeedServer,
                        ) -> tuple[Path, subprocess.Popen[str]]:
    """A daemon polling feed a every 2 s, once it has recorded its configuration."""
    feed_server.route("/a.xml", body=rss(items(1, 2)))
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")}, interval="2s",
                        extra_settings='tick = "1s"')
    proc = start(path)
    wait_for(lambda: count(path, "ConfigApplied") == 1)
    return path, proc


def polls_on(feed_server: FeedServer) -> None:
    hits = feed_server.hits("/a.xml")
    wait_for(lambda: feed_server.hits("/a.xml") > hits)


def test_a_file_emptied_by_an_editor_mid_save_is_not_applied(
        tmp_path: Path, feed_server: FeedServer) -> None:
    path, proc = started_on_one_feed(tmp_path, feed_server)
    try:
        path.write_text("")
        wait_for(lambda: "has no [[feeds]]" in stderr_of(proc, path))
        polls_on(feed_server)  # the old configuration's feed
        assert count(path, "ConfigApplied") == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def write_unseen(path: Path, text: str) -> None:
    """Rewrite the file as the watcher cannot notice (same size, same mtime): only a SIGHUP
    makes the daemon read it."""
    before = path.stat()
    assert len(text.encode()) == before.st_size
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_sighup_reloads_a_valid_change_and_refuses_an_invalid_one(
        tmp_path: Path, feed_server: FeedServer) -> None:
    path, proc = started_on_one_feed(tmp_path, feed_server)
    try:
        text = path.read_text()
        write_unseen(path, text.replace('poll_interval = "2s"', 'poll_interval = "3s"'))
        time.sleep(2.5)  # the watcher looks every 2 s: give it a look it must not act on
        assert count(path, "ConfigApplied") == 1
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: count(path, "ConfigApplied") == 2)
        wait_for(lambda: "configuration reloaded (SIGHUP)" in stderr_of(proc, path))
        valid = path.read_text()
        # two problems in one file, each logged; the size stays the same so only SIGHUP reads it
        bad = valid.replace('poll_interval = "3s"', 'poll_interval = "3x"').replace(
            'tick = "1s"', 'tick = "1x"')
        write_unseen(path, bad)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "the previous configuration keeps running" in stderr_of(proc, path))
        polls_on(feed_server)  # the old configuration's feed
        assert proc.poll() is None
        assert count(path, "ConfigApplied") == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    logged = stderr_of(proc, path)
    refused = [line for line in logged.splitlines() if "reload (SIGHUP) refused" in line]
    assert any("poll_interval" in line for line in refused), refused
    assert any("tick" in line for line in refused), refused
    # the clients the reload replaced are closed at the stop, not waited for nor left open
    assert "in-flight tasks" not in logged and "Unclosed" not in logged, logged


def test_one_hanging_feed_does_not_delay_fifty_healthy_ones(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feeds = {"hang": feed_server.url("/hang.xml")}
    feed_server.route("/hang.xml", delay=60)
    for f in range(50):
        feed_server.route(f"/{f}.xml", body=rss(items(f, 1)))
        feeds[f"f{f}"] = feed_server.url(f"/{f}.xml")
    # The hanging answer would come after 60 s and the fetch would give up after 120 s; the
    # test is over well before either: a daemon that waited on the hanging feed fails it.
    path = write_config(tmp_path, feeds=feeds, interval="2s",
                        extra_settings='tick = "1s"\nfetch_timeout = "120s"')
    proc = start(path)
    try:
        wait_for(lambda: min(feed_server.hits(f"/{f}.xml") for f in range(50)) >= 3,
                 timeout=40)
        assert count(path, "ItemDiscovered") == 50
        assert feed_server.hits("/hang.xml") == 1  # still hanging, not retried, not blocking
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_a_hanging_host_with_many_feeds_does_not_delay_the_other_hosts(
        tmp_path: Path, feed_server: FeedServer) -> None:
    # concurrency 5: at most 20 polls in flight. The hanging host's 15 feeds wait two at a time
    # for its slots; counted against the 20, they left no room to claim the other feeds.
    with FeedServer() as hanging:
        feeds = {}
        for f in range(15):
            hanging.route(f"/h{f}.xml", delay=60)
            feeds[f"h{f}"] = hanging.url(f"/h{f}.xml")
        for f in range(20):
            feed_server.route(f"/{f}.xml", body=rss(items(f, 1)))
            feeds[f"f{f}"] = feed_server.url(f"/{f}.xml")
        path = write_config(tmp_path, feeds=feeds, interval="2s", extra_settings=(
            'tick = "1s"\nfetch_timeout = "120s"\nconcurrency = 5\nper_host_concurrency = 2'))
        proc = start(path)
        try:
            wait_for(lambda: min(feed_server.hits(f"/{f}.xml") for f in range(20)) >= 3,
                     timeout=40)
            assert sum(hanging.hits(f"/h{f}.xml") for f in range(15)) == 2  # its two slots
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=10)
    logged = stderr_of(proc, path)
    assert code == 0, logged[-3000:]
    # a tick still waiting when the scheduler stops is no error
    assert "Traceback" not in logged and "raised an exception" not in logged, logged[-3000:]


@pytest.mark.slow
def test_two_daemons_share_one_postgresql_log(tmp_path: Path, feed_server: FeedServer,
                                              pg_url: str) -> None:
    feeds = {}
    for f in range(200):
        feed_server.route(f"/{f}.xml", body=rss(items(f, 2)), etag=f'"{f}"')
        feeds[f"f{f}"] = feed_server.url(f"/{f}.xml")
    interval = 6.0
    path = write_config(tmp_path, feeds=feeds, db_url=pg_url, interval="6s",
                        extra_settings='tick = "1s"')
    procs = [start(path, None, "--log-level", "debug") for _ in range(2)]
    # four intervals from the first poll, not from launch: on a loaded machine Python alone
    # can take seconds to start
    wait_for(lambda: feed_server.hits("/0.xml") > 0 or any(p.poll() is not None for p in procs),
             timeout=60)
    time.sleep(4 * interval)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        assert proc.wait(timeout=15) == 0, stderr_of(proc, path)[-3000:]
    for f in range(200):
        times = feed_server.times(f"/{f}.xml")
        # four intervals: polled at most once in each of them, and missing none but the last
        assert 3 <= len(times) <= 5, (f, times)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(g > interval * 0.5 for g in gaps), (f, gaps)  # never both in one interval
    store = open_store(load(path))
    guids = [r.data["guid"] for r in store.read(types=("ItemDiscovered",))]
    assert len(guids) == len(set(guids)) == 400
    for proc in procs:  # both did real work (the first to start may discover every item)
        assert "not_modified" in stderr_of(proc, path) or "new items" in stderr_of(proc, path)
    assert store.verify().ok
    store.close()


def test_concurrent_claims_on_postgresql_never_share_a_feed(tmp_path: Path, pg_url: str) -> None:
    """Four claimers released at once take every due feed exactly once between them."""
    feeds = {f"f{n}": f"http://127.0.0.1:9/{n}.xml" for n in range(200)}
    path = write_config(tmp_path, feeds=feeds, db_url=pg_url)
    config = load(path)
    store = open_store(config)
    workstate.sync_feeds(store, config, now=time.time(), rng=random.Random(1))
    with store.engine.begin() as conn:
        conn.execute(workstate.feed_state.update().values(next_poll_at=0))
    ids = [feed.id for feed in config.feeds]
    barrier = threading.Barrier(4)

    def claim(owner: str) -> list[str]:
        barrier.wait()
        got: list[str] = []
        while batch := workstate.claim_feeds(store, owner=owner, now=time.time(), lease=600,
                                             limit=5, feed_ids=ids):
            got += [work.feed_id for work in batch]
        return got

    with ThreadPoolExecutor(4) as pool:
        claimed = list(pool.map(claim, ["a", "b", "c", "d"]))
    store.close()
    assert sorted(f for mine in claimed for f in mine) == sorted(ids)  # each once, none twice
    assert sum(1 for mine in claimed if mine) >= 2, [len(m) for m in claimed]  # they competed


HOOK = """
[[channels]]
id = "hook"
type = "webhook"
url = "{url}"
secret_env = "{variable}"
retry_schedule = ["1s"]
"""


def test_a_running_daemon_holds_alerts_without_a_secret_and_a_reload_naming_one_it_has_sends(
        tmp_path: Path, feed_server: FeedServer, receiver: WebhookReceiver) -> None:
    assert "MONITOR_WEBHOOK_SECRET" not in os.environ
    feed_server.route("/a.xml", body=rss([{
        "title": "NEDO: Noetra has started training the foundation model",
        "link": "https://www.nedo.go.jp/news/press/AA5_101999.html", "guid": "nedo",
        "published": NOW - timedelta(hours=2)}]))
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")}, notify=["hook"],
                        channels=HOOK.format(url=receiver.url(), variable="MONITOR_WEBHOOK_SECRET"),
                        extra_settings='tick = "1s"')
    # the daemon has the secret under another name only
    proc = start(path, {"MONITOR_OTHER_SECRET": SECRET})
    try:
        wait_for(lambda: count(path, "AlertQueued") == 1)
        time.sleep(4)  # four deliver ticks; a one-retry schedule would have been spent twice
        assert count(path, "AlertAttemptFailed") == count(path, "AlertAbandoned") == 0
        assert receiver.received == []
        assert "MONITOR_WEBHOOK_SECRET is not set: alerts to that channel are held" in (
            stderr_of(proc, path))
        path.write_text(path.read_text().replace("MONITOR_WEBHOOK_SECRET", "MONITOR_OTHER_SECRET"))
        wait_for(lambda: count(path, "AlertDelivered") == 1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    [hook] = receiver.received
    assert hook.verified
    store = open_store(load(path))
    [delivered] = list(store.read(types=("AlertDelivered",)))
    store.close()
    assert delivered.data["attempt"] == 1


@pytest.mark.parametrize("setting, before, after", [
    ("database_url", None, "sqlite:///elsewhere.db"),
    ("log_format", '"text"', '"json"'),
])
def test_a_reload_says_which_changed_setting_waits_for_the_next_start(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, setting: str, before: str | None,
        after: str) -> None:
    from monitor.reload import reloaded

    path = write_config(tmp_path, feeds={"a": "https://example.org/a.xml"},
                        extra_settings=f"{setting} = {before}" if before else "")
    old = load(path)
    text = path.read_text()
    if before:
        path.write_text(text.replace(f"{setting} = {before}", f"{setting} = {after}"))
    else:
        path.write_text(text.replace(
            f'database_url = "{old.settings.database_url}"', f'database_url = "{after}"'))
    with caplog.at_level("WARNING", logger="monitor.daemon"):
        new = reloaded(old, {}, "SIGHUP")
    assert new is not None
    assert f"{setting} changed: takes effect at the next start" in caplog.messages


@pytest.fixture
def pg_role(pg_available: None) -> Iterator[tuple[str, Callable[[bool], None]]]:
    """A PostgreSQL URL of a role of its own, and a switch that lets it log in or not: an
    event log out of reach (as when the server restarts) and back, as the daemon sees it."""
    import psycopg

    from tests.conftest import PG_BASE

    role = "outage_" + uuid.uuid4().hex[:10]
    plain = PG_BASE.replace("+psycopg", "")
    admin = psycopg.connect(plain, autocommit=True)
    admin.execute(f'CREATE ROLE "{role}" LOGIN')
    admin.execute(f'CREATE SCHEMA "{role}" AUTHORIZATION "{role}"')

    def can_log_in(yes: bool) -> None:
        admin.execute(f'ALTER ROLE "{role}" {"LOGIN" if yes else "NOLOGIN"}')
        if not yes:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE usename = %s", (role,))

    database = PG_BASE.rsplit("/", 1)[1]
    yield (f"postgresql+psycopg://{role}@127.0.0.1:5432/{database}"
           f"?options=-csearch_path%3D{role}"), can_log_in
    can_log_in(False)
    admin.execute(f'DROP SCHEMA "{role}" CASCADE')
    admin.execute(f'DROP ROLE "{role}"')
    admin.close()


def test_an_event_log_out_of_reach_is_one_line_and_the_daemon_carries_on(
        tmp_path: Path, feed_server: FeedServer,
        pg_role: tuple[str, Callable[[bool], None]]) -> None:
    url, can_log_in = pg_role
    feed_server.route("/a.xml", body=rss(items(1, 2)))
    # fetch_timeout 2s: a lease of 14 s, so a poll the outage cut off is soon polled again
    path = write_config(tmp_path, feeds={"a": feed_server.url("/a.xml")}, db_url=url,
                        interval="2s", extra_settings='tick = "1s"\nfetch_timeout = "2s"')
    proc = start(path)
    try:
        wait_for(lambda: "monitoring 1 feed" in stderr_of(proc, path))
        can_log_in(False)
        wait_for(lambda: "event log out of reach" in stderr_of(proc, path))
        time.sleep(3)  # three ticks try again, in vain
        assert proc.poll() is None
        can_log_in(True)
        wait_for(lambda: "event log reachable again" in stderr_of(proc, path))
        hits = feed_server.hits("/a.xml")
        wait_for(lambda: feed_server.hits("/a.xml") > hits)  # polling goes on
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    logged = stderr_of(proc, path)
    assert logged.count("event log out of reach") == 1, logged
    assert "Traceback" not in logged, logged
    line = next(x for x in logged.splitlines() if "event log out of reach" in x)
    assert "every tick tries again" in line and "ERROR" in line


def test_an_event_log_one_job_cannot_write_is_not_said_back_by_another_job(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A full disk fails the poll tick's claims while a deliver tick with nothing to send ends
    well: the log is said out of reach once, not out of reach and back again every tick."""
    import asyncio
    import logging

    import sqlalchemy as sa

    from monitor.daemon import Daemon
    from monitor.errors import StoreError
    from tests.kit import kept_logging

    async def full(self: Daemon) -> None:  # as the store raises it, from SQLite's error
        disk = sa.exc.OperationalError("INSERT", {}, Exception("database or disk is full"))
        raise StoreError("event log: write failed: database or disk is full") from disk

    async def nothing(self: Daemon) -> None:
        return None

    monkeypatch.setattr(Daemon, "poll_tick", full)
    monkeypatch.setattr(Daemon, "deliver_tick", nothing)
    daemon = Daemon(load(write_config(tmp_path, feeds={"a": "https://e.org/a.xml"})), {})

    async def ticks(*jobs: str) -> None:
        for _ in range(3):
            for job in jobs:
                await daemon.scheduled(job)

    with kept_logging(), caplog.at_level(logging.INFO, logger="monitor"):
        asyncio.run(ticks("poll_tick", "deliver_tick"))
        monkeypatch.setattr(Daemon, "poll_tick", nothing)
        asyncio.run(ticks("poll_tick", "deliver_tick"))
        # the hourly deadline tick met it too: the poll tick says it back, not an hour later
        monkeypatch.setattr(Daemon, "poll_tick", full)
        monkeypatch.setattr(Daemon, "deadline_tick", full)
        asyncio.run(ticks("deadline_tick", "poll_tick"))
        monkeypatch.setattr(Daemon, "poll_tick", nothing)
        asyncio.run(ticks("poll_tick", "deliver_tick"))
    daemon.store.close()
    said = [m for m in caplog.messages if "event log" in m]
    full_line = ("event log out of reach: event log: write failed: database or disk is full;"
                 " every tick tries again")
    assert said == [full_line, "event log reachable again"] * 2, said


def raised(exc: BaseException, cause: BaseException | None = None) -> BaseException:
    """`exc` as raised (from `cause`), its __cause__ set as `raise … from` sets it."""
    try:
        raise exc from cause
    except BaseException as caught:  # noqa: BLE001
        return caught


def test_only_a_database_out_of_reach_is_taken_for_one() -> None:
    """A server down, a lost connection, a full disk: out of reach, said once. A constraint
    or a statement the log refuses is a bug, logged with its traceback."""
    import sqlalchemy as sa

    from monitor.errors import StoreError
    from monitor.ticks import out_of_reach

    down = sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
    full = sa.exc.OperationalError("INSERT", {}, Exception("database or disk is full"))
    refused = sa.exc.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
    assert out_of_reach(down) and out_of_reach(full)
    assert out_of_reach(raised(StoreError("event log: write failed: x"), down))
    assert not out_of_reach(refused)
    assert not out_of_reach(raised(StoreError("event log: write failed: x"), refused))
    assert not out_of_reach(StoreError("event at position 7: the stored record cannot be read"))
    assert not out_of_reach(ValueError("a bug"))


def test_a_job_that_breaks_a_constraint_is_logged_as_a_bug(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    import sqlalchemy as sa

    from monitor.daemon import Daemon

    path = write_config(tmp_path, feeds={"a": "https://news.example.com/a.xml"})

    async def failing() -> None:
        raise sa.exc.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))

    async def guarded() -> bool:
        daemon = Daemon(load(path), {})
        try:
            return await daemon._guard(failing(), "poll_tick")
        finally:
            daemon.store.close()

    with caplog.at_level("ERROR", logger="monitor.daemon"):
        assert asyncio.run(guarded()) is False
    [record] = caplog.records
    assert record.exc_info is not None and "out of reach" not in record.getMessage()
