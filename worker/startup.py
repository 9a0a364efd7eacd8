"""Start-up checks shared by every process: settings, database (at head), Redis, broker.

Each failure becomes a ``StartupError`` whose one-line message names the variable and what to
do; ``explain`` turns the errors that escape later (a database that went away mid-command) into
the same kind of line. Entry points print that line and exit non-zero, without a traceback,
unless ``--debug`` (or ``CATALOG_SYNC_DEBUG=true``) asks for one.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from models.db import SchemaError, ensure_schema, make_engine
from worker.settings import ConfigError, Settings

REDIS_TIMEOUTS = {"socket_timeout": 5.0, "socket_connect_timeout": 2.0}

T = TypeVar("T")


# Young-generation collections every 10,000 allocations rather than CPython's 700.
GC_THRESHOLDS = (10_000, 20, 20)


def tune_gc() -> None:
    """Fewer garbage collections for a long-lived batch process.

    A sync allocates millions of short-lived objects (parsed calendars, rows), and at the
    default thresholds the collector ran every few hundred of them, rescanning every object the
    process built at start-up each time: about 5% of a full sync's CPU. Start-up objects are
    frozen out of collection and the young generation is collected ten times less often; reference
    counting still frees almost everything at once, so memory does not grow with it.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class StartupError(Exception):
    """A configured service is unusable; the message names the variable and what to do."""


def masked_url(url: str) -> str:
    """``url`` with any password replaced (database and Redis URLs alike)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        parts = urlsplit(url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return urlunsplit(parts._replace(netloc=netloc))
        return url


def _reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    first = lines[0] if lines else type(original).__name__
    return first[:200]


def check_database(url: str, *, migrate: bool, variable: str = "DATABASE_URL") -> None:
    """Connect to ``url`` and bring it to head (``migrate``) or check it is there."""
    shown = masked_url(url)
    try:
        engine = make_engine(url)
    except (ArgumentError, NoSuchModuleError, ModuleNotFoundError) as exc:
        raise StartupError(
            f"{variable}: cannot use {shown} ({_reason(exc)}): "
            "use sqlite:///path or postgresql+psycopg://user@host/db"
        ) from None
    except OSError as exc:
        raise StartupError(
            f"{variable}: cannot create the folder for {shown} ({exc.strerror}): "
            "point it at a writable path"
        ) from None
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        if variable == "DATABASE_URL":
            ensure_schema(engine, migrate=migrate)
    except SchemaError as exc:
        raise StartupError(f"{variable}: {exc}") from None
    except SQLAlchemyError as exc:
        raise StartupError(
            f"{variable}: cannot connect to {shown} ({_reason(exc)}): "
            "check the URL and that the database server is running"
        ) from None
    finally:
        engine.dispose()


def redis_client(url: str) -> redis.Redis:
    """A Redis client that never waits forever (connect and socket timeouts)."""
    try:
        return redis.Redis.from_url(url, **REDIS_TIMEOUTS)
    except ValueError as exc:
        raise StartupError(f"REDIS_URL: {exc}: use redis://host:6379/0") from None


def check_redis(url: str) -> None:
    client = redis_client(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise StartupError(
            f"REDIS_URL: cannot reach {masked_url(url)} ({_reason(exc)}): "
            "check the URL and that Redis is running, or unset REDIS_URL for embedded mode"
        ) from None
    finally:
        client.close()


def check_services(
    settings: Settings, *, migrate: bool = True, broker_optional: bool = False
) -> None:
    """The database (at head), and Redis or the embedded broker's database.

    ``broker_optional``: the callback receiver stores a notice without the broker (the relay
    queues it later), so an unreachable broker at its start is a warning, not a refusal.
    """

    def broker() -> None:
        if settings.redis_url is not None:
            check_redis(settings.redis_url)
        else:
            check_database(settings.broker_db_url, migrate=False, variable="BROKER_DB_URL")
            declare_embedded_queue(settings.broker_db_url)

    if not broker_optional:
        broker()  # first: a process that cannot run should not migrate anything either
    check_database(settings.database_url, migrate=migrate)
    if broker_optional:
        try:
            broker()
        except StartupError as exc:
            logging.getLogger(__name__).warning("%s (starting anyway: the relay queues later)", exc)


def declare_embedded_queue(broker_db_url: str) -> None:
    """Create the task queue's row in the embedded broker once, under a file lock.

    kombu's SQLAlchemy transport creates a queue on first use by "select, then insert", guarded
    only within one process: a worker and beat starting together on a new broker file collide
    on ``UNIQUE kombu_queue.name`` and a scheduled task is lost. Declared here first, it exists.
    """
    from filelock import FileLock
    from kombu.connection import Connection
    from kombu.entity import Exchange, Queue

    from worker.celery_app import QUEUE

    database = make_url(broker_db_url).database
    if not database or database == ":memory:":
        return
    connection = Connection(f"sqla+{broker_db_url}")  # type: ignore[no-untyped-call]
    queue = Queue(QUEUE, Exchange(QUEUE), routing_key=QUEUE)  # type: ignore[no-untyped-call]
    with FileLock(f"{database}.declare.lock", timeout=60), connection:
        queue(connection.default_channel).declare()  # type: ignore[no-untyped-call]


def explain(exc: BaseException) -> str | None:
    """A one-line, actionable message for a configuration or infrastructure failure, else None."""
    if isinstance(exc, ConfigError | StartupError):
        return str(exc)
    if isinstance(exc, SchemaError):
        return f"DATABASE_URL: {exc}"
    if isinstance(exc, redis.RedisError):
        return f"REDIS_URL: Redis failed ({_reason(exc)}): check that it is running and reachable"
    if isinstance(exc, SQLAlchemyError):
        return (
            f"DATABASE_URL: the database failed ({_reason(exc)}): check that it is running, "
            "reachable and migrated (`catalog-sync db upgrade`)"
        )
    return None


def debug_requested() -> bool:
    """``CATALOG_SYNC_DEBUG=true``: let tracebacks through (the CLI's ``--debug`` sets it)."""
    return os.environ.get("CATALOG_SYNC_DEBUG", "").lower() in {"1", "true", "yes"}


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print ``Error: message`` on stderr and exit; the process's last words."""
    sys.stderr.write(f"Error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(code)


def or_exit(step: Callable[[], T]) -> T:
    """Run ``step``; a failure ``explain`` understands ends the process with one line."""
    try:
        return step()
    except Exception as exc:
        message = explain(exc)
        if message is None or debug_requested():
            raise
        fail(message)
