"""`monitor poll FEED_ID` against a real feed server: one line per outcome, exit 0 or 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.runtime import open_store
from tests.feedserver import FeedServer
from tests.kit import ROOT, cli, load, rss, write_config

ITEM = {"title": "Harbour weather", "link": "https://news.example.com/a/1", "guid": "g1"}


def lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]


def failures_recorded(path: Path) -> list[str]:
    store = open_store(load(path))
    try:
        return [r.data["kind"] for r in store.read(types=("FeedFailed",))]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("route", "says", "hint"),
    [
        ({"status": 404}, "http_4xx: {url}: server answered 404 Not Found", None),
        ({"status": 410}, "gone: {url}: server answered 410 Gone", "remove the feed or find"),
        ({"body": b"<html><title>Hi</title></html>", "headers": {"content-type": "text/html"}},
         "not_a_feed: {url}: body is an HTML page", None),
    ],
)
def test_a_failed_poll_prints_one_error_line_and_exits_1(
    tmp_path: Path, feed_server: FeedServer, route: dict[str, object], says: str, hint: str | None
) -> None:
    feed_server.route("/feed.xml", **route)
    url = feed_server.url("/feed.xml")
    path = write_config(tmp_path, feeds={"a": url})
    done = cli(path, "poll", "a")
    assert done.returncode == 1
    assert done.stdout == ""
    [error, *rest] = lines(done)
    assert error.startswith(f"error: feed 'a': {says.format(url=url)}"), error
    assert len(rest) == (hint is not None), rest
    assert all(line.startswith(f"hint: {hint}") for line in rest), rest
    assert len(failures_recorded(path)) == 1  # reported once, recorded all the same


def test_a_poll_that_succeeds_prints_its_summary_and_nothing_else(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.route("/feed.xml", body=rss([ITEM]))
    path = write_config(tmp_path, feeds={"a": feed_server.url("/feed.xml")})
    done = cli(path, "poll", "a")
    assert done.returncode == 0, done.stderr
    assert lines(done) == ["feed 'a': new; 1 new item, 0 seen elsewhere, 0 transitions"]


def test_the_daemon_logs_a_failed_poll_once(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/feed.xml", status=404)
    path = write_config(tmp_path, feeds={"a": feed_server.url("/feed.xml")})
    done = cli(path, "run", "--once")
    assert done.returncode == 0, done.stderr
    said = [line for line in lines(done) if "404" in line]
    assert len(said) == 1, said
    assert "WARNING monitor.poll: feed 'a': http_4xx: " in said[0] and "next poll in" in said[0]


@pytest.mark.parametrize("debug", [False, True])
def test_an_unforeseen_failure_is_one_error_line_and_its_traceback_is_for_debug(
    tmp_path: Path, feed_server: FeedServer, debug: bool
) -> None:
    feed_server.route("/bug.xml", body=rss([ITEM]))
    path = write_config(tmp_path, feeds={"bug": feed_server.url("/bug.xml")})
    flags = ["--debug"] if debug else []
    done = subprocess.run(
        [sys.executable, "-m", "tests.scripts.poll_with_a_bug", "--config", str(path), *flags,
         "poll", "bug"],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )
    assert done.returncode == 1, done.stderr
    errors = [line for line in lines(done) if line.startswith("error: ")]
    assert len(errors) == 1 and "unexpected RuntimeError: a planted bug" in errors[0], errors
    assert any(line.startswith("hint: report it with the logged traceback") for line in lines(done))
    assert ("Traceback" in done.stderr) is debug
    assert failures_recorded(path) == ["unexpected"]
