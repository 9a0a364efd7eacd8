"""Fixtures for the read API: an app on a migrated database (SQLite and PostgreSQL), a client,
and sessions to arrange rows with."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from catalog_api.app import create_app
from tests.support.builders import T0, api_settings


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
