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

import importlib.util
import logging
import threading
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, worker_process_init

from worker.logs import MaskingFilter
from worker.settings import Settings, load_settings

QUEUE = "catalog-sync"
URGENT_PRIORITY = 0
ROLLING_PRIORITY = 9
RELAY_INTERVAL_S = 60.0
INCLUDE = ("worker.tasks", "callbacks.tasks")
REDIS_TRANSPORT_OPTIONS = {
    "priority_steps": list(range(10)),
    "queue_order_strategy": "priority",
    "visibility_timeout": 3600,
    # A half-open Redis connection must fail a publish, not hold the callback receiver's
    # enqueue slot forever (the relay re-queues what was not published).
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
}


def broker_url(settings: Settings) -> str:
    """Redis when configured, else the server-less SQLAlchemy transport on a SQLite file."""
    return settings.redis_url or f"sqla+{settings.broker_db_url}"


def create_celery(settings: Settings, *, queue: str = QUEUE, set_as_current: bool = True) -> Celery:
    """A configured Celery app for ``settings`` (tests pass a unique ``queue``)."""
    include = [name for name in INCLUDE if importlib.util.find_spec(name) is not None]
    app = Celery(
        "catalog-sync", broker=broker_url(settings), include=include, set_as_current=set_as_current
    )
    if settings.redis_url is None:
        from models.db import make_engine

        make_engine(settings.broker_db_url).dispose()  # makes the broker file's folder
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
        beat_schedule={
            "product-pass": {
                "task": "worker.tasks.product_pass",
                "schedule": settings.product_pass_interval_s,
            },
            "rolling-price-refresh": {
                "task": "worker.tasks.rolling_price_refresh",
                "schedule": settings.price_refresh_interval_s,
            },
            # Re-queues inbox rows whose processing task was lost; parks repeated failures.
            "relay-inbox": {
                "task": "callbacks.tasks.relay_inbox",
                "schedule": RELAY_INTERVAL_S,
            },
        },
        timezone="UTC",
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
    if name == "app":
        return get_app()
    raise AttributeError(name)


def _fresh_runtime_after_fork(**_: Any) -> None:
    """Engines, pools and Redis clients are not fork-safe: build new ones in each child."""
    from worker.runtime import set_runtime

    set_runtime(None)


def _mask_logger_handlers(logger: logging.Logger, **_: Any) -> None:
    """Worker and beat logs (task tracebacks, the supplier's free-text Message) go out masked."""
    settings: Settings | None = getattr(get_app().conf, "catalog_settings", None)
    secrets = [settings.zzy_sign_key.get_secret_value()] if settings is not None else []
    for handler in logger.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter(secrets))


worker_process_init.connect(_fresh_runtime_after_fork, weak=False)
after_setup_logger.connect(_mask_logger_handlers, weak=False)
after_setup_task_logger.connect(_mask_logger_handlers, weak=False)
