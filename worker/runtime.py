"""Per-process resources (engine, sessions, supplier client, Redis, rate limiter, coalescer).

``build_runtime`` is the one place that asks "is there Redis?": the rate limiter, the coalescer
and (``Runtime.pass_lock``) the pass lock follow from that single answer.

Built lazily at a composition root (a Celery worker process after fork, the CLI, an app
factory), never at import. Tests build their own with ``build_runtime`` and ``set_runtime``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from models.db import ensure_schema, make_engine, make_session_factory
from worker.coalesce import Coalescer, LocalCoalescer, RedisCoalescer
from worker.locks import PassLock, lock_dir_for, pass_lock
from worker.settings import Settings, load_settings
from worker.startup import REDIS_TIMEOUTS
from worker.supplier.client import SupplierClient
from worker.supplier.ratelimit import FileRateLimiter, NoLimit, RateLimiter, RedisRateLimiter

RATE_LIMIT_KEY = "catalog-sync:supplier-rate"
# The background price refresh's own bucket (PRICE_REFRESH_SHARE of the limit), drawn on before
# the shared one: passes, notices and orders keep the rest.
BACKGROUND_RATE_LIMIT_KEY = "catalog-sync:supplier-rate:background"
# PostgreSQL: no statement of a worker runs, or waits on a lock, without bound (a task would
# hold its slot past its time limit). Milliseconds.
STATEMENT_TIMEOUT_MS = 60_000
LOCK_TIMEOUT_MS = 10_000


def worker_engine_options(url: str) -> dict[str, object]:
    """Engine options for a worker process: bounded statements and lock waits on PostgreSQL."""
    if not url.startswith("postgresql"):
        return {}
    options = f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS}"
    return {"connect_args": {"connect_timeout": 3, "options": options}}


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    supplier: SupplierClient
    redis: redis.Redis | None
    limiter: RateLimiter
    coalescer: Coalescer
    background_limiter: RateLimiter = field(default_factory=NoLimit)

    def pass_lock(self, *, ttl_s: float) -> PassLock:
        """The one-product-pass-at-a-time lock: in Redis when there is one, else a file."""
        return pass_lock(self.redis, lock_dir_for(self.settings.database_url), ttl_s=ttl_s)

    def close(self) -> None:
        self.supplier.close()
        self.engine.dispose()
        if self.redis is not None:
            self.redis.close()


def build_runtime(settings: Settings, *, upgrade_schema: bool = True) -> Runtime:
    """Connect everything ``settings`` names, bringing the schema to head (once, under a lock)."""
    engine = make_engine(settings.database_url, **worker_engine_options(settings.database_url))
    if upgrade_schema:
        ensure_schema(engine)
    client: redis.Redis | None = None
    limiter: RateLimiter
    coalescer: Coalescer
    background: RateLimiter
    background_rate = settings.supplier_rate_limit * settings.price_refresh_share
    # The one place that asks "is there Redis?": limiter, coalescer and (``pass_lock``) lock.
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url, **REDIS_TIMEOUTS)
        limiter = RedisRateLimiter(
            client, RATE_LIMIT_KEY, settings.supplier_rate_limit, settings.supplier_burst
        )
        coalescer = RedisCoalescer(client)
        background = RedisRateLimiter(
            client, BACKGROUND_RATE_LIMIT_KEY, background_rate, settings.supplier_burst
        )
    else:
        # Embedded: one budget for every process on this machine (see ``FileRateLimiter``).
        limiter = FileRateLimiter(
            lock_dir_for(settings.database_url) / "supplier-rate.state",
            settings.supplier_rate_limit,
            settings.supplier_burst,
        )
        coalescer = LocalCoalescer()
        background = FileRateLimiter(
            lock_dir_for(settings.database_url) / "supplier-rate-background.state",
            background_rate,
            settings.supplier_burst,
        )
    supplier = SupplierClient.from_settings(settings, rate_limiter=limiter)
    sessions = make_session_factory(engine)
    return Runtime(settings, engine, sessions, supplier, client, limiter, coalescer, background)


_lock = threading.Lock()
_runtime: Runtime | None = None
_pid: int | None = None


def get_runtime() -> Runtime:
    """This process's runtime, built from the environment on first use (and again after fork)."""
    global _runtime, _pid
    with _lock:
        if _runtime is None or _pid != os.getpid():
            _runtime = build_runtime(load_settings())
            _pid = os.getpid()
        return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Install (or clear) this process's runtime; for worker start-up hooks and tests."""
    global _runtime, _pid
    with _lock:
        _runtime = runtime
        _pid = os.getpid() if runtime is not None else None
