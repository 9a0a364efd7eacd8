"""Fixtures for the sync tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import sqlite_url_for

from models.base import Base
from worker.client import SupplierClient

from .helpers import make_client


@pytest.fixture
def supplier(sandbox: Any) -> Iterator[SupplierClient]:
    client = make_client(sandbox.url)
    yield client
    client.close()


def _truncate(url: str) -> None:
    # models.db.make_engine adds pool sizes, which NullPool refuses: a plain engine here.
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """tests/conftest.py's fixture, with the PostgreSQL truncation that works with make_engine."""
    if request.param == "sqlite":
        yield sqlite_url_for(request.getfixturevalue("sqlite_template"), tmp_path)
        return
    url: str = request.getfixturevalue("pg_database_url")
    _truncate(url)
    yield url


@pytest.fixture
def pg_url(pg_database_url: str) -> str:
    _truncate(pg_database_url)
    return pg_database_url
