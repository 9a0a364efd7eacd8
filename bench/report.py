"""One benchmark report: every scenario against the sandbox, each figure beside its target.

    .venv/bin/python bench/report.py                   # full (make bench), ~15 minutes on 2 cores
    .venv/bin/python bench/report.py --quick           # smoke run (make bench-quick, CI)
    .venv/bin/python bench/report.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

Each scenario runs in its own child process with its own sandbox and databases, so one that
fails is reported with its error while the others still run. Every figure is a ratio or a count
from this one run; the report records the machine, the catalog size and the latency of each.
Writes ``--out`` (JSON) and the markdown table beside it (``.md``), and prints the table.

Exit status: 1 when a correctness figure (request economy, rows written by an unchanged pass,
the fault suite's lost and doubly applied notices) misses its target or a scenario fails.
Speed figures carry ``meets`` but never fail the run: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PAGE_SIZE = 100
WINDOW_DAYS = 60
RSS_WINDOW_DAYS = 1

# -- targets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A figure's target: ``value <op> bound``; correctness misses fail the run."""

    op: str
    bound: float
    kind: str  # "correctness" fails the run on a miss; "speed" and "quality" only report
    unit: str = ""
    places: int | None = None  # how the bound is shown (1.00 for a ratio of counts)

    def meets(self, value: Any) -> bool | None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        if isinstance(value, float) and math.isnan(value):
            return None
        checks: dict[str, Callable[[float, float], bool]] = {
            "==": lambda v, b: math.isclose(v, b, rel_tol=0, abs_tol=1e-9),
            "<=": lambda v, b: v <= b,
            "<": lambda v, b: v < b,
            ">=": lambda v, b: v >= b,
            ">": lambda v, b: v > b,
        }
        return checks[self.op](float(value), self.bound)

    def text(self) -> str:
        bound = f"{self.bound:g}" if self.places is None else f"{self.bound:.{self.places}f}"
        return f"{'=' if self.op == '==' else self.op} {bound}{self.unit}"


TARGETS: dict[str, Target] = {
    "request_economy_full": Target("==", 1.0, "correctness", places=2),
    "request_economy_incremental": Target("==", 1.0, "correctness", places=2),
    "full_sync_vs_bound": Target("<=", 1.3, "speed"),
    "full_sync_cpu_ms_per_product": Target("<=", 1.5, "speed", " ms"),
    "incremental_vs_full": Target("<", 0.05, "speed"),
    "rows_written_unchanged": Target("==", 0, "correctness"),
    "intake_vs_bare_flask": Target(">=", 0.40, "speed"),
    "intake_p99_ms": Target("<", 100, "speed", " ms"),
    "notify_to_fresh_p99_ms": Target("<", 1000, "speed", " ms"),
    "peak_rss_growth": Target("<", 2, "speed"),
    "faults_acked_lost": Target("==", 0, "correctness"),
    "faults_applied_twice": Target("==", 0, "correctness"),
    "freshness_gain_vs_uniform": Target(">=", 2, "quality"),
    "freshness_gain_vs_uniform_on_uniform_mix": Target(">=", 0.95, "quality"),
}

# The order of the table: targeted figures first, in the order.
ORDER = [
    "request_economy_full",
    "request_economy_incremental",
    "full_sync_vs_bound",
    "full_sync_cpu_ms_per_product",
    "full_sync_resolver_share",
    "full_sync_store_share",
    "incremental_vs_full",
    "incremental_vs_full_50ms",
    "rows_written_unchanged",
    "intake_vs_bare_flask",
    "intake_p99_ms",
    "bare_flask_p99_ms",
    "notify_to_fresh_p99_ms",
    "notify_prices_to_fresh_p99_ms",
    "peak_rss_mb_small",
    "peak_rss_mb_large",
    "peak_rss_growth",
    "faults_acked_lost",
    "faults_applied_twice",
    "freshness_gain_vs_uniform",
    "freshness_gain_vs_uniform_on_uniform_mix",
]


def figure(value: Any, conditions: str, note: str | None = None) -> dict[str, Any]:
    """A figure as a scenario reports it: the value and the conditions it was measured under."""
    return {"value": value, "conditions": conditions, "note": note}


def evaluate(figures: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each figure with its target, ``meets`` (None when there is no value or no target) and kind."""
    evaluated: dict[str, dict[str, Any]] = {}
    for name, raw in figures.items():
        target = TARGETS.get(name)
        evaluated[name] = {
            **raw,
            "target": target.text() if target else None,
            "kind": target.kind if target else "info",
            "meets": target.meets(raw.get("value")) if target else None,
        }
    for name, target in TARGETS.items():  # a targeted figure nobody produced still shows
        evaluated.setdefault(
            name,
            {
                "value": None,
                "conditions": "",
                "note": "not produced",
                "target": target.text(),
                "kind": target.kind,
                "meets": None,
            },
        )
    return evaluated


def failures(report: Mapping[str, Any]) -> list[str]:
    """Why the run fails: correctness figures that miss their target, and scenario errors."""
    reasons = [
        f"{name}: {entry['value']} misses {entry['target']}"
        for name, entry in report["figures"].items()
        if entry["kind"] == "correctness" and entry["meets"] is False
    ]
    reasons += [
        f"scenario {name}: {outcome['error']}"
        for name, outcome in report["scenarios"].items()
        if outcome.get("error")
    ]
    return reasons


def merge_external(
    data: Mapping[str, Any], conditions: str, *, keys: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Figures from another program's JSON object: every scalar key (or only ``keys``, which
    then show as null "not reported" when missing)."""
    merged: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if isinstance(value, int | float | str | bool) or value is None:
            merged[key] = figure(value, conditions)
    for key in keys or []:
        merged.setdefault(key, figure(None, conditions, "not reported"))
    return merged


def not_run(keys: list[str], why: str) -> dict[str, dict[str, Any]]:
    return {key: figure(None, "", why) for key in keys}


def _value_text(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        if abs(value) >= 0.1:
            return f"{value:.2f}"
        return f"{value:.3f}"
    return str(value)


def _load_text(load: Any) -> str:
    if not load:
        return "?"
    return " / ".join(f"{x:.1f}" for x in load) + " (1, 5, 15 min)"


def _meets_text(entry: Mapping[str, Any]) -> str:
    if entry["meets"] is None:
        return ""
    return "yes" if entry["meets"] else "**no**"


def render_markdown(report: Mapping[str, Any]) -> str:
    """The figures as one markdown table, headed by the machine and the run."""
    machine = report["machine"]
    database = machine.get("database", {})
    lines = [
        f"Benchmark report ({report['mode']}, `{report['command']}`), {report['started_at']}, "
        f"{report['duration_s']:.0f} s",
        "",
        f"Machine: {machine.get('cores')} cores ({machine.get('cpu_model')}), Python "
        f"{machine.get('python')}, SQLAlchemy {machine.get('sqlalchemy')}, sync database "
        f"{database.get('kind')} {database.get('version')}; callbacks on PostgreSQL "
        f"{machine.get('postgresql') or '?'} and Redis {machine.get('redis') or '?'}; "
        f"load average at the start {_load_text(machine.get('load_average'))}.",
        "",
        "| figure | value | target | meets | conditions |",
        "| --- | --- | --- | --- | --- |",
    ]
    figures = report["figures"]
    names = [n for n in ORDER if n in figures] + sorted(n for n in figures if n not in ORDER)
    for name in names:
        entry = figures[name]
        conditions = entry.get("conditions") or ""
        if entry.get("note"):
            conditions = f"{conditions}; {entry['note']}" if conditions else entry["note"]
        lines.append(
            f"| {name} | {_value_text(entry['value'])} | {entry['target'] or ''} | "
            f"{_meets_text(entry)} | {conditions} |"
        )
    errors = {n: o["error"] for n, o in report["scenarios"].items() if o.get("error")}
    if errors:
        lines += ["", "Scenario errors:", ""]
        lines += [
            f"- {name}: {error.splitlines()[-1] if error else ''}" for name, error in errors.items()
        ]
    lines += [
        "",
        "Scenarios (seconds): "
        + ", ".join(f"{n} {o['seconds']:.0f}" for n, o in report["scenarios"].items()),
    ]
    stolen = {n: o["steal_s"] for n, o in report["scenarios"].items() if "steal_s" in o}
    if stolen:
        lines += [
            "",
            "CPU time the hypervisor took from this machine during each (steal, all cores, "
            "seconds): " + ", ".join(f"{n} {v:.1f}" for n, v in stolen.items()),
        ]
    return "\n".join(lines) + "\n"


# -- machine ---------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _database_kind(url: str | None) -> dict[str, str]:
    if url is None:
        import sqlite3

        return {"kind": "SQLite", "version": sqlite3.sqlite_version}
    return {"kind": "PostgreSQL", "version": _pg_version(url) or "?"}


def _pg_version(url: str) -> str | None:
    with contextlib.suppress(Exception):
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        try:
            with engine.connect() as connection:
                return str(connection.exec_driver_sql("SHOW server_version").scalar())
        finally:
            engine.dispose()
    return None


def _redis_version(url: str) -> str | None:
    with contextlib.suppress(Exception):
        import redis

        client = redis.Redis.from_url(url, socket_timeout=3)
        try:
            return str(client.info("server")["redis_version"])
        finally:
            client.close()
    return None


def machine(database_url: str | None) -> dict[str, Any]:
    import sqlalchemy

    return {
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "database": _database_kind(database_url),
        "postgresql": _pg_version(os.environ.get("TEST_DATABASE_URL", DEFAULT_PG_ADMIN_URL)),
        "redis": _redis_version(os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS_URL)),
        "load_average": list(os.getloadavg()),
    }


# -- scenarios (each runs in its own child process) -------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """Catalog sizes and counts of one mode."""

    products: int
    bound_products: int
    rss: tuple[int, int]
    intake_requests: int
    notices: int


# Full syncs and 1% passes the sync scenario's CPU and incremental figures take the median of.
CPU_RUNS = 3
FULL = Sizes(10_000, 10_000, (10_000, 100_000), 2_000, 150)
# The quick run's memory pair keeps the tenfold step at a size CI can afford (a 20,000-product
# sync alone takes minutes on a busy 2-core machine).
QUICK = Sizes(2_000, 500, (500, 5_000), 400, 50)


def price_concurrency() -> int:
    """Price calls the client keeps in flight: the configured ``PRICE_CONCURRENCY``."""
    from worker.settings import Settings

    raw = os.environ.get("PRICE_CONCURRENCY")
    return int(raw) if raw else int(Settings.model_fields["price_concurrency"].default)


def _log(message: str) -> None:
    print(f"[{datetime.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


class Admin:
    """The sandbox's admin interface: its own request counter and catalog edits."""

    def __init__(self, url: str) -> None:
        import httpx

        self._http = httpx.Client(base_url=url + "/_admin", timeout=30, trust_env=False)

    def reset(self) -> None:
        self._http.post("/stats/reset").raise_for_status()

    def requests(self) -> int:
        reply = self._http.get("/stats")
        reply.raise_for_status()
        return int(reply.json()["total"])

    def bump(self, product_id: int) -> None:
        body = {"changes": {"ProductName": f"bench edit {product_id}"}}
        self._http.post(f"/products/{product_id}/version", json=body).raise_for_status()

    def latency(self, ms: float) -> None:
        self._http.post("/settings", json={"latency_ms": ms}).raise_for_status()

    def close(self) -> None:
        self._http.close()


@contextlib.contextmanager
def _sync_database(database_url: str | None, folder: Path, name: str) -> Iterator[str]:
    """A migrated, empty catalog: a SQLite file, or a scratch PostgreSQL database (dropped)."""
    from bench import sync_bench

    if database_url is None:
        yield sync_bench.fresh_database(f"sqlite:///{folder / f'{name}.db'}", folder, 0)
        return
    from bench.callbacks_bench import scratch_pg

    url, drop = scratch_pg(database_url)
    try:
        yield sync_bench.fresh_database(url, folder, 0)
    finally:
        drop()


@contextlib.contextmanager
def _sandbox(products: int, latency_ms: float) -> Iterator[tuple[Any, Admin]]:
    from supplier_sandbox.server import SandboxConfig, start_sandbox

    config = SandboxConfig(
        products=products, seed=1, latency_ms=latency_ms, max_page_size=PAGE_SIZE
    )
    with start_sandbox(config) as sandbox:
        admin = Admin(sandbox.url)
        try:
            yield sandbox, admin
        finally:
            admin.close()


def _db_text(database_url: str | None) -> str:
    return "PostgreSQL" if database_url else "SQLite"


def _phase(admin: Admin, url: str, database_url: str, **options: Any) -> dict[str, Any]:
    """A sync child, with the requests the sandbox counted for it."""
    from bench import sync_bench

    admin.reset()
    measured = sync_bench.run_child(url, database_url, page_size=PAGE_SIZE, **options)
    measured["sandbox_requests"] = admin.requests()
    return measured


def _bump_one_percent(admin: Admin, ids: list[int], products: int) -> int:
    """Edit 1% of the products, spread over the catalog, through the sandbox's admin."""
    step = max(1, len(ids) // max(1, products // 100))
    chosen = ids[::step][: max(1, products // 100)]
    for product_id in chosen:
        admin.bump(product_id)
    return len(chosen)


def scenario_sync(sizes: Sizes, database_url: str | None, folder: Path) -> dict[str, Any]:
    """At 0 ms: a full sync, a pass over the unchanged catalog, a pass with 1% changed."""
    n, c = sizes.products, price_concurrency()
    pages = math.ceil(n / PAGE_SIZE)
    where = (
        f"{n:,} products, {_db_text(database_url)}, 0 ms latency, {WINDOW_DAYS}-day window, "
        f"{c} price calls in flight, no rate limiter"
    )
    with _sandbox(n, 0) as (sandbox, admin), _sync_database(database_url, folder, "sync") as db:
        _log(f"sync: full sync of {n} products at 0 ms")
        full = _phase(admin, sandbox.url, db, window=WINDOW_DAYS, concurrency=c)
        _log("sync: pass over the unchanged catalog (writes counted)")
        unchanged = _phase(
            admin, sandbox.url, db, window=WINDOW_DAYS, concurrency=c, count_writes=True
        )
        # Wall and CPU time on a shared host move by a third between runs of the same code:
        # the 1% pass runs three times (the same products bumped again each time), and the
        # full sync twice more below, each into an empty catalog; the figures take medians.
        changes: list[dict[str, Any]] = []
        for k in range(CPU_RUNS):
            bumped = _bump_one_percent(admin, sandbox.state.catalog.authorized_ids(), n)
            _log(f"sync: pass with {bumped} products changed ({k + 1} of {CPU_RUNS})")
            changes.append(_phase(admin, sandbox.url, db, window=WINDOW_DAYS, concurrency=c))
        changed = changes[0]
        fulls = [full]
        for k in range(1, CPU_RUNS):
            with _sync_database(database_url, folder, f"sync-cpu-{k}") as again:
                _log(f"sync: full sync {k + 1} of {CPU_RUNS} (CPU)")
                fulls.append(_phase(admin, sandbox.url, again, window=WINDOW_DAYS, concurrency=c))
    written = unchanged["rows_written_by_table"] or {}
    middle = sorted(fulls, key=lambda m: float(m["cpu_s"]))[len(fulls) // 2]
    cpu = middle["cpu_s"]
    each = ", ".join(f"{1000 * m['cpu_s'] / n:.2f}" for m in fulls)
    full_s = statistics.median(m["seconds"] for m in fulls)
    changed_s = statistics.median(m["seconds"] for m in changes)
    return {
        "conditions": {
            "products": n,
            "latency_ms": 0,
            "window_days": WINDOW_DAYS,
            "price_concurrency": c,
            "rate_limiter": "none",
            "pages": pages,
        },
        "phases": {
            "full": full,
            "unchanged": unchanged,
            "changed": changed,
            **{f"full_{k + 1}": m for k, m in enumerate(fulls[1:], start=1)},
            **{f"changed_{k + 1}": m for k, m in enumerate(changes[1:], start=1)},
        },
        "figures": {
            "request_economy_full": figure(
                full["sandbox_requests"] / (pages + n),
                f"{where}; {full['sandbox_requests']:,} requests / ({pages} pages + {n:,})",
            ),
            "request_economy_incremental": figure(
                unchanged["sandbox_requests"] / pages,
                f"{where}; unchanged catalog, {unchanged['sandbox_requests']:,} requests / "
                f"{pages} pages",
            ),
            "full_sync_cpu_ms_per_product": figure(
                1000 * cpu / n,
                f"{where}; process CPU of the syncing child, every thread; the median of "
                f"{len(fulls)} full syncs into empty catalogs in this run ({each} ms)",
            ),
            "full_sync_resolver_share": figure(
                middle["resolver_cpu_s"] / cpu,
                f"{where}; price_content's thread CPU / process CPU, in the median full sync "
                f"({1000 * middle['resolver_cpu_s'] / n:.2f} ms per product)",
            ),
            "full_sync_store_share": figure(
                middle["store_cpu_s"] / cpu,
                f"{where}; price store's thread CPU / process CPU, in the median full sync "
                f"({1000 * middle['store_cpu_s'] / n:.2f} ms per product)",
            ),
            "incremental_vs_full": figure(
                changed_s / full_s,
                f"{where}; median pass with {bumped} products' Version bumped "
                f"({changed_s:.2f} s of "
                + ", ".join(f"{m['seconds']:.2f}" for m in changes)
                + f") / median full sync ({full_s:.1f} s of "
                + ", ".join(f"{m['seconds']:.1f}" for m in fulls)
                + ")",
            ),
            "rows_written_unchanged": figure(
                sum(v for t, v in written.items() if t != "sync_runs"),
                f"{where}; catalog rows inserted, updated or deleted, sync_runs excluded "
                f"({written.get('sync_runs', 0)} there)",
            ),
        },
    }


def scenario_bound(sizes: Sizes, database_url: str | None, folder: Path) -> dict[str, Any]:
    """At 50 ms: a full sync against its latency bound, then a pass with 1% changed."""
    n, c, latency = sizes.bound_products, price_concurrency(), 50.0
    where = (
        f"{n:,} products, {_db_text(database_url)}, {latency:.0f} ms latency, "
        f"{WINDOW_DAYS}-day window, {c} price calls in flight (PRICE_CONCURRENCY), "
        f"no rate limiter"
    )
    with (
        _sandbox(n, latency) as (sandbox, admin),
        _sync_database(database_url, folder, "bound") as db,
    ):
        _log(f"bound: full sync of {n} products at {latency:.0f} ms")
        full = _phase(admin, sandbox.url, db, window=WINDOW_DAYS, concurrency=c)
        bumped = _bump_one_percent(admin, sandbox.state.catalog.authorized_ids(), n)
        _log(f"bound: pass with {bumped} products changed")
        changed = _phase(admin, sandbox.url, db, window=WINDOW_DAYS, concurrency=c)
    requests = full["sandbox_requests"]
    bound_s = requests * latency / 1000 / c
    return {
        "conditions": {
            "products": n,
            "latency_ms": latency,
            "window_days": WINDOW_DAYS,
            "price_concurrency": c,
            "rate_limiter": "none",
        },
        "phases": {"full": full, "changed": changed},
        "figures": {
            "full_sync_vs_bound": figure(
                full["seconds"] / bound_s,
                f"{where}; {full['seconds']:.1f} s / ({requests:,} requests × "
                f"{latency:.0f} ms / {c} = {bound_s:.1f} s)",
            ),
            "incremental_vs_full_50ms": figure(
                changed["seconds"] / full["seconds"],
                f"{where}; pass with {bumped} changed ({changed['seconds']:.2f} s) / full sync",
            ),
        },
    }


def scenario_rss(sizes: Sizes, database_url: str | None, folder: Path) -> dict[str, Any]:
    """Peak RSS of the syncing child for a full sync at two catalog sizes."""
    c = price_concurrency()
    peaks: dict[int, dict[str, Any]] = {}
    for n in sizes.rss:
        with (
            _sandbox(n, 0) as (sandbox, admin),
            _sync_database(database_url, folder, f"rss-{n}") as db,
        ):
            _log(f"rss: full sync of {n} products, {RSS_WINDOW_DAYS}-day window")
            peaks[n] = _phase(admin, sandbox.url, db, window=RSS_WINDOW_DAYS, concurrency=c)
    small, large = sizes.rss
    where = (
        f"{_db_text(database_url)}, 0 ms latency, {RSS_WINDOW_DAYS}-day window, {c} in flight; "
        "VmHWM of the syncing child (its own peak; ru_maxrss would carry the parent's)"
    )
    return {
        "conditions": {"sizes": list(sizes.rss), "window_days": RSS_WINDOW_DAYS},
        "phases": {str(n): m for n, m in peaks.items()},
        "figures": {
            "peak_rss_mb_small": figure(
                peaks[small]["rss_peak_mb"], f"{small:,} products, {where}"
            ),
            "peak_rss_mb_large": figure(
                peaks[large]["rss_peak_mb"], f"{large:,} products, {where}"
            ),
            "peak_rss_growth": figure(
                peaks[large]["rss_peak_mb"] / peaks[small]["rss_peak_mb"],
                f"{large:,} / {small:,} products, {where}",
            ),
        },
    }


@contextlib.contextmanager
def _services() -> Iterator[tuple[str, str]]:
    """A scratch PostgreSQL database and a reserved Redis database number, both released."""
    from bench.callbacks_bench import reserve_redis, scratch_pg

    pg_url, drop_pg = scratch_pg(os.environ.get("TEST_DATABASE_URL", DEFAULT_PG_ADMIN_URL))
    try:
        redis_url, release_redis = reserve_redis(
            os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS_URL)
        )
        try:
            yield pg_url, redis_url
        finally:
            release_redis()
    finally:
        drop_pg()


def scenario_intake(sizes: Sizes, database_url: str | None, folder: Path) -> dict[str, Any]:
    """The callback receiver against a bare Flask endpoint, same gunicorn options, same run."""
    from bench.callbacks_bench import measure_intake, procfile_options, service_env
    from supplier_sandbox.server import SandboxConfig, start_sandbox

    options = procfile_options()
    concurrency = 16
    with _services() as (pg_url, redis_url), start_sandbox(SandboxConfig(products=10)) as sandbox:
        _log(f"intake: {sizes.intake_requests} signed notices, bare Flask then the receiver")
        measured = measure_intake(
            service_env(sandbox.url, pg_url, redis_url),
            sizes.intake_requests,
            concurrency,
            options,
        )
    bare, intake = measured["bare"], measured["intake"]
    where = (
        f"gunicorn {' '.join(options)} (Procfile web), PostgreSQL + Redis, "
        f"{sizes.intake_requests:,} signed notices, {concurrency} concurrent clients, loopback"
    )
    errors = f"errors: intake {intake['errors']:.0f}, bare {bare['errors']:.0f}"
    return {
        "conditions": {
            "gunicorn": options,
            "requests": sizes.intake_requests,
            "clients": concurrency,
        },
        "phases": measured,
        "figures": {
            "intake_vs_bare_flask": figure(
                intake["rate"] / bare["rate"],
                f"{where}; {intake['rate']:,.0f} / {bare['rate']:,.0f} req/s; {errors}",
            ),
            "intake_p99_ms": figure(intake["p99_ms"], f"{where}; p50 {intake['p50_ms']:.1f} ms"),
            "bare_flask_p99_ms": figure(bare["p99_ms"], f"{where}; p50 {bare['p50_ms']:.1f} ms"),
        },
    }


def scenario_notify(sizes: Sizes, database_url: str | None, folder: Path) -> dict[str, Any]:
    """Signed notices from the sandbox to the refreshed row, through a real Celery worker."""
    from bench.callbacks_bench import measure_notices, pct, procfile_options, service_env
    from supplier_sandbox.server import SandboxConfig, start_sandbox

    options = procfile_options()
    n, price_n, latency = sizes.notices, max(10, sizes.notices // 5), 50.0
    config = SandboxConfig(products=n + price_n + 10, seed=3)
    with _services() as (pg_url, redis_url), start_sandbox(config) as sandbox:
        _log(f"notify: {n} product and {price_n} price notices, one at a time")
        env = service_env(sandbox.url, pg_url, redis_url)
        measured = measure_notices(sandbox, env, pg_url, n, price_n, latency, options)
    where = (
        f"sandbox at {latency:.0f} ms, receiver on gunicorn (Procfile web), Celery worker "
        "(prefork 4) on a reserved Redis database, PostgreSQL; from the sandbox's edit "
        "(it signs and sends the notice) to the row changing"
    )
    product, prices = measured["product_ms"], measured["price_ms"]
    return {
        "conditions": {"notices": n, "price_notices": price_n, "latency_ms": latency},
        "phases": measured,
        "figures": {
            "notify_to_fresh_p99_ms": figure(
                pct(product, 0.99),
                f"{n} product notices (Status 2 → product row); p50 {pct(product, 0.5):.0f} ms; "
                f"{where}",
            ),
            "notify_prices_to_fresh_p99_ms": figure(
                pct(prices, 0.99),
                f"{price_n} price notices (Status 3 → calendar); p50 {pct(prices, 0.5):.0f} ms; "
                f"{where}",
            ),
        },
    }


FAULT_KEYS = ["faults_acked_lost", "faults_applied_twice", "notices_sent", "notices_acked"]
FRESHNESS_KEYS = [
    "freshness_gain_vs_uniform",
    "freshness_gain_vs_uniform_on_uniform_mix",
    "staleness_p99_s_adaptive",
    "staleness_p99_s_uniform",
]


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists() or path.stat().st_size == 0:
        return None
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path.name}: not a JSON object")
    return data


def _faults_from_test_run(path: Path) -> dict[str, Any] | None:
    """The counts the fault suite wrote during ``make test`` (``FAULTS_REPORT``), when present.

    CI runs the storm once, in the test suite, and the quick report takes its counts from there
    rather than running a four-minute storm twice.
    """
    data = _read_json(path)
    if data is None:
        return None
    when = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.UTC)
    where = f"fault suite's notice storm in the test run of {when:%Y-%m-%d %H:%M UTC}"
    return {"figures": merge_external(data, where, keys=FAULT_KEYS), "exit_code": 0}


def scenario_faults(sizes: Sizes, database_url: str | None, folder: Path) -> dict[str, Any]:
    """The fault suite's notice storm; it writes its counts to ``FAULTS_REPORT``."""
    reuse = os.environ.get("BENCH_FAULTS_FROM")
    if reuse and (reused := _faults_from_test_run(Path(reuse))) is not None:
        return reused
    out = folder / "faults.json"
    command = [str(Path(sys.executable).parent / "pytest"), "-m", "faults", "-k", "notice_storm",
               "-q", "-p", "no:randomly"]  # fmt: skip
    _log("faults: " + " ".join(command[1:]))
    done = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "FAULTS_REPORT": str(out)},
        capture_output=True,
        text=True,
    )
    data = _read_json(out)
    where = "fault suite's notice storm (pytest -m faults -k notice_storm)"
    if data is None:
        # 5: no such test collected; 4 with the marker unknown: the suite is not there yet.
        absent = done.returncode == 5 or (
            done.returncode == 4 and "Unknown marker" in done.stdout + done.stderr
        )
        if absent:
            return {"figures": not_run(FAULT_KEYS, "not run"), "exit_code": done.returncode}
        raise RuntimeError(f"pytest exited {done.returncode}: {done.stdout[-1500:]}")
    result = {"figures": merge_external(data, where, keys=FAULT_KEYS), "exit_code": done.returncode}
    if done.returncode != 0:
        result["error"] = f"pytest exited {done.returncode}: {done.stdout[-1500:]}"
    return result


def scenario_freshness(sizes: Sizes, database_url: str | None, folder: Path) -> dict[str, Any]:
    """The freshness benchmark of the refresh scheduler; every key of its JSON is a figure."""
    script = ROOT / "bench" / "freshness_bench.py"
    if not script.exists():
        return {"figures": not_run(FRESHNESS_KEYS, "not run")}
    out = folder / "freshness.json"
    command = [sys.executable, str(script), *(["--quick"] if sizes is QUICK else []),
               "--json", str(out)]  # fmt: skip
    _log("freshness: " + " ".join(command[1:]))
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"freshness_bench exited {done.returncode}: {done.stderr[-1500:]}")
    data = _read_json(out)
    if data is None:
        raise RuntimeError("freshness_bench wrote no JSON")
    return {"figures": merge_external(data, "bench/freshness_bench.py", keys=FRESHNESS_KEYS)}


SCENARIOS: dict[str, Callable[[Sizes, str | None, Path], dict[str, Any]]] = {
    "sync": scenario_sync,
    "bound": scenario_bound,
    "intake": scenario_intake,
    "notify": scenario_notify,
    "faults": scenario_faults,
    "freshness": scenario_freshness,
    "rss": scenario_rss,
}
# Per scenario, in seconds; the fault suite's notice storm bounds itself at 600 s (its timeout).
TIMEOUT_S = {"quick": 300, "full": 900, "full:rss": 2400, "full:sync": 1200, "quick:faults": 660,
             "full:faults": 660}  # fmt: skip


def _steal_s() -> float | None:
    """CPU time the hypervisor has taken from this machine so far (all cores), when Linux
    says: a busy host shows in every CPU figure, and here it is seen."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    return None


def run_scenario(name: str, quick: bool, database_url: str | None) -> dict[str, Any]:
    """Run one scenario in a child process; its outcome, or its error, never an exception."""
    started = time.perf_counter()
    steal_before = _steal_s()
    mode = "quick" if quick else "full"
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as folder:
        out = Path(folder) / "out.json"
        command = [sys.executable, __file__, "--scenario", name, "--scenario-out", str(out),
                   *(["--quick"] if quick else []),
                   *(["--database-url", database_url] if database_url else [])]  # fmt: skip
        try:
            done = subprocess.run(
                command,
                cwd=ROOT,
                timeout=TIMEOUT_S.get(f"{mode}:{name}", TIMEOUT_S[mode]),
                stdout=subprocess.PIPE,
                text=True,
            )
            outcome = _read_json(out) or {}
            if done.returncode != 0 and not outcome.get("error"):
                outcome["error"] = f"exited {done.returncode}: {done.stdout[-1500:]}"
        except subprocess.TimeoutExpired as exc:
            outcome = {"error": f"timed out after {exc.timeout:.0f} s"}
    outcome.setdefault("figures", {})
    outcome.setdefault("error", None)
    outcome["seconds"] = time.perf_counter() - started
    steal_after = _steal_s()
    if steal_before is not None and steal_after is not None:
        outcome["steal_s"] = steal_after - steal_before
    return outcome


def _scenario_child(name: str, quick: bool, database_url: str | None, out: Path) -> int:
    """In the scenario's child: run it and write its outcome (or its error) to ``out``."""
    import traceback

    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-data-") as folder:
        try:
            outcome = SCENARIOS[name](QUICK if quick else FULL, database_url, Path(folder))
        except Exception as exc:
            traceback.print_exc()
            outcome = {"error": f"{type(exc).__name__}: {exc}"}
    out.write_text(json.dumps(outcome, default=str))
    return 1 if outcome.get("error") else 0


def build_report(
    outcomes: Mapping[str, Mapping[str, Any]],
    *,
    mode: str,
    command: str,
    machine_info: Mapping[str, Any],
    started_at: str,
    duration_s: float,
) -> dict[str, Any]:
    """Scenario outcomes into the report: figures evaluated against their targets."""
    figures: dict[str, dict[str, Any]] = {}
    scenarios: dict[str, dict[str, Any]] = {}
    for name, outcome in outcomes.items():
        for key, raw in outcome.get("figures", {}).items():
            figures[key] = {**raw, "scenario": name}
        scenarios[name] = {k: v for k, v in outcome.items() if k != "figures"}
        scenarios[name].setdefault("error", None)
        scenarios[name].setdefault("seconds", 0.0)
    report: dict[str, Any] = {
        "mode": mode,
        "command": command,
        "started_at": started_at,
        "duration_s": duration_s,
        "machine": dict(machine_info),
        "figures": evaluate(figures),
        "scenarios": scenarios,
    }
    report["failures"] = failures(report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller catalogs (the CI smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "report.json")
    parser.add_argument(
        "--md", type=Path, default=None, help="markdown table (default: --out with .md)"
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL server for the sync scenarios (scratch databases are created on it); "
        "default: SQLite files in a temporary folder",
    )
    parser.add_argument(
        "--only", default=None, help="comma-separated scenarios: " + ", ".join(SCENARIOS)
    )
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the markdown from --out's JSON"
    )
    parser.add_argument("--scenario", choices=list(SCENARIOS), help=argparse.SUPPRESS)
    parser.add_argument("--scenario-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scenario:
        return _scenario_child(args.scenario, args.quick, args.database_url, args.scenario_out)

    if args.render:
        markdown = render_markdown(json.loads(args.out.read_text()))
        (args.md or args.out.with_suffix(".md")).write_text(markdown)
        print(markdown)
        return 0
    mode = "quick" if args.quick else "full"
    names = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    started_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    begun = time.perf_counter()
    info = machine(args.database_url)
    outcomes = {}
    for name in names:
        _log(f"scenario {name} ...")
        outcomes[name] = run_scenario(name, args.quick, args.database_url)
        if outcomes[name]["error"]:
            _log(f"scenario {name} failed: {outcomes[name]['error'].splitlines()[-1]}")
    report = build_report(
        outcomes,
        mode=mode,
        command="make bench-quick" if args.quick else "make bench",
        machine_info=info,
        started_at=started_at,
        duration_s=time.perf_counter() - begun,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    markdown = render_markdown(report)
    (args.md or args.out.with_suffix(".md")).write_text(markdown)
    print(markdown)
    for reason in report["failures"]:
        print(f"FAIL {reason}", file=sys.stderr)
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
