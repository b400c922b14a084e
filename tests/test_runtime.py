"""What ConfigApplied says changed: fingerprints of each part, compared across restarts."""

from __future__ import annotations

from pathlib import Path

from monitor.runtime import config_change, fingerprints
from tests.kit import load, write_config

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
