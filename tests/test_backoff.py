"""Backoff between polls of a failing feed: exponential, jittered, capped, never given up."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from monitor.pollrecord import BACKOFF_BASE, backoff

CEILING = timedelta(hours=6)


@given(st.integers(min_value=0, max_value=10**9), st.floats(min_value=0.0, max_value=1.0))
def test_backoff_stays_within_the_ceiling_and_above_zero(failures: int, rand: float) -> None:
    delay = backoff(failures, ceiling=CEILING, rand=rand)
    assert timedelta(0) < delay <= CEILING


@given(
    st.integers(min_value=0, max_value=40),
    st.floats(min_value=0.0, max_value=1.0),
    st.integers(min_value=60, max_value=7 * 86400).map(lambda s: timedelta(seconds=s)),
)
def test_no_draw_passes_any_ceiling(failures: int, rand: float, ceiling: timedelta) -> None:
    """Whatever ceiling is configured, not only the 6 h one: a delay within 20 % below it
    (256 min against 5 h) must be spread below it too."""
    assert backoff(failures, ceiling=ceiling, rand=rand) <= ceiling


def test_a_delay_whose_jitter_could_pass_the_ceiling_is_spread_below_it() -> None:
    five_hours = timedelta(hours=5)  # the ninth failure's 256 min +20 % reaches 307 min
    assert backoff(9, ceiling=five_hours, rand=1.0) == five_hours
    assert backoff(9, ceiling=five_hours, rand=0.0) == BACKOFF_BASE * 256 * 0.8


@given(st.integers(min_value=1, max_value=8), st.floats(min_value=0.0, max_value=1.0))
def test_backoff_doubles_with_each_failure_below_the_ceiling(failures: int, rand: float) -> None:
    wide = timedelta(days=365)
    first, second = (backoff(n, ceiling=wide, rand=rand) for n in (failures, failures + 1))
    assert abs(second - first * 2) <= timedelta(microseconds=2)
    plain = BACKOFF_BASE * 2 ** (failures - 1)
    assert plain * 0.8 <= first <= plain * 1.2


def test_jitter_spreads_feeds_at_the_ceiling() -> None:
    """Feeds that failed together do not return together, however long they have failed."""
    for failures in (9, 10, 50):  # 4 h 16 min ±20 % reaches the 6 h ceiling; then beyond it
        delays = [backoff(failures, ceiling=CEILING, rand=r / 100) for r in range(101)]
        assert len(set(delays)) == len(delays), failures  # no two draws land on one instant
        assert min(delays) >= CEILING * 0.8 * (256 / 360 if failures == 9 else 1)
