"""Fixtures for the callback receiver: settings, the app on loopback, a Celery worker on Redis."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

import models.inbox
import models.orders  # noqa: F401
from callbacks.app import create_app
from models.db import make_engine, make_session_factory
from tests.support.callbacks import Sent
from tests.support.settings import make_settings
from worker.runtime import build_runtime, set_runtime
from worker.settings import Settings

DEAD_SUPPLIER = "http://127.0.0.1:9"


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def cb_settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        DEAD_SUPPLIER, database_url, broker_db_url=f"sqlite:///{tmp_path}/broker.db"
    )


@pytest.fixture
def app(cb_settings: Settings, sent: Sent) -> Flask:
    return create_app(cb_settings, send=sent)


@pytest.fixture
def sessions(cb_settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(cb_settings.database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def celery_queue() -> str:
    return f"cb-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def start_celery(
    redis_url: str, redis_client: Any, celery_queue: str
) -> Iterator[Callable[[Settings], Any]]:
    """Start a real Celery worker (threads pool) on Redis, on a queue unique to this test."""
    from celery.contrib.testing.worker import start_worker

    from callbacks.tasks import celery_for

    stack: list[Any] = []

    def start(settings: Settings) -> Any:
        runtime = build_runtime(settings)
        set_runtime(runtime)
        celery = celery_for(settings, queue=celery_queue)
        context = start_worker(
            celery, pool="threads", concurrency=4, perform_ping_check=False, queues=[celery_queue]
        )
        context.__enter__()
        stack.append((context, runtime))
        return celery

    yield start
    for context, runtime in reversed(stack):
        context.__exit__(None, None, None)
        set_runtime(None)
        runtime.close()
