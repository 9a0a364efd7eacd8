"""Shared fixtures: real SQLite and PostgreSQL databases, real Redis, the supplier sandbox over HTTP.

Services are found at TEST_DATABASE_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test)
and TEST_REDIS_URL (default redis://127.0.0.1:6379/0). When one is missing its tests skip, except
under CI=true, where they fail: CI must never pass by skipping.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from models.base import Base
from models.db import make_engine, make_session_factory, upgrade
from tests.support.settings import (
    PG_ADMIN_URL,
    REDIS_BASE_URL,
    make_settings,
    service_missing,
)
from worker.settings import Settings

# --- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session, dropped at the end."""
    admin_url = make_url(PG_ADMIN_URL)
    name = f"catalog_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(
            admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        service_missing("PostgreSQL", exc)
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_all(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


# --- SQLite --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test copies it (faster than migrating every time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def sqlite_url_for(template: Path, tmp_path: Path) -> str:
    target = tmp_path / "catalog.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


# --- databases, either dialect -----------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        yield sqlite_url_for(request.getfixturevalue("sqlite_template"), tmp_path)
        return
    url: str = request.getfixturevalue("pg_database_url")
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    _truncate_all(engine)
    engine.dispose()
    yield url


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated, empty SQLite database (for tests that are not about the dialect)."""
    return sqlite_url_for(sqlite_template, tmp_path)


@pytest.fixture
def pg_url(pg_database_url: str) -> str:
    """The session's PostgreSQL database, emptied."""
    engine = make_engine(pg_database_url, poolclass=sa.pool.NullPool)
    _truncate_all(engine)
    engine.dispose()
    return pg_database_url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


# --- Redis ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis database number reserved for this test session (so parallel runs don't collide)."""
    base = make_url(REDIS_BASE_URL.replace("redis://", "redis+x://", 1))
    host, port = base.host or "127.0.0.1", base.port or 6379
    token = uuid.uuid4().hex
    chosen: int | None = None
    try:
        for db in range(1, 16):
            client = redis.Redis(host=host, port=port, db=db, socket_timeout=3)
            if client.set("catalog-test:owner", token, nx=True, ex=3600):
                chosen = db
                client.close()
                break
            client.close()
    except Exception as exc:
        service_missing("Redis", exc)
    if chosen is None:
        pytest.fail("no free Redis database (1-15) for this test session")
    url = f"redis://{host}:{port}/{chosen}"
    client = redis.Redis.from_url(url)
    for key in client.scan_iter():
        if key != b"catalog-test:owner":
            client.delete(key)
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the session's Redis database, emptied before each test (but the owner key)."""
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter():
        if key != b"catalog-test:owner":
            client.delete(key)
    yield client
    client.close()


# --- the supplier sandbox ------------------------------------------------------------------


@pytest.fixture
def sandbox_config() -> Any:
    """Override in a module to change the sandbox (size, page cap, latency)."""
    from supplier_sandbox.server import SandboxConfig

    return SandboxConfig(products=30, seed=7)


@pytest.fixture
def sandbox(sandbox_config: Any) -> Iterator[Any]:
    """A running sandbox supplier on a free loopback port."""
    from supplier_sandbox.server import start_sandbox

    running = start_sandbox(sandbox_config)
    yield running
    running.stop()


@pytest.fixture
def settings(sandbox: Any) -> Settings:
    return make_settings(sandbox.url)
