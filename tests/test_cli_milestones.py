"""`monitor status/explain/backtest/note` against a log the daemon wrote, in a subprocess."""

from __future__ import annotations

import functools
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor.milestones import deadline_instant
from tests import kit
from tests.conftest import SECRET
from tests.feedserver import FeedServer
from tests.kit import rss, run_once, write_config
from tests.receivers import Reply, WebhookReceiver

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime.now(UTC)
ENV = {"MONITOR_WEBHOOK_SECRET": SECRET}
RUMOUR = {"title": "Noetra reportedly begins training its first model",
          "link": "https://www3.nhk.or.jp/news/html/rumour.html", "guid": "rumour",
          "published": NOW - timedelta(hours=4)}
SECOND: dict[str, Any] = {"title": "日本AI基盤モデル開発、基盤モデルの学習を開始",
          "link": "https://www.itmedia.co.jp/aiplus/articles/2611/01/news1.html",
          "guid": "second", "published": NOW - timedelta(hours=3)}
HOOK = """
[[channels]]
id = "hook"
type = "webhook"
url = "{url}"
secret_env = "MONITOR_WEBHOOK_SECRET"
timeout = "5s"
"""
SOURCE = "https://www.meti.go.jp/press/2026/11/20261101001/20261101001.html"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """pending → reported → confirmed; the first alert refused for good (400), a feed failing."""
    folder = tmp_path_factory.mktemp("seed")
    with FeedServer() as server, WebhookReceiver(SECRET) as receiver:
        server.route("/news.xml", body=rss([RUMOUR, SECOND]))
        server.route("/down.xml", status=503)
        receiver.respond(Reply(status=400))
        path = write_config(folder, db_url="sqlite:///events.db", notify=["hook"],
                            feeds={"news": server.url("/news.xml"),
                                   "down": server.url("/down.xml")},
                            channels=HOOK.format(url=receiver.url()))
        run_once(path, ENV)
    yield folder


@pytest.fixture
def config(seeded: Path, tmp_path: Path) -> Path:
    shutil.copytree(seeded, tmp_path / "log")
    return tmp_path / "log" / "feeds.toml"


cli = functools.partial(kit.cli, env=ENV)
json_out = functools.partial(kit.json_out, env=ENV)


def changes(path: Path) -> list[dict[str, Any]]:
    return json_out(path, "log", "--type", "MilestoneStatusChanged")


def days_left(expected_by: str) -> int:
    return (deadline_instant(date.fromisoformat(expected_by), "Asia/Tokyo")
            - datetime.now(UTC)).days


def test_status_json_reports_milestones_feeds_and_abandoned_alerts(config: Path) -> None:
    lines = json_out(config, "status")
    [milestone] = [x for x in lines if x["kind"] == "milestone"]
    confirmed = changes(config)[-1]
    assert milestone["status"] == confirmed["data"]["to_status"] == "confirmed"
    assert milestone["since"] == confirmed["recorded_at"]
    assert milestone["evidence"] == 2 and milestone["publishers"] == ["itmedia.co.jp",
                                                                      "nhk.or.jp"]
    assert milestone["newest_evidence"] == SECOND["title"]
    assert milestone["expected_by"] == "2027-03-31"
    assert milestone["days_left"] == days_left("2027-03-31")
    feeds = {x["id"]: x for x in lines if x["kind"] == "feed"}
    assert feeds["news"]["health"] == "ok" and feeds["news"]["problem"] is None
    assert feeds["down"]["health"] == "failing" and "503" in feeds["down"]["problem"]
    [counts] = [x for x in lines if x["kind"] == "alerts"]
    assert (counts["pending"], counts["abandoned"], counts["delivered"]) == (0, 1, 1)
    [abandoned] = [x for x in lines if x["kind"] == "abandoned_alert"]
    [refused] = json_out(config, "log", "--type", "AlertAbandoned")
    assert abandoned["alert_id"] == refused["data"]["alert_id"]


def test_status_shows_a_feed_never_polled_as_such_and_a_disabled_feed_without_next_poll(
        config: Path) -> None:
    text = config.read_text()
    text = re.sub(r'(id = "down"\nurl = "[^"]*"\n)', r"\1enabled = false\n", text)
    config.write_text(text + '\n[[feeds]]\nid = "later"\nurl = "https://example.org/later.xml"\n')
    feeds = {x["id"]: x for x in json_out(config, "status") if x["kind"] == "feed"}
    assert (feeds["later"]["health"], feeds["later"]["enabled"]) == ("not_polled", True)
    assert feeds["later"]["last_success_at"] is None
    assert (feeds["down"]["health"], feeds["down"]["enabled"]) == ("failing", False)
    assert feeds["down"]["next_poll_at"] is None
    assert feeds["news"]["health"] == "ok" and feeds["news"]["next_poll_at"] is not None
    table = cli(config, "status").stdout.splitlines()
    row = {line.split()[0]: line for line in table if line.split()[:1] in (["news"], ["down"],
                                                                           ["later"])}
    assert re.match(r"later\s+not polled yet\s+—\s", row["later"]), row["later"]
    assert re.match(r"down\s+failing\s+—\s+disabled\s", row["down"]), row["down"]
    assert re.match(r"news\s+ok\s+\d{4}-\d\d-\d\d .* JST\s+\d{4}-", row["news"]), row["news"]


def test_status_table_shows_local_times_deadline_and_abandoned_alert_lines(
        config: Path) -> None:
    result = cli(config, "status")
    assert result.returncode == 0, result.stderr
    since = datetime.fromisoformat(changes(config)[-1]["recorded_at"]).astimezone(TOKYO)
    row = next(line for line in result.stdout.splitlines()
               if line.startswith("training-start"))
    assert "confirmed" in row and since.strftime("%Y-%m-%d %H:%M:%S JST") in row
    assert row.endswith(" 2027-03-31") and "days left" not in row  # confirmed: no countdown
    assert "2 (2 publishers)" in row and SECOND["title"] in row
    assert re.search(r"^down\s+failing\s.*503", result.stdout, re.MULTILINE)
    assert "alerts: 0 pending, 1 abandoned" in result.stdout
    [refused] = json_out(config, "log", "--type", "AlertAbandoned")
    assert f"abandoned {refused['data']['alert_id']} on 'hook': " in result.stdout


@pytest.mark.parametrize("text,kind", [
    ("Noetra begins training its model", "progress"),
    ("ＮＯＥＴＲＡ、ｔｒａｉｎｉｎｇを開始", "progress"),
    ("ﾉｴﾄﾗが基盤モデルの学習を開始", "progress"),
    ("ﬁnally: Noetra's training run", "progress"),
    ("Noetra postpones the start of training", "setback"),
])
def test_explain_json_spans_point_at_the_matched_text(config: Path, text: str,
                                                      kind: str) -> None:
    [verdict] = json_out(config, "explain", text)
    assert verdict["milestone"] == "training-start" and verdict["kind"] == kind
    assert len(verdict["hits"]) >= 2
    for hit in verdict["hits"]:
        assert text[hit["start"]:hit["end"]] == hit["text"]


def test_explain_prints_each_hit_and_names_what_vetoed_a_near_miss(config: Path) -> None:
    result = cli(config, "explain", "Noetra begins training its model")
    assert result.stdout.splitlines() == [
        "training-start (progress, rule training-start:progress)",
        "Noetra begins training its model",
        "  all group 0: Noetra matched 'Noetra' in title [0:6]",
        "  all group 1: training matched 'training' in title [14:22]",
    ]
    # numbered as the alert about it numbers them (`matched "Noetra" (all group 0)`), and as
    # --json and the webhook's `group` do
    [verdict] = json_out(config, "explain", "Noetra begins training its model")
    assert [h["group"] for h in verdict["hits"]] == [0, 1]
    near_miss = "Noetra sponsors SoftBank Hawks spring training camp"
    result = cli(config, "explain", near_miss)
    assert (result.returncode, result.stdout.splitlines()) == (0, [
        ("rule training-start:progress would match, but its none term 'SoftBank Hawks' found "
        "'SoftBank Hawks' in the title"),
        "no milestone rule matches"])
    assert json_out(config, "explain", near_miss) == [
        {"milestone": "training-start", "kind": "progress", "rule": "training-start:progress",
         "vetoed_by": {"term": "SoftBank Hawks", "field": "title", "text": "SoftBank Hawks"}}]
    assert json_out(config, "explain", "Noetra sponsors a baseball camp") == []  # no near miss


def test_explain_says_which_regex_search_ran_out_of_time(tmp_path: Path) -> None:
    slow = "/" + "(?:a|a)" * 30 + "b/"  # exponential on a run of 'a's; the check lets it pass
    path = write_config(tmp_path, feeds={"news": "https://example.org/feed.xml"})
    path.write_text(path.read_text().replace(
        '["delay*", "postpone*", "延期", "遅れ"]', f'["delay*", "postpone*", \'{slow}\']'))
    said = (f"milestone 'training-start' rule 'training-start:setback:0': term {slow!r} ran out "
            "of time (0.1 s) in the title and is taken as no match")
    text = "Noetra " + "a" * 200
    result = kit.monitor_cmd("--config", str(path), "explain", text,
                             env={"NO_COLOR": "1", "COLUMNS": "400"}, timeout=30)
    assert (result.returncode, result.stdout) == (0, f"{said}\nno milestone rule matches\n")
    result = kit.monitor_cmd("--config", str(path), "explain", "--json", text,
                             env={"NO_COLOR": "1", "COLUMNS": "400"}, timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", f"warning: {said}\n")


def test_explain_shows_a_regex_term_as_written_in_feeds_toml(tmp_path: Path) -> None:
    veto = r"/\b(?:will|to) [a-z]+ training\b/"  # a TOML literal string keeps it so
    path = write_config(tmp_path, feeds={"news": "https://example.org/feed.xml"})
    path.write_text(path.read_text().replace(
        'none = ["SoftBank Hawks", "ホークス"]', f"none = ['{veto}']"))
    result = cli(path, "explain", "Noetra will begin training")
    assert result.stdout.splitlines()[0] == (
        f"rule training-start:progress would match, but its none term '{veto}' found "
        "'will begin training' in the title")  # not repr's doubled backslashes, nor Rich's \[


def test_backtest_writes_nothing_and_lists_the_transitions_the_daemon_recorded(
        config: Path) -> None:
    head = cli(config, "verify").stdout.splitlines()[0]
    replayed = json_out(config, "backtest")
    recorded = changes(config)
    assert [(t["milestone"], t["from"], t["to"], t["reason"]) for t in replayed] == [
        (c["data"]["milestone_id"], c["data"]["from_status"], c["data"]["to_status"],
         c["data"]["reason"]) for c in recorded]
    assert [t["position"] for t in replayed] == [c["meta"]["causation"] for c in recorded]
    table = cli(config, "backtest")
    assert "pending → reported" in table.stdout and "reported → confirmed" in table.stdout
    assert table.stdout.rstrip().endswith("2 transitions (nothing was written)")
    tomorrow = (datetime.now(TOKYO) + timedelta(days=1)).date().isoformat()
    assert json_out(config, "backtest", "--since", tomorrow) == []
    assert cli(config, "backtest", "--since", "last week").returncode == 2
    assert cli(config, "verify").stdout.splitlines()[0] == head


def test_note_records_one_change_with_operator_and_source_and_is_idempotent(
        config: Path) -> None:
    before = changes(config)
    args = ("note", "training-start", "--status", "at_risk", "--source", SOURCE,
            "--reason", "budget cut announced", "--operator", "alice")
    result = cli(config, *args)
    assert result.returncode == 0, result.stderr
    assert "confirmed → at_risk (by alice)" in result.stdout
    [note] = changes(config)[len(before):]
    assert note["data"]["from_status"] == "confirmed" and note["data"]["to_status"] == "at_risk"
    assert note["data"]["source"] == SOURCE and note["data"]["reason"] == "budget cut announced"
    assert note["meta"]["operator"] == "alice"
    head = cli(config, "verify").stdout.splitlines()[0]
    again = cli(config, *args)
    assert again.returncode == 0 and "nothing recorded" in again.stdout
    assert cli(config, "verify").stdout.splitlines()[0] == head


def test_a_note_with_the_same_status_and_another_source_corrects_the_source(
        config: Path) -> None:
    note = ("note", "training-start", "--status", "at_risk", "--operator", "alice")
    assert cli(config, *note, "--source", SOURCE).returncode == 0
    alerts = len(json_out(config, "log", "--type", "AlertQueued"))
    better = "https://www.nedo.go.jp/news/press/AA5_102000.html"
    result = cli(config, *note, "--source", better, "--reason", "the press release itself")
    assert result.returncode == 0, result.stderr
    assert "training-start stays at_risk, source corrected (by alice)" in result.stdout
    [corrected] = json_out(config, "log", "--type", "MilestoneSourceCorrected")
    assert corrected["data"] == {"milestone_id": "training-start", "status": "at_risk",
                                 "source": better, "previous_source": SOURCE,
                                 "reason": "the press release itself"}
    assert corrected["meta"]["operator"] == "alice"
    assert len(json_out(config, "log", "--type", "AlertQueued")) == alerts  # not alerted
    [milestone] = [x for x in json_out(config, "status") if x["kind"] == "milestone"]
    assert (milestone["status"], milestone["source"]) == ("at_risk", better)
    assert f"training-start: at_risk per {better}" in cli(config, "status").stdout
    again = cli(config, *note, "--source", better)
    assert again.returncode == 0 and "citing that source: nothing recorded" in again.stdout
    assert len(json_out(config, "log", "--type", "MilestoneSourceCorrected")) == 1


def test_a_note_cannot_cite_a_source_for_a_status_the_evidence_reached(config: Path) -> None:
    result = cli(config, "note", "training-start", "--status", "confirmed", "--source", SOURCE)
    assert result.returncode == 0
    assert "already confirmed by the evidence: nothing recorded" in result.stdout


@pytest.mark.parametrize("args", [
    ["training-start", "--status", "done", "--source", SOURCE],
    ["training-start", "--status", "at_risk", "--source", "meti.go.jp/press"],
    ["training-start", "--status", "at_risk", "--source", "ftp://meti.go.jp/x"],
    ["no-such-milestone", "--status", "at_risk", "--source", SOURCE],
    ["training-start", "--source", SOURCE],
    ["training-start", "--status", "at_risk", "--source", "http://"],
    ["training-start", "--status", "at_risk", "--source", "https:///press/x.html"],
    ["training-start", "--status", "at_risk", "--source", "https://meti.go.jp:99999/x"],
    ["training-start", "--status", "at_risk", "--source", "https://meti .go.jp/x"],
])
def test_bad_notes_exit_2_and_record_nothing(config: Path, args: list[str]) -> None:
    head = cli(config, "verify").stdout.splitlines()[0]
    result = cli(config, "note", *args)
    assert result.returncode == 2 and result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    assert cli(config, "verify").stdout.splitlines()[0] == head


@pytest.mark.parametrize("page", [
    "https://www.digital.go.jp/news/cb912b3b-49c9-4a02-aa46-4056b96c1d4f",
    "https://www.meti.go.jp/search?keyword=Noetra&category_code=3#results",
])
def test_a_note_may_cite_a_page_whose_address_holds_an_id(config: Path, page: str) -> None:
    """A path token, or a query name holding 'key' or 'code', is redacted where URLs are
    shown; a cited page's address is its id, and shows whole."""
    result = cli(config, "note", "training-start", "--status", "at_risk", "--source", page)
    assert result.returncode == 0, result.stderr
    [milestone] = [x for x in json_out(config, "status") if x["kind"] == "milestone"]
    assert milestone["source"] == page
    assert f"training-start: at_risk per {page}" in cli(config, "status").stdout


@pytest.mark.parametrize("source", [
    "https://bob:hunter2@example.org/x?token=abc123",
    "https://bob@example.org/x",
    "https://example.org/x?token=abc123",
    "https://example.org/x#access_token=abc123",
    "https://example.org/x?%74oken=abc123",
])
def test_a_note_refuses_a_source_with_credentials_and_never_echoes_them(
        config: Path, source: str) -> None:
    head = cli(config, "verify").stdout.splitlines()[0]
    result = cli(config, "note", "training-start", "--status", "at_risk", "--source", source)
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 2, result.stderr
    assert lines[0].startswith("error: --source: the URL carries credentials")
    assert lines[1].startswith("hint: ")
    for secret in ("bob", "hunter2", "abc123"):
        assert secret not in result.stderr + result.stdout
    assert cli(config, "verify").stdout.splitlines()[0] == head


@pytest.mark.parametrize(("status", "days", "shown"), [
    ("reported", 40, "2027-03-31 (40 days left)"),
    ("reported", 1, "2027-03-31 (1 day left)"),
    ("at_risk", 0, "2027-03-31 (today)"),
    ("overdue", -1, "2027-03-31 (1 day ago)"),
    ("overdue", -90, "2027-03-31 (90 days ago)"),
    ("confirmed", -90, "2027-03-31"),  # met: no countdown
])
def test_the_deadline_column_counts_down_then_says_how_long_ago(
        status: str, days: int, shown: str) -> None:
    from monitor.cli.status import deadline_text

    assert deadline_text({"status": status, "expected_by": "2027-03-31", "days_left": days}) == shown
    assert deadline_text({"status": status, "expected_by": None, "days_left": None}) == "—"
