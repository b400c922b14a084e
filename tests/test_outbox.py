"""The outbox's pure parts: alert ids, the retry schedule, the fold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor import outbox
from monitor.events import (
    AlertAbandoned,
    AlertAttemptFailed,
    AlertDelivered,
    AlertQueued,
    AlertRequeued,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)
SCHEDULE = tuple(timedelta(seconds=s) for s in (5, 300, 1800, 7200, 18000, 36000, 36000))


def test_alert_id_is_stable_per_transition_and_channel() -> None:
    # Pinned: receivers deduplicate on it, so an upgrade must not change an alert's id.
    assert outbox.alert_id("e1", "team") == "alt_a0148f39498e90681f10680482f6c9af"
    assert outbox.alert_id("e1", "team") != outbox.alert_id("e1", "hook")
    assert outbox.alert_id("e1", "team") != outbox.alert_id("e2", "team")
    # the two ids are kept apart, not run together: ("e1", "2team") is not ("e12", "team")
    assert outbox.alert_id("e1", "2team") != outbox.alert_id("e12", "team")


@pytest.mark.parametrize("attempts,base", list(enumerate(SCHEDULE, start=1)))
def test_schedule_without_jitter_at_the_midpoint(attempts: int, base: timedelta) -> None:
    assert outbox.next_attempt_at(SCHEDULE, attempts, now=NOW, rand=0.5) == NOW + base


def test_schedule_is_spent_after_its_last_delay() -> None:
    assert outbox.next_attempt_at(SCHEDULE, len(SCHEDULE) + 1, now=NOW, rand=0.5) is None


def test_no_retry_is_scheduled_before_a_first_attempt() -> None:
    # attempts_made counts failed attempts: 0 must not wrap round to the schedule's last delay
    assert outbox.next_attempt_at(SCHEDULE, 0, now=NOW, rand=0.5) is None


@given(st.integers(min_value=1, max_value=7), st.floats(min_value=0, max_value=0.999999))
def test_jitter_stays_within_twenty_percent(attempts: int, rand: float) -> None:
    at = outbox.next_attempt_at(SCHEDULE, attempts, now=NOW, rand=rand)
    assert at is not None
    base = SCHEDULE[attempts - 1].total_seconds()
    assert 0.8 * base - 1e-6 <= (at - NOW).total_seconds() <= 1.2 * base + 1e-6


@pytest.mark.parametrize(
    "retry_after,expected",
    [(1, 300), (400, 400), (10_000, 600), (1e20, 600), (float("inf"), 300), (float("nan"), 300)],
)
def test_retry_after_is_honoured_between_one_and_two_times_the_delay(
        retry_after: float, expected: float) -> None:
    at = outbox.next_attempt_at(SCHEDULE, 2, now=NOW, rand=0.5, retry_after=retry_after)
    assert at == NOW + timedelta(seconds=expected)


def test_a_429_never_retries_sooner_than_a_minute() -> None:
    at = outbox.next_attempt_at(SCHEDULE, 1, now=NOW, rand=0.5, retry_after=1,
                                rate_limited=True)
    assert at == NOW + timedelta(seconds=60)


def test_fold_follows_an_alert_through_its_life() -> None:
    q = AlertQueued(alert_id="a", channel_id="team", milestone_id="m", subject="s", payload={})
    row = outbox.fold(None, q, NOW, 7)
    assert row["status"] == "pending" and row["queued_position"] == 7
    failed = AlertAttemptFailed(alert_id="a", channel_id="team", attempt=1, kind="http_5xx",
                                message="500", retry_at=NOW + timedelta(seconds=5),
                                recipients={"x@example.org": "accepted: 250 ok"})
    row = outbox.fold(row, failed, NOW, 8)
    assert row["attempts"] == 1 and outbox.accepted_recipients(row) == {"x@example.org"}
    row = outbox.fold(row, AlertAbandoned(alert_id="a", channel_id="team", attempt=2,
                                          kind="http_4xx", message="400"), NOW, 9)
    assert row["status"] == "abandoned"
    row = outbox.fold(row, AlertRequeued(alert_id="a", channel_id="team", operator="op"),
                      NOW, 10)
    assert row["status"] == "pending" and outbox.attempts_in_schedule(row) == 0
    row = outbox.fold(row, AlertDelivered(alert_id="a", channel_id="team", attempt=3,
                                          response="200 OK"), NOW, 11)
    assert row["status"] == "delivered" and row["attempts"] == 3


def test_recipients_that_accepted_stay_accepted_across_later_attempts() -> None:
    """A retry goes only to the recipients still owed the alert, so its failure names only
    them: the fold keeps what earlier attempts learned of the others."""
    q = AlertQueued(alert_id="a", channel_id="team", milestone_id="m", subject="s", payload={})
    row = outbox.fold(None, q, NOW, 1)
    first = AlertAttemptFailed(alert_id="a", channel_id="team", attempt=1, kind="smtp_4xx",
                               message="busy", retry_at=NOW + timedelta(seconds=5),
                               recipients={"a@example.org": "accepted: 250 ok",
                                           "b@example.org": "deferred: 451 busy"})
    second = AlertAttemptFailed(alert_id="a", channel_id="team", attempt=2, kind="smtp_4xx",
                                message="busy", retry_at=NOW + timedelta(seconds=300),
                                recipients={"b@example.org": "deferred: 451 busy"})
    row = outbox.fold(outbox.fold(row, first, NOW, 2), second, NOW, 3)
    assert outbox.accepted_recipients(row) == {"a@example.org"}
    assert row["recipients"] == {"a@example.org": "accepted: 250 ok",
                                 "b@example.org": "deferred: 451 busy"}
