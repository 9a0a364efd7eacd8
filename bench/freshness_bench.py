"""Adaptive against uniform price refresh, a simulated week on a virtual clock.

    python bench/freshness_bench.py [--quick] [--json PATH] [--mix pareto:1.5,21600]

Each product's prices change as a Poisson process with a hidden rate drawn from the sandbox's
rate model (``supplier_sandbox.repricing``, the same ``--reprice-rates`` specs). The worker's
own scheduler runs on a virtual clock: every ``tick`` it picks the due products
(``worker.sync.refresh_schedule.pick_due``, a tick's share of the budget plus the ceiling);
every ``replan`` it estimates each product's rate from the (interval, changed) history the
refreshes recorded and its weight from reads and near dates (``estimate``), and plans
(``make_plan``: ``adaptive_plan`` or ``uniform_plan``). Both policies get the same budget, so
the same requests.

Demand (what a stale price costs): product popularity is Zipf (exponent ``--zipf``) over a
random order, independent of the change rates; a product sells on every day of the 60-day
window, except a ``--seasonal`` share that sells only from day 14 on; a (product, day) pair
is read in proportion to popularity × (1 on the next 14 days, ``FAR_DAY_DEMAND`` after). The
scheduler sees each product's expected reads per day and its sellable near days, as the
worker does from the read API's counts and the calendar.

A repricing changes every day of the product (as the sandbox's does), so a (product, day) is
stale from the first change after the last refresh until the next refresh. Reported: the
time-averaged share of stale (product, day) pairs weighted by demand (the gain is uniform's
over adaptive's), the mean and 99th-percentile stale age (sampled hourly over products, 0 when
fresh), and the requests each policy spent. Stale time is taken as its expectation given each
refresh's time and the product's true rate (what the refreshes saw still comes from the
simulated changes): the same on average as counting the simulated changes, with far less
noise from the few changes of the few products that carry most of the demand; the counted
gain is reported too.
"""

from __future__ import annotations

import bisect
import json
import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from supplier_sandbox.repricing import RateModel, parse_reprice_rates, poisson_change_times
from worker.sync.freshness import NEAR_VISIT_DAYS, Observation
from worker.sync.refresh_plan import ProductFreshness, RefreshPlan, RefreshPolicy
from worker.sync.refresh_schedule import ProductSignals, estimate, make_plan, pick_due
from worker.sync.refresh_tick import RefreshBudget

DAY_S = 86_400.0
WINDOW_DAYS = 60
FAR_DAY_DEMAND = 0.25
HISTORY = 64  # as models.freshness.HISTORY_PER_PRODUCT
SAMPLE_EVERY_S = 3_600.0


@dataclass(frozen=True)
class Scenario:
    products: int
    days: float
    budget_per_s: float
    max_age_s: float
    tick_s: float
    replan_s: float
    zipf: float
    seasonal: float
    reads_per_day: float
    seed: int


@dataclass
class Product:
    product_id: int
    changes: list[float]
    demand: float  # reads per day of its (product, day) pairs
    near_days: int
    last_s: float
    history: deque[Observation] = field(default_factory=lambda: deque(maxlen=HISTORY))
    rate: float = 0.0  # the hidden true rate
    stale_s: float = 0.0  # stale seconds, counted from the simulated changes
    stale_age_area: float = 0.0  # ∫ stale age dt, counted
    expected_stale_s: float = 0.0  # the same, expected given the refresh times and true rate
    expected_age_area: float = 0.0
    requests: int = 0

    def first_change_after(self, moment: float) -> float:
        index = bisect.bisect_right(self.changes, moment)
        return self.changes[index] if index < len(self.changes) else math.inf


def build_catalog(scenario: Scenario, model: RateModel) -> tuple[list[Product], dict[int, float]]:
    """Products with hidden rates, change times and demand, the same for both policies."""
    rng = random.Random(scenario.seed)
    ids = list(range(1, scenario.products + 1))
    rates = model.rates_for(ids, scenario.seed)
    order = ids[:]
    rng.shuffle(order)
    popularity = {pid: (rank + 1) ** -scenario.zipf for rank, pid in enumerate(order)}
    total = sum(popularity.values())
    end_s = scenario.days * DAY_S
    catalog = []
    for pid in ids:
        seasonal = rng.random() < scenario.seasonal
        near_days = 0 if seasonal else NEAR_VISIT_DAYS
        far_days = WINDOW_DAYS - NEAR_VISIT_DAYS
        day_mass = near_days + FAR_DAY_DEMAND * far_days
        full_mass = NEAR_VISIT_DAYS + FAR_DAY_DEMAND * far_days
        demand = scenario.reads_per_day * popularity[pid] / total * day_mass / full_mass
        change_rng = random.Random(f"{scenario.seed}:changes:{pid}")
        catalog.append(
            Product(
                pid,
                poisson_change_times(rates[pid], 0.0, end_s, change_rng),
                demand,
                near_days,
                # Refreshed once at the start, spread over one uniform interval: no burst.
                -rng.random() * scenario.products / scenario.budget_per_s,
                rate=rates[pid],
            )
        )
    return catalog, rates


@dataclass
class Outcome:
    weighted_stale_share: float  # expected, given the refresh times
    weighted_stale_share_counted: float  # counted from the simulated changes
    stale_share: float
    staleness_mean_s: float
    staleness_p99_s: float
    requests: int
    plan_seconds: float


def _expected(rate: float, span: float) -> tuple[float, float]:
    """Expected stale seconds and ∫ stale age over ``span`` seconds after a refresh, for a
    Poisson rate: ``span − (1 − e^{−λs})/λ`` and ``s²/2 − s/λ + (1 − e^{−λs})/λ²``."""
    if rate <= 0 or span <= 0:
        return 0.0, 0.0
    fresh = -math.expm1(-rate * span) / rate
    return span - fresh, span * span / 2 - span / rate + fresh / rate


def _account(product: Product, start: float, end: float) -> None:
    stale, area = _expected(product.rate, end - max(start, 0.0))
    product.expected_stale_s += stale
    product.expected_age_area += area


def _refresh(product: Product, now: float) -> None:
    _account(product, product.last_s, now)
    first = product.first_change_after(product.last_s)
    changed = first <= now
    if changed:
        product.stale_s += now - first
        product.stale_age_area += (now - first) ** 2 / 2
    if product.last_s >= 0 or product.history:
        product.history.append(Observation(now - product.last_s, changed))
    product.last_s = now
    product.requests += 1


def simulate(scenario: Scenario, model: RateModel, policy: RefreshPolicy) -> Outcome:
    """One simulated run of the worker's scheduler under ``policy``."""
    catalog, _ = build_catalog(scenario, model)
    by_id = {p.product_id: p for p in catalog}
    end_s = scenario.days * DAY_S
    plan: RefreshPlan | None = None
    rates: dict[int, float] = {}
    weights: dict[int, float] = {}
    next_plan = 0.0
    next_sample = SAMPLE_EVERY_S
    samples: list[float] = []
    plan_seconds = 0.0
    # As the worker's tick (``worker.sync.refresh_tick.due_now``): the plan's ceiling two ticks
    # short of PRICE_MAX_AGE, and up to two ticks' share queued per tick.
    ceiling_s = RefreshBudget(
        policy, scenario.budget_per_s, timedelta(seconds=scenario.max_age_s), scenario.tick_s
    ).ceiling_s
    tokens_per_tick = max(1, round(2 * scenario.budget_per_s * scenario.tick_s))
    index = {p.product_id: i for i, p in enumerate(catalog)}
    products: list[ProductFreshness] = []
    now = 0.0
    while now < end_s:
        if now >= next_plan:
            started = time.process_time()
            signals = [
                ProductSignals(
                    p.product_id,
                    tuple(p.history),
                    reads_per_day=p.demand,
                    near_visit_days=p.near_days,
                    last_refreshed_s=p.last_s,
                )
                for p in catalog
            ]
            estimated = estimate(signals)
            plan = make_plan(policy, estimated, scenario.budget_per_s, ceiling_s)
            rates = {e.product_id: e.rate for e in estimated}
            weights = {e.product_id: e.weight for e in estimated}
            products = estimated  # each with its last refresh, replaced as refreshes land
            plan_seconds += time.process_time() - started
            next_plan += scenario.replan_s
        assert plan is not None
        picked = pick_due(products, plan, now, tokens_per_tick, ceiling_s, scenario.tick_s / 2)
        for visit in picked.forced + picked.planned:
            pid = visit.product_id
            _refresh(by_id[pid], now)
            products[index[pid]] = ProductFreshness(pid, rates[pid], weights[pid], now)
        while next_sample <= now:
            for p in catalog:
                first = p.first_change_after(p.last_s)
                samples.append(next_sample - first if first <= next_sample else 0.0)
            next_sample += SAMPLE_EVERY_S
        now += scenario.tick_s
    for p in catalog:  # close the books at the end: stale since the first unseen change
        _account(p, p.last_s, end_s)
        first = p.first_change_after(p.last_s)
        if first <= end_s:
            p.stale_s += end_s - first
            p.stale_age_area += (end_s - first) ** 2 / 2
    demand = sum(p.demand for p in catalog)
    samples.sort()
    return Outcome(
        weighted_stale_share=sum(p.demand * p.expected_stale_s for p in catalog) / (demand * end_s),
        weighted_stale_share_counted=sum(p.demand * p.stale_s for p in catalog) / (demand * end_s),
        stale_share=sum(p.expected_stale_s for p in catalog) / (len(catalog) * end_s),
        staleness_mean_s=sum(p.expected_age_area for p in catalog) / (len(catalog) * end_s),
        staleness_p99_s=samples[min(len(samples) - 1, math.ceil(0.99 * len(samples)) - 1)]
        if samples
        else 0.0,
        requests=sum(p.requests for p in catalog),
        plan_seconds=plan_seconds,
    )


def _gain(uniform: Outcome, adaptive: Outcome) -> float:
    if adaptive.weighted_stale_share <= 0:
        return math.inf if uniform.weighted_stale_share > 0 else 1.0
    return uniform.weighted_stale_share / adaptive.weighted_stale_share


def run(scenario: Scenario, mix: str, uniform_mix: str) -> dict[str, Any]:
    results: dict[str, dict[str, Outcome]] = {}
    for label, spec in (("mix", mix), ("uniform_mix", uniform_mix)):
        model = parse_reprice_rates(spec)
        results[label] = {
            policy.value: simulate(scenario, model, policy)
            for policy in (RefreshPolicy.ADAPTIVE, RefreshPolicy.UNIFORM)
        }
    main, flat = results["mix"], results["uniform_mix"]
    report: dict[str, Any] = {
        "freshness_gain_vs_uniform": round(_gain(main["uniform"], main["adaptive"]), 3),
        "freshness_gain_vs_uniform_on_uniform_mix": round(
            _gain(flat["uniform"], flat["adaptive"]), 3
        ),
        # The same from the simulated changes counted, not their expectation (noisier).
        "freshness_gain_vs_uniform_counted": round(
            main["uniform"].weighted_stale_share_counted
            / max(main["adaptive"].weighted_stale_share_counted, 1e-12),
            3,
        ),
        "products": scenario.products,
        "simulated_days": scenario.days,
        "budget_per_s": scenario.budget_per_s,
        "price_max_age_s": scenario.max_age_s,
        "tick_s": scenario.tick_s,
        "replan_s": scenario.replan_s,
        "reprice_mix": mix,
        "reprice_uniform_mix": uniform_mix,
        "demand_zipf": scenario.zipf,
        "demand_seasonal_share": scenario.seasonal,
        "demand_far_day_factor": FAR_DAY_DEMAND,
        "seed": scenario.seed,
    }
    for policy in ("adaptive", "uniform"):
        outcome = main[policy]
        report[f"weighted_stale_share_{policy}"] = round(outcome.weighted_stale_share, 6)
        report[f"stale_share_{policy}"] = round(outcome.stale_share, 6)
        report[f"staleness_mean_s_{policy}"] = round(outcome.staleness_mean_s, 1)
        report[f"staleness_p99_s_{policy}"] = round(outcome.staleness_p99_s, 1)
        report[f"requests_{policy}"] = outcome.requests
        report[f"weighted_stale_share_{policy}_on_uniform_mix"] = round(
            flat[policy].weighted_stale_share, 6
        )
        report[f"requests_{policy}_on_uniform_mix"] = flat[policy].requests
        report[f"plan_cpu_s_{policy}"] = round(outcome.plan_seconds, 2)
    return report


def _print(report: dict[str, Any]) -> None:
    print(
        f"{report['products']} products, {report['simulated_days']:g} simulated days, "
        f"budget {report['budget_per_s']:g} req/s, ceiling {report['price_max_age_s']:.0f} s, "
        f"mix {report['reprice_mix']}, demand Zipf {report['demand_zipf']:g}"
    )
    print(
        f"{'policy':<10} {'wtd stale':>10} {'stale':>8} {'mean s':>8} {'p99 s':>8} {'requests':>9}"
    )
    for policy in ("adaptive", "uniform"):
        print(
            f"{policy:<10} {report[f'weighted_stale_share_{policy}']:>10.4%} "
            f"{report[f'stale_share_{policy}']:>8.3%} "
            f"{report[f'staleness_mean_s_{policy}']:>8.0f} "
            f"{report[f'staleness_p99_s_{policy}']:>8.0f} {report[f'requests_{policy}']:>9}"
        )
    print(f"freshness_gain_vs_uniform: {report['freshness_gain_vs_uniform']:.2f}")
    print(
        f"freshness_gain_vs_uniform_on_uniform_mix ({report['reprice_uniform_mix']}): "
        f"{report['freshness_gain_vs_uniform_on_uniform_mix']:.2f}"
    )


@click.command()
@click.option("--quick", is_flag=True, help="Two simulated days instead of seven (about 20 s).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the figures.")
@click.option("--mix", default="pareto:1.5,21600", show_default=True, help="Repricing rates.")
@click.option("--uniform-mix", default="uniform:21600", show_default=True)
@click.option("--products", type=int, help="Default 1000.")
@click.option("--days", type=float, help="Default 7 (2 with --quick).")
@click.option(
    "--budget-per-request-s",
    default=1000.0,
    show_default=True,
    help="Seconds between visits of one product under uniform: sets the budget to "
    "products / this (10,000 products at 20 req/s × share 0.5 is 1000 s).",
)
@click.option("--max-age-s", default=21_600.0, show_default=True)
@click.option("--tick-s", default=60.0, show_default=True)
@click.option("--replan-s", default=10_800.0, show_default=True)
@click.option("--zipf", default=1.2, show_default=True, help="Popularity exponent.")
@click.option("--seasonal", default=0.3, show_default=True, help="Share not sellable soon.")
@click.option("--seed", default=1, show_default=True)
def main(
    quick: bool,
    json_path: Path | None,
    mix: str,
    uniform_mix: str,
    products: int | None,
    days: float | None,
    budget_per_request_s: float,
    max_age_s: float,
    tick_s: float,
    replan_s: float,
    zipf: float,
    seasonal: float,
    seed: int,
) -> None:
    n = products or 1_000
    scenario = Scenario(
        products=n,
        days=days or (2.0 if quick else 7.0),
        budget_per_s=n / budget_per_request_s,
        max_age_s=max_age_s,
        tick_s=tick_s,
        replan_s=replan_s,
        zipf=zipf,
        seasonal=seasonal,
        reads_per_day=100.0 * n,
        seed=seed,
    )
    started = time.perf_counter()
    report = run(scenario, mix, uniform_mix)
    report["bench_seconds"] = round(time.perf_counter() - started, 1)
    _print(report)
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
