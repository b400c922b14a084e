"""Milestones end to end on loopback: evidence moves states exactly once, deadlines, baselines."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor import evaluate, milestones, reports
from monitor.events import Status
from monitor.runtime import open_store
from tests.feedserver import FeedServer
from tests.kit import cli, load, rss, run_once, write_config

NOW = datetime.now(UTC)

NEAR_MISS = {"title": "Noetra sponsors SoftBank Hawks spring training camp",
             "link": "https://www.nikkansports.com/baseball/1", "guid": "hawks",
             "published": NOW - timedelta(hours=5)}
NEDO_HYDROGEN = {"title": "NEDO、水素製造プロジェクトを採択", "link": "https://www.nedo.go.jp/news/h2",
                 "guid": "h2", "published": NOW - timedelta(hours=5)}
RUMOUR = {"title": "Noetra reportedly begins training its first model",
          "link": "https://www3.nhk.or.jp/news/html/rumour.html", "guid": "rumour",
          "published": NOW - timedelta(hours=4)}
SECOND = {"title": "日本AI基盤モデル開発、基盤モデルの学習を開始",
          "link": "https://www.itmedia.co.jp/aiplus/articles/2611/01/news1.html",
          "guid": "second", "published": NOW - timedelta(hours=3)}
AUTHORITATIVE = {"title": "NEDO: Noetra has started training the foundation model",
                 "link": "https://www.nedo.go.jp/news/press/AA5_101999.html",
                 "guid": "nedo", "published": NOW - timedelta(hours=2)}


def status_changes(path: Path) -> list[tuple[str, str, str]]:
    store = open_store(load(path))
    try:
        return [(r.data["milestone_id"], r.data["from_status"], r.data["to_status"])
                for r in store.read(types=("MilestoneStatusChanged",))]
    finally:
        store.close()


def test_near_miss_rumour_second_publisher_authority_move_exactly_once_each(
        tmp_path: Path, feed_server: FeedServer) -> None:
    path = write_config(tmp_path, feeds={"news": feed_server.url("/news.xml")})
    published: list[dict[str, object]] = []
    expected: list[list[tuple[str, str, str]]] = [
        [],
        [("training-start", "pending", "reported")],
        [("training-start", "pending", "reported"), ("training-start", "reported", "confirmed")],
        [("training-start", "pending", "reported"), ("training-start", "reported", "confirmed")],
    ]
    for step, entry in enumerate([NEAR_MISS, RUMOUR, SECOND, AUTHORITATIVE]):
        published.append(entry)
        if step == 0:
            published.append(NEDO_HYDROGEN)
        feed_server.route("/news.xml", body=rss(published))
        run_once(path)
        run_once(path)  # polling again changes nothing
        assert status_changes(path) == expected[step], f"after step {step}"
    store = open_store(load(path))
    matched = [r.data["item_id"] for r in store.read(types=("MilestoneMatched",))]
    assert len(matched) == 3  # rumour, second publisher, and NEDO after confirmation
    confirmed = [r for r in store.read(types=("MilestoneStatusChanged",))][-1]
    assert confirmed.data["reason"].startswith("2 independent publishers")
    assert confirmed.meta["causation"] < confirmed.position
    cause = store.get(confirmed.meta["causation"])
    assert cause is not None and cause.type == "ItemDiscovered"
    assert cause.data["publisher"] == "itmedia.co.jp"
    store.close()


def test_backtest_writes_nothing_and_agrees_with_the_daemon(
        tmp_path: Path, feed_server: FeedServer) -> None:
    path = write_config(tmp_path, feeds={"news": feed_server.url("/news.xml")})
    feed_server.route("/news.xml", body=rss([NEAR_MISS, RUMOUR]))
    run_once(path)
    feed_server.route("/news.xml", body=rss([NEAR_MISS, RUMOUR, SECOND, AUTHORITATIVE]))
    run_once(path)
    config = load(path)
    store = open_store(config)
    head = store.head()
    replayed = [(t.milestone_id, t.from_status, t.to_status)
                for t in reports.backtest(store, config, since=None, now=NOW)]
    assert replayed == status_changes(path)
    assert store.head() == head
    store.close()


def test_deadline_passing_is_recorded_once(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/news.xml", body=rss([RUMOUR]))
    path = write_config(tmp_path, feeds={"news": feed_server.url("/news.xml")},
                        expected_by="2026-01-31")
    run_once(path)
    run_once(path)
    assert status_changes(path) == [("training-start", "pending", "reported"),
                                    ("training-start", "reported", "overdue")]


# The load-time check lets it through; on a run of 'a's its search takes exponential time.
SLOW_REGEX = "/" + "(?:a|a)" * 30 + "b/"
HOSTILE = {"title": "Noetra " + "a" * 200, "link": "https://example.org/a", "guid": "hostile",
           "published": NOW - timedelta(hours=5)}


@pytest.mark.timeout(60)
def test_a_regex_search_that_runs_out_of_time_stops_neither_the_poll_nor_the_matching(
        tmp_path: Path, feed_server: FeedServer, caplog: pytest.LogCaptureFixture) -> None:
    feed_server.route("/news.xml", body=rss([HOSTILE, RUMOUR]))
    path = write_config(tmp_path, feeds={"news": feed_server.url("/news.xml")})
    text = path.read_text()
    path.write_text(text.replace('["delay*", "postpone*", "延期", "遅れ"]',
                                 f'["delay*", "postpone*", "延期", "遅れ", \'{SLOW_REGEX}\']'))
    with caplog.at_level(logging.WARNING, logger="monitor.poll"):
        run_once(path)
    assert status_changes(path) == [("training-start", "pending", "reported")]
    warned = [r.getMessage() for r in caplog.records if "ran out of time" in r.getMessage()]
    said = (f"feed 'news': item {item_id(path, 'hostile')} ('Noetra {'a' * 52}…'): milestone "
            f"'training-start' rule 'training-start:setback:0': term {SLOW_REGEX!r} ran out of "
            "time (0.1 s) in the title and is taken as no match")
    assert warned == [said]  # once, naming the item, not carrying its text


def item_id(path: Path, guid: str) -> str:
    store = open_store(load(path))
    try:
        [found] = [r.data["item_id"] for r in store.read(types=("ItemDiscovered",))
                   if r.data.get("guid") == guid]
        return str(found)
    finally:
        store.close()


GUESSED = "https://www.meti.go.jp/press/2026/06/20260630001/20260630001.html"
ACTUAL = "https://www.nedo.go.jp/news/press/AA5_101999.html"


def with_baseline(tmp_path: Path, feeds: dict[str, str], source: str) -> tuple[Path, str]:
    """A configuration whose milestone has a confirmed baseline since 2026-06-30 citing
    `source`; the path and its text."""
    path = write_config(tmp_path, feeds=feeds)
    text = path.read_text().replace(
        'notify = []',
        f'notify = []\nbaseline = {{ status = "confirmed", since = 2026-06-30, source = "{source}" }}')
    path.write_text(text)
    return path, text


def test_baseline_is_recorded_once_across_restarts(tmp_path: Path,
                                                   feed_server: FeedServer) -> None:
    feed_server.route("/news.xml", body=rss([]))
    path, _ = with_baseline(tmp_path, {"news": feed_server.url("/news.xml")}, GUESSED)
    for _ in range(3):
        run_once(path)
    store = open_store(load(path))
    [baseline] = list(store.read(types=("MilestoneStatusChanged",)))
    assert baseline.data["reason"] == "baseline from configuration"
    assert baseline.data["source"].startswith("https://www.meti.go.jp/")
    # the declared day is the configured timezone's (Asia/Tokyo): its midnight, in UTC
    assert baseline.data["effective_at"] == "2026-06-29T15:00:00+00:00"
    assert baseline.meta["operator"] == "configuration"
    assert list(store.read(types=("AlertQueued",))) == []
    store.close()
    status = cli(path, "status")
    assert "2026-06-30 00:00:00 JST" in status.stdout, status.stdout


def test_an_edited_baseline_source_is_recorded_once_as_a_correction_not_a_transition(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/news.xml", body=rss([]))
    guessed, actual = GUESSED, ACTUAL
    path, text = with_baseline(tmp_path, {"news": feed_server.url("/news.xml")}, guessed)
    run_once(path)
    path.write_text(text.replace(guessed, actual))
    for _ in range(2):  # the second start finds the source already corrected
        run_once(path)
    config = load(path)
    store = open_store(config)
    try:
        assert len(list(store.read(types=("MilestoneStatusChanged",)))) == 1
        [corrected] = list(store.read(types=("MilestoneSourceCorrected",)))
        assert corrected.data["status"] == "confirmed" and corrected.data["source"] == actual
        assert corrected.data["previous_source"] == guessed
        assert corrected.meta["operator"] == "configuration"
        assert list(store.read(types=("AlertQueued",))) == []
        [row] = reports.milestone_rows(store, config, NOW)
        assert (row["status"], row["source"]) == ("confirmed", actual)
        assert row["since"] == "2026-06-29T15:00:00+00:00"
    finally:
        store.close()
    noted = "https://www.nedo.go.jp/news/press/AA5_102000.html"
    note = cli(path, "note", "training-start", "--status", "confirmed", "--source", noted,
               "--operator", "alice")
    assert note.returncode == 0 and "source corrected" in note.stdout, note.stderr
    run_once(path)  # feeds.toml unchanged since it last cited a source: the note stays
    assert sources(path) == [(actual, "configuration"), (noted, "alice")]
    path.write_text(text)  # back to the first guess: the configuration cites it again
    run_once(path)
    run_once(path)
    assert sources(path) == [(actual, "configuration"), (noted, "alice"),
                             (guessed, "configuration")]
    path.write_text(text.replace("2026-06-30", "2026-07-01").replace(guessed, actual))
    run_once(path)  # another since: not the recorded baseline, so not its correction
    assert len(sources(path)) == 3


def test_an_edited_baseline_status_or_since_moves_nothing(
        tmp_path: Path, feed_server: FeedServer, caplog: pytest.LogCaptureFixture) -> None:
    """A recorded baseline is history: edited afterwards, it does not take the milestone back
    from where a note (or the evidence) moved it since; the daemon says it is ignored."""
    feed_server.route("/news.xml", body=rss([]))
    path, text = with_baseline(tmp_path, {"news": feed_server.url("/news.xml")}, GUESSED)
    run_once(path)
    note = cli(path, "note", "training-start", "--status", "at_risk", "--source", ACTUAL,
               "--operator", "alice")
    assert note.returncode == 0, note.stderr
    path.write_text(text.replace('status = "confirmed", since = 2026-06-30',
                                 'status = "reported", since = 2026-07-01'))
    with caplog.at_level(logging.WARNING, logger="monitor.daemon"):
        run_once(path)
        run_once(path)
    assert status_changes(path) == [("training-start", "pending", "confirmed"),
                                    ("training-start", "confirmed", "at_risk")]
    warned = [r.getMessage() for r in caplog.records if "baseline" in r.getMessage()]
    ignored = ("milestones 'training-start': baseline reported since 2026-07-01 differs from the "
               "one recorded (confirmed since 2026-06-30) and is ignored; `monitor note "
               "training-start --status STATUS --source URL` declares a status")
    assert warned == [ignored] * 2


def test_a_baseline_added_after_the_evidence_never_takes_the_milestone_back(
        tmp_path: Path, feed_server: FeedServer, caplog: pytest.LogCaptureFixture) -> None:
    """The milestone had its status before the baseline came: the baseline records nothing,
    then or later, when the evidence has moved the milestone on."""
    feed_server.route("/news.xml", body=rss([RUMOUR]))
    path = write_config(tmp_path, feeds={"news": feed_server.url("/news.xml")})
    run_once(path)
    path.write_text(path.read_text().replace(
        "notify = []",
        f'notify = []\nbaseline = {{ status = "reported", since = 2026-06-30, source = "{GUESSED}" }}'))
    with caplog.at_level(logging.WARNING, logger="monitor.daemon"):
        run_once(path)
    assert any("baseline reported since 2026-06-30 not recorded: the log held a status first "
               "(reported since " in r.getMessage() for r in caplog.records), caplog.text
    feed_server.route("/news.xml", body=rss([RUMOUR, SECOND]))
    run_once(path)
    run_once(path)  # a restart with the milestone confirmed: the baseline still moves nothing
    assert status_changes(path) == [("training-start", "pending", "reported"),
                                    ("training-start", "reported", "confirmed")]


def test_a_baseline_holds_while_its_since_is_the_one_it_recorded(tmp_path: Path) -> None:
    """An edited source corrects the baseline while the milestone's since is the one the
    baseline recorded, whatever the timezone reads now: a log from before the declared day was
    read in the timezone holds UTC midnight, and the timezone may be changed afterwards."""
    guessed, actual = GUESSED, ACTUAL
    config = load(with_baseline(tmp_path, {}, actual)[0])
    [m] = [m for m in config.milestones if m.baseline is not None]
    for recorded in (datetime(2026, 6, 30, tzinfo=UTC), datetime(2026, 6, 29, 15, tzinfo=UTC)):
        for since, corrected in ((recorded, 1), (recorded + timedelta(hours=1), 0)):
            state = milestones.MilestoneState(Status.CONFIRMED, since, (), guessed)
            cited = {m.id: (guessed, recorded)}
            found = evaluate.baseline_corrections(config, {m.id: state}, cited)
            assert [c.source for c in found] == [actual] * corrected, (recorded, since)
    state = milestones.MilestoneState(Status.CONFIRMED, recorded, (), actual)
    assert evaluate.baseline_corrections(config, {m.id: state}, {m.id: (actual, recorded)}) == []


def test_an_edited_source_corrects_a_baseline_after_the_timezone_changed(
        tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/news.xml", body=rss([]))
    path, text = with_baseline(tmp_path, {"news": feed_server.url("/news.xml")}, GUESSED)
    run_once(path)
    moved = text.replace('timezone = "Asia/Tokyo"', 'timezone = "Europe/Berlin"')
    assert moved != text
    path.write_text(moved.replace(GUESSED, ACTUAL))
    run_once(path)
    assert sources(path) == [(ACTUAL, "configuration")]


def sources(path: Path) -> list[tuple[str, str]]:
    store = open_store(load(path))
    try:
        return [(r.data["source"], r.meta["operator"])
                for r in store.read(types=("MilestoneSourceCorrected",))]
    finally:
        store.close()
