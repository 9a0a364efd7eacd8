"""Prometheus metrics on a per-app registry: catalog figures read from the database at scrape
time, and request counts and latencies.

Under gunicorn (``PROMETHEUS_MULTIPROC_DIR`` set, see ``worker.gunicorn_conf``) the request
metrics are prometheus_client's multiprocess kind: every worker writes its own file and a
scrape, whichever worker answers it, sums them all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from catalog_api import queries
from catalog_api.context import state
from models import stats
from worker.supplier.contract import ShelfStatus
from worker.sync.refresh_tick import freshness_report

bp = Blueprint("metrics", __name__)

OUTCOMES = ("ok", "failed", "anomaly", "running")


@bp.get("/metrics")
def scrape() -> Response:
    return Response(generate_latest(state().registry), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask, registry: CollectorRegistry, *, multiprocess: bool = False) -> None:
    """Register the catalog collector and per-request instrumentation on ``registry``."""
    api_state = app.extensions["catalog_api"]
    settings = api_state.settings
    budget = settings.supplier_rate_limit * settings.price_refresh_share
    registry.register(CatalogCollector(api_state.sessions, api_state.clock, budget))
    own: CollectorRegistry | None = registry
    if multiprocess:
        from prometheus_client.multiprocess import MultiProcessCollector

        # Reads every worker's files at each scrape.
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        own = None  # this process's values go to its file, not to the scrape registry
    requests_total = Counter(
        "catalog_api_requests",
        "Requests answered, by route and status.",
        ["route", "status"],
        registry=own,
    )
    latency = Histogram(
        "catalog_api_request_duration_seconds",
        "Time to answer a request, by route.",
        ["route"],
        registry=own,
    )

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        requests_total.labels(route, str(response.status_code)).inc()
        started = g.get("metrics_started")
        if started is not None:
            latency.labels(route).observe(time.perf_counter() - started)
        return response


class CatalogCollector(Collector):
    """Reads the catalog's figures on each scrape, so every process reports the same numbers."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        refresh_budget_per_s: float | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.refresh_budget_per_s = refresh_budget_per_s

    def describe(self) -> list[Metric]:
        return []  # figures come from the database: nothing to collect at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "catalog_api_database_up", "1 when the last scrape read the database."
        )
        try:
            with self.sessions() as session:
                families = list(self._families(session, self.clock()))
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self, session: Session, now: datetime) -> Iterator[Metric]:
        products = GaugeMetricFamily(
            "catalog_products",
            "Products stored, by shelf status and authorization.",
            labels=["status", "authorized"],
        )
        seen: dict[tuple[str, str], int] = {
            (s, a): 0 for s in ("on_shelf", "off_shelf") for a in ("true", "false")
        }
        for count in queries.product_counts(session):
            status = "on_shelf" if count.product_status == ShelfStatus.ON_SHELF else "off_shelf"
            key = (status, "true" if count.is_authorized else "false")
            seen[key] = seen[key] + count.count
        for (status, authorized), value in sorted(seen.items()):
            products.add_metric([status, authorized], value)
        yield products

        oldest, never = stats.oldest_price_refresh(session)
        age = GaugeMetricFamily(
            "catalog_prices_oldest_refresh_age_seconds",
            "Age of the stalest price calendar among authorized products (0 when none refreshed).",
        )
        age.add_metric([], (now - oldest).total_seconds() if oldest is not None else 0.0)
        yield age
        missing = GaugeMetricFamily(
            "catalog_products_without_prices",
            "Authorized products whose prices were never refreshed.",
        )
        missing.add_metric([], never)
        yield missing

        outcome = GaugeMetricFamily(
            "catalog_sync_last_run_outcome",
            "1 for the outcome of the latest finished pass of each kind, 0 for the others.",
            labels=["kind", "outcome"],
        )
        finished = GaugeMetricFamily(
            "catalog_sync_last_run_finished_timestamp_seconds",
            "When the latest finished pass of each kind ended (Unix time).",
            labels=["kind"],
        )
        for run in queries.last_runs(session):
            for name in sorted({*OUTCOMES, run.outcome}):
                outcome.add_metric([run.kind, name], 1 if name == run.outcome else 0)
            if run.finished_at is not None:
                finished.add_metric([run.kind], run.finished_at.timestamp())
        yield outcome
        yield finished

        success_age = GaugeMetricFamily(
            "catalog_sync_last_success_age_seconds",
            "Seconds since the latest pass of each kind that ended ok.",
            labels=["kind"],
        )
        for kind, at in sorted(queries.last_successful_finish(session).items()):
            success_age.add_metric([kind], (now - at).total_seconds())
        yield success_age

        if self.refresh_budget_per_s is not None:
            yield from _refresh_families(
                freshness_report(session, self.refresh_budget_per_s, PLAN_CEILING, now=now)
            )

        last_seq = GaugeMetricFamily("catalog_changes_last_seq", "Highest change seq stored.")
        last_seq.add_metric([], stats.last_change_seq(session) or 0)
        yield last_seq

        backlog = queries.inbox_backlog(session)
        if backlog is not None:
            inbox = GaugeMetricFamily(
                "catalog_inbox_backlog", "Callback inbox rows pending or failed (to retry)."
            )
            inbox.add_metric([], backlog)
            yield inbox
        by_status = queries.inbox_by_status(session)
        if by_status is not None:
            rows = GaugeMetricFamily(
                "catalog_inbox_rows",
                "Callback inbox rows per status (invalid and held wait for an operator).",
                labels=["status"],
            )
            for status, rows_in_status in sorted(by_status.items()):
                rows.add_metric([status], rows_in_status)
            yield rows


# Only clamps the stored intervals read back; the figures shown do not depend on it.
PLAN_CEILING = timedelta(hours=6)


def _refresh_families(report: dict[str, Any]) -> Iterator[Metric]:
    """The background price refresh: budget in use, estimated staleness, most and least
    refreshed products."""
    budget = GaugeMetricFamily(
        "catalog_price_refresh_requests_per_second",
        "Background price refresh: requests per second spent (last 5 minutes) and the budget.",
        labels=["kind"],
    )
    budget.add_metric(["spent"], report["spent_per_s"])
    budget.add_metric(["budget"], report["budget_per_s"])
    yield budget
    stale = GaugeMetricFamily(
        "catalog_price_staleness_estimated_seconds",
        "Estimated seconds the stored prices have been stale (mean and 99th percentile over "
        "authorized products), from each product's estimated change rate.",
        labels=["quantile"],
    )
    stale.add_metric(["mean"], report["staleness_mean_s"])
    stale.add_metric(["0.99"], report["staleness_p99_s"])
    yield stale
    refreshed = GaugeMetricFamily(
        "catalog_price_refreshes_last_day",
        "Price refreshes over the last day of the products refreshed most and least.",
        labels=["product_id", "rank"],
    )
    for rank, key in (("most", "most_refreshed"), ("least", "least_refreshed")):
        for row in report[key]:
            refreshed.add_metric([str(row["product_id"]), rank], row["refreshes_24h"])
    yield refreshed
