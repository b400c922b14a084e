"""What `monitor status` and `monitor backtest` compute from the log and its projections."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor import evaluate, milestones, revisions, workstate
from monitor.config import Config
from monitor.events import ItemDiscovered, ItemRevised, MilestoneStatusChanged
from monitor.redact import redact_url, shown_source
from monitor.store import EventStore


def milestone_rows(store: EventStore, config: Config, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for m in config.milestones:
        raw = store.state("milestones", m.id) or {}
        state = milestones.MilestoneState.from_json(raw)
        progress = [e for e in state.evidence if e.kind == "progress"]
        newest = max(state.evidence, key=lambda e: e.at, default=None)
        newest_item = store.state("items", newest.item_id) if newest else None
        deadline = (
            milestones.deadline_instant(m.expected_by, config.settings.timezone)
            if m.expected_by
            else None
        )
        rows.append(
            {
                "id": m.id,
                "title": m.title,
                "status": state.status.value,
                "since": state.since.isoformat() if state.since else None,
                "evidence": len(state.evidence),
                "progress_evidence": len(progress),
                "publishers": sorted({e.publisher for e in progress if e.publisher}),
                "newest_evidence": (newest_item or {}).get("title"),
                "newest_evidence_at": newest.at.isoformat() if newest else None,
                "expected_by": m.expected_by.isoformat() if m.expected_by else None,
                "days_left": (deadline - now).days if deadline else None,
                "source": shown_source(state.source) if state.source else None,
            }
        )
    return rows


def feed_rows(store: EventStore, config: Config) -> list[dict[str, Any]]:
    """Each configured feed: health (ok / failing / gone / stale, or `not_polled` before its
    first poll completes), and the next poll (None for a disabled feed: none is due)."""
    work = workstate.feed_rows(store)
    # one query for every feed: a query each cost a connection (and a ping on PostgreSQL) per
    # feed, seconds for a few thousand feeds
    health_of = store.states_of("feeds", [f.id for f in config.feeds])
    rows = []
    for f in config.feeds:
        recorded = health_of.get(f.id)
        health = recorded or {"health": "ok"}
        w = work.get(f.id)
        polled = recorded is not None or (w is not None and w.polls > 0)
        rows.append(
            {
                "id": f.id,
                "url": redact_url(w.url if w else f.url),
                "enabled": f.enabled,
                "health": health.get("health", "ok") if polled else "not_polled",
                "problem": health.get("message"),
                "since": health.get("since"),
                "last_success_at": _iso(w.last_success_at) if w else None,
                "next_poll_at": _iso(w.next_poll_at) if w and f.enabled else None,
                "polls": w.polls if w else 0,
                "failures": w.failures if w else 0,
            }
        )
    return rows


def alert_rows(store: EventStore, *, delivered: int | None) -> tuple[list[dict[str, Any]], int]:
    """The alerts `monitor alerts` lists, in the order they were queued: every pending and
    abandoned one (an operator may act on it), and the newest `delivered` others (None: all);
    and how many others were left out. The database counts and picks them."""
    counts = store.count_states("outbox", "status")
    done = sum(n for status, n in counts.items() if status not in OPEN)
    if delivered is None or done <= delivered:
        return store.find_states("outbox", {}, order="queued_position"), 0
    shown = store.find_states("outbox", {"status": OPEN}, order="queued_position")
    newest = store.find_states(
        "outbox", {"status": _others(counts)}, order="queued_position", last=delivered
    )
    rows = sorted([*shown, *newest], key=_queued)
    return rows, done - len(newest)


OPEN = ("pending", "abandoned")


def _others(counts: dict[Any, int]) -> list[str]:
    return [str(status) for status in counts if status not in OPEN and status is not None]


def _queued(row: dict[str, Any]) -> int:
    return int(row.get("queued_position", 0))


def alert_summary(store: EventStore) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """What `monitor status` says of the alerts: how many pending, abandoned and delivered,
    and the abandoned ones, in the order they were queued; test alerts left out (one was tried
    while an operator waited, who saw how it went). The database counts them and finds the
    abandoned ones by the outbox's index: it reads no delivered alert's state."""
    counts, done = store.count_states_among("outbox", "status", OPEN, unless="test")
    summary = {
        "pending": counts.get("pending", 0),
        "abandoned": counts.get("abandoned", 0),
        "delivered": done,
    }
    rows = store.find_states(
        "outbox", {"status": ["abandoned"]}, order="queued_position", unless="test"
    )
    return summary, rows


def _iso(ts: float | None) -> str | None:
    from datetime import UTC

    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


@dataclass(frozen=True, slots=True)
class Transition:
    """A transition today's rules would have caused."""

    at: datetime
    milestone_id: str
    from_status: str
    to_status: str
    reason: str
    item_id: str | None
    item_title: str | None
    position: int | None


def backtest(
    store: EventStore, config: Config, *, since: datetime | None, now: datetime
) -> Iterator[Transition]:
    """Replay stored items through today's rules in memory; writes nothing."""
    matcher = evaluate.compile_rules(config)
    states: dict[str, milestones.MilestoneState] = {}
    for change in evaluate.baseline_events(config, states):
        states[change.milestone_id] = milestones.apply(
            states.get(change.milestone_id, milestones.MilestoneState()),
            change,
            change.effective_at or now,
        )
    matched: dict[str, set[tuple[str, str]]] = {}  # item -> (milestone, kind) it gave evidence of
    for record in store.read(types=("ItemDiscovered", "ItemRevised"), since=since):
        item = record.event
        assert isinstance(item, ItemDiscovered | ItemRevised)
        yield from _deadlines(config, states, record.recorded_at)
        doc = evaluate.doc_of(item.title, item.summary, item.content)
        verdicts = evaluate.evaluate(matcher, doc)
        if isinstance(item, ItemRevised):
            verdicts = revisions.fresh(verdicts, matched.get(item.item_id, set()))
        if verdicts:
            matched.setdefault(item.item_id, set()).update(
                (v.milestone_id, v.kind) for v in verdicts
            )
        events = evaluate.item_events(
            config,
            matcher,
            states,
            item_id=item.item_id,
            doc=doc,
            publisher=item.publisher,
            published_at=item.published_at,
            now=record.recorded_at,
            verdicts=verdicts,
        )
        for change in evaluate.notifying(events):
            yield Transition(
                record.recorded_at,
                change.milestone_id,
                change.from_status,
                change.to_status,
                change.reason,
                item.item_id,
                item.title,
                record.position,
            )
    yield from _deadlines(config, states, now)


def _deadlines(
    config: Config, states: dict[str, milestones.MilestoneState], at: datetime
) -> Iterator[Transition]:
    for change in evaluate.deadline_events(config, states, at):
        states[change.milestone_id] = milestones.apply(
            states.get(change.milestone_id, milestones.MilestoneState()), change, at
        )
        yield _from_change(change, at)


def _from_change(change: MilestoneStatusChanged, at: datetime) -> Transition:
    return Transition(
        at,
        change.milestone_id,
        change.from_status,
        change.to_status,
        change.reason,
        None,
        None,
        None,
    )
