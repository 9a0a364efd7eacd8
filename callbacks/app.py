"""The supplier-facing callback receiver: ``gunicorn 'callbacks.app:create_app()'``.

Routes: ``POST {CALLBACK_PATH}`` (default ``/callbacks/zzy``; codes in ``callbacks.intake``)
and ``GET /healthz`` (200 when the database answers, else 503).

The route only reads (bounded), checks and hands off: ``intake.check_notification`` decides,
``intake.store_notification`` commits, and the enqueuer publishes after the commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DataError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

from callbacks.enqueue import Enqueuer
from callbacks.intake import (
    REPLAYED,
    SUCCESS,
    TOO_LARGE,
    UNAVAILABLE,
    UNSTORABLE,
    Accepted,
    Rejection,
    ReplayedSignature,
    check_notification,
    store_notification,
)
from models.base import utcnow
from models.db import ensure_schema, make_engine, make_session_factory
from worker.logs import configure_logging
from worker.settings import Settings, load_settings

log = logging.getLogger(__name__)

# How long intake may wait on the database before answering 503 (the supplier resends).
DB_WAIT_MS = 3000


@dataclass
class Intake:
    """What the route needs, built once per app by the factory."""

    settings: Settings
    sessions: sessionmaker[Session]
    enqueue: Callable[[int], bool]
    now_ms: Callable[[], int]

    def store(self, accepted: Accepted) -> int | None:
        """Commit the notification; return the inbox id when it is new (to enqueue)."""
        with self.sessions.begin() as session:
            stored = store_notification(session, accepted, utcnow())
        if stored.is_new:
            return stored.inbox_id
        log.info("duplicate notification acknowledged (inbox %s)", stored.inbox_id)
        return None


def intake_engine(url: str) -> Engine:
    """An engine that gives up on a down or locked database within seconds, not minutes."""
    if url.startswith("postgresql"):
        options = f"-c statement_timeout={DB_WAIT_MS} -c lock_timeout={DB_WAIT_MS}"
        return make_engine(
            url, connect_args={"connect_timeout": 2, "options": options}, pool_timeout=2
        )
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _short_busy_wait(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout={DB_WAIT_MS}")
            cursor.close()

    return engine


def create_app(
    settings: Settings | None = None,
    *,
    send: Callable[[int], None] | None = None,
    now_ms: Callable[[], int] | None = None,
) -> Flask:
    """The callback app. Without ``settings`` it reads the environment (the gunicorn case)."""
    if settings is None:
        settings = load_settings()
        configure_logging(
            settings.log_level,
            secrets=[settings.zzy_sign_key.get_secret_value()],
            log_format=settings.log_format,
        )
    engine = intake_engine(settings.database_url)
    # Once across processes (a lock); quick at head. Not on the intake engine: its 3 s statement
    # timeout is for answering the supplier, not for waiting on the migration lock.
    schema_engine = make_engine(settings.database_url)
    try:
        ensure_schema(schema_engine)
    except SQLAlchemyError as exc:  # answer 503 until the database is back
        log.warning("database not ready at start-up: %s", type(exc).__name__)
    finally:
        schema_engine.dispose()
    if send is None:
        from callbacks.tasks import celery_for, sender_for

        send = sender_for(celery_for(settings))
    enqueuer = Enqueuer(send)
    app = Flask(__name__)
    app.extensions["callbacks"] = Intake(
        settings=settings,
        sessions=make_session_factory(engine),
        enqueue=enqueuer.enqueue,
        now_ms=now_ms or (lambda: int(time.time() * 1000)),
    )
    app.extensions["callbacks.engine"] = engine
    app.register_blueprint(build_blueprint(settings.callback_path))
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


def _intake() -> Intake:
    intake: Intake = current_app.extensions["callbacks"]
    return intake


def _reply(rejection: Rejection) -> tuple[Response, int]:
    return jsonify(rejection.envelope()), rejection.status


def build_blueprint(callback_path: str) -> Blueprint:
    bp = Blueprint("callbacks", __name__)

    @bp.post(callback_path)
    def receive() -> tuple[Response, int]:
        intake = _intake()
        settings = intake.settings
        body = _read_bounded(settings.callback_max_body)
        if body is None:
            return _reply(TOO_LARGE)
        verdict = check_notification(
            dict(request.headers.items()),
            body,
            partner_id=settings.zzy_partner_id,
            sign_key=settings.zzy_sign_key.get_secret_value(),
            api_path=settings.callback_signing_path,
            now_ms=intake.now_ms(),
            tolerance_ms=settings.callback_tolerance_s * 1000,
        )
        if isinstance(verdict, Rejection):
            log.warning("callback rejected (%s): %s", verdict.code, verdict.message)
            return _reply(verdict)
        try:
            new_id = intake.store(verdict)
        except ReplayedSignature:
            log.warning("callback rejected (%s): %s", REPLAYED.code, REPLAYED.message)
            return _reply(REPLAYED)
        except DataError:  # the input, not the database: a resend would fail the same way
            log.warning("callback rejected (%s): %s", UNSTORABLE.code, UNSTORABLE.message)
            return _reply(UNSTORABLE)
        except (SQLAlchemyError, OSError) as exc:
            log.error("callback not stored, answered 503: %s", type(exc).__name__)
            return _reply(UNAVAILABLE)
        if new_id is not None:
            intake.enqueue(new_id)
        return jsonify(SUCCESS), 200

    @bp.get("/healthz")
    def healthz() -> tuple[Response, int]:
        try:
            with _intake().sessions() as session:
                session.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            return jsonify({"database": "unavailable", "error": type(exc).__name__}), 503
        return jsonify({"database": "ok"}), 200

    return bp


def _read_bounded(limit: int) -> bytes | None:
    """The body, or ``None`` when it exceeds ``limit`` (declared or chunked); never reads past it."""
    declared = request.content_length
    if declared is not None and declared > limit:
        return None
    stream = request.environ.get("wsgi.input")
    if stream is None or (declared is None and not request.environ.get("wsgi.input_terminated")):
        return b""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        wanted = limit + 1 - size if declared is None else min(declared - size, limit + 1 - size)
        if wanted <= 0:
            break
        chunk = stream.read(wanted)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return None if size > limit else b"".join(chunks)


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    status = exc.code or 400
    rejection = Rejection(status, status * 10, exc.name)
    return _reply(rejection)


def _unexpected_error(exc: Exception) -> tuple[Response, int]:
    log.error("callback handler failed: %s", type(exc).__name__)
    return _reply(UNAVAILABLE)
