"""What ``catalog-sync status`` shows: the last runs, counts and freshness, as plain data."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.catalog import Product, QuarantinedProduct, SyncRun
from models.stats import inbox_counts, last_change_seq, oldest_price_refresh
from worker.supplier.contract import ShelfStatus
from worker.sync.refresh_tick import freshness_report


def _run_json(run: SyncRun) -> dict[str, Any]:
    seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    return {
        "id": run.id,
        "kind": run.kind,
        "outcome": run.outcome,
        "is_complete": run.is_complete,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "pages": run.pages,
        "seen": run.seen,
        "new": run.new,
        "changed": run.changed,
        "unchanged": run.unchanged,
        "deauthorized": run.deauthorized,
        "reauthorized": run.reauthorized,
        "quarantined": run.quarantined,
        "requests": run.requests,
        "retries": run.retries,
        "version_regressions": run.version_regressions,
        "errors": run.errors,
        "error": run.error,
        "seconds": round(seconds, 3) if seconds is not None else None,
    }


def collect_status(
    sessions: sessionmaker[Session],
    *,
    now: datetime | None = None,
    runs: int = 10,
    refresh_budget_per_s: float | None = None,
    price_max_age: timedelta = timedelta(hours=6),
) -> dict[str, Any]:
    """Counts, price freshness and the last runs, JSON-ready; with ``refresh_budget_per_s``,
    the background price refresh's budget in use and estimated staleness too."""
    now = now or utcnow()
    authorized = Product.is_authorized.is_(True)
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(Product)) or 0
        n_authorized = session.scalar(select(func.count()).where(authorized)) or 0
        on_shelf = (
            session.scalar(
                select(func.count()).where(
                    authorized, Product.product_status == ShelfStatus.ON_SHELF
                )
            )
            or 0
        )
        oldest, never = oldest_price_refresh(session)
        newest = session.scalar(select(func.max(Product.prices_refreshed_at)).where(authorized))
        quarantined = session.scalar(select(func.count()).select_from(QuarantinedProduct)) or 0
        failing = (
            session.scalar(
                select(func.count()).where(authorized, Product.prices_error.is_not(None))
            )
            or 0
        )
        last_seq = last_change_seq(session)
        recent = session.scalars(select(SyncRun).order_by(SyncRun.id.desc()).limit(runs)).all()
        inbox = inbox_counts(session)
        refresh = (
            freshness_report(session, refresh_budget_per_s, price_max_age, now=now)
            if refresh_budget_per_s is not None
            else None
        )
        last_products = session.scalar(
            select(SyncRun)
            .where(SyncRun.kind == "products", SyncRun.outcome != "running")
            .order_by(SyncRun.id.desc())
            .limit(1)
        )
    if oldest is not None and isinstance(oldest, datetime) and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return {
        "products": {
            "total": total,
            "authorized": n_authorized,
            "on_shelf": on_shelf,
            "quarantined": quarantined,
        },
        "prices": {
            "never_refreshed": never,
            "oldest_refresh_age_s": round((now - oldest).total_seconds(), 1) if oldest else None,
            "newest_refresh_at": newest.isoformat() if newest else None,
            "failing": failing,
        },
        "refresh": refresh,
        "changes": {"last_seq": last_seq},
        "inbox": inbox,
        "last_run": _run_json(last_products) if last_products is not None else None,
        "runs": [_run_json(run) for run in recent],
    }


def problems(report: dict[str, Any], price_max_age: timedelta) -> list[str]:
    """Why ``status`` is unhealthy: the last product pass did not end ok, or prices are stale."""
    found = []
    last = report.get("last_run")
    if last is not None and last["outcome"] != "ok":
        reason = f": {last['error']}" if last.get("error") else ""
        found.append(f"the last product pass (run {last['id']}) ended {last['outcome']}{reason}")
    age = report.get("prices", {}).get("oldest_refresh_age_s")
    if age is not None and age > price_max_age.total_seconds():
        found.append(
            f"the oldest prices are {age:.0f} s old, older than PRICE_MAX_AGE "
            f"({price_max_age.total_seconds():.0f} s)"
        )
    return found
