"""Reads that grew with the log: start-up's configuration and baseline checks,
`status`/`alerts`, `log --grep`.

Run: .venv/bin/python -m bench.bench_reads [EVENTS]   (SQLite; the log is made once, in a
temporary folder: 200,000 events by default, 8,600 of them one milestone's matches and
60,000 of them 20,000 alerts' events; and 5,000 ConfigApplied beside them, one per reload)
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from monitor import runtime
from monitor.cli import app
from monitor.config import load_config
from monitor.events import (
    AlertAbandoned,
    AlertDelivered,
    AlertQueued,
    ConfigApplied,
    ItemDiscovered,
    MilestoneMatched,
)
from monitor.review import Filter
from monitor.store import EventStore, NewEvent, logreads

CONFIG = """
[settings]
database_url = "sqlite:///{db}"
timezone = "Asia/Tokyo"

[[feeds]]
id = "news"
url = "https://example.org/news.xml"

[[milestones]]
id = "training-start"
title = "Noetra starts training its first foundation model"
expected_by = 2027-03-31
notify = []
baseline = {{ status = "reported", since = 2026-06-30, source = "https://www.meti.go.jp/a" }}

[milestones.match]
all = [["Noetra"], ["training", "学習"]]
"""

MATCHES = 8_600
ALERTS = 20_000
RELOADS = 5_000
TITLES = (
    "Noetra begins training its foundation model",
    "日本AI基盤モデル開発、基盤モデルの学習を開始",
    "Weather: a typhoon approaches Kyushu — ferries cancelled",
    "Müller’s team publishes the benchmark results",
)
RARE = "Noetra postpones the training run"  # one item in a thousand


def line(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<48} {value:>12}  {note}".rstrip())


def build(path: Path, total: int) -> tuple[Any, EventStore]:
    """The configuration and its log: `total` events, written once."""
    conf = path / "feeds.toml"
    conf.write_text(CONFIG.format(db=path / "events.db"), encoding="utf-8")
    config = load_config(conf, {})
    store = runtime.open_store(config)
    runtime.record_baselines(store, config, instance="bench", now=datetime.now(UTC))
    at = datetime(2026, 7, 1, tzinfo=UTC)
    items = total - MATCHES - 2 * ALERTS
    pending: list[NewEvent] = []
    for n in range(items):
        title = RARE if n % 1000 == 999 else TITLES[n % len(TITLES)]
        pending.append(
            NewEvent(
                ItemDiscovered(
                    item_id=f"i{n}",
                    feed_id="news",
                    url=f"https://example.org/{n}",
                    guid=str(n),
                    title=title,
                    summary=f"{title} ({n})",
                    published_at=at + timedelta(seconds=n),
                    publisher="example.org",
                )
            )
        )
        if n < MATCHES:
            pending.append(
                NewEvent(
                    MilestoneMatched(
                        milestone_id="training-start",
                        item_id=f"i{n}",
                        kind="progress",
                        rule="training-start:progress:0",
                        hits=({"group": 0, "term": "Noetra", "field": "title", "text": "Noetra"},),
                        publisher="example.org",
                        authoritative=False,
                    )
                )
            )
        if n < ALERTS:
            alert = f"alt_{n:032d}"
            pending.append(
                NewEvent(
                    AlertQueued(
                        alert_id=alert,
                        channel_id="team",
                        milestone_id="training-start",
                        subject="[milestone-monitor] training-start: reported",
                        payload={"n": n},
                    )
                )
            )
            if n % 100 == 0:
                done: Any = AlertAbandoned(
                    alert_id=alert, channel_id="team", attempt=1, kind="http_4xx", message="400"
                )
            else:
                done = AlertDelivered(alert_id=alert, channel_id="team", attempt=1, response="ok")
            pending.append(NewEvent(done))
        if len(pending) >= 2000:
            store.append(pending)
            pending = []
    store.append(pending)
    # a configuration changed at each reload; the one in effect is applied last
    fingerprints = runtime.fingerprints(config)
    changes = [
        ConfigApplied(config_sha256=f"{n:064x}", fingerprints=fingerprints)
        for n in range(RELOADS - 1)
    ]
    store.append([NewEvent(e) for e in changes])
    runtime.apply_config(store, config, instance="bench")
    return config, store


def timed(label: str, run: Callable[[], Any], note: str = "") -> None:
    decoded = [0]
    real = logreads.to_record

    def counted(row: Any) -> Any:
        decoded[0] += 1
        return real(row)

    logreads.to_record = counted
    try:
        best = float("inf")
        for _ in range(3):
            decoded[0] = 0
            started = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - started)
    finally:
        logreads.to_record = real
    line(label, f"{best * 1000:.1f} ms", f"{decoded[0]} events decoded {note}".rstrip())


def invoke(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (args, result.output, result.exception)


def run(total: int = 200_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        config, store = build(Path(tmp), total)
        head = (store.head() or (0, ""))[0]
        print(f"  ({head} events written in {time.perf_counter() - started:.0f} s)")
        timed(
            f"apply_config (nothing to record, {RELOADS:,} applied)",
            lambda: runtime.apply_config(store, config, instance="b"),
        )
        timed("baseline_conflicts", lambda: runtime.baseline_conflicts(store, config))
        timed(
            "record_baselines (nothing to record)",
            lambda: runtime.record_baselines(store, config, instance="b", now=datetime.now(UTC)),
        )
        for needle in ("postpone", "学習", "MÜLLER", "no such text"):
            timed(
                f"log --grep {needle} (select)",
                lambda n=needle: sum(1 for _ in Filter(grep=n).select(store)),  # type: ignore[misc]
            )
        conf = str(Path(tmp) / "feeds.toml")
        for command in (["status"], ["alerts"], ["log", "--grep", "postpone"]):
            timed(
                "monitor " + " ".join(command),
                lambda c=command: invoke(["--config", conf, *c]),  # type: ignore[misc]
                "(the command in process)",
            )
        store.close()


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
