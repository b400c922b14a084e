"""Building blocks for end-to-end tests: RSS bodies, a configuration file, running the daemon."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import orjson
import sqlalchemy as sa

from monitor.config import Config, load_config
from monitor.store import EventStore

ROOT = Path(__file__).resolve().parent.parent


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def webhook_schema_errors(body: bytes) -> list[str]:
    """What docs/webhook.schema.json, the receivers' contract, finds wrong in a webhook body."""
    from jsonschema import Draft202012Validator

    schema = orjson.loads((ROOT / "docs" / "webhook.schema.json").read_bytes())
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(orjson.loads(body))]


def rss(items: Sequence[Mapping[str, Any]], *, title: str = "Test feed") -> bytes:
    """An RSS 2.0 body; each item may give title, link, guid, description, published."""
    parts = [(f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
              f"<title>{escape(title)}</title><link>https://example.org/</link>")]
    for it in items:
        parts.append("<item>")
        parts.append(f"<title>{escape(it['title'])}</title>")
        if it.get("link"):
            parts.append(f"<link>{escape(it['link'])}</link>")
        if it.get("guid"):
            parts.append(f"<guid isPermaLink=\"false\">{escape(it['guid'])}</guid>")
        parts.append(f"<description>{escape(it.get('description', ''))}</description>")
        published = it.get("published")
        if published is not None:
            parts.append(f"<pubDate>{format_datetime(published)}</pubDate>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode()


MILESTONE = """
[[milestones]]
id = "training-start"
title = "Noetra starts training its first foundation model"
expected_by = {expected_by}
notify = {notify}

[milestones.match]
all = [["@noetra"], ["training", "train*", "学習"]]
none = ["SoftBank Hawks", "ホークス"]

[milestones.confirm]
publishers = 2
within = "14d"
authoritative = ["nedo.go.jp"]

[[milestones.setback]]
all = [["@noetra"], ["delay*", "postpone*", "延期", "遅れ"]]
"""


def write_config(
    tmp: Path,
    *,
    feeds: Mapping[str, str],
    db_url: str | None = None,
    channels: str = "",
    notify: Sequence[str] = (),
    expected_by: str = "2027-03-31",
    extra_settings: str = "",
    interval: str = "30m",
    milestones: str | None = None,
) -> Path:
    """A feeds.toml for one test: the given feeds, one milestone, loopback allowed."""
    db = db_url or f"sqlite:///{tmp / 'events.db'}"
    lines = [
        "[settings]",
        f'database_url = "{db}"',
        f'poll_interval = "{interval}"',
        "allow_private_networks = true",
        'timezone = "Asia/Tokyo"',
        'startup_spread = "1s"',
        extra_settings,
        "",
        "[aliases]",
        'noetra = ["Noetra", "ノエトラ", "日本AI基盤モデル開発"]',
        "",
    ]
    for feed_id, url in feeds.items():
        lines += ["[[feeds]]", f'id = "{feed_id}"', f'url = "{url}"', ""]
    lines.append(channels)
    notify_toml = "[" + ", ".join(f'"{n}"' for n in notify) + "]"
    lines.append(milestones if milestones is not None
                 else MILESTONE.format(expected_by=expected_by, notify=notify_toml))
    path = tmp / "feeds.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def load(path: Path, env: Mapping[str, str] | None = None) -> Config:
    return load_config(path, dict(env or {}))


def run_once(path: Path, env: Mapping[str, str] | None = None) -> int:
    """`monitor run --once` in this process."""
    from monitor import daemon

    config = load(path, env)
    return asyncio.run(daemon.run(config, dict(env or {}), once=True))


def monitor_cmd(*args: str, env: Mapping[str, str] | None = None, timeout: float = 60,
                ) -> subprocess.CompletedProcess[str]:
    """The real command line in a child process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=ROOT, check=False)


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def cli(path: Path, *args: str, env: Mapping[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """A command against one configuration, plain and wide, as a script would see it."""
    return monitor_cmd("--config", str(path), *args,
                       env={**(env or {}), "NO_COLOR": "1", "COLUMNS": "200"})


def json_out(path: Path, *args: str, env: Mapping[str, str] | None = None,
             ) -> list[dict[str, Any]]:
    """A listing's `--json` lines, parsed; the command must succeed."""
    result = cli(path, *args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The command failed with `code` and one `error:` line (and perhaps a hint); that line."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code, result.stderr
    assert lines and lines[0].startswith("error: "), result.stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def deliver_at(path: Path, now: datetime, env: Mapping[str, str]) -> list[Any]:
    """One dispatcher tick at a chosen time (the fake clock), with the secrets `env` holds:
    each due alert's `deliver.Outcome`."""
    from monitor import deliver
    from monitor.config import available_secrets
    from monitor.fetch import guarded_client
    from monitor.runtime import open_store

    config = load(path, env)

    async def tick() -> list[Any]:
        store = open_store(config)
        allow = config.settings.allow_private_networks
        async with guarded_client(allow_private=allow, timeout=30, user_agent="t") as client:
            d = deliver.Dispatcher(config, store, available_secrets(config, env), client, "test")
            try:
                return list(await deliver.deliver_due(d, now=now))
            finally:
                store.close()

    return asyncio.run(tick())


@contextmanager
def kept_logging() -> Iterator[None]:
    """Logging as it was before: a command sets up the root logger for its process (its
    handler, with a filter that rewrites records, and the levels of noisy loggers), and the
    tests that run after this one in the same process must not inherit it."""
    root, handlers, level = logging.getLogger(), logging.getLogger().handlers[:], logging.root.level
    levels = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name in logging.root.manager.loggerDict:
            logging.getLogger(name).setLevel(levels.get(name, logging.NOTSET))


def webhook_channel(url: str, channel_id: str = "hook") -> str:
    """A [[channels]] entry: a webhook to `url`, its secret in MONITOR_WEBHOOK_SECRET."""
    return (
        f'\n[[channels]]\nid = "{channel_id}"\ntype = "webhook"\nurl = "{url}"\n'
        'secret_env = "MONITOR_WEBHOOK_SECRET"\n'
    )


def sqlite_steps(store: EventStore, run: Callable[[], object]) -> int:
    """SQLite's virtual machine instructions while `run` runs: the rows it reads, and more."""
    steps = itertools.count()

    def counting(dbapi_conn: Any, *_: Any) -> None:
        dbapi_conn.set_progress_handler(lambda: next(steps) and 0, 1)

    store.engine.dispose()  # new connections, each counting
    sa.event.listen(store.engine, "connect", counting)
    run()
    sa.event.remove(store.engine, "connect", counting)
    return next(steps)


def rows_read(
    store: EventStore, run: Callable[[], object], table: str, column: str | None = None
) -> int:
    """The rows of `table` PostgreSQL reads for the queries `run` sends through SQLAlchemy (the
    writer's own statements bypass it): each is run again afterwards under EXPLAIN ANALYZE,
    and each scan of `table` counts the rows it kept and those its filter dropped; `column`:
    only the scans that output it or filter on it (a count from an index reads no state)."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)
    found = 0
    with store.engine.connect() as conn:
        for statement, parameters in sent:
            explain = f"EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) {statement}"
            nodes = [conn.exec_driver_sql(explain, parameters).scalar_one()[0]["Plan"]]
            while nodes:
                node = nodes.pop()
                nodes.extend(node.get("Plans", []))
                uses = " ".join([*node.get("Output", []), node.get("Filter", "")])
                if node.get("Relation Name") == table and (column is None or column in uses):
                    kept, dropped = node["Actual Rows"], node.get("Rows Removed by Filter", 0)
                    found += (kept + dropped) * node["Actual Loops"]
    return found


def database_work(
    store: EventStore, run: Callable[[], object], table: str, column: str | None = None
) -> int:
    """What the database does for `run`: SQLite's steps, or the rows of `table` PostgreSQL
    reads (`sqlite_steps`, `rows_read`)."""
    if store.dialect == "sqlite":
        return sqlite_steps(store, run)
    return rows_read(store, run, table, column)
