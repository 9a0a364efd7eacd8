"""The relay's planner, without a database: which due rows are parked, which re-queued, when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callbacks.relay import MAX_DELAY_S, DueRow, plan_relay, retry_delay_s

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_rows_out_of_attempts_are_parked_and_never_requeued() -> None:
    result = plan_relay(
        [DueRow(1, 5, NOW), DueRow(2, 7, NOW), DueRow(3, 4, NOW)],
        now=NOW,
        stale_after_s=60,
        max_attempts=5,
    )
    assert result.parked == [1, 2]
    assert result.requeue == [3]


def test_a_row_never_attempted_waits_as_long_again_as_it_has_waited() -> None:
    received = NOW - timedelta(minutes=10)
    result = plan_relay([DueRow(9, 0, received)], now=NOW, stale_after_s=60, max_attempts=5)
    assert result.next_attempts == {9: NOW + timedelta(minutes=10)}


def test_a_fresh_row_never_attempted_waits_at_least_the_stale_delay() -> None:
    result = plan_relay([DueRow(9, 0, NOW)], now=NOW, stale_after_s=60, max_attempts=5)
    assert result.next_attempts == {9: NOW + timedelta(seconds=60)}


def test_an_attempted_row_backs_off_doubling_up_to_the_cap() -> None:
    rows = [DueRow(i, attempts, NOW) for i, attempts in enumerate((1, 2, 3, 12), start=1)]
    result = plan_relay(rows, now=NOW, stale_after_s=60, max_attempts=20)
    waits = [(result.next_attempts[i] - NOW).total_seconds() for i in (1, 2, 3, 4)]
    assert waits == [120.0, 240.0, 480.0, MAX_DELAY_S]
    assert retry_delay_s(3, 60) == 480.0


def test_nothing_due_plans_nothing() -> None:
    result = plan_relay([], now=NOW, stale_after_s=60, max_attempts=5)
    assert (result.requeue, result.parked, result.next_attempts) == ([], [], {})
