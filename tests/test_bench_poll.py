"""`make bench`'s poll section, run small: it must poll every feed it claims to measure."""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest

from bench import bench_firstpoll, bench_poll
from monitor import feedtuning
from monitor.store import EventStore


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """The bench's own feed server (nginx when installed) over a site of a few feeds, in a
    directory made as the bench makes it (nginx's workers must be able to read it)."""
    monkeypatch.setattr(bench_poll, "CHANGED", 5)
    monkeypatch.setattr(bench_poll, "RSS_FEEDS", 6)
    monkeypatch.setattr(bench_poll, "PAIR", 2)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "www"
        bench_poll.write_site(root)
        server, base, _ = bench_poll.start_server(root)
        try:
            yield base, root
        finally:
            server.terminate()
            server.wait()


def test_changed_rounds_poll_every_feed_in_turns_beside_feedparser(
    tmp_path: Path, site: tuple[str, Path]
) -> None:
    base, root = site
    first, second = asyncio.run(bench_poll.changed_log(tmp_path, base, root))
    for poll_cpu, ref_cpu, polls in (first, second):
        assert polls == 5  # each feed once a round, none polled early by the start-up spread
        assert poll_cpu > 0 and ref_cpu > 0
    store = EventStore.open(f"sqlite:///{tmp_path / 'events.db'}")
    try:
        types = Counter(r.type for r in store.read())
    finally:
        store.close()
    assert types["ItemDiscovered"] == 5 * 21 and not types["FeedFailed"]


def test_unchanged_rounds_poll_every_feed_once_per_round(
    tmp_path: Path, site: tuple[str, Path]
) -> None:
    base, _ = site
    urls = [f"{base}/f/{n}.xml" for n in range(6)]
    etags = asyncio.run(bench_poll.raw_pass(urls, None))
    assert all(etags.values())  # the server sends validators, so the rounds are 304s
    rounds = asyncio.run(bench_poll.poll_round(tmp_path, base, "f", 6, etags, [lambda: None]))
    assert [polls for _, _, polls in rounds] == [6, 6]
    store = EventStore.open(f"sqlite:///{tmp_path / 'events.db'}")
    try:
        assert [r.type for r in store.read() if r.type != "ConfigApplied"] == []
    finally:
        store.close()


def test_the_report_prints_each_changed_row_with_its_verdict(
    tmp_path: Path, site: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, root = site
    bench_poll.changed_rows(tmp_path, base, root)
    out = capsys.readouterr().out
    for label in ("20 new items", "1 new of 21"):
        assert f"changed poll, {label}: CPU" in out
        assert f"feedparser.parse alone, body of {label}" in out
    assert out.count("≤ 1.3×") == 2


def test_the_real_feed_bench_polls_each_feed_first_in_a_fresh_log() -> None:
    """bench_firstpoll's two passes poll what they measure: every item of each real feed new,
    a failing feed named as failed (its cost is no changed poll's)."""
    root = bench_firstpoll.FIXTURES
    files = [
        root / "ja_gov" / "cao_news_2026-08.rdf",
        root / "en_news" / "feedrs_bbc.xml",
        root / "ja_news" / "nhk_one_cat0_2026-08-19.xml",
    ]
    broken = root / "en_news" / "feedrs_reuters_most_read_truncated_2020.xml"
    assert set(files) | {broken} <= set(bench_firstpoll.real_feeds())
    costs = bench_firstpoll.per_feed([*files, broken], reps=2)
    assert [(c.outcome, c.items) for c in costs] == [
        ("new", 10),
        ("new", 1),
        ("new", 7),
        ("failed", 0),
    ]
    assert all(c.ratio > 0 for c in costs)
    with tempfile.TemporaryDirectory() as tmp:  # nginx's workers must be able to read it
        [(ratio, found)] = bench_firstpoll.end_to_end(Path(tmp), files, rounds=1)
    assert found == 18 and ratio > 0


def test_the_reference_is_feedparser_as_it_ships(monkeypatch: pytest.MonkeyPatch) -> None:
    """monitor.feedtuning speeds feedparser up; the reference parse must not gain from it."""
    assert feedtuning.installed()
    seen = []
    real_parse = feedparser.parse

    def parse(*args: Any, **kwargs: Any) -> Any:
        seen.append(feedtuning.installed())
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(feedparser, "parse", parse)
    assert bench_poll.feedparser_alone([bench_poll.feed_body(0, 2)]) > 0
    assert bench_firstpoll.feedparser_cpu(bench_poll.feed_body(1, 2)) > 0
    assert seen == [False, False]
    assert feedtuning.installed()  # and the daemon's parses keep the tuning
