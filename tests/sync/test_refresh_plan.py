"""The refresh planner's budget arithmetic, its ceiling, and what its visits list says."""

from __future__ import annotations

import random

import pytest

from worker.sync.refresh_plan import (
    ProductFreshness,
    RefreshPolicy,
    adaptive_plan,
    expected_freshness,
    next_due,
    plan_refresh,
    refresh_budget,
    uniform_plan,
)

HOUR = 3600.0
MAX_AGE = 6 * HOUR


def pareto_catalog(
    count: int, seed: int = 14, mean_rate: float = 1 / HOUR
) -> list[ProductFreshness]:
    rng = random.Random(seed)
    alpha = 1.5
    return [
        ProductFreshness(1000 + i, mean_rate * rng.paretovariate(alpha) * (alpha - 1) / alpha)
        for i in range(count)
    ]


def test_budget_is_the_share_of_the_rate_limit() -> None:
    assert refresh_budget(20.0, 0.5) == 10.0


def test_adaptive_plan_spends_the_budget() -> None:
    products = pareto_catalog(1000)
    budget = 1000 / HOUR  # one visit an hour on average
    plan = adaptive_plan(products, budget, MAX_AGE)
    assert plan.visits_per_s == pytest.approx(budget, rel=0.01)
    assert not plan.is_over_budget


def test_no_interval_exceeds_the_ceiling_or_undercuts_the_floor() -> None:
    products = [*pareto_catalog(300), ProductFreshness(999, 0.0), ProductFreshness(998, 1e-12)]
    plan = adaptive_plan(products, 300 / HOUR, MAX_AGE, min_interval_s=120)
    assert max(plan.intervals.values()) <= MAX_AGE
    assert min(plan.intervals.values()) >= 120
    assert plan.intervals[999] == plan.intervals[998] == MAX_AGE


def test_ceiling_wins_over_a_budget_too_small_for_it() -> None:
    products = pareto_catalog(100)
    plan = adaptive_plan(products, 1 / HOUR, MAX_AGE)
    assert set(plan.intervals.values()) == {MAX_AGE}
    assert plan.is_over_budget


def test_a_budget_larger_than_the_floor_allows_visits_everyone_at_the_floor() -> None:
    products = pareto_catalog(10)
    plan = adaptive_plan(products, 100.0, MAX_AGE, min_interval_s=60)
    assert set(plan.intervals.values()) == {60}


def test_hot_products_are_visited_more_often_than_cold_ones() -> None:
    cold, warm, hot = (
        ProductFreshness(1, 0.1 / HOUR),
        ProductFreshness(2, 1 / HOUR),
        ProductFreshness(3, 3 / HOUR),
    )
    plan = adaptive_plan([cold, warm, hot, *pareto_catalog(100, seed=1)], 100 / HOUR, MAX_AGE)
    assert plan.intervals[3] < plan.intervals[2] < plan.intervals[1]


def test_weight_buys_visits_at_the_same_rate() -> None:
    products = [ProductFreshness(1, 1 / HOUR, weight=1), ProductFreshness(2, 1 / HOUR, weight=4)]
    plan = adaptive_plan([*products, *pareto_catalog(50, seed=2)], 50 / HOUR, MAX_AGE)
    assert plan.intervals[2] < plan.intervals[1]


def test_a_copy_stale_within_seconds_is_not_worth_many_visits() -> None:
    # Cho & Garcia-Molina's counter-intuitive optimum: under a tight budget, a product changing
    # every few seconds gets fewer visits than one changing hourly.
    flicker, hourly = ProductFreshness(1, 1 / 5.0), ProductFreshness(2, 1 / HOUR)
    plan = adaptive_plan([flicker, hourly, *pareto_catalog(200, seed=3)], 200 / HOUR, MAX_AGE)
    assert plan.intervals[1] > plan.intervals[2]


def test_no_change_anywhere_leaves_everyone_at_the_ceiling() -> None:
    products = [ProductFreshness(i, 0.0) for i in range(10)]
    plan = adaptive_plan(products, 1.0, MAX_AGE)
    assert set(plan.intervals.values()) == {MAX_AGE}


def test_uniform_plan_spreads_the_budget_evenly() -> None:
    products = pareto_catalog(500)
    budget = 500 / (2 * HOUR)
    plan = uniform_plan(products, budget, MAX_AGE)
    assert all(i == pytest.approx(2 * HOUR) for i in plan.intervals.values())
    assert plan.visits_per_s == pytest.approx(budget, rel=0.01)
    assert plan_refresh(RefreshPolicy.UNIFORM, products, budget, MAX_AGE) == plan


def test_uniform_plan_respects_the_ceiling_too() -> None:
    plan = uniform_plan(pareto_catalog(100), 1 / HOUR, MAX_AGE)
    assert set(plan.intervals.values()) == {MAX_AGE}
    assert plan.is_over_budget


def test_policies_by_name() -> None:
    assert RefreshPolicy("adaptive") is RefreshPolicy.ADAPTIVE
    products = pareto_catalog(50)
    assert plan_refresh(RefreshPolicy.ADAPTIVE, products, 50 / HOUR, MAX_AGE) == adaptive_plan(
        products, 50 / HOUR, MAX_AGE
    )


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        adaptive_plan(pareto_catalog(5), 0.0, MAX_AGE)
    with pytest.raises(ValueError):
        uniform_plan(pareto_catalog(5), 1.0, MAX_AGE, min_interval_s=MAX_AGE + 1)


def test_expected_freshness() -> None:
    assert expected_freshness(0.0, HOUR) == 1.0
    assert expected_freshness(1 / HOUR, HOUR) == pytest.approx(1 - 0.36788, abs=1e-4)
    assert expected_freshness(1 / HOUR, 100 * HOUR) == pytest.approx(0.01, rel=1e-3)


def test_next_due_lists_never_refreshed_then_most_overdue_with_rate_and_weight() -> None:
    now = 100 * HOUR
    products = [
        ProductFreshness(1, 1 / HOUR, 2.0, last_refreshed_s=now - HOUR),
        ProductFreshness(2, 1 / HOUR, 1.0, last_refreshed_s=now - 5 * HOUR),
        ProductFreshness(3, 0.1 / HOUR, 1.0, last_refreshed_s=None),
        ProductFreshness(4, 1 / HOUR, 1.0, last_refreshed_s=now),
    ]
    plan = uniform_plan(products, 4 / (2 * HOUR), MAX_AGE)
    visits = next_due(products, plan, now, 3)
    assert [visit.product_id for visit in visits] == [2, 3, 1]
    assert visits[0].due_s == now - 3 * HOUR
    assert visits[1].due_s == now
    assert (visits[2].rate, visits[2].weight, visits[2].interval_s) == (1 / HOUR, 2.0, 2 * HOUR)
    assert len(next_due(products, plan, now, 10)) == 4
