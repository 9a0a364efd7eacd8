"""The scheduler's budget arithmetic and its tick: what a tick may spend, which visits go."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from worker.sync.freshness import Observation
from worker.sync.refresh_plan import (
    ProductFreshness,
    RefreshPlan,
    RefreshPolicy,
    adaptive_plan,
    refresh_budget,
)
from worker.sync.refresh_schedule import (
    DEFAULT_CATALOG_RATE,
    ProductSignals,
    estimate,
    expected_stale_age,
    pick_due,
    summarize_staleness,
)
from worker.sync.refresh_tick import RefreshBudget


def test_the_budget_is_the_share_of_the_rate_limit() -> None:
    assert refresh_budget(20.0, 0.5) == 10.0
    # 10,000 products at 10 requests/s: each every 1000 s if spread evenly.
    plan = adaptive_plan([ProductFreshness(i, 1 / 21_600) for i in range(10_000)], 10.0, 21_600)
    assert plan.visits_per_s == pytest.approx(10.0, rel=1e-3)
    assert not plan.is_over_budget


def test_the_ceiling_is_two_ticks_short_of_the_max_age() -> None:
    budget = RefreshBudget(RefreshPolicy.ADAPTIVE, 10.0, timedelta(hours=6), 60.0)
    assert budget.ceiling_s == 21_600 - 120
    tiny = RefreshBudget(RefreshPolicy.ADAPTIVE, 1.0, timedelta(seconds=1), 60.0)
    assert tiny.ceiling_s == 1.0


def _plan(intervals: dict[int, float]) -> RefreshPlan:
    return RefreshPlan(intervals, 1.0)


def test_pick_due_takes_the_ceiling_first_then_the_most_overdue_within_tokens() -> None:
    products = [
        ProductFreshness(1, 0.0, 1.0, None),  # never refreshed: forced
        ProductFreshness(2, 0.0, 1.0, 0.0),  # 1000 s old at a 900 s ceiling: forced
        ProductFreshness(3, 0.0, 1.0, 500.0),  # due at 600
        ProductFreshness(4, 0.0, 1.0, 700.0),  # due at 800
        ProductFreshness(5, 0.0, 1.0, 950.0),  # due at 1050: not yet
        ProductFreshness(6, 0.0, 1.0, 850.0),  # due at 950
    ]
    plan = _plan({1: 100.0, 2: 100.0, 3: 100.0, 4: 100.0, 5: 100.0, 6: 100.0})
    picked = pick_due(products, plan, 1000.0, tokens=3, max_age_s=900.0)
    assert [v.product_id for v in picked.forced] == [2, 1]  # the most overdue first
    assert [v.product_id for v in picked.planned] == [3]  # 3 tokens, 2 forced: 1 left
    wider = pick_due(products, plan, 1000.0, tokens=10, max_age_s=900.0)
    assert [v.product_id for v in wider.planned] == [3, 4, 6]
    # Forced visits go even with no tokens: the ceiling beats the budget.
    none = pick_due(products, plan, 1000.0, tokens=0, max_age_s=900.0)
    assert {v.product_id for v in none.forced} == {1, 2} and none.planned == []


def test_half_a_tick_ahead_lands_a_visit_on_the_nearest_tick() -> None:
    products = [ProductFreshness(1, 0.0, 1.0, 0.0)]
    plan = _plan({1: 90.0})
    assert pick_due(products, plan, 60.0, 5, 1e9).planned == []
    assert [v.product_id for v in pick_due(products, plan, 60.0, 5, 1e9, 30.0).planned] == [1]


def test_estimate_uses_history_reads_and_near_dates() -> None:
    hot = [Observation(600.0, True)] * 40 + [Observation(600.0, False)] * 10
    cold = [Observation(600.0, False)] * 50
    products = estimate(
        [
            ProductSignals(1, hot, reads_per_day=0.0),
            ProductSignals(2, cold, reads_per_day=0.0),
            ProductSignals(3, (), reads_per_day=100.0, near_visit_days=14),
        ]
    )
    rates = {p.product_id: p.rate for p in products}
    weights = {p.product_id: p.weight for p in products}
    assert rates[1] > rates[3] > rates[2]  # no history: the catalog's rate
    assert weights[3] > weights[1] == weights[2] == 1.0
    assert estimate([ProductSignals(1)])[0].rate == DEFAULT_CATALOG_RATE


def test_staleness_summary_from_rates_and_ages() -> None:
    assert expected_stale_age(0.0, 100.0) == 0.0
    assert expected_stale_age(1.0, 100.0) == pytest.approx(99.0)  # stale after ~1 s
    summary = summarize_staleness(
        [ProductFreshness(1, 1.0, 1.0, 0.0), ProductFreshness(2, 0.0, 1.0, 0.0)], 100.0
    )
    assert summary.mean_s == pytest.approx(49.5)
    assert summary.p99_s == pytest.approx(99.0)
    assert summary.stale_share == pytest.approx(0.5)


def test_a_reset_for_a_product_the_catalog_has_not_stored_is_a_no_op(
    session_factory: sessionmaker[Session],
) -> None:
    # A price notice can arrive before the pass stored its product: the reset must not fail
    # the notice (a foreign-key error kept it retrying behind the first pass).
    from sqlalchemy import func, select

    from models.freshness import PriceSchedule
    from worker.sync.refresh_history import reset_clock

    assert reset_clock(session_factory, 987_654) == 987_654
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(PriceSchedule)) == 0
