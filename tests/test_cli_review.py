"""`monitor log/show/verify/rebuild/export/check` as people and scripts run them, in a subprocess."""

from __future__ import annotations

import csv
import io
import os
import re
import select
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from queue import Queue
from typing import IO, Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from monitor.projections import all_projections
from monitor.runtime import open_store
from tests.feedserver import FeedServer
from tests.kit import ROOT, assert_one_line_error, load, monitor_cmd, rss, run_once, write_config

GOLDEN = Path(__file__).parent / "golden"
TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime.now(UTC)
KEYS = {"position", "event_id", "type", "stream", "stream_version", "recorded_at", "data",
        "meta", "hash"}
ITEMS: list[dict[str, Any]] = [
    {"title": "Noetra reportedly begins training its first model",
     "link": "https://www3.nhk.or.jp/news/html/rumour.html", "guid": "rumour",
     "published": NOW - timedelta(hours=4)},
    {"title": "[bold]Not markup[/bold] & [red]raw[/red] text",
     "link": "https://news.example.com/a/hostile", "guid": "hostile"},
    {"title": "日本AI基盤モデル開発、基盤モデルの学習を開始",
     "link": "https://www.itmedia.co.jp/aiplus/articles/2611/01/news1.html", "guid": "second",
     "published": NOW - timedelta(hours=3)},
    {"title": "Unrelated story", "link": "https://news.example.com/a/2", "guid": "u2"},
]


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        s.route("/news.xml", body=rss(ITEMS))
        yield s


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, server: FeedServer) -> Path:
    """One daemon run over one feed: discoveries, matches, reported → confirmed."""
    folder = tmp_path_factory.mktemp("seed")
    run_once(write_config(folder, feeds={"news": server.url("/news.xml")},
                          db_url="sqlite:///events.db"))
    return folder


@pytest.fixture
def config(seeded: Path, tmp_path: Path) -> Path:
    """A private copy of the seeded log (the database URL is relative to the config)."""
    shutil.copytree(seeded, tmp_path / "log")
    return tmp_path / "log" / "feeds.toml"


def cli(path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60,
        ) -> subprocess.CompletedProcess[str]:
    return monitor_cmd("--config", str(path), *args, timeout=timeout,
                       env={"NO_COLOR": "1", "COLUMNS": "120", **(env or {})})


def json_lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines()]


def logged(path: Path, *args: str) -> list[dict[str, Any]]:
    result = cli(path, "log", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json_lines(result.stdout)


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1 and review the diff"
    assert actual == path.read_text(encoding="utf-8")


def test_log_table_matches_golden_with_times_in_tokyo(config: Path) -> None:
    result = cli(config, "log", "--type", "ItemDiscovered", "--type", "MilestoneStatusChanged")
    assert result.returncode == 0 and "\x1b" not in result.stdout
    shown = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST", result.stdout)
    expected = [datetime.fromisoformat(r["recorded_at"]).astimezone(TOKYO)
                .strftime("%Y-%m-%d %H:%M:%S JST")
                for r in logged(config, "--type", "ItemDiscovered",
                                "--type", "MilestoneStatusChanged")]
    assert shown == expected and len(shown) == 6
    assert "[bold]Not markup[/bold] & [red]raw[/red]" in result.stdout  # escaped, not rendered
    # times change with every run; their width does not, so the layout stays comparable
    stable = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST", "YYYY-MM-DD hh:mm:ss JST",
                    result.stdout)
    check_golden("cli_log.txt", "\n".join(line.rstrip() for line in stable.splitlines()) + "\n")


def test_log_json_is_one_object_per_event_with_exactly_the_documented_keys(
        config: Path) -> None:
    records = logged(config)
    assert all(set(r) == KEYS for r in records)
    assert [r["position"] for r in records] == list(range(1, len(records) + 1))
    store = open_store(load(config))
    assert (records[-1]["position"], records[-1]["hash"]) == store.head()
    store.close()


@pytest.mark.parametrize("args,wanted", [
    (["--type", "ItemDiscovered"], lambda r: r["type"] == "ItemDiscovered"),
    (["--type", "MilestoneMatched", "--type", "ConfigApplied"],
     lambda r: r["type"] in ("MilestoneMatched", "ConfigApplied")),
    (["--stream", "config:main"], lambda r: r["stream"] == "config:main"),
    (["--milestone", "training-start"], lambda r: r["stream"] == "milestone:training-start"),
    (["--feed", "news"], lambda r: r["data"].get("feed_id") == "news"),
    (["--grep", "ITMEDIA.co"], lambda r: "itmedia.co" in orjson.dumps(r["data"]).decode()),
    (["--grep", "基盤モデルの学習"], lambda r: "基盤モデルの学習" in orjson.dumps(r["data"]).decode()),
])
def test_log_filters_select_exactly_what_they_name(config: Path, args: list[str],
                                                   wanted: Any) -> None:
    everything = logged(config)
    expected = [r["position"] for r in everything if wanted(r)]
    assert 0 < len(expected) < len(everything)
    assert [r["position"] for r in logged(config, *args)] == expected


def test_limit_gives_the_newest_events(config: Path) -> None:
    everything = logged(config)
    assert logged(config, "--limit", "3") == everything[-3:]
    items = [r for r in everything if r["type"] == "ItemDiscovered"]
    assert logged(config, "--type", "ItemDiscovered", "--limit", "2") == items[-2:]


def test_since_and_until_are_read_in_the_configured_timezone(config: Path) -> None:
    everything = logged(config)
    moments = [datetime.fromisoformat(r["recorded_at"]) for r in everything]
    cut = moments[-1]
    naive_tokyo = cut.astimezone(TOKYO).replace(tzinfo=None).isoformat()
    later = [r["position"] for r, at in zip(everything, moments, strict=True) if at >= cut]
    earlier = [r["position"] for r, at in zip(everything, moments, strict=True) if at < cut]
    assert later and earlier
    assert [r["position"] for r in logged(config, "--since", naive_tokyo)] == later
    assert [r["position"] for r in logged(config, "--until", naive_tokyo)] == earlier
    offset = cut.astimezone(TOKYO).isoformat()
    assert offset.endswith("+09:00")
    assert [r["position"] for r in logged(config, "--since", offset)] == later
    tomorrow = (cut.astimezone(TOKYO) + timedelta(days=1)).date().isoformat()
    assert logged(config, "--since", tomorrow) == []
    assert logged(config, "--until", tomorrow) == everything


@pytest.mark.parametrize("args", [["--type", "ItemDiscoverd"], ["--since", "yesterday"],
                                  ["--until", "2026-13-01"], ["--limit", "0"]])
def test_bad_log_arguments_exit_2_with_one_line(config: Path, args: list[str]) -> None:
    result = cli(config, "log", *args)
    assert_one_line_error(result, 2)
    assert result.stdout == ""


def test_follow_streams_new_events_and_ctrl_c_ends_it_cleanly(
        config: Path, server: FeedServer) -> None:
    before = len(logged(config, "--type", "ItemDiscovered"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config), "log", "--follow", "--json",
         "--type", "ItemDiscovered"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=ROOT)
    lines: Queue[str] = Queue()  # a reader thread, so a silent CLI fails the test, not hangs it
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    try:
        old = [orjson.loads(lines.get(timeout=20)) for _ in range(before)]
        fresh = {"title": "Follow me: a story that came later", "guid": "later",
                 "link": "https://news.example.com/a/later"}
        server.route("/news.xml", body=rss([*ITEMS, fresh]))
        run_once(config)
        new = orjson.loads(lines.get(timeout=20))
    finally:
        server.route("/news.xml", body=rss(ITEMS))
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
    assert [r["type"] for r in old] == ["ItemDiscovered"] * before
    assert new["data"]["title"] == fresh["title"] and new["position"] > old[-1]["position"]
    assert code == 0
    assert proc.stderr is not None and "Traceback" not in proc.stderr.read()


def _pump(stream: IO[str] | None, lines: Queue[str]) -> None:
    for line in stream or ():
        lines.put(line)


def test_show_prints_the_event_with_its_cause_and_effects(config: Path) -> None:
    everything = logged(config)
    [reported, _] = [r for r in everything if r["type"] == "MilestoneStatusChanged"]
    cause = reported["meta"]["causation"]
    shown = orjson.loads(cli(config, "show", str(cause)).stdout)
    assert shown["data"]["title"] == ITEMS[0]["title"]
    effects = [r for r in everything if r["meta"].get("causation") == cause]
    assert [(c["position"], c["type"]) for c in shown["caused"]] == [
        (r["position"], r["type"]) for r in effects]
    assert {"MilestoneMatched", "MilestoneStatusChanged"} <= {c["type"] for c in shown["caused"]}
    change = orjson.loads(cli(config, "show", str(reported["position"])).stdout)
    assert {k: change[k] for k in KEYS} == reported
    assert change["caused_by"]["position"] == cause
    assert change["caused_by"]["type"] == "ItemDiscovered"
    assert_one_line_error(cli(config, "show", str(len(everything) + 1)), 2)
    assert_one_line_error(cli(config, "show", "99999999999999999999999"), 2)  # past 64 bits
    [hostile] = [r for r in everything if r["data"].get("guid") == "hostile"]
    shown = orjson.loads(cli(config, "show", str(hostile["position"])).stdout)
    assert shown["data"]["title"] == ITEMS[1]["title"]  # printed as data, never as markup


def tamper(path: Path, sql: str, *params: object) -> None:
    """Change the log behind the store's back, as someone with the database file could."""
    db = sqlite3.connect(path.parent / "events.db")
    db.execute("DROP TRIGGER IF EXISTS events_no_update")
    db.execute("DROP TRIGGER IF EXISTS events_no_delete")
    db.execute(sql, params)
    db.commit()
    db.close()


def test_verify_prints_the_head_then_names_the_first_tampered_position(config: Path) -> None:
    records = logged(config)
    head = f"{records[-1]['position']}:{records[-1]['hash']}"
    result = cli(config, "verify")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [f"head {head}", f"ok: {len(records)} events verified"]
    expected = cli(config, "verify", "--expect", head)
    assert expected.returncode == 0
    # an auditor's copy of a head is what --expect checks: the answer says it held
    assert expected.stdout.splitlines()[-1] == (
        f"ok: {len(records)} events verified; position {records[-1]['position']} holds the "
        "expected hash")
    tamper(config, "UPDATE events SET data = replace(data, 'Unrelated', 'Related') "
                   "WHERE position = ?", records[-1]["position"])
    tamper(config, "UPDATE events SET data = replace(data, 'nhk', 'bbc') WHERE position = 3")
    result = cli(config, "verify")
    assert result.returncode == 1
    assert "error: chain broken: position 3: " in result.stderr
    assert f"position {records[-1]['position']}" not in result.stderr


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("UPDATE events SET data = '{not json' WHERE position = 2", "cannot be read"),
        ("UPDATE events SET recorded_at = 'not a time' WHERE position = 2", "cannot be read"),
    ],
)
def test_a_record_altered_outside_the_monitor_is_named_by_position(
        config: Path, sql: str, says: str) -> None:
    logged(config)
    tamper(config, sql)
    for command in (["log"], ["show", "2"], ["export"]):
        result = cli(config, *command)
        assert_one_line_error(result, 1)
        assert f"error: event at position 2: the stored record {says}" in result.stderr
    result = cli(config, "verify")
    assert result.returncode == 1 and "position 2" in result.stderr


def test_verify_expect_catches_a_rewritten_or_truncated_tail(config: Path) -> None:
    records = logged(config)
    old_head = f"{records[-1]['position']}:{records[-1]['hash']}"
    wrong = f"{records[2]['position']}:{'0' * 64}"
    result = cli(config, "verify", "--expect", wrong)
    assert result.returncode == 1 and f"position {records[2]['position']}: hash" in result.stderr
    tamper(config, "DELETE FROM events WHERE position = ?", records[-1]["position"])
    assert cli(config, "verify").returncode == 0  # a clean cut leaves a valid, shorter chain
    result = cli(config, "verify", "--expect", old_head)
    assert result.returncode == 1
    assert f"position {records[-1]['position']}: missing" in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--since", "2026-1-1"], "--since '2026-1-1': not a date or time"),
        (["--until", "soon"], "--until 'soon': not a date or time"),
        (["--since", ""], "--since '': not a date or time"),
        (["--since", "0001-01-01T00:00+09:00"], "'0001-01-01T00:00+09:00': out of range in UTC"),
        (["--until", "9999-12-31T23:59-01:00"], "'9999-12-31T23:59-01:00': out of range in UTC"),
        (["--since", "2026-02-01", "--until", "2026-01-01"], "is after --until"),
    ],
)
def test_bad_time_filters_are_usage_errors_naming_the_option(
        config: Path, args: list[str], says: str) -> None:
    for command in ("log", "export"):
        result = cli(config, command, *args)
        assert_one_line_error(result, 2)
        assert says in result.stderr


@pytest.mark.parametrize(
    "expect",
    # "" is an unset variable in a script: it must not verify without the check
    ["12", "x:" + "a" * 64, "3:abc", "3:" + "g" * 64, "", "²:" + "a" * 64, "0:" + "a" * 64],
)
def test_malformed_expect_is_a_usage_error(config: Path, expect: str) -> None:
    assert_one_line_error(cli(config, "verify", "--expect", expect), 2)


def test_rebuild_restores_every_projection_without_terminal_noise(config: Path) -> None:
    names = [p.name for p in all_projections()]
    store = open_store(load(config))
    before = {name: store.states(name) for name in names}
    store.close()
    assert before["milestones"] and before["items"]
    db = sqlite3.connect(config.parent / "events.db")  # projections are derived: wipe them
    db.execute("DELETE FROM projection_state")
    db.commit()
    db.close()
    result = cli(config, "rebuild")
    count = len(logged(config))
    assert result.returncode == 0
    assert result.stdout == f"rebuilt projections from {count} events\n"
    assert result.stderr == ""  # no progress bar drawn into a pipe
    store = open_store(load(config))
    assert {name: store.states(name) for name in names} == before
    store.close()


def test_export_jsonl_round_trips_and_csv_has_a_header_and_a_row_per_event(
        config: Path) -> None:
    everything = logged(config)
    target = config.parent / "out.jsonl"
    result = cli(config, "export", "--format", "jsonl", "--output", str(target))
    assert result.returncode == 0 and f"wrote {len(everything)} events" in result.stderr
    exported = json_lines(target.read_text(encoding="utf-8"))
    assert exported == everything
    assert [r["position"] for r in exported] == list(range(1, len(everything) + 1))
    rows = list(csv.reader(io.StringIO(cli(config, "export", "--format", "csv").stdout)))
    assert rows[0][:4] == ["position", "recorded_at", "type", "stream"] and "hash" in rows[0]
    assert [int(row[0]) for row in rows[1:]] == [r["position"] for r in everything]
    titled = [row for row in rows[1:] if row[2] == "ItemDiscovered"]
    assert orjson.loads(titled[1][rows[0].index("data")])["title"] == ITEMS[1]["title"]
    empty = config.parent / "empty.csv"
    result = cli(config, "export", "--format", "csv", "--since", "2999-01-01", "-o", str(empty))
    assert result.returncode == 0 and "wrote 0 events" in result.stderr
    assert list(csv.reader(io.StringIO(empty.read_text()))) == [rows[0]]  # the header alone
    assert_one_line_error(cli(config, "export", "--format", "xml"), 2)
    assert_one_line_error(cli(config, "export", "--output", str(target / "nope" / "x")), 2)


def test_export_refuses_to_write_over_the_database_or_its_wal(config: Path) -> None:
    everything = logged(config)
    database = config.parent / "events.db"
    before = database.read_bytes()
    (config.parent / "alias.db").symlink_to(database)
    for target in ("events.db", "events.db-wal", "events.db-shm", "alias.db"):
        result = cli(config, "export", "-o", str(config.parent / target))
        assert_one_line_error(result, 2)
        assert "event log's database file" in result.stderr
    # the command runs in the repository: a relative path with '..' names the same file
    assert_one_line_error(cli(config, "export", "-o", os.path.relpath(database, ROOT)), 2)
    assert database.read_bytes() == before
    verified = cli(config, "verify")
    assert verified.returncode == 0 and f"ok: {len(everything)} events verified" in verified.stdout


def test_a_failed_export_leaves_the_previous_file_whole_and_no_partial_file(
        config: Path) -> None:
    target = config.parent / "out.jsonl"
    target.write_text("the previous export\n", encoding="utf-8")
    target.chmod(0o640)
    last = logged(config)[-1]
    # an undecodable row after the good ones: the export fails part-way through the log
    tamper(config, "INSERT INTO events (position, event_id, stream, stream_version, type, "
                   "schema_version, recorded_at, data, meta, prev_hash, hash) "
                   "VALUES (?, 'broken', 'item:broken', 1, 'ItemSighted', 1, ?, '{', '{}', ?, 'x')",
           last["position"] + 1, last["recorded_at"], last["hash"])
    result = cli(config, "export", "-o", str(target))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert target.read_text(encoding="utf-8") == "the previous export\n"
    assert sorted(p.name for p in config.parent.iterdir() if "out.jsonl" in p.name) == [
        "out.jsonl"]
    tamper(config, "DELETE FROM events WHERE event_id = 'broken'")
    assert cli(config, "export", "-o", str(target)).returncode == 0
    assert target.stat().st_mode & 0o777 == 0o640  # replaced, with the permissions it had
    assert len(json_lines(target.read_text(encoding="utf-8"))) == last["position"]


def test_export_through_a_symlink_writes_its_target_and_keeps_the_link(config: Path) -> None:
    expected = cli(config, "export").stdout
    archive = config.parent / "archive"
    archive.mkdir()
    target = archive / "events.jsonl"
    target.write_text("the previous export\n", encoding="utf-8")
    target.chmod(0o640)
    link = config.parent / "latest.jsonl"
    link.symlink_to(target)
    dangling = config.parent / "next.jsonl"  # a link to a file not written yet
    dangling.symlink_to(archive / "next.jsonl")
    for name in (link, dangling):
        result = cli(config, "export", "-o", str(name))
        assert result.returncode == 0, result.stderr
        assert name.is_symlink(), name
    assert target.read_text(encoding="utf-8") == expected
    assert (archive / "next.jsonl").read_text(encoding="utf-8") == expected
    assert target.stat().st_mode & 0o777 == 0o640  # the target's permissions, not the link's
    assert sorted(p.name for p in archive.iterdir()) == ["events.jsonl", "next.jsonl"]
    assert not [p.name for p in config.parent.iterdir() if p.name.endswith(".part")]
    (config.parent / "loop-a").symlink_to(config.parent / "loop-b")
    (config.parent / "loop-b").symlink_to(config.parent / "loop-a")
    loop = assert_one_line_error(cli(config, "export", "-o", str(config.parent / "loop-a")), 2)
    assert loop.startswith(f"error: --output {config.parent / 'loop-a'}: cannot write: ")


def test_export_into_a_fifo_streams_to_its_reader_and_leaves_the_fifo(config: Path) -> None:
    expected = cli(config, "export").stdout
    fifo = config.parent / "export.fifo"
    os.mkfifo(fifo)
    copy = "import shutil, sys; shutil.copyfileobj(open(sys.argv[1], 'rb'), sys.stdout.buffer)"
    reader = subprocess.Popen([sys.executable, "-c", copy, str(fifo)], stdout=subprocess.PIPE)
    try:
        result = cli(config, "export", "-o", str(fifo))
        assert result.returncode == 0, result.stderr
        assert stat.S_ISFIFO(fifo.lstat().st_mode)  # not replaced by a file
        received, _ = reader.communicate(timeout=30)
    finally:
        reader.kill()  # harmless once it has ended; a reader left waiting must not linger
        reader.wait()
    assert received.decode() == expected


def test_export_into_a_unix_socket_sends_to_its_listener(config: Path) -> None:
    expected = cli(config, "export").stdout.encode()
    path = config.parent / "export.sock"
    received = bytearray()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen(1)
        listener.settimeout(30)

        def collect() -> None:
            connection, _ = listener.accept()
            with connection:
                while chunk := connection.recv(65536):
                    received.extend(chunk)

        collector = threading.Thread(target=collect, daemon=True)
        collector.start()
        result = cli(config, "export", "-o", str(path))
        collector.join(timeout=30)
    assert result.returncode == 0, result.stderr
    assert bytes(received) == expected
    assert stat.S_ISSOCK(path.lstat().st_mode)


def test_export_into_a_character_device_writes_it_as_it_is(config: Path) -> None:
    """A pseudo-terminal this test opens stands for /dev/null: a character device, which a
    file renamed over it would replace (as root), in a folder where files cannot be made."""
    expected = cli(config, "export").stdout.encode()
    leader, follower = os.openpty()
    tty.setraw(follower)  # bytes as written: no "\r\n" for "\n", no echo
    device = os.ttyname(follower)
    received = bytearray()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "export", "-o", device],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        while len(received) < len(expected) and select.select([leader], [], [], 30)[0]:
            received += os.read(leader, 65536)
        _, stderr = proc.communicate(timeout=30)
    finally:
        os.close(leader)
        os.close(follower)
    assert proc.returncode == 0, stderr
    assert bytes(received) == expected


CANARY = {"MONITOR_SMTP_PASSWORD": "canary-smtp-pw-5e1d",
          "MONITOR_WEBHOOK_SECRET": "whsec_Y2FuYXJ5LXdlYmhvb2stc2VjcmV0LTMyLWJ5dGVzIQ=="}
CHANNELS = """
[[channels]]
id = "team"
type = "email"
host = "127.0.0.1"
port = 2525
security = "none"
allow_insecure = true
username = "monitor"
password_env = "MONITOR_SMTP_PASSWORD"
sender = "monitor@example.org"
recipients = ["analyst@example.org"]

[[channels]]
id = "hook"
type = "webhook"
url = "https://hooks.example.org/in"
secret_env = "MONITOR_WEBHOOK_SECRET"
"""


def test_check_prints_the_effective_config_with_env_names_and_no_secret(tmp_path: Path) -> None:
    path = write_config(tmp_path, feeds={"news": "https://example.org/feed.xml"},
                        channels=CHANNELS, notify=["team", "hook"])
    result = cli(path, "check", env=CANARY)
    assert result.returncode == 0, result.stderr
    effective = orjson.loads(result.stdout)
    assert [c.get("password_env") or c.get("secret_env") for c in effective["channels"]] == [
        "MONITOR_SMTP_PASSWORD", "MONITOR_WEBHOOK_SECRET"]
    assert "<redacted>" not in result.stdout  # nothing here holds a credential
    assert "configuration ok: 1 feed, 1 milestone, 2 channels" in result.stderr
    db = "postgresql+psycopg://monitor:canary-db-pw-77@db.example.org/monitor"
    result = cli(path, "check", env={**CANARY, "MONITOR_DATABASE_URL": db})
    assert orjson.loads(result.stdout)["settings"]["database_url"] == (
        "postgresql+psycopg://monitor:<redacted>@db.example.org/monitor")
    for secret in [*CANARY.values(), "canary-db-pw-77", "Y2FuYXJ5"]:
        assert secret not in result.stdout + result.stderr


def test_check_lists_every_problem_at_once(tmp_path: Path) -> None:
    path = write_config(tmp_path, feeds={"news": "not a url"}, notify=["nobody"],
                        extra_settings='pol_interval = "5m"\ntimezone_typo = 1',
                        interval="soon")
    result = cli(path, "check")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    named = ["settings.poll_interval: 'soon' is not a duration", "settings.pol_interval: unknown",
             "settings.timezone_typo: unknown", "feeds[0].url: 'not a url'",
             "milestones[0].notify[0]: unknown channel 'nobody'"]
    assert sorted(n for n in named for line in errors if n in line) == sorted(named)
    assert len(errors) == len(named)
    assert result.stdout == ""


@pytest.mark.parametrize("value,problem", [
    ("", "environment variable MONITOR_WEBHOOK_SECRET is set but empty"),
    ("canary-not-a-whsec-value", "MONITOR_WEBHOOK_SECRET: secret 1 does not start with"),
])
def test_check_names_a_missing_or_malformed_secret_without_quoting_it(
        tmp_path: Path, value: str, problem: str) -> None:
    path = write_config(tmp_path, feeds={"news": "https://example.org/feed.xml"},
                        channels=CHANNELS, notify=["hook"])
    result = cli(path, "check", env={**CANARY, "MONITOR_WEBHOOK_SECRET": value})
    assert_one_line_error(result, 2)
    assert problem in result.stderr
    assert "canary" not in result.stdout + result.stderr


def test_errors_are_one_line_with_documented_exit_codes(config: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "feeds.toml"
    assert_one_line_error(cli(missing, "status"), 2)
    assert str(missing) in cli(missing, "status").stderr
    assert_one_line_error(cli(config, "log", "--no-such-option"), 2)
    assert_one_line_error(cli(config, "show", "first"), 2)
    assert_one_line_error(cli(config, "frobnicate"), 2)
    no_value = cli(config, "status", "-c")  # found before any command's context exists
    assert "requires an argument" in assert_one_line_error(no_value, 2)
    assert "hint: see `monitor --help`" in no_value.stderr
    result = cli(config, "poll", "no-such-feed")
    assert_one_line_error(result, 2)
    assert "feed 'no-such-feed' is not configured" in result.stderr
    (tmp_path / "a-file").write_text("not a folder")
    unwritable = f"sqlite:///{tmp_path / 'a-file' / 'events.db'}"
    result = cli(config, "status", env={"MONITOR_DATABASE_URL": unwritable})
    assert_one_line_error(result, 2)  # it names no log: the configuration's fault
    assert "a-file/events.db" in result.stderr and "cannot open" in result.stderr


def test_a_config_path_that_cannot_be_a_config_is_one_line_exit_2(tmp_path: Path) -> None:
    fifo = tmp_path / "feeds.fifo"
    os.mkfifo(fifo)  # no writer: reading it would wait for ever
    refused = cli(fifo, "check", timeout=30)
    assert f"{fifo}: not a regular file" in assert_one_line_error(refused, 2)
    empty = monitor_cmd("check", "--config", "")  # pathlib would read "" as the current folder
    assert assert_one_line_error(empty, 2) == "error: --config: the path is empty"
    nested = tmp_path / "nested.toml"
    nested.write_text("a = " + "[" * 600 + "]" * 600 + "\n", encoding="utf-8")
    deep = assert_one_line_error(cli(nested, "check"), 2)
    assert deep == f"error: {nested}: values nested too deeply for the TOML reader"


def test_config_and_debug_are_taken_after_the_command_too(config: Path, tmp_path: Path) -> None:
    """`monitor status -c PATH` as `monitor -c PATH status`; the option nearer the command's
    arguments wins, and MONITOR_CONFIG yields to either."""
    before = monitor_cmd("--config", str(config), "status", "--json")
    assert before.returncode == 0 and before.stdout, before.stderr
    missing = tmp_path / "missing.toml"
    for args in (
        ["status", "--json", "--config", str(config)],
        ["status", "-c", str(config), "--json"],
        ["--config", str(missing), "status", "--json", "-c", str(config)],
    ):
        after = monitor_cmd(*args, env={"MONITOR_CONFIG": str(missing)})
        assert (after.returncode, after.stdout) == (0, before.stdout), (args, after.stderr)
    alerts = monitor_cmd("alerts", "--json", "-c", str(config))
    assert alerts.returncode == 0, alerts.stderr
    retry = monitor_cmd("alerts", "retry", "no-such-alert", "--config", str(missing))
    assert str(missing) in assert_one_line_error(retry, 2)
    # --debug after the command shows the traceback the error line otherwise stands for
    # and keeps the exit code and the error line
    bug = monitor_cmd("status", "--config", str(missing), "--debug")
    assert bug.returncode == 2 and "Traceback" in bug.stderr, bug.stderr
    assert bug.stderr.splitlines()[-2] == f"error: {missing}: cannot read: no such file"


def test_ctrl_c_while_the_command_line_loads_exits_130_without_a_traceback() -> None:
    """Its imports take most of a second: a Ctrl-C then is an ordinary interruption."""
    done = subprocess.run([sys.executable, "-m", "tests.scripts.ctrl_c_while_loading", "status"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert (done.returncode, done.stderr) == (130, "")


def test_health_reads_the_heartbeat_file(tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    path = write_config(tmp_path, feeds={"news": "https://example.org/feed.xml"})
    assert_one_line_error(cli(path, "health", env={"MONITOR_HEARTBEAT": ""}), 2)
    assert_one_line_error(cli(path, "health", env={"MONITOR_HEARTBEAT": str(beat)}), 1)
    folder = cli(path, "health", env={"MONITOR_HEARTBEAT": str(tmp_path)})
    assert_one_line_error(folder, 2)  # a folder is no heartbeat, however fresh its time
    assert "not a file" in folder.stderr
    beat.touch()
    fresh = cli(path, "health", env={"MONITOR_HEARTBEAT": str(beat)})
    assert fresh.returncode == 0 and fresh.stdout.startswith("alive: heartbeat")
    os.utime(beat, (time.time() - 1000, time.time() - 1000))
    stale = cli(path, "health", "--max-age", "120", env={"MONITOR_HEARTBEAT": str(beat)})
    assert_one_line_error(stale, 1)
    assert "more than 120 s" in stale.stderr
    os.utime(beat, (time.time() + 3600, time.time() + 3600))  # a clock set back, say
    ahead = cli(path, "health", env={"MONITOR_HEARTBEAT": str(beat)})
    assert "s in the future; is the clock right?" in assert_one_line_error(ahead, 1)


def test_check_warns_when_no_feed_is_configured(tmp_path: Path) -> None:
    empty = tmp_path / "feeds.toml"
    empty.write_text("", encoding="utf-8")
    result = cli(empty, "check")
    assert result.returncode == 0
    assert "configuration ok: 0 feeds" in result.stderr
    assert "warning: no [[feeds]]: nothing will be polled" in result.stderr
    one = write_config(tmp_path, feeds={"news": "https://example.org/feed.xml"})
    assert "warning" not in cli(one, "check").stderr


def test_a_filter_on_an_unconfigured_id_says_so(config: Path) -> None:
    result = cli(config, "log", "--milestone", "nope")
    assert result.returncode == 0
    assert "note: --milestone nope: not in the configuration" in result.stderr
    assert "note:" not in cli(config, "log", "--feed", "news").stderr


def test_log_summaries_name_what_changed_and_show_times_in_the_configured_zone(
        tmp_path: Path) -> None:
    from monitor.events import (
        AlertAttemptFailed,
        ChannelDisabled,
        ChannelEnabled,
        ConfigApplied,
        FeedStale,
    )
    from monitor.review import summary
    from monitor.store import EventStore, NewEvent

    at = datetime(2026, 11, 29, 19, 27, 43, tzinfo=UTC)
    store = EventStore.open(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        store.append([NewEvent(e) for e in (
            FeedStale(feed_id="meti", url="https://x.example.org/rss", newest_item_at=at,
                      stale_after_seconds=86400),
            AlertAttemptFailed(alert_id="alt_1", channel_id="hook", attempt=1, kind="http_5xx",
                               message="receiver answered 503", retry_at=at),
            ChannelDisabled(channel_id="hook", reason="maintenance", operator="alice"),
            ChannelEnabled(channel_id="hook", reason="its url changed after the channel was "
                           "disabled"),
            ConfigApplied(config_sha256="ab" * 32, feeds_added=("a", "b", "c", "d"),
                          channels_changed=("hook",)),
        )])
        lines = [summary(r, "Asia/Tokyo") for r in store.read()]
    finally:
        store.close()
    assert lines == [
        "meti: newest item 2026-11-30 04:27:43 JST",
        "hook: attempt 1: http_5xx: receiver answered 503; retry at 2026-11-30 04:27:43 JST",
        "hook: disabled by alice: maintenance",
        "hook: enabled: its url changed after the channel was disabled",
        "config abababababab; channels changed: hook; feeds added: a, b, c, …",
    ]
