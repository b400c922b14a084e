"""Commands about milestones: status, explain, backtest, note."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from monitor.cli.common import (
    JsonOpt,
    OperatorOpt,
    app,
    command,
    err,
    load,
    opened,
    operator_name,
    operator_text,
    out,
    print_json,
)
from monitor.errors import UsageError
from monitor.oneline import counted


@app.command()
@command
def status(json_: JsonOpt = False) -> None:
    """Milestones (state, since, evidence, deadline) and feeds (health, last success, next poll)."""
    from monitor import reports

    with opened(read_only=True) as (config, store):
        now = datetime.now(UTC)
        milestones = reports.milestone_rows(store, config, now)
        feeds = reports.feed_rows(store, config)
        # a test alert was tried once while an operator waited, who saw how it went: it needs
        # no operator afterwards (`monitor alerts` lists it)
        counts, abandoned = reports.alert_summary(store)
        channels = store.states_of("channels", [c.id for c in config.channels])
    disabled = {cid: row for cid, row in channels.items() if row.get("disabled")}
    if json_:
        for m in milestones:
            print_json({"kind": "milestone", **m})
        for f in feeds:
            print_json({"kind": "feed", **f})
        print_json({"kind": "alerts", **counts})
        for a in abandoned:  # each one needs an operator, as in the table's red lines
            print_json({"kind": "abandoned_alert", **a})
        for cid, row in disabled.items():
            print_json({"kind": "disabled_channel", "channel_id": cid, **row})
        return
    from monitor.review import local

    tz = config.settings.timezone
    table = Table(
        "milestone",
        "status",
        "since",
        "evidence",
        "newest evidence",
        "deadline",
        title="Milestones",
        box=None,
        pad_edge=False,
    )
    for m in milestones:
        deadline = deadline_text(m)
        table.add_row(
            escape(m["id"]),
            m["status"],
            local(m["since"], tz),
            f"{m['evidence']} ({counted(len(m['publishers']), 'publisher')})",
            escape((m["newest_evidence"] or "—")[:60]),
            deadline,
        )
    out.print(table)
    for m in milestones:
        if m["source"]:  # the latest a baseline or note cited, corrections included
            out.print(f"{escape(m['id'])}: {m['status']} per {escape(m['source'])}")
    feeds_table = Table(
        "feed",
        "health",
        "last success",
        "next poll",
        "problem",
        title="Feeds",
        box=None,
        pad_edge=False,
    )
    for f in feeds:
        feeds_table.add_row(
            escape(f["id"]),
            "not polled yet" if f["health"] == "not_polled" else f["health"],
            local(f["last_success_at"], tz),
            local(f["next_poll_at"], tz) if f["enabled"] else "disabled",
            escape(f["problem"] or ""),
        )
    out.print(feeds_table)
    out.print(f"alerts: {counts['pending']} pending, {counts['abandoned']} abandoned")
    for a in abandoned:
        out.print(
            f"[red]abandoned[/red] {a['alert_id']} on '{escape(a['channel_id'])}': "
            f"{escape(a.get('last_error') or '')}"
        )
    for cid, row in disabled.items():
        out.print(
            f"[red]disabled[/red] channel '{escape(cid)}' since {local(row['since'], tz)}: "
            f"{escape(row['reason'])}; `monitor alerts enable {escape(cid)}` takes alerts again"
        )


def deadline_text(m: dict[str, Any]) -> str:
    """`expected_by` and how far off it is, for a milestone not confirmed yet."""
    if not m["expected_by"]:
        return "—"
    days = m["days_left"]
    if m["status"] == "confirmed":
        return str(m["expected_by"])
    if days == 0:
        return f"{m['expected_by']} (today)"
    unit = "day" if abs(days) == 1 else "days"
    return (
        f"{m['expected_by']} ({days} {unit} left)"
        if days > 0
        else (f"{m['expected_by']} ({-days} {unit} ago)")
    )


@app.command()
@command
def explain(text: str, json_: JsonOpt = False) -> None:
    """Which milestone rules the text matches, and why (the spans highlighted)."""
    from monitor import evaluate

    config = load()
    matcher = evaluate.compile_rules(config)
    doc = {"title": text, "summary": text, "content": text}
    verdicts, late = evaluate.evaluate_timed(matcher, doc)
    vetoed = matcher.vetoed(doc)
    if json_:
        for v in verdicts:
            print_json(
                {
                    "milestone": v.milestone_id,
                    "kind": v.kind,
                    "rule": v.match.rule,
                    "hits": list(v.hits()),
                }
            )
        for veto in vetoed:  # a near miss: `vetoed_by` tells it from a match
            milestone_id, kind = veto.rule.split(":")[:2]
            print_json(
                {
                    "milestone": milestone_id,
                    "kind": kind,
                    "rule": veto.rule,
                    "vetoed_by": {"term": veto.term, "field": veto.field, "text": veto.text},
                }
            )
        for t in late:  # stdout keeps one shape of object; the warning goes beside it
            err.print(f"warning: {escape(evaluate.timed_out_sentence(t))}")
        return
    for t in late:
        out.print(escape(evaluate.timed_out_sentence(t)))
    for veto in vetoed:
        out.print(
            # quoted as written in feeds.toml: repr would double a regex's backslashes
            f"rule {escape(veto.rule)} would match, but its none term '{escape(veto.term)}' "
            f"found {escape(veto.text)!r} in the {veto.field}"
        )
    if not verdicts:
        out.print("no milestone rule matches")
        return
    for v in verdicts:
        shown = Text(text)
        for h in v.match.hits:
            shown.stylize("bold reverse", h.start, h.end)
        out.print(f"[bold]{escape(v.milestone_id)}[/bold] ({v.kind}, rule {escape(v.match.rule)})")
        out.print(shown)
        for h in v.match.hits:
            # numbered from 0, as alerts ("all group 0"), webhooks' `group` and rule ids are
            group = "any" if h.group is None else f"all group {h.group}"
            out.print(
                f"  {group}: {escape(h.term)} matched {escape(h.text)!r} "
                f"in {h.field} [{h.start}:{h.end}]"
            )


@app.command()
@command
def backtest(
    since: Annotated[str | None, typer.Option("--since", help="only items recorded since")] = None,
    json_: JsonOpt = False,
) -> None:
    """Re-run today's rules over every stored item; print the transitions; write nothing."""
    from monitor import reports
    from monitor.review import local, parse_when

    with opened(read_only=True) as (config, store):
        start = parse_when(since, timezone=config.settings.timezone) if since is not None else None
        rows = list(reports.backtest(store, config, since=start, now=datetime.now(UTC)))
    if json_:
        for t in rows:
            print_json(
                {
                    "at": t.at.isoformat(),
                    "milestone": t.milestone_id,
                    "from": t.from_status,
                    "to": t.to_status,
                    "reason": t.reason,
                    "item_id": t.item_id,
                    "item_title": t.item_title,
                    "position": t.position,
                }
            )
        return
    table = Table("when", "milestone", "transition", "reason", "item", box=None, pad_edge=False)
    for t in rows:
        table.add_row(
            local(t.at, config.settings.timezone),
            escape(t.milestone_id),
            f"{t.from_status} → {t.to_status}",
            escape(t.reason),
            escape((t.item_title or "")[:60]),
        )
    out.print(table)
    out.print(f"{len(rows)} transitions (nothing was written)")


@app.command()
@command
def note(
    milestone: str,
    status_: Annotated[str, typer.Option("--status", help="the milestone's new status")],
    source: Annotated[str, typer.Option("--source", help="URL of the evidence")],
    reason: Annotated[str, typer.Option("--reason")] = "operator's note",
    operator: OperatorOpt = None,
) -> None:
    """Record an operator's fact about a milestone, with who and why."""
    from monitor import evaluate, milestones
    from monitor.events import Status
    from monitor.record import append_decisions
    from monitor.runtime import instance_name

    try:
        target = Status(status_)
    except ValueError:
        raise UsageError(
            f"--status '{status_}': use one of " + ", ".join(s.value for s in Status)
        ) from None
    _check_source(source)
    who, reason = operator_name(operator), operator_text("--reason", reason)
    with opened() as (config, store):
        try:
            m = config.milestone(milestone)
        except KeyError:
            raise UsageError(f"milestone '{milestone}' is not configured") from None
        now = datetime.now(UTC)
        with store.transaction() as tx:
            state = milestones.MilestoneState.from_json(tx.state("milestones", m.id))
            policy = evaluate.policy(m)
            change = milestones.decide_declared(
                state, policy, status=target, reason=reason, source=source
            )
            # already that status: a different source is a correction, which is not alerted
            corrected = milestones.decide_source(
                state, policy, status=target, source=source, reason=reason
            )
            decision = change or corrected
            if decision is None:
                out.print(f"'{escape(m.id)}' is already {target.value}{_cited(state.source)}")
                return
            append_decisions(
                tx,
                config,
                [decision],
                now=now,
                meta={"operator": who, "instance": instance_name()},
            )
    if change is None:
        out.print(
            f"recorded: {escape(m.id)} stays {target.value}, source corrected (by {escape(who)})"
        )
        return
    out.print(
        f"recorded: {escape(m.id)} {change.from_status} → {change.to_status} (by {escape(who)})"
    )


def _check_source(source: str) -> None:
    """A note's source is kept forever in the log: a real http(s) URL, and no credentials."""
    from monitor.config import CREDENTIALS, check_http_url, check_public_url
    from monitor.redact import redact_url

    try:
        check_http_url(source)
    except ValueError:
        raise UsageError(
            f"--source '{redact_url(source)}': not an http:// or https:// URL with a host",
            hint="pass the full address of the evidence, such as https://www.meti.go.jp/press/…",
        ) from None
    try:
        check_public_url(source)
    except ValueError:  # the message names no part of it: the part would be the secret
        problem, _, hint = CREDENTIALS.partition("; ")
        raise UsageError(f"--source: {problem}", hint=hint) from None


def _cited(source: str | None) -> str:
    if source is None:  # reached by the evidence: no declared source to correct
        return " by the evidence: nothing recorded"
    return ", citing that source: nothing recorded"
