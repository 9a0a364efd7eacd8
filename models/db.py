"""Engines, sessions and schema upgrades. Nothing here runs at import time.

Migrations run once however many processes start together: ``ensure_schema`` takes a lock
first (a PostgreSQL advisory lock; a file lock beside a SQLite database), checks the revision
again under it, and only then upgrades. The others wait on the lock and find the head.
"""

from __future__ import annotations

import contextlib
import logging
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock, Timeout
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK_KEY = zlib.crc32(b"catalog-sync:migrations")
MIGRATION_LOCK_WAIT_S = 300.0

log = logging.getLogger(__name__)


class SchemaError(Exception):
    """The database is not at the revision this code needs; the message says what to do."""


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout, and its folder made."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        options.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        # Pooled (SQLAlchemy's default for a file): a connection opened per transaction ran the
        # pragmas each time, and closing the last one checkpointed the WAL, about five fsyncs
        # per commit where one is enough (a product pass commits once per page). No cap: a
        # thread never waits for a connection, as it never did.
        if "poolclass" not in options:
            options.setdefault("max_overflow", -1)
        engine = create_engine(url, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    options.setdefault("pool_pre_ping", True)
    if "poolclass" not in options:
        options.setdefault("pool_size", 5)
        options.setdefault("max_overflow", 10)
        options.setdefault("pool_timeout", 5)
    if parsed.get_backend_name() == "postgresql":
        # A stuck database must fail fast, not hang a callback worker.
        options.setdefault("connect_args", {"connect_timeout": 3})
    return create_engine(url, **options)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: an acknowledged callback must survive a power cut, not only a crashed process.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose lifecycle the caller owns (``with factory.begin() as session``)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Undo migrations down to ``revision``."""
    command.downgrade(alembic_config(engine), revision)


@contextlib.contextmanager
def _quiet_alembic() -> Iterator[None]:
    """Reading the revision is not news: alembic's "Context impl" lines stay out of the logs."""
    logger = logging.getLogger("alembic.runtime.migration")
    previous = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


def script_directory(engine: Engine) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(engine))


def current_revisions(engine: Engine) -> set[str]:
    """The revisions the database is at (empty for a new database)."""
    with _quiet_alembic(), engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def head_revisions(engine: Engine) -> set[str]:
    return set(script_directory(engine).get_heads())


def is_current(engine: Engine) -> bool:
    return current_revisions(engine) == head_revisions(engine)


def is_at_or_above(engine: Engine, revision: str) -> bool:
    """True when ``revision`` is the database's revision or one of its ancestors."""
    script = script_directory(engine)
    wanted = script.get_revision(revision)  # raises for an unknown revision
    if wanted is None:
        return True  # "base"
    for current in current_revisions(engine):
        if any(r.revision == wanted.revision for r in script.iterate_revisions(current, "base")):
            return True
    return False


@contextlib.contextmanager
def migration_lock(engine: Engine, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the one lock every process takes before migrating this database."""
    name = engine.dialect.name
    database = engine.url.database
    if name == "sqlite" and database and database != ":memory:":
        lock = FileLock(f"{database}.migrate.lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if on_wait is not None:
                on_wait()
            lock.acquire(timeout=MIGRATION_LOCK_WAIT_S)
        try:
            yield
        finally:
            lock.release()
        return
    if name == "postgresql":
        with engine.connect() as connection:
            key = {"key": MIGRATION_LOCK_KEY}
            taken = connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), key)
            if not taken:
                if on_wait is not None:
                    on_wait()
                connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
                connection.commit()
        return
    yield


def ensure_schema(engine: Engine, *, migrate: bool = True) -> None:
    """Bring the database to head, once across processes; raise ``SchemaError`` when it cannot.

    With ``migrate=False`` it only checks (for read-only commands that must not change a database).
    """
    if is_current(engine):
        return
    current, heads = current_revisions(engine), head_revisions(engine)
    unknown = {r for r in current if not _is_known(engine, r)}
    if unknown:
        raise SchemaError(
            f"the database is at revision {', '.join(sorted(unknown))}, which this version does "
            "not know (a newer release migrated it): run that release, or downgrade with it"
        )
    if not migrate:
        raise SchemaError(
            f"the database is at revision {', '.join(sorted(current)) or 'none'}, not "
            f"{', '.join(sorted(heads))}: run `catalog-sync db upgrade`"
        )

    def waiting() -> None:
        log.warning("waiting for another process to finish migrating the database")

    with migration_lock(engine, on_wait=waiting):
        if not is_current(engine):  # another process may have finished while we waited
            log.info("migrating the database to %s", ", ".join(sorted(heads)))
            upgrade(engine)


def _is_known(engine: Engine, revision: str) -> bool:
    try:
        return script_directory(engine).get_revision(revision) is not None
    except Exception:  # alembic raises its own errors for unknown ids
        return False
