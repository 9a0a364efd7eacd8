"""The change-rate estimator against known Poisson rates, its shrinkage, and the staleness weight."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from worker.sync.freshness import (
    Observation,
    catalog_change_rate,
    estimate_change_rate,
    mle_change_rate,
    naive_change_rate,
    regular_change_rate,
    staleness_weight,
)

HOUR = 3600.0


def polls(
    rng: random.Random, rate: float, count: int, mean_interval_s: float = HOUR
) -> list[Observation]:
    """``count`` polls at irregular intervals (0.5 to 1.5 × the mean) of a Poisson process."""
    history = []
    for _ in range(count):
        interval = rng.uniform(0.5, 1.5) * mean_interval_s
        # Memoryless: whether a change fell inside the interval is one exponential draw.
        history.append(Observation(interval, rng.expovariate(rate) < interval))
    return history


@pytest.mark.parametrize("changes_per_poll", [0.25, 1.0, 2.0])
def test_estimate_from_fifty_polls_is_within_ten_percent_of_the_true_rate(
    changes_per_poll: float,
) -> None:
    # One product's 50 polls estimate its rate with a spread of ±10-25% (wider the more
    # changes each poll hides), so the claim is checked on the median over 200 products with
    # the same rate and a fixed seed: the estimator is not biased beyond 10%.
    rng = random.Random(14)
    rate = changes_per_poll / HOUR
    histories = [polls(rng, rate, 50) for _ in range(200)]
    estimated = statistics.median(mle_change_rate(h) for h in histories) / rate
    naive = statistics.median(naive_change_rate(h) for h in histories) / rate
    print(f"λt={changes_per_poll}: MLE median/true={estimated:.3f}, naive={naive:.3f}")
    assert abs(estimated - 1) < 0.10
    if changes_per_poll >= 1:  # counting changes misses those the polls could not see
        assert naive < 0.7


def test_single_product_at_fifty_polls_with_fixed_seed() -> None:
    rng = random.Random(2026)
    rate = 1 / HOUR
    estimated = mle_change_rate(polls(rng, rate, 50)) / rate
    print(f"one product, 50 polls, λt=1: estimate/true={estimated:.3f}")
    assert abs(estimated - 1) < 0.10


def test_no_change_seen_is_rate_zero_and_every_change_seen_is_unbounded() -> None:
    assert mle_change_rate([Observation(HOUR, False)] * 5) == 0
    assert mle_change_rate([Observation(HOUR, True)] * 5) == math.inf
    assert mle_change_rate([]) == 0


def test_regular_estimator_is_finite_when_every_poll_saw_a_change() -> None:
    assert regular_change_rate(10, 0, HOUR) == 0
    assert math.isfinite(regular_change_rate(10, 10, HOUR))
    rng = random.Random(5)
    rate = 1 / HOUR
    outcomes = [rng.expovariate(rate) < HOUR for _ in range(5000)]
    assert regular_change_rate(5000, sum(outcomes), HOUR) == pytest.approx(rate, rel=0.05)
    with pytest.raises(ValueError):
        regular_change_rate(3, 4, HOUR)


def test_regular_polls_agree_with_the_irregular_estimator() -> None:
    history = [Observation(HOUR, i % 3 == 0) for i in range(30)]
    assert mle_change_rate(history) == pytest.approx(regular_change_rate(30, 10, HOUR), rel=0.05)


def test_no_history_gets_the_catalog_rate() -> None:
    assert estimate_change_rate([], 1 / HOUR) == pytest.approx(1 / HOUR)


def test_little_history_stays_near_the_catalog_rate() -> None:
    prior = 1 / HOUR
    all_changed = estimate_change_rate([Observation(HOUR, True)] * 2, prior)
    none_changed = estimate_change_rate([Observation(HOUR, False)] * 2, prior)
    assert math.isfinite(all_changed) and prior < all_changed < 3 * prior
    assert 0 < none_changed < prior


def test_long_history_outweighs_the_catalog_rate() -> None:
    rng = random.Random(7)
    rate, prior = 2 / HOUR, 0.2 / HOUR
    history = polls(rng, rate, 1000)
    own = mle_change_rate(history)
    shrunk = estimate_change_rate(history, prior)
    assert shrunk == pytest.approx(own, rel=0.03)
    assert shrunk == pytest.approx(rate, rel=0.15)


def test_shrinkage_fades_as_history_grows() -> None:
    rng = random.Random(11)
    rate, prior = 3 / HOUR, 0.3 / HOUR
    history = polls(rng, rate, 400)
    errors = [
        abs(math.log(estimate_change_rate(history[:n], prior) / rate)) for n in (0, 5, 50, 400)
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[3] < 0.15


def test_a_catalog_that_never_changed_pulls_toward_zero() -> None:
    history = [Observation(HOUR, i == 0) for i in range(5)]
    assert 0 < estimate_change_rate(history, 0.0) < mle_change_rate(history)
    assert estimate_change_rate([], 0.0) == 0
    with pytest.raises(ValueError):
        estimate_change_rate(history, -1.0)


def test_no_prior_weight_is_the_plain_estimate() -> None:
    history = polls(random.Random(3), 1 / HOUR, 40)
    assert estimate_change_rate(history, 5 / HOUR, prior_observations=0) == pytest.approx(
        mle_change_rate(history)
    )


def test_catalog_rate_pools_every_product() -> None:
    rng = random.Random(9)
    histories = [polls(rng, 1 / HOUR, 20) for _ in range(50)]
    assert catalog_change_rate(histories) == pytest.approx(1 / HOUR, rel=0.10)
    assert catalog_change_rate([]) == 0
    assert math.isfinite(catalog_change_rate([[Observation(HOUR, True)]]))


def test_staleness_weight_defaults_and_costs() -> None:
    assert staleness_weight() == 1.0
    assert staleness_weight(reads_per_day=100) > staleness_weight(reads_per_day=10) > 1
    assert staleness_weight(near_visit_days=14) == 2.0
    assert staleness_weight(near_visit_days=60) == staleness_weight(near_visit_days=14)
    assert staleness_weight(lowest_near_stock=3) == 2.0
    assert staleness_weight(lowest_near_stock=500) == 1.0
    assert staleness_weight(reads_per_day=-5, near_visit_days=-1) == 1.0
