"""From an item to milestone events: rules compiled per configuration, decisions per item (pure).

Shared by the poller (which records what this returns), `monitor explain` and
`monitor backtest` (which only print it), so all three always agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor import milestones
from monitor.config.models import Config, Milestone, Rule
from monitor.eventbase import Event
from monitor.events import MilestoneSourceCorrected, MilestoneStatusChanged, Status
from monitor.match import Matcher, compile_matcher
from monitor.rules import Match, RuleSpec, TimedOut
from monitor.terms import REGEX_TIMEOUT

PROGRESS, SETBACK = "progress", "setback"


@dataclass(frozen=True, slots=True)
class MilestoneHit:
    """One milestone's verdict on one item: the rule that decided it and why."""

    milestone_id: str
    kind: str  # progress | setback
    match: Match

    def hits(self) -> tuple[dict[str, Any], ...]:
        return tuple(h.to_dict() for h in self.match.hits)


def rule_key(milestone_id: str, kind: str, index: int = 0) -> str:
    return f"{milestone_id}:{kind}" if kind == PROGRESS else f"{milestone_id}:{kind}:{index}"


def _spec(rule: Rule) -> RuleSpec:
    return RuleSpec(all=rule.all, any=rule.any, none=rule.none, fields=tuple(rule.fields))


def compile_rules(config: Config) -> Matcher:
    """One matcher for every milestone's progress and setback rules."""
    rules: dict[str, RuleSpec] = {}
    for m in config.milestones:
        rules[rule_key(m.id, PROGRESS)] = _spec(m.match)
        for i, setback in enumerate(m.setback):
            rules[rule_key(m.id, SETBACK, i)] = _spec(setback)
    return compile_matcher(rules, config.aliases)


def timed_out_sentence(late: TimedOut) -> str:
    """What a timed-out regex search means for its milestone, in words for the operator."""
    return (
        f"milestone '{late.rule.split(':')[0]}' rule '{late.rule}': term '{late.term}' ran out "
        f"of time ({REGEX_TIMEOUT:g} s) in the {late.field} and is taken as no match"
    )


def evaluate(matcher: Matcher, doc: Mapping[str, str]) -> list[MilestoneHit]:
    """Each milestone's verdict on a document; a setback outranks progress in the same item."""
    return evaluate_timed(matcher, doc)[0]


def evaluate_timed(
    matcher: Matcher, doc: Mapping[str, str]
) -> tuple[list[MilestoneHit], tuple[TimedOut, ...]]:
    """evaluate(), and the regex terms whose search ran out of time (each taken as no match)."""
    outcome = matcher.outcome(doc)
    verdicts: dict[str, MilestoneHit] = {}
    for found in outcome.matches:
        milestone_id, kind = found.rule.split(":")[:2]
        if kind == SETBACK or milestone_id not in verdicts:
            if milestone_id in verdicts and verdicts[milestone_id].kind == SETBACK:
                continue
            verdicts[milestone_id] = MilestoneHit(milestone_id, kind, found)
    return [verdicts[k] for k in sorted(verdicts)], outcome.timed_out


def policy(m: Milestone) -> milestones.Policy:
    return milestones.Policy(
        milestone_id=m.id,
        publishers=m.confirm.publishers,
        within=m.confirm.within,
        authoritative=tuple(m.confirm.authoritative),
        expected_by=m.expected_by,
    )


def item_events(
    config: Config,
    matcher: Matcher,
    states: MutableMapping[str, milestones.MilestoneState],
    *,
    item_id: str,
    doc: Mapping[str, str],
    publisher: str | None,
    published_at: datetime | None,
    now: datetime,
    verdicts: Sequence[MilestoneHit] | None = None,
) -> list[Event]:
    """The milestone events an item causes, folding them into `states` as it goes.

    `verdicts` are `evaluate(matcher, doc)` when the caller already has them.
    """
    out: list[Event] = []
    for verdict in evaluate(matcher, doc) if verdicts is None else verdicts:
        m = config.milestone(verdict.milestone_id)
        state = states.get(m.id, milestones.MilestoneState())
        events = milestones.decide_match(
            state,
            policy(m),
            item_id=item_id,
            kind=verdict.kind,
            rule=verdict.match.rule,
            hits=verdict.hits(),
            publisher=publisher,
            published_at=published_at,
            now=now,
        )
        for event in events:
            state = milestones.apply(state, event, now)
        states[m.id] = state
        out.extend(events)
    return out


def baseline_events(
    config: Config, states: Mapping[str, milestones.MilestoneState]
) -> list[MilestoneStatusChanged]:
    """Configured baselines of milestones with no status in the log yet.

    A baseline is where a milestone starts: once the log holds a status for it (its baseline,
    a note, the evidence or its deadline), a baseline added or edited later moves nothing; it
    would otherwise take a milestone back from what was recorded since (`runtime.
    baseline_conflicts` says so in the daemon's log).
    """
    out = []
    for m in config.milestones:
        state = states.get(m.id, milestones.MilestoneState())
        if m.baseline is None or state.since is not None:
            continue
        changed = milestones.decide_declared(
            state,
            policy(m),
            status=Status(m.baseline.status),
            reason=m.baseline.reason or "baseline from configuration",
            source=m.baseline.source,
            effective=m.baseline.since,
            timezone=config.settings.timezone,
        )
        if changed is not None:
            out.append(changed)
    return out


def baseline_corrections(
    config: Config,
    states: Mapping[str, milestones.MilestoneState],
    cited: Mapping[str, tuple[str, datetime]],
) -> list[MilestoneSourceCorrected]:
    """Recorded baselines whose `source` was edited in the configuration since it was last
    cited (`cited`: milestone id -> the source the configuration last recorded, and the since
    its recorded baseline took effect).

    A milestone still holds its baseline when its status and since are the baseline's: a note
    or the evidence since then set another since (or status), and their source is not the
    configuration's to correct. The since is the one recorded, not one computed again: the
    configured timezone may have changed since.
    """
    out = []
    for m in config.milestones:
        state = states.get(m.id, milestones.MilestoneState())
        if m.baseline is None or m.id not in cited:
            continue
        source, since = cited[m.id]
        if source == m.baseline.source or state.since != since:
            continue
        corrected = milestones.decide_source(
            state,
            policy(m),
            status=Status(m.baseline.status),
            source=m.baseline.source,
            reason="baseline source corrected in the configuration",
        )
        if corrected is not None:
            out.append(corrected)
    return out


def deadline_events(
    config: Config, states: Mapping[str, milestones.MilestoneState], now: datetime
) -> list[MilestoneStatusChanged]:
    out = []
    for m in config.milestones:
        changed = milestones.decide_deadline(
            states.get(m.id, milestones.MilestoneState()),
            policy(m),
            timezone=config.settings.timezone,
            now=now,
        )
        if changed is not None:
            out.append(changed)
    return out


def doc_of(title: str, summary: str, content: str = "") -> dict[str, str]:
    return {"title": title, "summary": summary, "content": content}


def notifying(events: Iterable[Event]) -> list[MilestoneStatusChanged]:
    return [e for e in events if isinstance(e, MilestoneStatusChanged)]
