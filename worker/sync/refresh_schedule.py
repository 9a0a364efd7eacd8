"""One step of the background price refresh, from what is known of each product to the
products to visit now (pure, no I/O: the worker feeds it from the database, the benchmark from
a simulation, so both run the same code).

``estimate`` turns each product's refresh history and demand signals into a change rate
(``worker.sync.freshness``, shrunk toward the catalog's rate) and a weight; ``make_plan``
spends the budget (``worker.sync.refresh_plan``); ``pick_due`` takes the visits now due, at
most a tick's share of the budget, except that products at ``PRICE_MAX_AGE`` (or never
refreshed, or reset by a notice) always go: the ceiling beats the budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from worker.sync.freshness import (
    Observation,
    catalog_change_rate,
    estimate_change_rate,
    staleness_weight,
)
from worker.sync.refresh_plan import (
    DEFAULT_MIN_INTERVAL_S,
    ProductFreshness,
    RefreshPlan,
    RefreshPolicy,
    ScheduledVisit,
    next_due,
    plan_refresh,
)

# Recompute the plan this often: rates and reads move over hours, not ticks.
REPLAN_EVERY_S = 300.0
# Before any product has history: one change a day, a guess the first polls soon replace.
DEFAULT_CATALOG_RATE = 1 / 86_400


@dataclass(frozen=True)
class ProductSignals:
    """What the scheduler is told about one product; times in seconds on the caller's clock.

    ``last_refreshed_s`` is None for a product never refreshed or reset since (due now).
    """

    product_id: int
    history: Sequence[Observation] = field(default_factory=tuple)
    reads_per_day: float = 0.0
    near_visit_days: int = 0
    lowest_near_stock: int | None = None
    last_refreshed_s: float | None = None


def estimate(signals: Sequence[ProductSignals]) -> list[ProductFreshness]:
    """Each product's estimated change rate and weight."""
    histories = [s.history for s in signals if s.history]
    prior = catalog_change_rate(histories) if histories else DEFAULT_CATALOG_RATE
    if not math.isfinite(prior) or prior <= 0:
        prior = DEFAULT_CATALOG_RATE
    reads = [max(s.reads_per_day, 0.0) for s in signals]
    mean_reads = sum(reads) / len(reads) if reads else 0.0
    return [
        ProductFreshness(
            s.product_id,
            estimate_change_rate(s.history, prior),
            staleness_weight(
                reads_per_day=s.reads_per_day,
                near_visit_days=s.near_visit_days,
                lowest_near_stock=s.lowest_near_stock,
                reads_scale=mean_reads if mean_reads > 0 else 1.0,
            ),
            s.last_refreshed_s,
        )
        for s in signals
    ]


def make_plan(
    policy: RefreshPolicy,
    products: Sequence[ProductFreshness],
    budget_per_s: float,
    max_age_s: float,
    min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
) -> RefreshPlan:
    """The intervals of ``policy`` for ``budget_per_s`` requests per second."""
    return plan_refresh(policy, products, budget_per_s, max_age_s, min(min_interval_s, max_age_s))


@dataclass(frozen=True)
class DueVisits:
    """A tick's visits: ``forced`` are at the ceiling (or never refreshed, or reset) and go
    whatever the budget; ``planned`` are the plan's, within the tick's tokens."""

    forced: list[ScheduledVisit]
    planned: list[ScheduledVisit]

    @property
    def product_ids(self) -> list[int]:
        return [v.product_id for v in self.forced + self.planned]


def pick_due(
    products: Sequence[ProductFreshness],
    plan: RefreshPlan,
    now_s: float,
    tokens: int,
    max_age_s: float,
    horizon_s: float = 0.0,
) -> DueVisits:
    """The visits to make now: every due product at the ceiling (or never refreshed), then the
    most overdue of the rest, within ``tokens`` (forced visits count against them too).

    Due means due by ``now_s + horizon_s``: with half a tick, a visit lands on the tick nearest
    its due time instead of the next one after it, so intervals are not rounded up to whole
    ticks (which would spend less than the plan, least on the products visited most)."""
    interval_of = plan.intervals.get
    ceiling = now_s - max_age_s
    horizon = now_s + horizon_s
    at_ceiling: list[ProductFreshness] = []
    due: list[ProductFreshness] = []
    unknown: list[ProductFreshness] = []
    for product in products:  # the common case, not due, without building a visit
        last = product.last_refreshed_s
        if last is None or last <= ceiling:
            at_ceiling.append(product)
            continue
        interval = interval_of(product.product_id)
        if interval is None:
            unknown.append(product)
        elif last + interval <= horizon:
            due.append(product)
    if unknown:  # as next_due: the plan's longest interval
        fallback = max(plan.intervals.values(), default=math.inf)
        due += [p for p in unknown if (p.last_refreshed_s or 0.0) + fallback <= horizon]
    forced = next_due(at_ceiling, plan, now_s, len(at_ceiling))
    room = max(tokens - len(forced), 0)
    return DueVisits(forced, next_due(due, plan, now_s, room) if room else [])


def expected_stale_age(rate: float, age_s: float) -> float:
    """Expected seconds a copy refreshed ``age_s`` ago has been stale: ``E[max(0, age − T)]``
    for the first change ``T`` after the refresh, exponential with ``rate``."""
    if age_s <= 0 or rate <= 0:
        return 0.0
    return max(age_s - _fresh_time(rate, age_s), 0.0)


def _fresh_time(rate: float, age_s: float) -> float:
    """Expected fresh seconds within ``age_s``: ``(1 − e^{−λa}) / λ``."""
    return -math.expm1(-rate * age_s) / rate


@dataclass(frozen=True)
class StalenessSummary:
    """Estimated staleness over the catalog now, from rates and refresh ages."""

    mean_s: float
    p99_s: float
    stale_share: float  # expected share of products whose copy is stale


def summarize_staleness(products: Sequence[ProductFreshness], now_s: float) -> StalenessSummary:
    """The estimated mean and 99th-percentile stale age, and the expected stale share."""
    ages = []
    stale = 0.0
    for product in products:
        age = now_s - product.last_refreshed_s if product.last_refreshed_s is not None else 0.0
        ages.append(expected_stale_age(product.rate, age))
        stale += -math.expm1(-product.rate * max(age, 0.0))
    if not ages:
        return StalenessSummary(0.0, 0.0, 0.0)
    ages.sort()
    p99 = ages[min(len(ages) - 1, math.ceil(0.99 * len(ages)) - 1)]
    return StalenessSummary(sum(ages) / len(ages), p99, stale / len(ages))
