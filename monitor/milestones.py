"""The milestone state machine: pure decisions and the fold that keeps each milestone's state.

`decide_*` functions take the current state, the configured policy and `now`, and return the
events that follow (MilestoneMatched, MilestoneStatusChanged); `apply` folds recorded events
into state. Nothing here reads a clock, a database or the environment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from monitor.eventbase import Event
from monitor.events import (
    MilestoneMatched,
    MilestoneSourceCorrected,
    MilestoneStatusChanged,
    Status,
)


@dataclass(frozen=True, slots=True)
class Policy:
    """What a milestone needs to move: the configured confirmation policy and deadline."""

    milestone_id: str
    publishers: int = 2
    within: timedelta = timedelta(days=14)
    authoritative: tuple[str, ...] = ()
    expected_by: date | None = None


# The evidence a milestone keeps: the latest matches, in the order they were recorded. A story
# that breaks is carried by hundreds of feeds; every match would otherwise rewrite them all.
MAX_EVIDENCE = 100


class Evidence(NamedTuple):
    """One matched item, as the state machine needs it (a named tuple: a milestone's state is
    read back with its hundred pieces of evidence for every match, and a tuple is made in a
    fraction of a frozen dataclass's time)."""

    item_id: str
    kind: str  # "progress" | "setback"
    publisher: str | None
    authoritative: bool
    at: datetime  # published_at, else when it was recorded

    def to_json(self) -> list[Any]:
        return [self.item_id, self.kind, self.publisher, self.authoritative, self.at.isoformat()]

    @classmethod
    def of(cls, matched: MilestoneMatched, recorded_at: datetime) -> Evidence:
        """A recorded match as evidence; a publication time in the future counts as now."""
        at = matched.published_at
        at = at if at is not None and at <= recorded_at else recorded_at
        return cls(matched.item_id, matched.kind, matched.publisher, matched.authoritative, at)


def with_evidence(evidence: tuple[Evidence, ...], new: Evidence) -> tuple[Evidence, ...]:
    """`evidence` with `new` recorded last, the oldest dropped beyond MAX_EVIDENCE."""
    return (*evidence[-(MAX_EVIDENCE - 1) :], new)


@dataclass(frozen=True, slots=True)
class MilestoneState:
    """A milestone's state as folded from its stream."""

    status: Status = Status.PENDING
    since: datetime | None = None
    evidence: tuple[Evidence, ...] = ()
    source: str | None = None  # what a baseline or note cited for the status; None for matches

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "since": self.since.isoformat() if self.since else None,
            "evidence": [e.to_json() for e in self.evidence],
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> MilestoneState:
        if not data:
            return cls()
        return cls(
            status=Status(data["status"]),
            since=datetime.fromisoformat(data["since"]) if data.get("since") else None,
            evidence=tuple(
                Evidence(i, k, p, bool(a), datetime.fromisoformat(t))
                for i, k, p, a, t in data.get("evidence", ())
            ),
            source=data.get("source"),
        )


def is_authoritative(publisher: str | None, authoritative: Sequence[str]) -> bool:
    """True when the publisher is one of the listed domains or a subdomain of one."""
    if not publisher:
        return False
    return any(publisher == d or publisher.endswith("." + d) for d in authoritative)


def decide_match(
    state: MilestoneState,
    policy: Policy,
    *,
    item_id: str,
    kind: str,
    rule: str,
    hits: Sequence[Mapping[str, Any]],
    publisher: str | None,
    published_at: datetime | None,
    now: datetime,
) -> list[Event]:
    """An item matched one of the milestone's rules: record it, and move the state if due."""
    authoritative = is_authoritative(publisher, policy.authoritative)
    matched = MilestoneMatched(
        milestone_id=policy.milestone_id,
        item_id=item_id,
        kind=kind,
        rule=rule,
        hits=tuple(hits),
        publisher=publisher,
        authoritative=authoritative,
        published_at=published_at,
    )
    evidence = Evidence.of(matched, now)
    after = replace(state, evidence=with_evidence(state.evidence, evidence))
    target, reason = _next_status(after, policy, evidence)
    events: list[Event] = [matched]
    if target is not None and target is not state.status:
        events.append(_changed(policy, state.status, target, reason, _evidence_ids(after, kind)))
    return events


def _next_status(state: MilestoneState, policy: Policy, new: Evidence) -> tuple[Status | None, str]:
    if state.status is Status.CONFIRMED:
        return None, ""  # evidence after confirmation is recorded, never alerted
    if new.kind == "setback":
        if state.status in (Status.AT_RISK, Status.OVERDUE):
            return None, ""  # an overdue milestone stays overdue: the deadline is the fact
        return Status.AT_RISK, f"setback reported by {new.publisher or 'an unknown publisher'}"
    if new.authoritative:
        return Status.CONFIRMED, f"authoritative publisher {new.publisher}"
    publishers = _publishers_within(state, policy, new.at)
    if len(publishers) >= policy.publishers:
        return Status.CONFIRMED, (
            f"{len(publishers)} independent publishers within {_days(policy.within)}: "
            + ", ".join(sorted(publishers))
        )
    if state.status is Status.PENDING:
        return Status.REPORTED, (
            f"reported by {new.publisher or 'an unknown publisher'}; "
            f"{len(publishers)} of {policy.publishers} publishers needed to confirm"
        )
    return None, ""


def _publishers_within(state: MilestoneState, policy: Policy, newest: datetime) -> set[str]:
    start = newest - policy.within
    return {
        e.publisher
        for e in state.evidence
        if e.kind == "progress" and e.publisher and start <= e.at <= newest
    }


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:g} days" if days != 1 else "1 day"


def _evidence_ids(state: MilestoneState, kind: str) -> tuple[str, ...]:
    return tuple(e.item_id for e in state.evidence if e.kind == kind)


def _changed(
    policy: Policy, old: Status, new: Status, reason: str, evidence: tuple[str, ...], **extra: Any
) -> MilestoneStatusChanged:
    return MilestoneStatusChanged(
        milestone_id=policy.milestone_id,
        from_status=old.value,
        to_status=new.value,
        reason=reason,
        evidence=evidence,
        **extra,
    )


def deadline_instant(expected_by: date, timezone: str) -> datetime:
    """The first moment after `expected_by` ends in the configured timezone, in UTC."""
    local = datetime.combine(expected_by + timedelta(days=1), time(0), tzinfo=ZoneInfo(timezone))
    return local.astimezone(UTC)


def decide_deadline(
    state: MilestoneState, policy: Policy, *, timezone: str, now: datetime
) -> MilestoneStatusChanged | None:
    """`expected_by` has passed without confirmation: overdue (once)."""
    if policy.expected_by is None or state.status in (Status.CONFIRMED, Status.OVERDUE):
        return None
    if now < deadline_instant(policy.expected_by, timezone):
        return None
    return _changed(
        policy,
        state.status,
        Status.OVERDUE,
        f"expected by {policy.expected_by.isoformat()}; not confirmed",
        _evidence_ids(state, "progress"),
    )


def decide_declared(
    state: MilestoneState,
    policy: Policy,
    *,
    status: Status,
    reason: str,
    source: str,
    effective: date | None = None,
    timezone: str = "UTC",
) -> MilestoneStatusChanged | None:
    """A baseline from the configuration or an operator's note; None when the status is already
    that (`decide_source` then tells whether its source was corrected). `effective` is a day in
    `timezone`, the configured one."""
    if state.status is status:
        return None
    effective_at = declared_instant(effective, timezone) if effective is not None else None
    return _changed(
        policy, state.status, status, reason, (), source=source, effective_at=effective_at
    )


def declared_instant(day: date, timezone: str) -> datetime:
    """A declared day (a baseline's `since`) as the instant a transition records: the day's
    first moment in the configured timezone, in UTC, as `expected_by`'s end is read."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def decide_source(
    state: MilestoneState, policy: Policy, *, status: Status, source: str, reason: str
) -> MilestoneSourceCorrected | None:
    """A declared status whose cited source differs: the correction, which supersedes it.

    Only a status that a baseline or note declared (it has a source) is corrected: a status the
    evidence reached, or a different status, keeps what the log says.
    """
    if state.status is not status or state.source is None or state.source == source:
        return None
    return MilestoneSourceCorrected(
        milestone_id=policy.milestone_id,
        status=status.value,
        source=source,
        previous_source=state.source,
        reason=reason,
    )


def apply(state: MilestoneState, event: Event, recorded_at: datetime) -> MilestoneState:
    """Fold one recorded event into a milestone's state; pure, so rebuild == incremental."""
    match event:
        case MilestoneMatched():
            return replace(
                state, evidence=with_evidence(state.evidence, Evidence.of(event, recorded_at))
            )
        case MilestoneStatusChanged():
            return replace(
                state,
                status=Status(event.to_status),
                since=since_of(event, recorded_at),
                source=event.source,
            )
        case MilestoneSourceCorrected() if event.status == state.status.value:
            return replace(state, source=event.source)
        case _:
            return state


def since_of(change: MilestoneStatusChanged, recorded_at: datetime) -> datetime:
    """When a recorded transition took effect: its declared date, else when it was recorded."""
    return change.effective_at or recorded_at
