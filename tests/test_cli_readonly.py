"""An auditor's copy of the log: the commands that only read, run as a user who cannot write it.

Root ignores permission bits, so a test run by root runs the commands as nobody (uid 65534);
any other user is itself subject to them. The copy lives in a folder of mode 0555, the file
mode 0444, as a log handed over for audit would.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from monitor.events import ItemSighted
from monitor.store import EventStore, NewEvent
from tests.feedserver import FeedServer
from tests.kit import ROOT, assert_one_line_error, cli, rss, run_once, write_config

NOBODY = 65534
READERS = [
    ["verify"],
    ["log", "--json"],
    ["export"],
    ["export", "--format", "csv"],
    ["show", "1"],
    ["status", "--json"],
    ["alerts", "--json"],
    ["backtest", "--json"],
]
ITEMS = [
    {"title": "Noetra begins training its first foundation model", "guid": "a",
     "link": "https://www3.nhk.or.jp/news/html/a.html"},
    {"title": "Unrelated story", "guid": "b", "link": "https://news.example.com/b"},
]


def unprivileged(args: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """`args` as a command file permissions apply to, and the keywords to start it with."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "PYTHONDONTWRITEBYTECODE": "1"}
    options: dict[str, Any] = {"env": env, "cwd": ROOT, "text": True}
    if os.geteuid() != 0:
        return list(args), options
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return list(args), {**options, "user": NOBODY, "group": NOBODY, "extra_groups": []}
    # setpriv finds the program with root's rights (the interpreter may live in root's home,
    # which nobody cannot enter) and runs it as nobody, without any capability
    ids = [f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    return [setpriv, *ids, *args], options


def run(*args: str) -> subprocess.CompletedProcess[str]:
    command, options = unprivileged(args)
    return subprocess.run(command, capture_output=True, timeout=60, check=False, **options)


def monitor(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "monitor", "--config", str(config), *args)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A daemon's log after one run over one feed: discoveries, a match, a transition."""
    folder = tmp_path_factory.mktemp("seed")
    with FeedServer() as server:
        server.route("/news.xml", body=rss(ITEMS))
        run_once(write_config(folder, feeds={"news": server.url("/news.xml")},
                              db_url="sqlite:///events.db"))
    assert not (folder / "events.db-wal").exists()  # the daemon closed it: one file holds all
    yield folder


@pytest.fixture
def outside() -> Iterator[Path]:
    """A folder outside pytest's (root's 0700 one), that nobody can enter."""
    top = Path(tempfile.mkdtemp(prefix="monitor-audit-"))
    top.chmod(0o755)
    yield top
    for path in [top, *top.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    shutil.rmtree(top)


def hand_over(seeded: Path, to: Path, *, files: Sequence[str] = ("events.db",)) -> Path:
    """Copy the log and its configuration into `to`, then make both read-only: file 0444,
    folder 0555. The unprivileged user must not be able to create a file there."""
    to.mkdir()
    for name in ("feeds.toml", *files):
        shutil.copy(seeded / name, to / name)
        (to / name).chmod(0o444)
    to.chmod(0o555)
    try:
        probe = run(sys.executable, "-c", f"open({str(to / 'probe')!r}, 'x')")
    except PermissionError:  # no setpriv, and the interpreter lies where nobody cannot reach
        pytest.skip(f"uid {NOBODY} cannot run {sys.executable} (install util-linux's setpriv)")
    if probe.returncode == 0:
        pytest.skip("this user can write a folder of mode 0555: the test would prove nothing")
    return to / "feeds.toml"


def as_owner(config: Path, *args: str) -> str:
    """What a command prints for the log's owner, in a folder they can write."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), *args],
        capture_output=True, text=True, cwd=ROOT, check=True, timeout=60,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}).stdout


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_auditor_runs_every_reading_command_on_a_copy_they_cannot_write(
    seeded: Path, outside: Path
) -> None:
    with (seeded / "events.db").open("rb") as f:
        assert f.read(20)[18] == 2  # a WAL-mode file: what a plain read-only opening cannot read
    shutil.copytree(seeded, outside / "original")
    expected = {tuple(a): as_owner(outside / "original" / "feeds.toml", *a) for a in READERS[:3]}
    config = hand_over(seeded, outside / "copy")
    before = digest(outside / "copy" / "events.db")
    for args in READERS:
        result = monitor(config, *args)
        assert result.returncode == 0, (args, result.stderr)
        assert "error" not in result.stderr, (args, result.stderr)
        if tuple(args) in expected:
            assert result.stdout == expected[tuple(args)], args
        if args[0] == "status":
            assert '"kind":"milestone"' in result.stdout
    verified = expected[("verify",)].splitlines()
    assert verified[0].startswith("head ") and verified[1].startswith("ok: ")
    assert sorted(p.name for p in (outside / "copy").iterdir()) == ["events.db", "feeds.toml"]
    assert digest(outside / "copy" / "events.db") == before


def test_verify_of_a_read_only_copy_still_names_a_tampered_position(
    seeded: Path, outside: Path
) -> None:
    tampered = outside / "tampered"
    shutil.copytree(seeded, tampered)
    with sqlite3.connect(tampered / "events.db") as db:
        db.execute("DROP TRIGGER events_no_update")
        db.execute("UPDATE events SET meta = json_set(meta, '$.by', 'someone') WHERE position = 3")
    db.close()
    config = hand_over(tampered, outside / "copy")
    result = monitor(config, "verify")
    assert result.returncode == 1, result.stderr
    assert "error: chain broken: position 3: hash does not match its record" in result.stderr


def test_follow_is_refused_on_a_copy_nothing_writes(seeded: Path, outside: Path) -> None:
    config = hand_over(seeded, outside / "copy")
    line = assert_one_line_error(monitor(config, "log", "--follow"), 2)
    assert "--follow:" in line and "never changes" in line


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "cannot open: no such file"),
        (b"SQLite format 3? no: a note\n" * 50, "not a monitor event log (not a SQLite file)"),
        ("CREATE TABLE notes (text TEXT)", "not a monitor event log (no events table)"),
    ],
)
def test_a_file_that_is_not_a_monitor_log_is_one_line_error_and_stays_as_it_was(
    seeded: Path, outside: Path, content: bytes | str | None, says: str
) -> None:
    other = outside / "other"
    other.mkdir()
    shutil.copy(seeded / "feeds.toml", other / "feeds.toml")
    (other / "feeds.toml").write_text(
        (other / "feeds.toml").read_text().replace("sqlite:///events.db", "sqlite:///other.db")
    )
    if isinstance(content, bytes):
        (other / "other.db").write_bytes(content)
    elif isinstance(content, str):
        with sqlite3.connect(other / "other.db") as db:
            db.execute(content)
        db.close()
    names = sorted(p.name for p in other.iterdir())
    config = hand_over(other, outside / "copy", files=[n for n in names if n != "feeds.toml"])
    for args in (["verify"], ["log"], ["export"]):  # the configuration's fault: exit 2
        line = assert_one_line_error(monitor(config, *args), 2)
        assert says in line and "other.db" in line, line
    assert sorted(p.name for p in (outside / "copy").iterdir()) == names


def hold(path: Path) -> sqlite3.Connection:
    """An open connection, as a running daemon has: the -wal stays, and is not checkpointed
    when another connection closes."""
    holder = sqlite3.connect(path)
    holder.execute("SELECT count(*) FROM events").fetchall()
    return holder


def test_a_reader_beside_a_live_writer_sees_what_is_only_in_its_wal(
    seeded: Path, outside: Path
) -> None:
    live = outside / "live"
    shutil.copytree(seeded, live)
    url = f"sqlite:///{live / 'events.db'}"
    holder = hold(live / "events.db")
    try:
        writer = EventStore.open(url)
        [appended] = writer.append([NewEvent(ItemSighted(item_id="late", feed_id="news"))])
        writer.close()
        with sqlite3.connect(f"file:{live / 'events.db'}?immutable=1", uri=True) as main:
            in_main_file = main.execute("SELECT max(position) FROM events").fetchone()[0]
        assert in_main_file < appended.position  # so only a reader of the -wal can see it
        live.chmod(0o555)
        result = monitor(live / "feeds.toml", "log", "--json", "--limit", "1")
        assert result.returncode == 0, result.stderr
        assert f'"position":{appended.position},' in result.stdout
    finally:
        holder.close()


def test_a_wal_without_its_shm_in_a_folder_nobody_can_write_is_a_clear_error(
    seeded: Path, outside: Path
) -> None:
    live = outside / "live"
    shutil.copytree(seeded, live)
    holder = hold(live / "events.db")
    writer = EventStore.open(f"sqlite:///{live / 'events.db'}")
    writer.append([NewEvent(ItemSighted(item_id="late", feed_id="news"))])
    writer.close()
    config = hand_over(live, outside / "copy", files=("events.db", "events.db-wal"))
    holder.close()
    line = assert_one_line_error(monitor(config, "verify"), 1)
    assert "its -wal file cannot be read without a -shm file" in line


CHANGES_MEANWHILE = """
import sys
from monitor.store import EventStore
store = EventStore.open(sys.argv[1], read_only=True)
print(store.immutable, store.head()[0], flush=True)
sys.stdin.readline()
store.close()
"""


def test_an_immutable_reading_fails_when_the_file_changes_meanwhile(
    seeded: Path, outside: Path
) -> None:
    config = hand_over(seeded, outside / "copy")
    url = f"sqlite:///{config.parent / 'events.db'}"
    command, options = unprivileged([sys.executable, "-c", CHANGES_MEANWHILE, url])
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, **options) as child:
        assert child.stdout is not None and child.stdin is not None
        immutable, head = child.stdout.readline().split()
        assert immutable == "True"
        config.parent.chmod(0o755)  # its owner can write it after all, and does
        (config.parent / "events.db").chmod(0o644)
        writer = EventStore.open(url)
        writer.append([NewEvent(ItemSighted(item_id="late", feed_id="news"))])
        writer.close()
        _, stderr = child.communicate("\n", timeout=60)
    assert child.returncode == 1
    assert "changed while this command read it" in stderr.splitlines()[-1]
    assert int(head) > 0


@pytest.mark.parametrize(
    ("tables", "says"),
    [
        (["CREATE TABLE notes (text TEXT)"],
         "it holds other tables (notes) and no events table"),
        (["CREATE TABLE events (x)"], "its events table has no position column"),
    ],
)
def test_the_writing_commands_refuse_another_programs_database_and_leave_it_as_it_was(
    tmp_path: Path, tables: list[str], says: str
) -> None:
    config = write_config(tmp_path, feeds={"f": "https://example.org/feed.xml"},
                          db_url="sqlite:///other.db")
    with sqlite3.connect(tmp_path / "other.db") as db:
        for ddl in tables:
            db.execute(ddl)
    db.close()
    before = (tmp_path / "other.db").read_bytes()
    for args in (["run", "--once"], ["rebuild"], ["note", "m", "--status", "reported",
                                                  "--source", "https://example.org/x"]):
        line = assert_one_line_error(cli(config, *args), 2)
        assert f"not a monitor event log ({says}); nothing was written to it" in line, line
    assert (tmp_path / "other.db").read_bytes() == before


def test_a_database_url_naming_no_log_exits_2_and_an_unreachable_log_exits_1(
    tmp_path: Path,
) -> None:
    """What database_url names is the configuration's business (exit 2, as a bad feeds.toml);
    a log that is there but cannot be reached now is a runtime failure (exit 1)."""
    config = write_config(tmp_path, feeds={"f": "https://example.org/feed.xml"},
                          db_url="sqlite:///no-such-folder/events.db")
    for args in (["rebuild"], ["status"]):  # a writer, and a command that only reads
        line = assert_one_line_error(cli(config, *args), 2)
        assert "no-such-folder" in line, line
    assert not (tmp_path / "no-such-folder").exists()
    down = {"MONITOR_DATABASE_URL": "postgresql+psycopg://monitor@127.0.0.1:1/monitor"}
    for args in (["rebuild"], ["status"]):
        line = assert_one_line_error(cli(config, *args, env=down), 1)
        assert "cannot open" in line and "127.0.0.1:1" in line, line


def test_an_export_over_a_file_this_user_may_not_write_is_refused_before_writing(
    seeded: Path, outside: Path
) -> None:
    """A folder anyone may write holds someone else's read-only file: a rename over it would
    succeed, so the file's own permission is what refuses."""
    config = hand_over(seeded, outside / "copy")
    drop = outside / "drop"
    drop.mkdir()
    drop.chmod(0o777)
    theirs = drop / "export.jsonl"
    theirs.write_text("someone else's export\n", encoding="utf-8")
    theirs.chmod(0o444)
    if run(sys.executable, "-c", f"open({str(theirs)!r}, 'a')").returncode == 0:
        pytest.skip("this user can write a file of mode 0444: the test would prove nothing")
    refused = monitor(config, "export", "-o", str(theirs))
    line = assert_one_line_error(refused, 2)
    assert line == f"error: --output {theirs}: not writable by this user"
    assert theirs.read_text(encoding="utf-8") == "someone else's export\n"
    assert sorted(p.name for p in drop.iterdir()) == ["export.jsonl"]  # no temporary file
    mine = drop / "mine.jsonl"  # the same user may create a file there
    written = monitor(config, "export", "-o", str(mine))
    assert written.returncode == 0, written.stderr
    assert mine.read_text(encoding="utf-8") == monitor(config, "export").stdout
