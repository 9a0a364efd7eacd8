"""Benchmark the callback receiver under gunicorn with PostgreSQL and Redis; prints one table.

    .venv/bin/python bench/callbacks_bench.py
    .venv/bin/python bench/callbacks_bench.py --requests 3000 --concurrency 16 --workers 4

1. Intake: signed, distinct notifications POSTed to ``callbacks.app:create_app()`` (verify,
   commit to the inbox, publish to Redis, reply), next to a bare Flask endpoint that reads the
   body and returns the same JSON, on the same gunicorn config in the same run (the ceiling).
2. Notice to refreshed row: the sandbox (50 ms latency per supplier call) edits a product or
   its prices and sends the signed notice; a Celery worker (the Procfile's) processes it; we
   time from the edit to the catalog row changing (Version moved / prices_refreshed_at moved).

Everything is loopback; request counts are bounded. Needs PostgreSQL (TEST_DATABASE_URL,
default postgresql+psycopg://postgres@127.0.0.1:5432/test: a scratch database is created and
dropped) and Redis (TEST_REDIS_URL: a free database number 1-15 is reserved for the run).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PARTNER_ID = 9258
SIGN_KEY = "zzy-sandbox-signkey"
PATH = "/callbacks/zzy"
BIN = Path(sys.executable).parent
SUCCESS = {"Code": 1000, "IsSuccess": True, "LogId": "", "Message": "收到通知"}


def bare_app() -> Any:
    """The ceiling: a Flask endpoint that reads the body and answers the success envelope."""
    from flask import Flask, jsonify, request

    app = Flask("bare")

    @app.post(PATH)
    def bare() -> Any:
        request.get_data()
        return jsonify(SUCCESS)

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify({"database": "ok"})

    return app


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_up(url: str, timeout_s: float = 30, process: Any = None, errors: Any = None) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            said = ""
            if errors is not None:
                errors.seek(0)
                said = errors.read()[-2000:]
            raise RuntimeError(f"{url}: exited {process.returncode} before answering: {said}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def procfile_options(process: str = "web") -> list[str]:
    """The gunicorn options of a Procfile line, defaults filled in, without its bind and app:
    the benchmark serves both endpoints exactly as production serves the receiver."""
    line = next(
        raw.split(":", 1)[1]
        for raw in (ROOT / "Procfile").read_text().splitlines()
        if raw.startswith(f"{process}:")
    )
    line = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", line)  # ${WEB_THREADS:-16} -> 16
    words = shlex.split(line)
    words = words[words.index("gunicorn") + 1 : -1]  # drop any env prefix and the app
    options: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in ("--bind", "-b"):
            skip = True
        else:
            options.append(word)
    return options


@contextmanager
def gunicorn(target: str, env: dict[str, str], options: list[str] | None = None) -> Iterator[str]:
    """Serve ``target`` on a free loopback port with ``options`` (default: the Procfile's web)."""
    port = _free_port()
    command = [
        str(BIN / "gunicorn"),
        *(procfile_options() if options is None else options),
        "--bind",
        f"127.0.0.1:{port}",
        target,
    ]
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errors, text=True
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_up(url, process=process, errors=errors)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def celery_worker(env: dict[str, str], concurrency: int) -> Iterator[None]:
    command = [
        str(BIN / "celery"),
        "-A",
        "worker.celery_app",
        "worker",
        "--loglevel",
        "WARNING",
        "--concurrency",
        str(concurrency),
    ]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def _bodies(count: int, run_id: int) -> list[bytes]:
    bodies = []
    for n in range(count):
        body = {
            "TicketStatus": 1,
            "OriginOrderId": f"bench-{run_id}-{n}",
            "OrderId": run_id * 1_000_000 + n,
            "VoucherCode": [f"V{n}"],
            "OrderTotal": 2,
            "CheckedNumber": 1,
            "VoucherType": 1,
        }
        envelope = {
            "OrderNotifyHeader": {
                "PartnerId": PARTNER_ID,
                "NotifyServiceName": "order_verify_notify",
            },
            "OrderNotifyBody": json.dumps(body),
        }
        bodies.append(json.dumps(envelope).encode())
    return bodies


def load(url: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float], int]:
    """POST every body (signed now) with ``concurrency`` threads; (req/s, latencies ms, errors)."""
    import httpx

    from worker.supplier.signing import auth_headers

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    queue = list(reversed(bodies))
    last_stamp = [0]

    def next_stamp() -> int:
        # The signature covers PartnerId + Timestamp + path, not the body: two order notices
        # signed in the same millisecond share it, and the second is held for an operator.
        # A supplier sends one at a time; give each request its own millisecond.
        with lock:
            last_stamp[0] = max(int(time.time() * 1000), last_stamp[0] + 1)
            return last_stamp[0]

    def worker() -> None:
        nonlocal errors
        with httpx.Client(timeout=10, trust_env=False) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                headers = auth_headers(PARTNER_ID, SIGN_KEY, PATH, next_stamp())
                headers["Content-Type"] = "application/json"
                started = time.perf_counter()
                try:
                    ok = client.post(url + PATH, content=body, headers=headers).status_code == 200
                except httpx.HTTPError:
                    ok = False
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    errors += 0 if ok else 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(bodies) / (time.perf_counter() - started), latencies, errors


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def scratch_pg(admin_url: str) -> tuple[str, Callable[[], None]]:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from models.db import make_engine, upgrade

    name = f"callbacks_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def reserve_redis(base_url: str) -> tuple[str, Callable[[], None]]:
    import redis

    host_port = base_url.split("://", 1)[1].split("/", 1)[0]
    token = uuid.uuid4().hex
    for db in range(1, 16):
        client = redis.Redis.from_url(f"redis://{host_port}/{db}")
        if client.set("catalog-test:owner", token, nx=True, ex=3600):

            def release(client: Any = client) -> None:
                client.flushdb()
                client.close()

            return f"redis://{host_port}/{db}", release
        client.close()
    raise RuntimeError("no free Redis database (1-15)")


def notice_latency(
    sandbox: Any,
    sessions: Any,
    products: list[int],
    kind: str,
    timeout_s: float = 20,
) -> list[float]:
    """Edit each product in the sandbox with a notice; ms until our catalog row reflects it."""
    from sqlalchemy import select

    from models.catalog import Product

    def stamp(pid: int) -> Any:
        with sessions() as session:
            column = Product.version if kind == "product" else Product.prices_refreshed_at
            return session.scalar(select(column).where(Product.product_id == pid))

    results = []
    for pid in products:
        before = stamp(pid)
        started = time.perf_counter()
        if kind == "product":
            sandbox.state.catalog.bump_version(pid, {"ProductName": f"edited {pid}"}, notify=True)
        else:
            sandbox.state.catalog.reprice(pid, delta="1.00", notify=True)
        deadline = time.monotonic() + timeout_s
        while stamp(pid) == before:
            if time.monotonic() > deadline:
                from models.inbox import InboxMessage

                with sessions() as session:
                    rows = session.scalars(
                        select(InboxMessage).where(InboxMessage.subject == f"product:{pid}")
                    ).all()
                    seen = [(r.id, r.status, r.attempts, r.last_error) for r in rows]
                raise RuntimeError(
                    f"product {pid}: no {kind} refresh within {timeout_s}s; inbox {seen}"
                )
            time.sleep(0.005)
        results.append((time.perf_counter() - started) * 1000)
    return results


def service_env(sandbox_url: str, pg_url: str, redis_url: str) -> dict[str, str]:
    """The environment of the receiver and the worker: sandbox, scratch database, Redis db."""
    return {
        **os.environ,
        "ZZY_BASE_URL": sandbox_url,
        "ZZY_PARTNER_ID": str(PARTNER_ID),
        "ZZY_SIGN_KEY": SIGN_KEY,
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "SUPPLIER_RATE_LIMIT": "1000",
        "SUPPLIER_BURST": "100",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def _summary(rate: float, latencies: list[float], errors: int) -> dict[str, float]:
    return {
        "rate": rate,
        "p50_ms": pct(latencies, 0.5),
        "p99_ms": pct(latencies, 0.99),
        "errors": errors,
    }


def measure_intake(
    env: dict[str, str], requests: int, concurrency: int, options: list[str] | None = None
) -> dict[str, dict[str, float]]:
    """The bare Flask ceiling and the callback intake on one gunicorn config, one after the
    other in the same run: ``{"bare": {...}, "intake": {...}}`` with rate, p50/p99 ms, errors."""
    run_id = int(time.time()) % 1000
    measured = {}
    for label, target in (
        ("bare", "bench.callbacks_bench:bare_app()"),
        ("intake", "callbacks.app:create_app()"),
    ):
        with gunicorn(target, env, options) as url:
            load(url, _bodies(100, run_id + 1), concurrency)  # warm-up
            measured[label] = _summary(*load(url, _bodies(requests, run_id), concurrency))
    return measured


def measure_notices(
    sandbox: Any,
    env: dict[str, str],
    pg_url: str,
    notices: int,
    price_notices: int,
    latency_ms: float,
    options: list[str] | None = None,
    worker_concurrency: int = 4,
) -> dict[str, list[float]]:
    """Product and price notices, one at a time, from the sandbox's edit to the refreshed row
    (ms), through the receiver under gunicorn and a Celery worker; the sandbox must hold at
    least ``notices + price_notices + 2`` products."""
    from models.db import make_engine, make_session_factory
    from worker.runtime import build_runtime
    from worker.settings import Settings
    from worker.sync.prices import refresh_prices
    from worker.sync.products import sync_one_product

    settings = Settings(
        zzy_base_url=sandbox.url,
        zzy_partner_id=PARTNER_ID,
        zzy_sign_key=SIGN_KEY,  # type: ignore[arg-type]
        database_url=pg_url,
        redis_url=None,
        supplier_rate_limit=1000.0,
        supplier_burst=100,
    )
    runtime = build_runtime(settings)
    products = sandbox.state.catalog.authorized_ids()[: notices + price_notices + 2]
    by_product = products[:notices]
    by_price = products[notices : notices + price_notices]
    warm = products[notices + price_notices :]
    for pid in products:
        sync_one_product(runtime.sessions, runtime.supplier, pid)
    for pid in by_price + warm:
        refresh_prices(runtime.sessions, runtime.supplier, pid)
    runtime.close()
    sandbox.state.update_settings({"latency_ms": latency_ms})
    engine = make_engine(pg_url)
    sessions = make_session_factory(engine)
    try:
        with (
            celery_worker(env, worker_concurrency),
            gunicorn("callbacks.app:create_app()", env, options) as url,
        ):
            sandbox.state.update_settings({"callback_url": url + PATH})
            time.sleep(3)  # let the worker connect
            notice_latency(sandbox, sessions, warm[:1], "product")  # worker children warm up
            notice_latency(sandbox, sessions, warm[1:], "prices")
            time.sleep(1)
            product_ms = notice_latency(sandbox, sessions, by_product, "product")
            price_ms = notice_latency(sandbox, sessions, by_price, "prices")
    finally:
        engine.dispose()
    return {"product_ms": product_ms, "price_ms": price_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--workers", type=int, default=None, help="gunicorn workers (default: the Procfile's)"
    )
    parser.add_argument("--notices", type=int, default=20, help="per kind (product, prices)")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()

    from supplier_sandbox.server import SandboxConfig, start_sandbox

    options = procfile_options()
    if args.workers is not None:
        at = options.index("--workers")
        options[at + 1] = str(args.workers)
    pg_url, drop_pg = scratch_pg(
        os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    )
    redis_url, release_redis = reserve_redis(
        os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    sandbox = start_sandbox(SandboxConfig(products=max(60, 2 * args.notices + 2), seed=3))
    env = service_env(sandbox.url, pg_url, redis_url)
    try:
        intake = measure_intake(env, args.requests, args.concurrency, options)
        notices = measure_notices(
            sandbox, env, pg_url, args.notices, args.notices, args.latency_ms, options
        )
    finally:
        sandbox.stop()
        release_redis()
        drop_pg()

    print()
    print(
        f"Callback intake: gunicorn {' '.join(options)}, PostgreSQL + Redis, "
        f"{args.requests} requests, {args.concurrency} concurrent clients, loopback"
    )
    print(f"{'endpoint':<22} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for label, key in (("bare Flask (ceiling)", "bare"), ("callback intake", "intake")):
        m = intake[key]
        print(
            f"{label:<22} {m['rate']:>8,.0f} {m['p50_ms']:>8.1f} {m['p99_ms']:>8.1f} "
            f"{m['errors']:>7.0f}"
        )
    print(f"intake / ceiling: {intake['intake']['rate'] / intake['bare']['rate']:.0%}")
    print()
    print(
        f"Notice -> refreshed catalog row: sandbox latency {args.latency_ms:.0f} ms, "
        f"Celery worker (prefork 4), {args.notices} notices per kind, one at a time"
    )
    print(f"{'notice':<28} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for label, values in (
        ("status 2 -> product row", notices["product_ms"]),
        ("status 3 -> price calendar", notices["price_ms"]),
    ):
        print(
            f"{label:<28} {pct(values, 0.5):>8.0f} {pct(values, 0.99):>8.0f} "
            f"{statistics.mean(values):>8.0f}"
        )


if __name__ == "__main__":
    main()
