"""Benchmark the product pass and price refresh against the sandbox; prints one table of ratios.

    .venv/bin/python bench/sync_bench.py                       # 10,000 products, SQLite, 0 and 50 ms
    .venv/bin/python bench/sync_bench.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench

For each supplier latency: a full sync (every page, then one price call per product over a
60-day window) into an empty database, then an incremental pass over the unchanged catalog.
Each phase runs in its own child process, so its peak RSS is its own; the sandbox serves from
this parent process. The client runs without a rate limiter (we measure our overhead, not the
configured budget: at SUPPLIER_RATE_LIMIT=20/s a 10,000-product price sweep takes >= 500 s).

A second table gives the full sync at 0 ms latency as process CPU per product (the child's,
every thread; the sandbox's is the parent's), with the product pass, the price resolver
(``price_content``) and the price store (CPU of the calling thread), statements per product
and peak RSS. ``--per-product`` adds the same full sync with the one-product-at-a-time store
into a fresh database, and prints the ratios. On SQLite the full sync runs without the write
triggers (they would double SQLite's work), so its rows written show as "-".

    .venv/bin/python bench/sync_bench.py --products 2000 --latencies 0 --per-product
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PARTNER_ID = 9258
SIGN_KEY = "zzy-sandbox-signkey"
TABLES = (
    "products",
    "quarantined_products",
    "price_rules",
    "daily_prices",
    "sessions",
    "changes",
    "sync_runs",
)


def _row_versions(engine: Any) -> dict[str, set[tuple[str, str]]]:
    import sqlalchemy as sa

    with engine.connect() as connection:
        return {
            t: {
                tuple(r)
                for r in connection.execute(sa.text(f"SELECT ctid::text, xmin::text FROM {t}"))
            }
            for t in TABLES
        }


def _install_triggers(engine: Any) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS bench_writes (tbl TEXT)")
        for table in TABLES:
            for op in ("INSERT", "UPDATE", "DELETE"):
                connection.exec_driver_sql(
                    f"CREATE TRIGGER IF NOT EXISTS bw_{table}_{op} AFTER {op} ON {table} "
                    f"BEGIN INSERT INTO bench_writes VALUES ('{table}'); END"
                )
        connection.exec_driver_sql("DELETE FROM bench_writes")


def _sqlite_writes(engine: Any) -> dict[str, int]:
    """Rows inserted, updated or deleted per table since the triggers were installed."""
    with engine.connect() as connection:
        counted = connection.exec_driver_sql("SELECT tbl, count(*) FROM bench_writes GROUP BY tbl")
        return {str(table): int(n) for table, n in counted}


def _peak_rss_mb() -> float:
    """This process's RSS high-water mark (VmHWM, which exec resets; ru_maxrss would carry the
    parent's, since Linux keeps it across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _time_calls(module: Any, *names: str) -> list[float]:
    """Wrap functions of ``module`` to sum the CPU time of the calling thread spent in them."""
    spent = [0.0]

    def timed(call: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            begun = time.thread_time()
            try:
                return call(*args, **kwargs)
            finally:
                spent[0] += time.thread_time() - begun

        return wrapper

    for name in names:
        if hasattr(module, name):  # the store's internals change; time what exists
            setattr(module, name, timed(getattr(module, name)))
    return spent


def run_phase(args: argparse.Namespace) -> dict[str, Any]:
    """One phase in this (child) process; returns its measurements."""
    import httpx

    from models.db import make_engine, make_session_factory
    from worker.startup import tune_gc
    from worker.supplier.client import SupplierClient
    from worker.supplier.transport import StdlibTransport
    from worker.sync.prices import refresh_many
    from worker.sync.products import sync_products

    engine = make_engine(args.database_url)
    sessions = make_session_factory(engine)
    is_sqlite = engine.dialect.name == "sqlite"
    # Triggers would double SQLite's work in the CPU figure: a full sync runs without them.
    count_writes = not is_sqlite or args.count_writes
    before: dict[str, set[tuple[str, str]]] = {}
    if is_sqlite and count_writes:
        _install_triggers(engine)
    elif count_writes:
        before = _row_versions(engine)
    transport = StdlibTransport()  # as SupplierClient.from_settings builds it
    client = SupplierClient(
        httpx.Client(base_url=args.url, timeout=30.0, transport=transport),
        partner_id=PARTNER_ID,
        sign_key=SIGN_KEY,
        page_size=args.page_size,
        price_concurrency=args.concurrency,
        direct=transport,
    )
    import sqlalchemy as sa

    import worker.sync.prices as prices_module

    statements = [0]

    @sa.event.listens_for(engine, "before_cursor_execute")
    def count(*_: Any) -> None:
        statements[0] += 1

    resolver_cpu = _time_calls(prices_module, "price_content")
    store_cpu = _time_calls(prices_module, "_store_batch", "_store")
    options: dict[str, Any] = {"batched": False} if args.per_product else {}
    statements[0] = 0
    tune_gc()  # as `catalog-sync sync` and each Celery worker process do
    rss_before = _peak_rss_mb()
    cpu_started = time.process_time()
    started = time.perf_counter()
    result = sync_products(sessions, client)
    pass_s = time.perf_counter() - started
    pass_cpu_s = time.process_time() - cpu_started
    prices = refresh_many(sessions, client, result.price_due, window_days=args.window, **options)
    total_s = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    rss_peak = _peak_rss_mb()
    by_table: dict[str, int] | None = None
    if is_sqlite and count_writes:
        by_table = _sqlite_writes(engine)
    elif count_writes:
        after = _row_versions(engine)
        by_table = {t: len(after[t] - before[t]) for t in TABLES}  # new row versions
    client.close()
    engine.dispose()
    return {
        "outcome": result.outcome,
        "pages": result.pages,
        "seen": result.seen,
        "price_calls": prices.refreshed + prices.errors,
        "requests": client.requests_sent,
        "pass_s": pass_s,
        "seconds": total_s,
        "rows_written": None if by_table is None else sum(by_table.values()),
        "rows_written_by_table": by_table,
        "cpu_s": cpu_s,
        "pass_cpu_s": pass_cpu_s,
        "resolver_cpu_s": resolver_cpu[0],
        "store_cpu_s": store_cpu[0],
        "statements": statements[0],
        "rss_peak_mb": rss_peak,
        "rss_growth_mb": rss_peak - rss_before,
    }


def run_child(
    url: str,
    database_url: str,
    *,
    window: int = 60,
    concurrency: int = 8,
    page_size: int = 100,
    per_product: bool = False,
    count_writes: bool = False,
) -> dict[str, Any]:
    """One full or incremental sync (whatever the database holds decides) in a child process,
    so its CPU and peak RSS are its own; raises ``RuntimeError`` with its stderr on failure."""
    command = [
        sys.executable, __file__, "--phase", "--url", url, "--database-url", database_url,
        "--window", str(window), "--concurrency", str(concurrency),
        "--page-size", str(page_size), *(["--per-product"] if per_product else []),
        *(["--count-writes"] if count_writes else []),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"sync child exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    measured: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured


def _child(
    args: argparse.Namespace,
    url: str,
    database_url: str,
    *,
    per_product: bool = False,
    count_writes: bool = False,
) -> dict[str, Any]:
    return run_child(
        url,
        database_url,
        window=args.window,
        concurrency=args.concurrency,
        page_size=args.page_size,
        per_product=per_product,
        count_writes=count_writes,
    )


def fresh_database(database_url: str | None, folder: Path, latency: float) -> str:
    """A migrated, empty catalog: a new SQLite file in ``folder``, or ``database_url`` emptied."""
    import sqlalchemy as sa

    from models.base import Base
    from models.db import make_engine, upgrade

    url = database_url or f"sqlite:///{folder / f'bench-{int(latency)}ms.db'}"
    engine = make_engine(url)
    upgrade(engine)
    if engine.dialect.name == "postgresql":
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with engine.begin() as connection:
            connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument(
        "--latencies", default="0,50", help="supplier latency in ms, comma-separated"
    )
    parser.add_argument("--window", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=8, help="price calls in flight")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file per run")
    parser.add_argument(
        "--per-product",
        action="store_true",
        help="also run the full sync storing one product at a time",
    )
    parser.add_argument("--phase", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--count-writes", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args)))
        return

    from supplier_sandbox.server import SandboxConfig, start_sandbox

    rows: list[tuple[float, dict[str, Any], dict[str, Any]]] = []
    baseline: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="sync-bench-") as folder:
        for latency in (float(x) for x in args.latencies.split(",")):
            config = SandboxConfig(
                products=args.products, seed=1, latency_ms=latency, max_page_size=args.page_size
            )
            with start_sandbox(config) as sandbox:
                database_url = fresh_database(args.database_url, Path(folder), latency)
                print(f"latency {latency:.0f} ms: full sync ...", file=sys.stderr, flush=True)
                full = _child(args, sandbox.url, database_url)
                print(
                    f"latency {latency:.0f} ms: incremental pass ...", file=sys.stderr, flush=True
                )
                incremental = _child(args, sandbox.url, database_url, count_writes=True)
                if args.per_product and latency == 0 and baseline is None:
                    print("latency 0 ms: full sync, per product ...", file=sys.stderr, flush=True)
                    database_url = fresh_database(args.database_url, Path(folder), -1)
                    baseline = _child(args, sandbox.url, database_url, per_product=True)
            rows.append((latency, full, incremental))
    _print_table(args, rows)
    _print_cpu(args, rows, baseline)


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _cpu_line(name: str, m: dict[str, Any], products: int) -> str:
    return (
        f"{name:<22} | {1000 * m['cpu_s'] / products:6.2f} | "
        f"{1000 * m['pass_cpu_s'] / products:6.2f} | "
        f"{1000 * m['resolver_cpu_s'] / products:6.2f} ({m['resolver_cpu_s'] / m['cpu_s']:4.0%}) | "
        f"{1000 * m['store_cpu_s'] / products:6.2f} ({m['store_cpu_s'] / m['cpu_s']:4.0%}) | "
        f"{m['statements'] / products:6.2f} | {m['rss_peak_mb']:6.1f}"
    )


def _print_cpu(
    args: argparse.Namespace,
    rows: list[tuple[float, dict[str, Any], dict[str, Any]]],
    baseline: dict[str, Any] | None,
) -> None:
    full = next((f for latency, f, _ in rows if latency == 0), None)
    if full is None:
        return
    n = args.products
    header = (
        "full sync at 0 ms        | CPU ms/product | of it product pass | of it resolver (share) | "
        "of it price store (share) | "
        "statements/product | peak RSS MB"
    )
    print(f"\n{header}\n{'-' * len(header)}")
    print(_cpu_line("batched (default)", full, n))
    if baseline is not None:
        print(_cpu_line("per product", baseline, n))
        print(
            f"\nfull_sync_cpu_ms_per_product {1000 * full['cpu_s'] / n:.2f} "
            f"(per product: {1000 * baseline['cpu_s'] / n:.2f}, "
            f"ratio {baseline['cpu_s'] / full['cpu_s']:.2f}x cheaper); statements "
            f"{baseline['statements'] / max(full['statements'], 1):.1f}x fewer"
        )


def _print_table(
    args: argparse.Namespace, rows: list[tuple[float, dict[str, Any], dict[str, Any]]]
) -> None:
    pages = math.ceil(args.products / args.page_size)
    backend = "PostgreSQL" if args.database_url and "postgres" in args.database_url else "SQLite"
    print(
        f"\n{args.products} products, {args.window}-day window, page size {args.page_size}, "
        f"{args.concurrency} price calls in flight, {backend}, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs\n"
    )
    header = (
        "latency | phase       | outcome | requests | minimum | req/min | wall s | pass s | "
        "rows written | peak RSS MB (+growth) | incr/full time"
    )
    print(header)
    print("-" * len(header))
    for latency, full, incr in rows:
        for name, m, minimum in (
            ("full", full, pages + args.products),
            ("incremental", incr, pages),
        ):
            ratio = f"{incr['seconds'] / full['seconds']:.4f}" if name == "incremental" else ""
            print(
                f"{latency:5.0f}ms | {name:<11} | {m['outcome']:<7} | {m['requests']:8d} | {minimum:7d} | "
                f"{m['requests'] / minimum:7.3f} | {m['seconds']:6.2f} | {m['pass_s']:6.2f} | "
                f"{_count(m['rows_written']):>12} | {m['rss_peak_mb']:8.1f} (+{m['rss_growth_mb']:.1f}){'':>7} | {ratio}"
            )


if __name__ == "__main__":
    main()
