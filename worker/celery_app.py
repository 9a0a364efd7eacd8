"""The Celery app factory, the beat schedule and worker start-up hooks.

Nothing is built at import: ``create_celery(settings)`` makes an app; the module attribute
``app`` (for ``celery -A worker.celery_app worker|beat``) is built on first access from
the environment. Redis is the broker when REDIS_URL is set; otherwise kombu's SQLAlchemy
transport on a SQLite file, which needs no server.

Ordering: one queue, message priorities. On Redis, kombu keeps one list per priority step
and BRPOPs them highest priority first (0 is highest there), so urgent (notification-driven)
refreshes overtake rolling ones; with ``worker_prefetch_multiplier=1`` and ``acks_late`` a
worker holds at most one message per process, so the ordering is not lost in a prefetch buffer.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery import Celery
from celery.beat import PersistentScheduler
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    setup_logging,
    worker_init,
    worker_process_init,
)

from worker.logs import MaskingFilter, configure_logging
from worker.settings import Settings, load_settings

log = logging.getLogger(__name__)

QUEUE = "catalog-sync"
URGENT_PRIORITY = 0
ROLLING_PRIORITY = 9
INCLUDE = ["worker.tasks", "callbacks.tasks", "worker.orders.tasks"]
REDIS_TRANSPORT_OPTIONS = {
    "priority_steps": list(range(10)),
    "queue_order_strategy": "priority",
    "visibility_timeout": 3600,
    # A half-open connection must fail a publish, not hang it (and wedge the enqueue pool).
    "socket_timeout": 5.0,
    "socket_connect_timeout": 2.0,
}
BEAT_STANDBY_POLL_S = 5.0


def broker_url(settings: Settings) -> str:
    """Redis when configured, else the server-less SQLAlchemy transport on a SQLite file."""
    return settings.redis_url or f"sqla+{settings.broker_db_url}"


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every package's periodic tasks, each declared beside the code it runs."""
    from callbacks.tasks import beat_schedule as callbacks_schedule
    from worker.orders.tasks import beat_schedule as orders_schedule
    from worker.tasks import beat_schedule as sync_schedule

    return {
        **sync_schedule(settings),
        **callbacks_schedule(settings),
        **orders_schedule(settings),
    }


def create_celery(settings: Settings, *, queue: str = QUEUE, set_as_current: bool = True) -> Celery:
    """A configured Celery app for ``settings`` (tests pass a unique ``queue``)."""
    app = Celery(
        "catalog-sync", broker=broker_url(settings), include=INCLUDE, set_as_current=set_as_current
    )
    if settings.redis_url is None:
        from models.db import make_engine

        try:
            make_engine(settings.broker_db_url).dispose()  # makes the broker file's folder
        except OSError as exc:
            from worker.startup import StartupError

            raise StartupError(
                f"BROKER_DB_URL: cannot create the folder for {settings.broker_db_url} "
                f"({exc.strerror}): point it at a writable path"
            ) from None
    app.conf.update(
        task_default_queue=queue,
        task_default_priority=ROLLING_PRIORITY,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        # Redis: one message per process, so priorities hold. The SQLAlchemy transport has no
        # priorities and sleeps a polling interval (1 s) whenever prefetch is full: take more.
        worker_prefetch_multiplier=1 if settings.redis_url else 8,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        # kombu's SQLAlchemy transport hands these to create_engine, so Redis only.
        broker_transport_options=REDIS_TRANSPORT_OPTIONS if settings.redis_url else {},
        # A worker must outlive a Redis restart (see worker.broker); rediss:// keeps kombu's own.
        broker_transport=(
            "worker.broker:Transport" if (settings.redis_url or "").startswith("redis://") else None
        ),
        beat_schedule=beat_schedule(settings),
        timezone="UTC",
        beat_scheduler="worker.celery_app:SingleBeatScheduler",
    )
    app.conf.catalog_settings = settings
    global _app
    with _lock:
        _app = app
    return app


_lock = threading.Lock()
_app: Celery | None = None


def get_app() -> Celery:
    """This process's app, built from the environment when none was created yet."""
    with _lock:
        existing = _app
    return existing if existing is not None else create_celery(load_settings())


def __getattr__(name: str) -> Any:
    if name == "app":  # ``celery -A worker.celery_app``: a bad setting is one line, not a traceback
        from worker.startup import or_exit

        return or_exit(get_app)
    raise AttributeError(name)


def _settings_of_app() -> Settings | None:
    settings: Settings | None = getattr(get_app().conf, "catalog_settings", None)
    return settings


def _configure_logging(**_: Any) -> None:
    """Worker and beat log like every other process: LOG_LEVEL, LOG_FORMAT, masked."""
    settings = _settings_of_app()
    if settings is None:  # pragma: no cover - every app here is made by create_celery
        configure_logging()
        return
    configure_logging(
        settings.log_level, [settings.zzy_sign_key.get_secret_value()], settings.log_format
    )


def _check_services(**_: Any) -> None:
    """Before the worker forks or beat ticks: the database at head, Redis or the broker file."""
    from worker.startup import check_services, or_exit

    settings = _settings_of_app()
    if settings is not None:
        or_exit(lambda: check_services(settings))


def _become_the_only_beat(**_: Any) -> None:
    """One beat schedules; a second one started anywhere stands by until the first is gone."""
    from worker.locks import beat_lock, lock_dir_for
    from worker.startup import or_exit, redis_client

    _check_services()
    settings = _settings_of_app()
    if settings is None:  # pragma: no cover
        return
    redis_url = settings.redis_url
    client = or_exit(lambda: redis_client(redis_url)) if redis_url is not None else None

    def lost() -> None:  # another beat may be scheduling now: stop, the supervisor restarts us
        log.critical("beat lock lost: stopping this beat")
        os.kill(os.getpid(), signal.SIGTERM)

    lock = beat_lock(client, lock_dir_for(settings.database_url), on_lost=lost)
    announced = False
    while not or_exit(lock.acquire):
        if not announced:
            log.warning("another beat holds the beat lock: standing by until it stops")
            announced = True
        time.sleep(BEAT_STANDBY_POLL_S)
    _held_locks.append(lock)  # held for the life of the process
    atexit.register(lock.release)  # a standby takes over at once, not after the TTL
    log.info("this beat holds the beat lock and schedules")


_held_locks: list[Any] = []


class SingleBeatScheduler(PersistentScheduler):  # type: ignore[misc]
    """Celery's file-backed scheduler, made only after the start-up checks pass and this beat
    holds the beat lock (so a failure is one line, and a second beat stands by)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _become_the_only_beat()
        filename = kwargs.get("schedule_filename")
        if filename:
            Path(filename).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        super().setup_schedule()
        # A new install makes its first product pass at once, not an interval after beat starts.
        entry = self.schedule.get("product-pass")
        if entry is not None and entry.total_run_count == 0:
            entry.last_run_at = entry.default_now() - timedelta(days=1)
            self.sync()


def _fresh_runtime_after_fork(**_: Any) -> None:
    """Engines, pools and Redis clients are not fork-safe: build new ones in each child."""
    from worker.runtime import set_runtime
    from worker.startup import tune_gc

    set_runtime(None)
    tune_gc()


def _mask_logger_handlers(logger: logging.Logger, **_: Any) -> None:
    """Worker and beat logs (task tracebacks, the supplier's free-text Message) go out masked."""
    settings: Settings | None = getattr(get_app().conf, "catalog_settings", None)
    secrets = [settings.zzy_sign_key.get_secret_value()] if settings is not None else []
    for handler in logger.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter(secrets))


worker_process_init.connect(_fresh_runtime_after_fork, weak=False)
setup_logging.connect(_configure_logging, weak=False)
worker_init.connect(_check_services, weak=False)

after_setup_logger.connect(_mask_logger_handlers, weak=False)
after_setup_task_logger.connect(_mask_logger_handlers, weak=False)
