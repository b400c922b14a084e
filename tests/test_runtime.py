"""What ConfigApplied says changed (fingerprints of each part, compared across restarts), and
what start-up reads of the configured baselines."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from monitor.config import Config
from monitor.events import (
    ConfigApplied,
    MilestoneMatched,
    MilestoneSourceCorrected,
    MilestoneStatusChanged,
)
from monitor.runtime import (
    apply_config,
    baseline_conflicts,
    config_change,
    fingerprints,
    open_store,
    record_baselines,
)
from monitor.store import EventStore, NewEvent
from tests.kit import database_work, load, sqlite_steps, write_config

FEEDS = {"a": "http://127.0.0.1:9/a.xml", "b": "http://127.0.0.1:9/b.xml"}


def change(tmp_path: Path, edit: tuple[str, str], **kw: object) -> dict[str, tuple[str, ...]]:
    path = write_config(tmp_path, feeds=FEEDS, **kw)  # type: ignore[arg-type]
    old = fingerprints(load(path))
    path.write_text(path.read_text().replace(*edit))
    return {k: v for k, v in config_change(old, fingerprints(load(path))).items() if v}


def test_same_configuration_changes_nothing(tmp_path: Path) -> None:
    config = load(write_config(tmp_path, feeds=FEEDS))
    assert not any(config_change(fingerprints(config), fingerprints(config)).values())


def test_added_and_removed_feeds_are_named(tmp_path: Path) -> None:
    edit = ('id = "b"\nurl = "http://127.0.0.1:9/b.xml"', 'id = "c"\nurl = "http://127.0.0.1:9/c.xml"')
    assert change(tmp_path, edit) == {"feeds_added": ("c",), "feeds_removed": ("b",)}


def test_poll_interval_changes_the_feeds_that_inherit_it(tmp_path: Path) -> None:
    path = write_config(tmp_path, feeds=FEEDS)
    path.write_text(path.read_text().replace('id = "a"', 'id = "a"\ninterval = "5m"'))
    old = fingerprints(load(path))
    path.write_text(path.read_text().replace('poll_interval = "30m"', 'poll_interval = "1h"'))
    changed = config_change(old, fingerprints(load(path)))
    assert changed["feeds_changed"] == ("b",)  # a keeps its own interval


def test_an_alias_change_changes_the_milestones_that_use_it(tmp_path: Path) -> None:
    edit = ('"日本AI基盤モデル開発"]', '"日本AI基盤モデル開発", "Noetra Inc."]')
    assert change(tmp_path, edit) == {"milestones_changed": ("training-start",)}


def test_a_rule_change_changes_its_milestone(tmp_path: Path) -> None:
    edit = ('none = ["SoftBank Hawks", "ホークス"]', 'none = ["SoftBank Hawks"]')
    assert change(tmp_path, edit) == {"milestones_changed": ("training-start",)}


def test_fingerprints_hold_no_secret(tmp_path: Path) -> None:
    channels = """
[[channels]]
id = "hook"
type = "webhook"
url = "https://hooks.example.org/x?token=abc123secret"
secret_env = "MONITOR_WEBHOOK_SECRET"
"""
    config = load(write_config(tmp_path, feeds=FEEDS, channels=channels, notify=("hook",)))
    assert "hook" in fingerprints(config)["channels"]
    assert "abc123secret" not in str(fingerprints(config))


BASELINE = 'baseline = { status = "confirmed", since = 2026-06-30, source = "https://a.example/1" }'
NOW = datetime(2026, 7, 1, tzinfo=UTC)


def with_matches(tmp_path: Path, db_url: str, matches: int) -> tuple[Path, EventStore]:
    """A milestone whose configured baseline was recorded, then matched `matches` times."""
    path = write_config(tmp_path, feeds=FEEDS, db_url=db_url)
    path.write_text(path.read_text().replace("notify = []", f"notify = []\n{BASELINE}"))
    store = open_store(load(path))
    assert len(record_baselines(store, load(path), instance="t", now=NOW)) == 1
    store.append([NewEvent(MilestoneMatched(
        milestone_id="training-start", item_id=f"i{n}", kind="progress", rule="r",
        hits=(), publisher="e.org", authoritative=False)) for n in range(matches)])
    return path, store


def cite(path: Path, store: EventStore, source: str) -> list[str]:
    """The configuration cites `source` now: the sources it replaced, as start-up records."""
    path.write_text(re.sub(r'source = "[^"]*"', f'source = "{source}"', path.read_text()))
    found = record_baselines(store, load(path), instance="t", now=NOW)
    return [c.previous_source for c in found if isinstance(c, MilestoneSourceCorrected)]


def test_baseline_corrections_and_conflicts_as_the_log_has_them(
        tmp_path: Path, db_url: str) -> None:
    path, store = with_matches(tmp_path, db_url, 30)
    try:
        assert baseline_conflicts(store, load(path)) == []
        assert cite(path, store, "https://a.example/2") == ["https://a.example/1"]
        assert cite(path, store, "https://a.example/2") == []
        note = MilestoneSourceCorrected(milestone_id="training-start", status="confirmed",
                                        source="https://a.example/noted",
                                        previous_source="https://a.example/2", reason="note")
        store.append([NewEvent(note, meta={"operator": "alice"})])
        assert cite(path, store, "https://a.example/2") == []  # the note stays
        assert cite(path, store, "https://a.example/1") == ["https://a.example/noted"]
        assert cite(path, store, "https://a.example/3") == ["https://a.example/1"]
        path.write_text(path.read_text().replace("2026-06-30", "2026-07-01"))
        assert baseline_conflicts(store, load(path)) == [(
            "milestones 'training-start': baseline confirmed since 2026-07-01 differs from the "
            "one recorded (confirmed since 2026-06-30) and is ignored; `monitor note "
            "training-start --status STATUS --source URL` declares a status")]
    finally:
        store.close()


def test_a_baseline_added_after_the_evidence_is_said_not_recorded(
        tmp_path: Path, db_url: str) -> None:
    path = write_config(tmp_path, feeds=FEEDS, db_url=db_url)
    store = open_store(load(path))
    matched = MilestoneMatched(milestone_id="training-start", item_id="i", kind="setback",
                               rule="r", hits=(), publisher="e.org", authoritative=False)
    moved = MilestoneStatusChanged(milestone_id="training-start", from_status="pending",
                                   to_status="at_risk", reason="setback")
    store.append([NewEvent(matched), NewEvent(moved)])
    path.write_text(path.read_text().replace("notify = []", f"notify = []\n{BASELINE}"))
    try:
        assert record_baselines(store, load(path), instance="t", now=NOW) == []
        [problem] = baseline_conflicts(store, load(path))
        assert "not recorded: the log held a status first (at_risk since " in problem
    finally:
        store.close()


def test_start_up_reads_of_the_baseline_do_not_grow_with_the_matches(tmp_path: Path) -> None:
    """Each read the milestone's whole stream, every start and reload: 264 ms at 8,600
    matches on PostgreSQL, and more with every match."""
    costs = []
    for matches in (10, 1000):
        folder = tmp_path / str(matches)
        folder.mkdir()
        path, store = with_matches(folder, f"sqlite:///{folder / 'events.db'}", matches)
        cite(path, store, "https://a.example/2")
        path.write_text(path.read_text().replace("2026-06-30", "2026-07-01"))  # a conflict

        config = load(path)

        def start_up(config: Config = config, store: EventStore = store) -> None:
            assert len(baseline_conflicts(store, config)) == 1
            record_baselines(store, config, instance="t", now=NOW)

        costs.append(sqlite_steps(store, start_up))
        store.close()
    few, many = costs
    assert many < few * 1.2, costs


def test_applying_the_configuration_reads_only_the_last_one_applied(
        tmp_path: Path, db_url: str) -> None:
    """config:main gains an event at every reload that changed the configuration, and start-up
    and every reload read the whole stream for its last one: 51 ms at 5,000 (SQLite,
    `bench.bench_reads`), and more with every reload."""
    path = write_config(tmp_path, feeds=FEEDS, db_url=db_url)
    config = load(path)
    store = open_store(config)
    work = []
    try:
        for reloads in (10, 1000):
            earlier = store.stream_version("config:main")
            store.append([NewEvent(ConfigApplied(config_sha256=f"{n:064x}"))
                          for n in range(earlier, reloads)])
            applied = apply_config(store, config, instance="t")
            assert applied is not None and applied.feeds_added == ("a", "b")
            assert store.stream_version("config:main") == reloads + 1
            work.append(database_work(
                store, lambda: apply_config(store, config, instance="t"), "events"))
            assert store.stream_version("config:main") == reloads + 1  # the same: nothing new
    finally:
        store.close()
    few, many = work
    assert many == few, work  # one event, found at the end of the stream's index
