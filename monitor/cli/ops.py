"""Commands that run things: check, run, poll."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape

from monitor.cli.common import (
    STATE,
    app,
    err,
    fail,
    load,
    opened,
    out,
)
from monitor.cli.common import (
    command as _command,
)
from monitor.errors import MonitorError, UsageError
from monitor.oneline import counted

# --- configuration and the daemon ----------------------------------------------------------


@app.command()
@_command
def check() -> None:
    """Validate the configuration, list every problem at once, print it with secrets redacted."""
    from monitor.config import check_secrets, redacted, short_secrets

    config = load()
    check_secrets(config, os.environ)
    out.print_json(orjson.dumps(redacted(config), default=str).decode())
    for warning in short_secrets(config, os.environ):
        err.print(f"warning: {escape(warning)}")
    err.print(
        f"configuration ok: {counted(len(config.feeds), 'feed')}, "
        f"{counted(len(config.milestones), 'milestone')}, "
        f"{counted(len(config.channels), 'channel')}"
    )
    if not config.feeds:  # valid, but a running daemon refuses to reload to it
        err.print(escape("warning: no [[feeds]]: nothing will be polled"))


@app.command()
@_command
def run(
    once: Annotated[
        bool, typer.Option("--once", help="poll every feed once, deliver, exit")
    ] = False,
    log_format: Annotated[str, typer.Option("--log-format", help="text or json")] = "",
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info or warning")] = "info",
) -> None:
    """Run the daemon in the foreground (logs to stderr)."""
    import asyncio
    import logging

    from monitor import daemon, logs
    from monitor.config import secret_values

    if log_format not in ("", "text", "json"):
        raise UsageError(f"--log-format '{log_format}': use text or json")
    if log_level not in ("debug", "info", "warning"):
        raise UsageError(f"--log-level '{log_level}': use debug, info or warning")
    config = load()
    logs.setup(
        fmt=log_format or config.settings.log_format,
        secrets=secret_values(config, os.environ),
        level=getattr(logging, log_level.upper()),
    )
    raise typer.Exit(asyncio.run(daemon.run(config, os.environ, once=once)))


@app.command()
@_command
def health(
    max_age: Annotated[int, typer.Option("--max-age", help="seconds", min=1)] = 120,
) -> None:
    """Exit 0 when the daemon's heartbeat (MONITOR_HEARTBEAT) is fresh; for healthchecks."""
    import stat
    import time

    path = os.environ.get("MONITOR_HEARTBEAT")
    if not path:
        raise UsageError(
            "MONITOR_HEARTBEAT is not set",
            hint="set it to the file the daemon touches on every tick",
        )
    try:
        beat = Path(path).stat()
    except OSError:
        raise MonitorError(f"{path}: no heartbeat yet") from None
    if not stat.S_ISREG(beat.st_mode):  # a folder's time says nothing about the daemon
        raise UsageError(f"MONITOR_HEARTBEAT {path}: not a file", hint="name a file, not a folder")
    age = time.time() - beat.st_mtime
    if age < -60:  # touched "in the future": the clock moved, or someone touched it by hand
        raise MonitorError(f"{path}: heartbeat {-age:.0f} s in the future; is the clock right?")
    if age > max_age:
        raise MonitorError(f"{path}: last heartbeat {age:.0f} s ago (more than {max_age} s)")
    out.print(f"alive: heartbeat {age:.0f} s ago")


@app.command()
@_command
def poll(feed_id: str) -> None:
    """Poll one feed now and print what happened; a failure is one `error:` line, exit 1."""
    import asyncio

    from monitor import logs

    logs.setup(fmt="text")
    # A failure is this command's one error line (the daemon logs it instead); the traceback
    # of an unforeseen one is for --debug.
    poll_log, unforeseen = logging.getLogger("monitor.poll"), _Unforeseen()
    if not STATE.debug:
        poll_log.addFilter(unforeseen)
    try:
        report = asyncio.run(_poll_one(feed_id))
    finally:
        poll_log.removeFilter(unforeseen)
    if report.outcome == "failed":
        fail(MonitorError(f"feed '{feed_id}': {report.error}", hint=report.hint))
    out.print(
        f"feed '{escape(feed_id)}': {report.outcome}; {counted(report.discovered, 'new item')}, "
        f"{report.sighted} seen elsewhere, "
        + (f"{report.revised} revised, " if report.revised else "")
        + f"{counted(report.transitions, 'transition')}"
        + (
            f", {counted(report.skipped, 'unchanged item')} not parsed again"
            if report.skipped
            else ""
        )
    )


class _Unforeseen(logging.Filter):
    """Leaves out the records that carry a traceback: an unforeseen failure's log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is None


async def _poll_one(feed_id: str) -> Any:
    import time

    from monitor import poll as polling
    from monitor import runtime, workstate
    from monitor.clients import fetch_limits
    from monitor.fetch import Fetcher

    with opened() as (config, store):
        try:
            config.feed(feed_id)
        except KeyError:
            raise UsageError(
                f"feed '{feed_id}' is not configured",
                hint="see the [[feeds]] ids in the configuration",
            ) from None
        instance = runtime.instance_name()
        workstate.sync_feeds(store, config, now=time.time(), rng=__import__("random").Random())
        works = workstate.claim_feeds(
            store,
            owner=instance,
            now=time.time(),
            lease=120,
            limit=1,
            feed_ids=[feed_id],
            due_only=False,
        )
        if not works:
            raise MonitorError(f"feed '{feed_id}' is being polled by another process")
        async with Fetcher(fetch_limits(config)) as fetcher:
            poller = polling.poller_for(config, store, fetcher, instance)
            try:
                return await polling.poll_feed(poller, works[0])
            finally:
                poller.close()
