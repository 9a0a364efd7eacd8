"""Requests per second and latency of the catalog read API on a 10,000-product catalog.

Creates a scratch PostgreSQL database (dropped at the end), fills it with COPY, serves the API
with gunicorn on loopback, and drives it from a bounded loop of httpx clients, one per process.

    .venv/bin/python bench/api_bench.py [--admin-url URL] [--products 10000] [--requests 2000]
        [--clients 4] [--workers 4]
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.db import make_engine, upgrade  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CALENDAR_DAYS = 60
NULL = "\\N"  # COPY text format


@dataclass(frozen=True)
class Scenario:
    """A kind of request; picklable, so client processes can build the paths themselves."""

    name: str
    kind: str
    products: int
    first: date

    def path(self, rng: random.Random) -> str:
        product_id = rng.randrange(self.products)
        if self.kind == "list":
            return "/catalog/products?limit=100"
        if self.kind == "list_cursor":
            key = base64.urlsafe_b64encode(f"p:{product_id}".encode()).decode().rstrip("=")
            return f"/catalog/products?limit=100&cursor={key}"
        if self.kind == "list_filtered":
            return f"/catalog/products?limit=100&status=on_shelf&scenic_id={product_id % 200}"
        if self.kind == "calendar":
            last = self.first + timedelta(days=CALENDAR_DAYS - 1)
            return f"/catalog/products/{product_id}/calendar?from={self.first}&to={last}"
        if self.kind == "healthz":
            return "/healthz"
        return f"/catalog/products/{product_id}"


def scenarios(products: int, today: date) -> list[Scenario]:
    return [
        Scenario("list, first page (limit 100)", "list", products, today),
        Scenario("list, random cursor (limit 100)", "list_cursor", products, today),
        Scenario("list, status+scenic filter", "list_filtered", products, today),
        Scenario(f"calendar, {CALENDAR_DAYS} days", "calendar", products, today),
        Scenario("product detail", "detail", products, today),
        Scenario("healthz (no database: the floor)", "healthz", products, today),
    ]


# --- the scratch database ------------------------------------------------------------------


def create_database(admin_url: str) -> str:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"api_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            sa.text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
        )
    admin.dispose()


def _copy(connection: psycopg.Connection, table: str, columns: str, rows: Iterator[str]) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write(row)
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        copy.write(buffer.getvalue())


def fill(url: str, products: int, today: date) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    now = datetime.now(UTC).isoformat()
    rng = random.Random(7)
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq) as connection:
        _copy(
            connection,
            "products",
            "product_id, version, product_code, product_name, product_desc, product_status,"
            " scenic_id, scenic_spots, total_stock, booking_time, raw, content_hash,"
            " is_authorized, first_seen_at, last_seen_at, updated_at, prices_refreshed_at",
            (
                f"{pid}\t{rng.randrange(5)}\tP{pid}\tProduct {pid}\tA day ticket for spot"
                f" {pid % 200}\t{1 if pid % 10 else 0}\t{pid % 200}\tScenic {pid % 200}\t0\t17:30\t"
                f'{{"ProductId": {pid}}}\th{pid}\t{"f" if pid % 50 == 0 else "t"}\t{now}\t{now}'
                f"\t{now}\t{now}\n"
                for pid in range(products)
            ),
        )
        _copy(
            connection,
            "daily_prices",
            "product_id, day, price, sale_price, market_price, stock, booking_days",
            (
                f"{pid}\t{today + timedelta(days=d)}\t{80 + pid % 40}.00\t{95 + (pid + d) % 30}.50"
                f"\t{150 + pid % 50}.00\t{NULL if pid % 3 == 0 else 100 + d}\t{d % 3}\n"
                for pid in range(products)
                for d in range(CALENDAR_DAYS)
            ),
        )
        _copy(
            connection,
            "sessions",
            "product_id, day, start_time, end_time, seats_code, seats_num",
            (
                f"{pid}\t{today + timedelta(days=d)}\t{start}\t{end}\t{code}\t50\n"
                for pid in range(0, products, 5)
                for d in range(CALENDAR_DAYS)
                for start, end, code in (("09:00", "12:00", "AM"), ("13:00", "17:00", "PM"))
            ),
        )
        _copy(
            connection,
            "changes",
            "product_id, kind, version, created_at",
            (f"{pid}\tcreated\t0\t{now}\n" for pid in range(products)),
        )
        connection.execute("ANALYZE")


# --- the server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_gunicorn(url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        DATABASE_URL=url,
        ZZY_BASE_URL="http://127.0.0.1:9",  # required by the shared settings, never called
        ZZY_PARTNER_ID="1",
        ZZY_SIGN_KEY="unused-by-the-read-api",
        LOG_LEVEL="WARNING",
    )
    env.pop("CATALOG_API_TOKEN", None)
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "catalog_api.app:create_app()",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not come up")


# --- the load ------------------------------------------------------------------------------


def drive(base_url: str, scenario: Scenario, count: int, seed: int) -> tuple[list[float], int]:
    """One client: ``count`` sequential requests; returns latencies (s) and the error count."""
    rng = random.Random(seed)
    latencies: list[float] = []
    errors = 0
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for _ in range(count):
            path = scenario.path(rng)
            started = time.perf_counter()
            response = client.get(path)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                errors += 1
    return latencies, errors


def run(base_url: str, scenario: Scenario, requests: int, clients: int) -> dict[str, float]:
    per_client = requests // clients
    with ProcessPoolExecutor(clients) as pool:
        list(
            pool.map(
                drive, [base_url] * clients, [scenario] * clients, [20] * clients, range(clients)
            )
        )
        started = time.perf_counter()
        results = list(
            pool.map(
                drive,
                [base_url] * clients,
                [scenario] * clients,
                [per_client] * clients,
                range(100, 100 + clients),
            )
        )
        elapsed = time.perf_counter() - started
    latencies = sorted(x for lat, _ in results for x in lat)
    return {
        "requests": len(latencies),
        "errors": sum(e for _, e in results),
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_ADMIN_URL", DEFAULT_ADMIN_URL))
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2000, help="per scenario")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    args = parser.parse_args()

    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    url = create_database(args.admin_url)
    server: subprocess.Popen[bytes] | None = None
    try:
        started = time.perf_counter()
        fill(url, args.products, today)
        print(
            f"filled {args.products} products, {args.products * CALENDAR_DAYS} calendar days in"
            f" {time.perf_counter() - started:.1f}s; {os.cpu_count()} CPUs, server and load share them"
        )
        port = free_port()
        server = start_gunicorn(url, port, args.workers)
        base_url = f"http://127.0.0.1:{port}"
        print(f"gunicorn sync workers: {args.workers}; client processes: {args.clients}\n")
        header = f"{'scenario':34} {'requests':>8} {'errors':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
        print(header)
        print("-" * len(header))
        for scenario in scenarios(args.products, today):
            figures = run(base_url, scenario, args.requests, args.clients)
            print(
                f"{scenario.name:34} {figures['requests']:>8.0f} {figures['errors']:>6.0f}"
                f" {figures['rps']:>8.0f} {figures['p50']:>8.1f} {figures['p99']:>8.1f}"
            )
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        drop_database(args.admin_url, url)


if __name__ == "__main__":
    main()
