"""How often a product's prices change, and what a stale copy of them costs (pure, no I/O).

Prices are modelled as changing by a Poisson process of unknown rate ``λ`` per product. A refresh
only tells whether the calendar changed since the previous one, not how many times: a poll that
sees a change may hide several, so changes counted over time (``X / T``) underestimate ``λ``,
most for the products that change most. ``mle_change_rate`` is the maximum-likelihood estimate
from (interval, changed) pairs at irregular intervals (Cho & Garcia-Molina, "Estimating
frequency of change", ACM TOIT 3(3), 2003): the root of

    Σ_changed t_i / (e^{λ t_i} − 1) = Σ_unchanged t_i

``regular_change_rate`` is their bias-reduced estimator for a fixed interval.

``estimate_change_rate`` shrinks a product's estimate toward the catalog-wide rate
(``catalog_change_rate``) by adding pseudo-observations of that rate (an empirical-Bayes prior
worth ``PRIOR_OBSERVATIONS`` polls): a product with no history gets the catalog rate, one with
a long history its own, and a product whose few polls all saw a change still gets a finite rate.

``staleness_weight`` says what staleness costs for one product (reads, near visit dates, low
stock), with documented defaults; the scheduler (``worker.sync.refresh_plan``) spends the
request budget by rate and weight.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# How many polls' worth of belief the catalog-wide rate carries for each product.
PRIOR_OBSERVATIONS = 5.0
# Beyond this λt, e^{λt} overflows usefully nowhere: the term is 0.
_MAX_EXPONENT = 700.0
_MAX_ITERATIONS = 200
_RELATIVE_TOLERANCE = 1e-10


@dataclass(frozen=True)
class Observation:
    """One refresh: seconds since the previous one, and whether the calendar changed."""

    interval_s: float
    changed: bool


@dataclass(frozen=True)
class _Term:
    """An observation with fractional weights (pseudo-observations of the prior use both)."""

    interval_s: float
    changed: float
    unchanged: float


def _terms(observations: Iterable[Observation]) -> list[_Term]:
    """One term per distinct interval (polls on a fixed tick repeat a few): the likelihood is
    a sum over polls, so polls of equal length add their weights exactly."""
    changed: dict[float, float] = {}
    unchanged: dict[float, float] = {}
    for obs in observations:
        interval = obs.interval_s
        if interval <= 0:
            continue
        if obs.changed:
            changed[interval] = changed.get(interval, 0.0) + 1.0
        else:
            unchanged[interval] = unchanged.get(interval, 0.0) + 1.0
    return [
        _Term(interval, changed.get(interval, 0.0), unchanged.get(interval, 0.0))
        for interval in {**changed, **unchanged}
    ]


def _solve(terms: Sequence[_Term]) -> float:
    """The root of the weighted likelihood equation; 0 without a change, ``inf`` without a miss.

    The left side minus the right is convex and decreasing in λ and is not negative at the
    naive rate (changes / time), so Newton's method started there climbs to the root without
    overshooting it.
    """
    changed = sum(term.changed for term in terms)
    exposure = sum(term.unchanged * term.interval_s for term in terms)
    if changed <= 0:
        return 0.0
    if exposure <= 0:
        return math.inf
    rate = changed / sum((term.changed + term.unchanged) * term.interval_s for term in terms)
    for _ in range(_MAX_ITERATIONS):
        value, slope = -exposure, 0.0
        for term in terms:
            if term.changed <= 0:
                continue
            x = rate * term.interval_s
            if x > _MAX_EXPONENT:
                continue
            below = math.expm1(x)
            value += term.changed * term.interval_s / below
            slope -= term.changed * term.interval_s**2 / (below * -math.expm1(-x))
        if slope == 0:
            return rate
        step = -value / slope
        rate += step
        if abs(step) <= _RELATIVE_TOLERANCE * rate:
            break
    return rate


def mle_change_rate(observations: Iterable[Observation]) -> float:
    """The maximum-likelihood change rate (per second) from irregular polls.

    0 when no poll saw a change; ``inf`` when every poll did (the data cannot bound it: shrink
    with ``estimate_change_rate``).
    """
    return _solve(_terms(observations))


def naive_change_rate(observations: Iterable[Observation]) -> float:
    """Changes seen per second polled: biased low, since a poll counts at most one change."""
    seen = list(observations)
    total = sum(obs.interval_s for obs in seen)
    return sum(obs.changed for obs in seen) / total if total > 0 else 0.0


def regular_change_rate(polls: int, changes: int, interval_s: float) -> float:
    """Cho & Garcia-Molina's bias-reduced estimator for ``polls`` polls ``interval_s`` apart."""
    if polls <= 0 or interval_s <= 0:
        raise ValueError("needs at least one poll and a positive interval")
    if not 0 <= changes <= polls:
        raise ValueError("changes must be between 0 and the number of polls")
    return -math.log((polls - changes + 0.5) / (polls + 0.5)) / interval_s


def catalog_change_rate(histories: Iterable[Iterable[Observation]]) -> float:
    """The catalog-wide rate: the estimate from every product's polls pooled (the prior's mean)."""
    pooled = [obs for history in histories for obs in history]
    rate = mle_change_rate(pooled)
    if math.isfinite(rate):
        return rate
    # Every poll saw a change: the regular-interval estimator stays finite.
    return regular_change_rate(
        len(pooled), len(pooled), sum(obs.interval_s for obs in pooled) / len(pooled)
    )


def estimate_change_rate(
    observations: Sequence[Observation],
    prior_rate: float,
    *,
    prior_observations: float = PRIOR_OBSERVATIONS,
    prior_interval_s: float | None = None,
) -> float:
    """One product's change rate, shrunk toward ``prior_rate`` (the catalog's).

    The prior is ``prior_observations`` polls ``prior_interval_s`` apart (default: the mean of
    this product's intervals, or 1 / ``prior_rate`` without any) whose share of changes is what
    ``prior_rate`` predicts, 1 − e^{−λ₀t}; alone they estimate exactly ``prior_rate``, and each
    real poll weighs as much as one of them.
    """
    if prior_rate < 0 or not math.isfinite(prior_rate):
        raise ValueError("prior_rate must be finite and not negative")
    terms = _terms(observations)
    if prior_interval_s is None and terms:
        polls = sum(term.changed + term.unchanged for term in terms)
        prior_interval_s = sum(t.interval_s * (t.changed + t.unchanged) for t in terms) / polls
    if prior_observations > 0 and prior_rate > 0:
        if prior_interval_s is None:
            prior_interval_s = 1 / prior_rate
        p_change = -math.expm1(-prior_rate * prior_interval_s)
        terms.append(
            _Term(
                prior_interval_s,
                prior_observations * p_change,
                prior_observations * (1 - p_change),
            )
        )
    elif prior_observations > 0:
        # A prior of "never changes": pseudo-polls that saw nothing.
        # Without history the estimate is 0 whatever the pseudo-polls' length.
        terms.append(_Term(prior_interval_s or 1.0, 0.0, prior_observations))
    return _solve(terms)


# What staleness costs, relative to a product nobody reads with no visit date soon.
READ_WEIGHT = 100.0  # per ``reads_scale`` reads through the read API per day
NEAR_VISIT_WEIGHT = 1.0  # at all of the next NEAR_VISIT_DAYS sellable
NEAR_VISIT_DAYS = 14
LOW_STOCK = 10  # remaining stock at or under this on a near date is "low"
LOW_STOCK_FACTOR = 2.0  # a wrong "available" is an order refused


def staleness_weight(
    *,
    reads_per_day: float = 0.0,
    near_visit_days: int = 0,
    lowest_near_stock: int | None = None,
    reads_scale: float = 1.0,
    read_weight: float = READ_WEIGHT,
    near_visit_weight: float = NEAR_VISIT_WEIGHT,
    low_stock: int = LOW_STOCK,
    low_stock_factor: float = LOW_STOCK_FACTOR,
) -> float:
    """What a stale copy of one product costs, ≥ 1.

    ``(1 + read_weight·reads_per_day / reads_scale + near_visit_weight·near_visit_days / 14)``,
    times ``low_stock_factor`` when the lowest remaining stock over the near dates
    (``None``: unlimited) is at or under ``low_stock``.

    Linear in reads: every read of a stale copy is a price shown wrong, so a product read ten
    times as often costs ten times as much when stale. The scheduler passes the catalog's mean
    reads per day as ``reads_scale``, so an average product's reads weigh as much as the base
    cost (what a stale copy costs consumers of the change feed) whatever the traffic's volume.
    """
    reads = max(reads_per_day, 0.0) / reads_scale if reads_scale > 0 else 0.0
    near = min(max(near_visit_days, 0), NEAR_VISIT_DAYS) / NEAR_VISIT_DAYS
    weight = 1.0 + read_weight * reads + near_visit_weight * near
    if lowest_near_stock is not None and lowest_near_stock <= low_stock:
        weight *= low_stock_factor
    return weight
