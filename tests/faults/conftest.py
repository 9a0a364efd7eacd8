"""Fixtures of the fault suite: a private PostgreSQL cluster and a private Redis (both killed and
restarted by the tests, so never the shared ones), a fresh database per test, the sandbox.

A missing ``initdb`` or ``redis-server`` skips locally and fails under CI=true.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_engine, make_session_factory, upgrade
from tests.support.servers import PrivatePostgres, PrivateRedis
from tests.support.settings import service_missing


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in item.nodeid:
            item.add_marker(pytest.mark.faults)


@pytest.fixture(autouse=True)
def _keep_the_celery_app() -> Iterator[None]:
    """The tests here make Celery apps on the private Redis (removed at the end of the session);
    later tests must not find one of those as the process's current app."""
    import worker.celery_app

    before = worker.celery_app._app
    yield
    with worker.celery_app._lock:
        worker.celery_app._app = before


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of the suite's own, on a free port."""
    try:
        server = PrivatePostgres()
        server.start()
    except (FileNotFoundError, RuntimeError, OSError, KeyError) as exc:
        service_missing("a private PostgreSQL (initdb)", exc)
    yield server
    server.stop()
    server.remove()


@pytest.fixture(scope="session")
def private_redis() -> Iterator[PrivateRedis]:
    """A redis-server of the suite's own, on a free port."""
    try:
        server = PrivateRedis()
        server.start()
    except (FileNotFoundError, RuntimeError, OSError) as exc:
        service_missing("a private Redis (redis-server)", exc)
    yield server
    server.remove()


@pytest.fixture
def fault_db(private_pg: PrivatePostgres) -> Iterator[str]:
    """A fresh, migrated database on the private cluster."""
    name = f"faults_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(private_pg.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = private_pg.url(name)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    admin.dispose()
    yield url
    admin = sa.create_engine(
        private_pg.admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def fault_sessions(fault_db: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(fault_db, pool_pre_ping=True)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def fault_redis(private_redis: PrivateRedis) -> Iterator[PrivateRedis]:
    """The private Redis, running and empty."""
    if not private_redis.answers():
        private_redis.start()
    private_redis.flush()
    yield private_redis
    if not private_redis.answers():
        private_redis.start()


@pytest.fixture
def fault_sandbox(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The sandbox supplier in this process (its catalog is the truth); parametrize indirectly
    with a ``SandboxConfig`` to change it."""
    from supplier_sandbox.server import SandboxConfig, start_sandbox

    config = getattr(request, "param", None) or SandboxConfig(products=150, seed=13)
    running = start_sandbox(config)
    yield running
    running.stop()
