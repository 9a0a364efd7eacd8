"""The background price refresh against the database: the plan (recomputed every
``REPLAN_EVERY_S`` and kept in ``price_schedule`` for every worker), and each tick's due
products. The decisions are ``worker.sync.refresh_schedule``'s; this module only reads what
they need and stores what they decide.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.catalog import DailyPrice, Product
from models.dialect import insert_for
from models.freshness import PriceRefresh, PriceSchedule
from worker.settings import Settings
from worker.supplier.contract import supplier_today
from worker.sync.freshness import NEAR_VISIT_DAYS
from worker.sync.refresh_history import fold_reads, histories, prune_history
from worker.sync.refresh_plan import (
    DEFAULT_MIN_INTERVAL_S,
    ProductFreshness,
    RefreshPlan,
    RefreshPolicy,
    ScheduledVisit,
    next_due,
    refresh_budget,
)
from worker.sync.refresh_schedule import (
    REPLAN_EVERY_S,
    ProductSignals,
    estimate,
    make_plan,
    pick_due,
    summarize_staleness,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshBudget:
    """What the scheduler may spend: requests per second, the ceiling, the tick's length."""

    policy: RefreshPolicy
    budget_per_s: float
    max_age: timedelta
    tick_s: float
    min_interval_s: float = DEFAULT_MIN_INTERVAL_S
    replan_s: float = REPLAN_EVERY_S

    @property
    def ceiling_s(self) -> float:
        """The age the plan treats as the ceiling: ``max_age`` less two ticks, so a visit
        queued at it (a tick late at worst, then a queue hop) lands before ``max_age``."""
        max_age_s = self.max_age.total_seconds()
        return max(max_age_s - 2 * self.tick_s, min(self.tick_s, max_age_s))


def _near_dates(session: Session, today: date) -> dict[int, tuple[int, int | None]]:
    """Product id → (sellable days among the next 14, lowest limited stock on them)."""
    last = today + timedelta(days=NEAR_VISIT_DAYS - 1)
    sellable = or_(DailyPrice.stock.is_(None), DailyPrice.stock > 0)
    return {
        pid: (int(days), None if lowest is None else int(lowest))
        for pid, days, lowest in session.execute(
            select(DailyPrice.product_id, func.count(), func.min(DailyPrice.stock))
            .where(DailyPrice.day >= today, DailyPrice.day <= last, sellable)
            .group_by(DailyPrice.product_id)
        )
    }


def _last_refreshed_s(attempted: datetime | None, reset: datetime | None) -> float | None:
    """The clock the plan counts from; None (due now) when never tried or reset since."""
    if attempted is None or (reset is not None and reset >= attempted):
        return None
    return attempted.timestamp()


def replan(
    sessions: sessionmaker[Session],
    budget: RefreshBudget,
    *,
    now: datetime | None = None,
    today: date | None = None,
) -> RefreshPlan:
    """Estimate every authorized product's rate and weight, plan, and store the plan."""
    now = now or utcnow()
    with sessions.begin() as session:
        prune_history(session)
        reads = fold_reads(session, now)
        seen = histories(session)
        near = _near_dates(session, today or supplier_today())
        rows = session.execute(
            select(Product.product_id, Product.prices_attempted_at, PriceSchedule.reset_at)
            .outerjoin(PriceSchedule, PriceSchedule.product_id == Product.product_id)
            .where(Product.is_authorized.is_(True))
            .order_by(Product.product_id)
        ).all()
        signals = [
            ProductSignals(
                pid,
                seen.get(pid, ()),
                reads.get(pid, 0.0),
                near.get(pid, (0, None))[0],
                near.get(pid, (0, None))[1],
                _last_refreshed_s(attempted, reset),
            )
            for pid, attempted, reset in rows
        ]
        products = estimate(signals)
        plan = make_plan(
            budget.policy,
            products,
            budget.budget_per_s,
            budget.ceiling_s,
            budget.min_interval_s,
        )
        if products:
            statement = insert_for(session, PriceSchedule)
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=[PriceSchedule.product_id],
                    set_={
                        "rate": statement.excluded.rate,
                        "weight": statement.excluded.weight,
                        "interval_s": statement.excluded.interval_s,
                        "planned_at": statement.excluded.planned_at,
                    },
                ),
                [
                    {
                        "product_id": p.product_id,
                        "rate": p.rate,
                        "weight": p.weight,
                        "interval_s": plan.intervals[p.product_id],
                        "planned_at": now,
                    }
                    for p in products
                ],
            )
    log.info(
        "price refresh plan: %d products, %.3f of %.3f requests/s%s",
        len(products),
        plan.visits_per_s,
        budget.budget_per_s,
        " (the ceiling alone is over budget)" if plan.is_over_budget else "",
    )
    return plan


def scheduled(
    session: Session, max_age_s: float
) -> tuple[list[ProductFreshness], RefreshPlan | None]:
    """The stored plan: each authorized product's rate, weight and clock, and the intervals.

    None for the plan when some authorized product has none yet (a replan is due).
    """
    rows = session.execute(
        select(
            Product.product_id,
            Product.prices_attempted_at,
            PriceSchedule.reset_at,
            PriceSchedule.rate,
            PriceSchedule.weight,
            PriceSchedule.interval_s,
        )
        .outerjoin(PriceSchedule, PriceSchedule.product_id == Product.product_id)
        .where(Product.is_authorized.is_(True))
        .order_by(Product.product_id)
    ).all()
    products = []
    intervals: dict[int, float] = {}
    complete = True
    for pid, attempted, reset, rate, weight, interval in rows:
        products.append(
            ProductFreshness(
                pid,
                rate if rate is not None else 0.0,
                weight if weight is not None else 1.0,
                _last_refreshed_s(attempted, reset),
            )
        )
        if interval is None:
            complete = False
        intervals[pid] = min(interval, max_age_s) if interval is not None else max_age_s
    return products, RefreshPlan(intervals, 0.0) if complete else None


def _plan_is_stale(session: Session, now: datetime, replan_s: float) -> bool:
    newest = session.scalar(select(func.max(PriceSchedule.planned_at)))
    return newest is None or (now - newest).total_seconds() >= replan_s


@dataclass(frozen=True)
class TickVisit:
    """One product to refresh this tick; ``forced`` ones (at the ceiling) skip the budget."""

    product_id: int
    forced: bool


def refresh_budget_of(settings: Settings) -> RefreshBudget:
    """The scheduler's budget from the settings: ``PRICE_REFRESH_SHARE`` of the rate limit."""
    return RefreshBudget(
        RefreshPolicy(settings.price_refresh_policy),
        refresh_budget(settings.supplier_rate_limit, settings.price_refresh_share),
        settings.price_max_age,
        settings.price_refresh_interval_s,
        settings.price_refresh_min_interval_s,
        settings.price_replan_interval_s,
    )


def due_now(
    sessions: sessionmaker[Session], budget: RefreshBudget, *, now: datetime | None = None
) -> list[TickVisit]:
    """This tick's products: a tick's share of the budget by the plan, plus every product at
    the ceiling. Replans first when the stored plan is older than ``budget.replan_s`` or misses
    an authorized product."""
    now = now or utcnow()
    max_age_s = budget.ceiling_s
    with sessions() as session:
        stale = _plan_is_stale(session, now, budget.replan_s)
        products, plan = scheduled(session, max_age_s)
    if stale or plan is None:
        replan(sessions, budget, now=now)
        with sessions() as session:
            products, plan = scheduled(session, max_age_s)
    if plan is None or not products:
        return []
    # Two ticks' share: a late tick catches up, and the background bucket paces the requests
    # whatever is queued.
    tokens = max(1, round(2 * budget.budget_per_s * budget.tick_s))
    picked = pick_due(products, plan, now.timestamp(), tokens, max_age_s, budget.tick_s / 2)
    return [TickVisit(v.product_id, True) for v in picked.forced] + [
        TickVisit(v.product_id, False) for v in picked.planned
    ]


def upcoming(
    sessions: sessionmaker[Session], max_age: timedelta, limit: int, *, now: datetime | None = None
) -> list[ScheduledVisit]:
    """The next ``limit`` visits of the stored plan (for ``catalog-sync prices plan``)."""
    now = now or utcnow()
    with sessions() as session:
        products, plan = scheduled(session, max_age.total_seconds())
    if plan is None:
        intervals = {p.product_id: max_age.total_seconds() for p in products}
        plan = RefreshPlan(intervals, 0.0)
    return next_due(products, plan, now.timestamp(), limit)


def refreshes_since(session: Session, since: datetime) -> int:
    """Refreshes stored since ``since`` (the budget actually spent)."""
    return int(
        session.scalar(
            select(func.count()).select_from(PriceRefresh).where(PriceRefresh.refreshed_at >= since)
        )
        or 0
    )


def per_product_refreshes(
    session: Session, since: datetime, limit: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The authorized products refreshed most and least since ``since``: (id, count) lists."""
    counts = (
        select(PriceRefresh.product_id, func.count().label("n"))
        .where(PriceRefresh.refreshed_at >= since)
        .group_by(PriceRefresh.product_id)
        .subquery()
    )
    n = func.coalesce(counts.c.n, 0)
    base = (
        select(Product.product_id, n)
        .outerjoin(counts, counts.c.product_id == Product.product_id)
        .where(Product.is_authorized.is_(True))
    )
    most = [
        (int(a), int(b))
        for a, b in session.execute(base.order_by(n.desc(), Product.product_id).limit(limit))
    ]
    least = [
        (int(a), int(b))
        for a, b in session.execute(base.order_by(n, Product.product_id).limit(limit))
    ]
    return most, least


def visits_of(visits: Sequence[ScheduledVisit], now: datetime) -> list[dict[str, object]]:
    """JSON-ready visits: due time as ISO 8601 and seconds from now."""
    return [
        {
            "product_id": v.product_id,
            "due_at": datetime.fromtimestamp(v.due_s, tz=now.tzinfo).isoformat(),
            "due_in_s": round(v.due_s - now.timestamp(), 1),
            "interval_s": round(v.interval_s, 1),
            "rate_per_day": round(v.rate * 86_400, 4),
            "weight": round(v.weight, 4),
        }
        for v in visits
    ]


# The window over which the budget in use is measured.
SPEND_WINDOW_S = 300.0


def freshness_report(
    session: Session,
    budget_per_s: float,
    max_age: timedelta,
    *,
    now: datetime | None = None,
    top: int = 5,
) -> dict[str, Any]:
    """The background refresh at a glance (``status``, ``/metrics``): requests per second spent
    on price refreshes over the last ``SPEND_WINDOW_S`` against the budget, the estimated mean
    and p99 stale age from the stored plan's rates, and the products refreshed most and least
    over the last day."""
    now = now or utcnow()
    spent = refreshes_since(session, now - timedelta(seconds=SPEND_WINDOW_S)) / SPEND_WINDOW_S
    products, _ = scheduled(session, max_age.total_seconds())
    summary = summarize_staleness(products, now.timestamp())
    most, least = per_product_refreshes(session, now - timedelta(days=1), top)
    planned = session.scalar(select(func.max(PriceSchedule.planned_at)))
    return {
        "budget_per_s": round(budget_per_s, 3),
        "spent_per_s": round(spent, 3),
        "staleness_mean_s": round(summary.mean_s, 1),
        "staleness_p99_s": round(summary.p99_s, 1),
        "stale_share": round(summary.stale_share, 4),
        "planned_at": planned.isoformat() if planned else None,
        "most_refreshed": [{"product_id": p, "refreshes_24h": n} for p, n in most],
        "least_refreshed": [{"product_id": p, "refreshes_24h": n} for p, n in least],
    }
