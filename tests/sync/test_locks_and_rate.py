"""Across workers, with real Redis: one product pass at a time, one supplier request budget."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from models.catalog import SyncRun
from tests.support.settings import make_settings
from tests.support.sync import make_client
from worker.celery_app import create_celery
from worker.locks import FileLock, RedisLock
from worker.runtime import build_runtime, set_runtime
from worker.supplier.ratelimit import RedisRateLimiter


def test_two_concurrent_product_passes_cannot_both_run(
    redis_client: redis.Redis, redis_url: str, sqlite_url: str, sandbox: Any
) -> None:
    from worker.tasks import _product_pass

    sandbox.state.update_settings({"latency_ms": 40, "max_page_size": 5})  # a pass takes ~0.3 s
    settings = make_settings(sandbox.url, sqlite_url, redis_url=redis_url)
    create_celery(settings)
    runtime = build_runtime(settings)
    set_runtime(runtime)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def run() -> None:
        barrier.wait()
        outcomes.append(_product_pass()["outcome"])

    try:
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(outcomes) == ["ok", "skipped"]
        assert _product_pass()["outcome"] == "ok"  # the lock was given back
        with runtime.sessions() as session:
            assert session.scalar(select(func.count()).select_from(SyncRun)) == 2
    finally:
        set_runtime(None)
        runtime.close()


def test_redis_lock_expires_and_a_late_release_does_not_free_the_next_holder(
    redis_client: redis.Redis,
) -> None:
    first = RedisLock(redis_client, "test:lock", ttl_s=0.2, renew=False)  # a holder that died
    second = RedisLock(redis_client, "test:lock", ttl_s=5)
    assert first.acquire() and not second.acquire()
    time.sleep(0.3)
    assert second.acquire()
    first.release()
    assert redis_client.exists("test:lock") == 1
    assert not RedisLock(redis_client, "test:lock").acquire()
    second.release()
    assert RedisLock(redis_client, "test:lock").acquire()


def test_a_live_redis_lock_holder_keeps_the_lock_past_its_ttl(redis_client: redis.Redis) -> None:
    holder = RedisLock(redis_client, "test:renewed", ttl_s=0.3)
    assert holder.acquire()
    time.sleep(1.0)  # three TTLs: only renewal keeps it
    assert not RedisLock(redis_client, "test:renewed").acquire()
    holder.release()
    assert RedisLock(redis_client, "test:renewed", renew=False).acquire()


def test_file_lock_admits_one_holder(tmp_path: Path) -> None:
    first, second = FileLock(tmp_path / "pass.lock"), FileLock(tmp_path / "pass.lock")
    assert first.acquire() and not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


@pytest.mark.parametrize("rate", [25.0])
def test_rate_budget_holds_across_two_workers(
    redis_url: str, redis_client: redis.Redis, sandbox: Any, rate: float
) -> None:
    per_worker = 20
    clients = []
    for _ in range(2):  # two workers: each its own Redis connection and limiter, one shared key
        limiter = RedisRateLimiter(
            redis.Redis.from_url(redis_url), "test:supplier-rate", rate, burst=1
        )
        clients.append(make_client(sandbox.url, rate_limiter=limiter))
    sandbox.state.traffic.reset_stats()
    barrier = threading.Barrier(2)

    def work(index: int) -> None:
        barrier.wait()
        for _ in range(per_worker):
            clients[index].get_product(10001)

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    elapsed = time.perf_counter() - started
    for client in clients:
        client.close()

    total = sandbox.state.traffic.stats()["total"]
    achieved = (total - 1) / elapsed  # the first request goes at once
    assert total == 2 * per_worker
    assert achieved <= rate * 1.05, f"{achieved:.1f} req/s over a budget of {rate}"
    assert achieved >= rate * 0.7, f"{achieved:.1f} req/s: the limiter is far stricter than {rate}"


def test_a_product_pass_holds_its_lock_for_pass_lock_ttl_s_not_its_time_limit(
    redis_client: redis.Redis,
    redis_url: str,
    sqlite_url: str,
    sandbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker killed during a pass leaves its lock to expire: the next pass waits at most
    PASS_LOCK_TTL_S (the lock is renewed while its holder lives), not the pass's time limit."""
    import worker.tasks
    from worker.locks import PASS_LOCK_KEY
    from worker.sync.products import PassResult

    settings = make_settings(sandbox.url, sqlite_url, redis_url=redis_url, pass_lock_ttl_s=7)
    create_celery(settings)
    runtime = build_runtime(settings)
    set_runtime(runtime)
    seen: list[int] = []

    def pass_that_looks(*_: Any, **__: Any) -> PassResult:
        seen.append(int(redis_client.pttl(PASS_LOCK_KEY)))
        return PassResult(run_id=1)

    monkeypatch.setattr(worker.tasks, "sync_products", pass_that_looks)
    try:
        worker.tasks._product_pass()
    finally:
        set_runtime(None)
        runtime.close()
    assert len(seen) == 1 and 0 < seen[0] <= 7000
