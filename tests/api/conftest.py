"""Fixtures for the read API: an app on a migrated database (SQLite and PostgreSQL), a client,
and sessions to arrange rows with."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from builders import T0, api_settings
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from catalog_api.app import create_app
from models.base import Base


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """As the shared fixture, but emptying PostgreSQL with a plain engine: the shared one passes
    ``poolclass=NullPool`` to ``make_engine``, which then rejects its own pool_size default."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "catalog.db"
        target.write_bytes(template.read_bytes())
        yield f"sqlite:///{target}"
        return
    url: str = request.getfixturevalue("pg_database_url")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


class Clock:
    """A settable clock for the app."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def app(database_url: str, clock: Clock, settings_overrides: dict[str, Any]) -> Iterator[Flask]:
    app = create_app(api_settings(database_url, **settings_overrides), clock=clock)
    yield app
    app.extensions["catalog_api"].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def arrange(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed when the test's ``with arrange.begin()`` block ends
    (or explicitly with ``arrange.commit()``)."""
    with session_factory() as session:
        yield session
