"""The milestone state machine: decisions and the fold, pure, with `now` passed in."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import evaluate
from monitor import milestones as ms
from monitor.events import MilestoneMatched, MilestoneStatusChanged, Status
from monitor.match import compile_matcher
from monitor.projections import Milestones
from monitor.rules import RuleSpec

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
POLICY = ms.Policy(milestone_id="training-start", publishers=2, within=timedelta(days=14),
                   authoritative=("nedo.go.jp", "meti.go.jp"), expected_by=date(2027, 3, 31))


def step(state: ms.MilestoneState, *, item: str, kind: str = "progress",
         publisher: str | None = "nhk.or.jp", published_at: datetime | None = None,
         now: datetime = NOW) -> tuple[ms.MilestoneState, list[object]]:
    events = ms.decide_match(state, POLICY, item_id=item, kind=kind, rule="r", hits=(),
                             publisher=publisher, published_at=published_at, now=now)
    for e in events:
        state = ms.apply(state, e, now)
    return state, events


def changes(events: list[object]) -> list[tuple[str, str]]:
    return [(e.from_status, e.to_status) for e in events
            if isinstance(e, MilestoneStatusChanged)]


def test_first_report_from_one_publisher_is_reported_not_confirmed() -> None:
    state, events = step(ms.MilestoneState(), item="a")
    assert changes(events) == [("pending", "reported")]
    assert state.status is Status.REPORTED


def test_second_distinct_publisher_within_window_confirms() -> None:
    state, _ = step(ms.MilestoneState(), item="a", publisher="nhk.or.jp")
    state, events = step(state, item="b", publisher="itmedia.co.jp")
    assert changes(events) == [("reported", "confirmed")]
    assert "2 independent publishers" in events[-1].reason  # type: ignore[attr-defined]


def test_same_publisher_twice_does_not_confirm() -> None:
    state, _ = step(ms.MilestoneState(), item="a", publisher="nhk.or.jp")
    state, events = step(state, item="b", publisher="nhk.or.jp")
    assert changes(events) == []
    assert state.status is Status.REPORTED


def test_publishers_outside_the_window_do_not_corroborate() -> None:
    old = NOW - timedelta(days=30)
    state, _ = step(ms.MilestoneState(), item="a", publisher="nhk.or.jp", published_at=old)
    state, events = step(state, item="b", publisher="itmedia.co.jp", published_at=NOW)
    assert changes(events) == []
    assert state.status is Status.REPORTED


def test_a_report_exactly_the_window_apart_still_corroborates() -> None:
    start = NOW - POLICY.within
    state, _ = step(ms.MilestoneState(), item="a", publisher="nhk.or.jp", published_at=start)
    state, events = step(state, item="b", publisher="itmedia.co.jp", published_at=NOW)
    assert changes(events) == [("reported", "confirmed")]


def test_a_late_found_older_report_does_not_reach_forward_past_the_window() -> None:
    """The window looks back from the new report: one published 30 days before what was
    recorded is not corroborated by that later report, whichever is found first."""
    state, _ = step(ms.MilestoneState(), item="a", publisher="nhk.or.jp", published_at=NOW)
    old = NOW - timedelta(days=30)
    state, events = step(state, item="b", publisher="itmedia.co.jp", published_at=old)
    assert changes(events) == []
    assert state.status is Status.REPORTED


def test_the_first_setback_rule_that_matches_speaks_for_the_milestone() -> None:
    rules = {
        "m:progress": RuleSpec(all=(("noetra",),)),
        "m:setback:0": RuleSpec(all=(("delay*",),)),
        "m:setback:1": RuleSpec(all=(("postpone*",),)),
    }
    doc = {"title": "Noetra training delayed and postponed again"}
    [verdict] = evaluate.evaluate(compile_matcher(rules, {}), doc)
    assert (verdict.kind, verdict.match.rule) == ("setback", "m:setback:0")


def test_authoritative_publisher_confirms_alone() -> None:
    _, events = step(ms.MilestoneState(), item="a", publisher="www.nedo.go.jp")
    assert changes(events) == [("pending", "confirmed")]
    assert events[0].authoritative  # type: ignore[attr-defined]


def test_lookalike_domain_is_not_authoritative() -> None:
    assert not ms.is_authoritative("fakenedo.go.jp", ("nedo.go.jp",))
    assert ms.is_authoritative("www.nedo.go.jp", ("nedo.go.jp",))
    assert not ms.is_authoritative(None, ("nedo.go.jp",))


def test_setback_before_confirmation_is_at_risk_once() -> None:
    state, events = step(ms.MilestoneState(), item="a", kind="setback")
    assert changes(events) == [("pending", "at_risk")]
    state, events = step(state, item="b", kind="setback", publisher="itmedia.co.jp")
    assert changes(events) == []


def test_setback_after_the_deadline_keeps_overdue() -> None:
    state = ms.MilestoneState(status=Status.OVERDUE)
    state, events = step(state, item="a", kind="setback")
    assert changes(events) == [] and state.status is Status.OVERDUE


def test_reports_do_not_move_at_risk_back_to_reported() -> None:
    state, _ = step(ms.MilestoneState(), item="a", kind="setback")
    state, events = step(state, item="b", publisher="itmedia.co.jp")
    assert changes(events) == [] and state.status is Status.AT_RISK
    state, events = step(state, item="c", publisher="nedo.go.jp")
    assert changes(events) == [("at_risk", "confirmed")]


def test_evidence_after_confirmation_is_recorded_without_transition() -> None:
    state, _ = step(ms.MilestoneState(), item="a", publisher="nedo.go.jp")
    state, events = step(state, item="b", kind="setback")
    assert [type(e) for e in events] == [MilestoneMatched]
    assert state.status is Status.CONFIRMED and len(state.evidence) == 2


def test_deadline_passes_once_in_the_configured_timezone() -> None:
    state = ms.MilestoneState()
    # 2027-03-31 ends at 2027-03-31T15:00Z in Asia/Tokyo
    before = datetime(2027, 3, 31, 14, 59, tzinfo=UTC)
    after = datetime(2027, 3, 31, 15, 0, tzinfo=UTC)
    assert ms.decide_deadline(state, POLICY, timezone="Asia/Tokyo", now=before) is None
    change = ms.decide_deadline(state, POLICY, timezone="Asia/Tokyo", now=after)
    assert change is not None and change.to_status == "overdue"
    state = ms.apply(state, change, after)
    assert ms.decide_deadline(state, POLICY, timezone="Asia/Tokyo", now=after) is None


def test_an_at_risk_milestone_becomes_overdue_when_its_deadline_passes() -> None:
    state = ms.MilestoneState(status=Status.AT_RISK)
    late = datetime(2028, 1, 1, tzinfo=UTC)
    change = ms.decide_deadline(state, POLICY, timezone="Asia/Tokyo", now=late)
    assert change is not None and (change.from_status, change.to_status) == ("at_risk", "overdue")


def test_confirmed_milestone_never_becomes_overdue() -> None:
    state = ms.MilestoneState(status=Status.CONFIRMED)
    late = datetime(2028, 1, 1, tzinfo=UTC)
    assert ms.decide_deadline(state, POLICY, timezone="Asia/Tokyo", now=late) is None


def test_declared_status_is_skipped_when_already_there() -> None:
    state = ms.MilestoneState(status=Status.CONFIRMED)
    assert ms.decide_declared(state, POLICY, status=Status.CONFIRMED, reason="r",
                              source="https://x") is None
    change = ms.decide_declared(ms.MilestoneState(), POLICY, status=Status.CONFIRMED,
                                reason="baseline from configuration", source="https://x",
                                effective=date(2026, 6, 30))
    assert change is not None and change.effective_at == datetime(2026, 6, 30, tzinfo=UTC)
    assert ms.apply(ms.MilestoneState(), change, NOW).since == change.effective_at


def test_a_declared_day_begins_at_midnight_in_the_configured_timezone() -> None:
    for timezone, midnight in (("Asia/Tokyo", datetime(2026, 6, 29, 15, tzinfo=UTC)),
                               ("UTC", datetime(2026, 6, 30, tzinfo=UTC)),
                               ("America/Santiago", datetime(2026, 6, 30, 4, tzinfo=UTC))):
        change = ms.decide_declared(ms.MilestoneState(), POLICY, status=Status.CONFIRMED,
                                    reason="baseline", source="https://x",
                                    effective=date(2026, 6, 30), timezone=timezone)
        assert change is not None and change.effective_at == midnight, timezone
        assert ms.apply(ms.MilestoneState(), change, NOW).since == midnight


def test_a_corrected_source_supersedes_the_declared_one_and_leaves_the_status() -> None:
    change = ms.decide_declared(ms.MilestoneState(), POLICY, status=Status.CONFIRMED,
                                reason="baseline", source="https://guess", effective=date(2026, 6, 30))
    assert change is not None
    state = ms.apply(ms.MilestoneState(), change, NOW)
    assert state.source == "https://guess"
    corrected = ms.decide_source(state, POLICY, status=Status.CONFIRMED, source="https://real",
                                 reason="r")
    assert corrected is not None and corrected.previous_source == "https://guess"
    after = ms.apply(state, corrected, NOW + timedelta(days=1))
    assert after == replace(state, source="https://real")  # status and since unchanged
    projection = Milestones()
    row = projection.apply(None, _At(change, 1, NOW))
    row = projection.apply(row, _At(corrected, 2, NOW + timedelta(days=1)))
    assert {k: row[k] for k in after.to_json()} == after.to_json()
    assert row["changes"] == 1
    assert ms.decide_source(after, POLICY, status=Status.CONFIRMED, source="https://real",
                            reason="r") is None  # the same source again: nothing to record


@pytest.mark.parametrize(("state", "status"), [
    (ms.MilestoneState(status=Status.CONFIRMED), Status.CONFIRMED),  # the evidence confirmed it
    (ms.MilestoneState(status=Status.AT_RISK, source="https://a"), Status.CONFIRMED),
])
def test_only_a_declared_status_has_its_source_corrected(
        state: ms.MilestoneState, status: Status) -> None:
    assert ms.decide_source(state, POLICY, status=status, source="https://b", reason="r") is None


def test_a_correction_for_a_status_the_milestone_left_changes_nothing() -> None:
    stale = ms.decide_source(ms.MilestoneState(status=Status.REPORTED, source="https://a"),
                             POLICY, status=Status.REPORTED, source="https://b", reason="r")
    assert stale is not None
    moved_on = ms.MilestoneState(status=Status.CONFIRMED, source="https://c")
    assert ms.apply(moved_on, stale, NOW) == moved_on
    row = Milestones().apply(moved_on.to_json(), _At(stale, 9, NOW))
    assert row["source"] == "https://c"


def test_future_published_date_counts_as_now() -> None:
    future = NOW + timedelta(days=400)
    state, _ = step(ms.MilestoneState(), item="a", published_at=future)
    assert state.evidence[0].at == NOW


def test_state_round_trips_through_json() -> None:
    state, _ = step(ms.MilestoneState(), item="a")
    assert ms.MilestoneState.from_json(state.to_json()) == state
    assert ms.MilestoneState.from_json(None) == ms.MilestoneState()


steps = st.lists(
    st.tuples(st.sampled_from(["progress", "setback"]),
              st.sampled_from(["nhk.or.jp", "itmedia.co.jp", "nedo.go.jp", None, "x.com"]),
              st.integers(min_value=0, max_value=60)),
    max_size=25)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_a_state_never_leaves_confirmed(seq: list[tuple[str, str | None, int]]) -> None:
    state = ms.MilestoneState()
    for i, (kind, publisher, day) in enumerate(seq):
        now = NOW + timedelta(days=day)
        was_confirmed = state.status is Status.CONFIRMED
        state, events = step(state, item=f"i{i}", kind=kind, publisher=publisher, now=now)
        change = ms.decide_deadline(state, POLICY, timezone="Asia/Tokyo", now=now)
        if change is not None:
            state = ms.apply(state, change, now)
        if was_confirmed:
            assert state.status is Status.CONFIRMED
            assert changes(events) == [] and change is None


@settings(max_examples=100, deadline=None)
@given(steps)
def test_fold_of_recorded_events_equals_the_state_decisions_built(
        seq: list[tuple[str, str | None, int]]) -> None:
    state, log = ms.MilestoneState(), []
    for i, (kind, publisher, day) in enumerate(seq):
        now = NOW + timedelta(days=day)
        state, events = step(state, item=f"i{i}", kind=kind, publisher=publisher, now=now)
        log.extend((e, now) for e in events)
    rebuilt = ms.MilestoneState()
    for event, at in log:
        rebuilt = ms.apply(rebuilt, event, at)
    assert rebuilt == state


@pytest.mark.parametrize("status", list(Status))
def test_every_status_survives_the_json_state(status: Status) -> None:
    state = replace(ms.MilestoneState(), status=status, since=NOW)
    assert ms.MilestoneState.from_json(state.to_json()).status is status


class _At:
    """A recorded event as the projection sees it."""

    def __init__(self, event: object, position: int, recorded_at: datetime) -> None:
        self.event, self.position, self.recorded_at = event, position, recorded_at


@settings(max_examples=100, deadline=None)
@given(steps, st.integers(min_value=0, max_value=2))
def test_the_projection_row_is_the_json_of_the_state_fold(
    seq: list[tuple[str, str | None, int]], declared: int
) -> None:
    projection, row, state = Milestones(), None, ms.MilestoneState()
    log: list[tuple[object, datetime]] = []
    for i, (kind, publisher, day) in enumerate(seq):
        now = NOW + timedelta(days=day)
        state, events = step(state, item=f"i{i}", kind=kind, publisher=publisher, now=now)
        log.extend((e, now) for e in events)
    for n in range(declared):  # a baseline or note with an effective date
        change = ms.decide_declared(
            state,
            POLICY,
            status=[Status.AT_RISK, Status.PENDING][n],
            reason="r",
            source="s",
            effective=date(2026, 6, 1 + n),
        )
        if change is not None:
            state = ms.apply(state, change, NOW)
            log.append((change, NOW))
    for position, (event, at) in enumerate(log, 1):
        row = projection.apply(row, _At(event, position, at))
    expected = state.to_json()
    if log:
        assert row is not None
        assert {k: row[k] for k in expected} == expected
        assert row["changes"] == len(changes([e for e, _ in log]))
        assert row["position"] == len(log)


def test_a_milestone_keeps_its_latest_evidence_only() -> None:
    state = ms.MilestoneState()
    for i in range(ms.MAX_EVIDENCE + 30):
        state, _ = step(state, item=f"i{i}", publisher="nhk.or.jp")
    assert len(state.evidence) == ms.MAX_EVIDENCE
    assert (
        state.evidence[0].item_id == "i30"
        and state.evidence[-1].item_id == f"i{ms.MAX_EVIDENCE + 29}"
    )
