"""Which product's prices to refresh when, for a budget of requests per second (pure, no I/O).

Each product has an estimated Poisson change rate ``λ`` and a weight (``worker.sync.freshness``).
Refreshed every ``I`` seconds, its copy is fresh for an expected share

    F(λ, I) = (1 − e^{−λI}) / (λI)

of the time. ``adaptive_plan`` chooses each product's interval to maximise ``Σ w·F`` subject to
``Σ 1/I = budget`` (Cho & Garcia-Molina, "Effective page refresh policies for Web crawlers",
ACM TODS 28(4), 2003). With ``x = λI`` the Lagrange condition is

    (w / λ) · (1 − (1 + x) e^{−x}) = μ

so for a multiplier ``μ`` each product's ``x`` follows (none when ``w/λ ≤ μ``: it is left at
the ceiling), and ``μ`` is found by bisection so that the visits add up to the budget. Every
interval is clamped to ``[min_interval_s, max_age_s]``: ``PRICE_MAX_AGE`` is a ceiling no
product exceeds, even when the ceiling alone costs more than the budget (``is_over_budget``).
Products that change very fast are visited *less* than a middling one: a copy that is stale
again within seconds is not worth many requests.

``uniform_plan`` gives every product the same interval at the same budget, for comparison;
``next_due`` lists the next visits of a plan.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

# A rate below this (per second, about once in 30 years) is "never changes".
NEGLIGIBLE_RATE = 1e-9
DEFAULT_MIN_INTERVAL_S = 60.0
_BISECTIONS = 200
_BUDGET_TOLERANCE = 1e-4


class RefreshPolicy(StrEnum):
    """``PRICE_REFRESH_POLICY``: spend by rate and weight, or evenly."""

    ADAPTIVE = "adaptive"
    UNIFORM = "uniform"


@dataclass(frozen=True)
class ProductFreshness:
    """What the scheduler knows of one product; times are seconds on the caller's clock."""

    product_id: int
    rate: float
    weight: float = 1.0
    last_refreshed_s: float | None = None


@dataclass(frozen=True)
class RefreshPlan:
    """Each product's refresh interval (seconds) and what the plan spends."""

    intervals: Mapping[int, float]
    budget_per_s: float

    @property
    def visits_per_s(self) -> float:
        """Requests per second the plan spends."""
        return sum(1 / interval for interval in self.intervals.values())

    @property
    def is_over_budget(self) -> bool:
        """Whether the ceiling alone needs more than the budget (the ceiling wins)."""
        return self.visits_per_s > self.budget_per_s * (1 + 1e-3)


@dataclass(frozen=True)
class ScheduledVisit:
    """One planned refresh: when it is due, and why (rate and weight)."""

    product_id: int
    due_s: float
    interval_s: float
    rate: float
    weight: float


def refresh_budget(rate_limit: float, share: float) -> float:
    """Requests per second for background price refreshes: ``share`` of the supplier's limit."""
    return rate_limit * share


def expected_freshness(rate: float, interval_s: float) -> float:
    """The expected share of time a copy refreshed every ``interval_s`` is fresh."""
    x = rate * interval_s
    if x < 1e-12:
        return 1.0
    return -math.expm1(-x) / x


def _inverse_gain(y: float) -> float:
    """The ``x ≥ 0`` with ``1 − (1 + x) e^{−x} = y`` for ``0 < y < 1``.

    Solved as ``x − ln(1 + x) = −ln(1 − y)``: Newton from above the root, where the function is
    convex and increasing, descends to it monotonically.
    """
    target = -math.log1p(-y)
    # A close first guess (the series for small x, the asymptote for large) saves most of the
    # steps; Newton on a convex increasing function lands above the root from anywhere and
    # then descends to it, so any guess converges.
    if target < 1.5:
        x = math.sqrt(2 * target) + 2 * target / 3
    else:
        x = target + math.log1p(target + math.log1p(target))
    for _ in range(100):
        value = x - math.log1p(x) - target
        if x <= 0:
            break
        step = value * (1 + x) / x
        x -= step
        if abs(step) <= 1e-12 * max(x, 1e-12):
            break
    return max(x, 0.0)


def _clamp(interval: float, low: float, high: float) -> float:
    return min(max(interval, low), high)


def _adaptive_intervals(
    products: Sequence[ProductFreshness], mu: float, low: float, high: float
) -> dict[int, float]:
    intervals = {}
    for product in products:
        if product.rate < NEGLIGIBLE_RATE or product.weight <= 0:
            intervals[product.product_id] = high
            continue
        y = mu * product.rate / product.weight
        if y >= 1:
            intervals[product.product_id] = high
            continue
        x = _inverse_gain(y) if y > 0 else 0.0
        intervals[product.product_id] = _clamp(x / product.rate, low, high)
    return intervals


def _spend(intervals: Mapping[int, float]) -> float:
    return sum(1 / interval for interval in intervals.values())


def _solve_multiplier(
    products: Sequence[ProductFreshness],
    budget_per_s: float,
    low: float,
    high: float,
    over: tuple[float, float],
    under: tuple[float, float],
) -> dict[int, float]:
    """The intervals at the multiplier whose spend is the budget: regula falsi (Illinois) on
    ``ln μ`` against ``ln spend``, bracketed by ``over`` (μ, spend ≥ budget) and ``under``.

    Spend is smooth and monotone in ``ln μ`` between the clamps, so this converges in a handful
    of evaluations where bisection takes dozens; a step outside the bracket bisects instead.
    """
    a, fa = math.log(over[0]), math.log(over[1] / budget_per_s)
    b, fb = math.log(under[0]), math.log(under[1] / budget_per_s)
    intervals: dict[int, float] = {}
    side = 0
    for _ in range(_BISECTIONS):
        u = (a * fb - b * fa) / (fb - fa) if fb != fa else (a + b) / 2
        if not a < u < b:
            u = (a + b) / 2
        intervals = _adaptive_intervals(products, math.exp(u), low, high)
        fu = math.log(_spend(intervals) / budget_per_s)
        if abs(fu) <= _BUDGET_TOLERANCE or b - a <= 1e-12:
            break
        if fu > 0:
            a, fa = u, fu
            if side == 1:
                fb /= 2
            side = 1
        else:
            b, fb = u, fu
            if side == -1:
                fa /= 2
            side = -1
    return intervals


def adaptive_plan(
    products: Sequence[ProductFreshness],
    budget_per_s: float,
    max_age_s: float,
    min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
) -> RefreshPlan:
    """Intervals that maximise expected weighted freshness for ``budget_per_s`` requests/s.

    Spends the budget (within 0.01%) unless the clamps forbid it: all at the ceiling already
    cost more (``is_over_budget``), all at ``min_interval_s`` cost less, or nothing changes
    (every product at the ceiling).
    """
    low, high = _bounds(budget_per_s, max_age_s, min_interval_s)
    if not products:
        return RefreshPlan({}, budget_per_s)
    at_ceiling = _adaptive_intervals(products, math.inf, low, high)
    if _spend(at_ceiling) >= budget_per_s:
        return RefreshPlan(at_ceiling, budget_per_s)
    at_floor = _adaptive_intervals(products, 0.0, low, high)
    if _spend(at_floor) <= budget_per_s:
        return RefreshPlan(at_floor, budget_per_s)
    worth = [p.weight / p.rate for p in products if p.rate >= NEGLIGIBLE_RATE and p.weight > 0]
    if not worth:  # nothing changes: a refresh gains nothing beyond the ceiling
        return RefreshPlan(at_ceiling, budget_per_s)
    # Spend falls as μ grows; every μ ≥ max(w/λ) leaves all at the ceiling.
    hi = max(worth)
    lo = hi
    spend_lo = _spend(at_ceiling)
    while spend_lo < budget_per_s:
        lo /= 16
        spend_lo = _spend(_adaptive_intervals(products, lo, low, high))
    intervals = _solve_multiplier(
        products, budget_per_s, low, high, (lo, spend_lo), (hi, _spend(at_ceiling))
    )
    return RefreshPlan(intervals, budget_per_s)


def uniform_plan(
    products: Sequence[ProductFreshness],
    budget_per_s: float,
    max_age_s: float,
    min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
) -> RefreshPlan:
    """The same interval for every product: the budget spread evenly, within the clamps."""
    low, high = _bounds(budget_per_s, max_age_s, min_interval_s)
    if not products:
        return RefreshPlan({}, budget_per_s)
    interval = _clamp(len(products) / budget_per_s, low, high)
    return RefreshPlan({p.product_id: interval for p in products}, budget_per_s)


def plan_refresh(
    policy: RefreshPolicy,
    products: Sequence[ProductFreshness],
    budget_per_s: float,
    max_age_s: float,
    min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
) -> RefreshPlan:
    """The plan of ``policy``."""
    planner = adaptive_plan if policy is RefreshPolicy.ADAPTIVE else uniform_plan
    return planner(products, budget_per_s, max_age_s, min_interval_s)


def _bounds(budget_per_s: float, max_age_s: float, min_interval_s: float) -> tuple[float, float]:
    if budget_per_s <= 0:
        raise ValueError("budget_per_s must be positive")
    if not 0 < min_interval_s <= max_age_s:
        raise ValueError("needs 0 < min_interval_s <= max_age_s")
    return min_interval_s, max_age_s


def next_due(
    products: Sequence[ProductFreshness], plan: RefreshPlan, now_s: float, count: int
) -> list[ScheduledVisit]:
    """The next ``count`` visits of ``plan``, soonest (most overdue) first; never refreshed is due
    ``now_s``.

    A product the plan does not know gets the longest interval in the plan.
    """
    fallback = max(plan.intervals.values(), default=math.inf)
    visits = []
    for product in products:
        interval = plan.intervals.get(product.product_id, fallback)
        last = product.last_refreshed_s
        due = now_s if last is None else last + interval
        visits.append(
            ScheduledVisit(product.product_id, due, interval, product.rate, product.weight)
        )
    return heapq.nsmallest(count, visits, key=lambda visit: (visit.due_s, visit.product_id))
