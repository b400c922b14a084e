"""Commands that review the log: log, show, verify, rebuild, export."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from monitor.cli import exportfile
from monitor.cli.common import (
    JsonOpt,
    app,
    err,
    opened,
    out,
    utf8_text,
)
from monitor.cli.common import (
    command as _command,
)
from monitor.config import Config
from monitor.errors import UsageError
from monitor.oneline import printable_line

# --- reviewing the log ---------------------------------------------------------------------


SinceOpt = Annotated[str | None, typer.Option("--since", help="date or ISO time")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="date or ISO time")]
TypeOpt = Annotated[list[str] | None, typer.Option("--type", help="event type (repeatable)")]


def _filter(
    config: Config,
    since: str | None,
    until: str | None,
    types: list[str] | None,
    stream: str | None,
    milestone: str | None,
    feed: str | None,
    grep: str | None,
) -> Any:
    from monitor.review import Filter, parse_when

    for option, value in (
        ("--stream", stream),
        ("--milestone", milestone),
        ("--feed", feed),
        ("--grep", grep),
    ):
        if value is not None:
            utf8_text(option, value)
    # the log keeps the history of feeds and milestones removed since: a note, not an error
    for option, value, known in (
        ("--milestone", milestone, {m.id for m in config.milestones}),
        ("--feed", feed, {f.id for f in config.feeds}),
    ):
        if value is not None and value not in known:
            note = f"note: {option} {value}: not in the configuration; its history only"
            err.print(escape(printable_line(note)))
    tz = config.settings.timezone
    return Filter(
        types=tuple(types or ()),
        stream=stream,
        milestone=milestone,
        feed=feed,
        grep=grep,
        since=parse_when(since, timezone=tz) if since is not None else None,
        until=parse_when(until, timezone=tz, end=True, option="--until")
        if until is not None
        else None,
    )


@app.command("log")
@_command
def log_(
    since: SinceOpt = None,
    until: UntilOpt = None,
    type_: TypeOpt = None,
    stream: Annotated[str | None, typer.Option("--stream")] = None,
    milestone: Annotated[str | None, typer.Option("--milestone")] = None,
    feed: Annotated[str | None, typer.Option("--feed")] = None,
    grep: Annotated[str | None, typer.Option("--grep", help="text anywhere in the data")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="the newest N")] = None,
    json_: JsonOpt = False,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="stream new events")] = False,
) -> None:
    """Review the event log."""
    with opened(read_only=True) as (config, store):
        if follow and store.immutable:  # an immutable opening would never see a new event
            raise UsageError(
                "--follow: no writer has this log open and its folder is not writable, "
                "so it is read as a file that never changes",
                hint="follow it while the daemon runs, or as a user who can write its folder",
            )
        selection = _filter(config, since, until, type_, stream, milestone, feed, grep)
        last = 0
        if limit is not None:
            # the newest N: scan back from the head in widening windows, never the whole log
            head = (store.head() or (0, ""))[0]
            window, records = limit * 8, []
            while True:
                after = max(head - window, 0)
                records = list(selection.select(store, after=after))
                if len(records) >= limit or after == 0:
                    break
                window *= 4
            records = records[-limit:]
            _emit(records, json_, config.settings.timezone)
            last = head
        else:
            for chunk in _chunks(selection.select(store), 500):
                _emit(chunk, json_, config.settings.timezone)
                last = chunk[-1].position
            last = max(last, (store.head() or (0, ""))[0])
        if follow:
            _follow(store, selection, last, json_, config.settings.timezone)


def _follow(store: Any, selection: Any, last: int, as_json: bool, timezone: str) -> None:
    """Print events as they are committed until Ctrl-C, which ends the command normally (0)."""
    import signal
    import threading

    # A flag instead of KeyboardInterrupt: the store is never interrupted mid-read, and
    # `follow` stops within one poll interval.
    stopping = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stopping.set())
    try:
        for record in store.follow(after=last, stop=stopping.is_set):
            if selection.matches(record):
                _emit([record], as_json, timezone, header=False)
    finally:
        signal.signal(signal.SIGINT, previous)


def _chunks(records: Any, size: int) -> Iterator[list[Any]]:
    import itertools

    it = iter(records)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _emit(records: list[Any], as_json: bool, timezone: str, *, header: bool = True) -> None:
    from monitor import review

    if as_json:
        for line in review.json_lines(records):
            sys.stdout.buffer.write(line)
        sys.stdout.flush()
        return
    if not records:
        return
    # On a wide terminal position, time and type stay on one line (people scan them) and long
    # item streams end in an ellipsis (`monitor show` has them whole); the summary wraps.
    table = Table(box=None, pad_edge=False, show_header=header)
    wide = out.width >= 100  # below that, the stream column would squeeze out the summary
    table.add_column("pos", justify="right", no_wrap=True)
    table.add_column("recorded", no_wrap=wide)
    table.add_column("type", no_wrap=wide, overflow="fold")
    if wide:
        table.add_column("stream", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("what", overflow="fold", min_width=20)
    for pos, recorded, type_, stream, what in review.columns(records, timezone):
        cells = (pos, recorded, type_, stream, what) if wide else (pos, recorded, type_, what)
        table.add_row(*(escape(c) for c in cells))
    out.print(table)


@app.command()
@_command
def show(position: int) -> None:
    """One event in full, with what caused it and what it caused."""
    from monitor import review

    with opened(read_only=True) as (_, store):
        # positions are 64-bit; a larger number names no event (and the driver cannot bind it)
        record = store.get(position) if 1 <= position < 2**63 else None
        if record is None:
            raise UsageError(f"position {position}: no such event")
        doc = review.as_json(record)
        cause = record.meta.get("causation")
        cause_rec = store.get(int(cause)) if isinstance(cause, int) else None
        doc["caused_by"] = (
            {
                "position": cause_rec.position,
                "type": cause_rec.type,
                "summary": review.summary(cause_rec),
            }
            if cause_rec
            else None
        )
        doc["caused"] = [
            {"position": r.position, "type": r.type, "summary": review.summary(r)}
            for r in store.caused_by(position)
        ]
        out.print_json(orjson.dumps(doc, default=str).decode())


@app.command()
@_command
def verify(
    expect: Annotated[
        str | None, typer.Option("--expect", help="POSITION:HASH seen before")
    ] = None,
) -> None:
    """Walk the hash chain; exit 1 naming the first bad position."""
    from monitor.review import parse_expect

    expected = parse_expect(expect) if expect is not None else None
    with opened(read_only=True) as (_, store):
        report = store.verify(expect=expected)
    if report.head:
        out.print(f"head {report.head[0]}:{report.head[1]}")
    if not report.ok:
        err.print(f"error: chain broken: {escape(report.problem or '')}")
        raise typer.Exit(1)
    held = f"; position {expected[0]} holds the expected hash" if expected is not None else ""
    out.print(f"ok: {report.checked} events verified{held}")


@app.command()
@_command
def rebuild() -> None:
    """Recompute every projection from position 1."""
    from rich.progress import Progress

    from monitor import alertwork, workstate

    # Progress redraws a line in place: only on a terminal, never into a file or a pipe.
    shown = Progress(console=err, transient=True, disable=not err.is_terminal)
    with opened() as (_, store), shown as progress:
        head = store.head()
        task = progress.add_task("replaying", total=head[0] if head else 0)
        count = store.rebuild(progress=lambda n: progress.update(task, completed=n))
        with workstate.work_tx(store) as conn:
            alertwork.restore_alerts(conn, store.states("outbox").values())
    out.print(f"rebuilt projections from {count} events")


@app.command()
@_command
def export(
    format_: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    type_: TypeOpt = None,
    stream: Annotated[str | None, typer.Option("--stream")] = None,
    milestone: Annotated[str | None, typer.Option("--milestone")] = None,
    feed: Annotated[str | None, typer.Option("--feed")] = None,
) -> None:
    """The whole log, or a filtered part, for other tools."""
    from monitor import review

    if format_ not in ("jsonl", "csv"):
        raise UsageError(f"--format '{format_}': use jsonl or csv")
    with opened(read_only=True) as (config, store):
        if output is not None:
            exportfile.refuse_database_file(output, config.settings.database_url)
        records = _filter(config, since, until, type_, stream, milestone, feed, None).select(store)
        lines = (
            review.json_lines(records)
            if format_ == "jsonl"
            else (s.encode() for s in review.csv_lines(records))
        )
        if output is not None:  # a file replaced once complete, or a device or FIFO written
            count = exportfile.write_output(output, lines)
        else:
            count = 0
            for line in lines:
                sys.stdout.buffer.write(line)
                count += 1
    if output:
        err.print(f"wrote {count - (format_ == 'csv')} events to {output}")
