"""Many processes starting at once on a new database: migrations run once, under the lock."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from models.db import current_revisions, head_revisions, make_engine
from tests.support.ops import BIN, clean_env
from tests.support.settings import PG_ADMIN_URL, service_missing

STARTERS = 6


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database that nothing has migrated yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/fresh.db"
        return
    admin_url = make_url(PG_ADMIN_URL)
    name = f"catalog_fresh_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        service_missing("PostgreSQL", exc)
    yield admin_url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_processes_starting_together_migrate_once(fresh_database: str, tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=fresh_database)
    starters = [
        subprocess.Popen(
            [str(BIN / "catalog-sync"), "db", "upgrade"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(STARTERS)
    ]
    outputs = [starter.communicate(timeout=120)[0].decode() for starter in starters]
    assert [starter.returncode for starter in starters] == [0] * STARTERS, outputs
    assert sum("migrating the database to" in output for output in outputs) == 1, outputs
    engine = make_engine(fresh_database)
    try:
        assert current_revisions(engine) == head_revisions(engine)
    finally:
        engine.dispose()
