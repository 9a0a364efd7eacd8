"""The supplier-facing callback receiver: ``gunicorn 'callbacks.app:create_app()'``.

Routes: ``POST {CALLBACK_PATH}`` (default ``/callbacks/zzy``; codes in ``callbacks.intake``)
and ``GET /healthz`` (200 when the database answers, else 503).

The route checks the signature headers before it reads a byte of the body, reads the body
bounded in size and time, then hands off: ``intake.classify`` decides what the body is,
``intake.store_notification`` commits it (pending, invalid or held) and the enqueuer publishes
pending rows after the commit. A refusal before the body is read stops reading the
connection, so the server never drains that body at the client's pace.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DataError, DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

from callbacks.enqueue import Enqueuer
from callbacks.intake import (
    SUCCESS,
    TOO_LARGE,
    TOO_SLOW,
    UNAVAILABLE,
    Delivery,
    Invalid,
    Notice,
    Rejection,
    Stored,
    check_headers,
    classify,
    raw_text,
    store_first_delivery,
    store_notification,
)
from models.base import utcnow
from models.db import ensure_schema, make_engine, make_session_factory
from models.inbox import InboxStatus
from worker.logs import configure_logging_for
from worker.settings import Settings, load_settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long intake may wait on the database before answering 503 (the supplier resends).
DB_WAIT_MS = 3000
# Connections kept per worker process. Each request thread holds at most one, and the pool
# opens them only as threads need them, so this is a ceiling above the Procfile's 16 threads.
# An overflow connection (past ``pool_size``) would be closed on return: one PostgreSQL
# backend started and torn down per busy request, which cost more than the request itself.
DB_POOL_SIZE = 32


@dataclass
class Intake:
    """What the route needs, built once per app by the factory."""

    settings: Settings
    sessions: sessionmaker[Session]
    enqueue: Callable[[int], bool]
    now_ms: Callable[[], int]
    # PostgreSQL: the same pool in autocommit mode, for ``store_first_delivery``.
    autocommit: Engine | None = None

    def store(self, delivery: Delivery, verdict: Notice | Invalid) -> Stored:
        """Commit the request; the caller enqueues it when it is new and pending."""
        stored = _once_more_if_dropped(lambda: self._commit(delivery, verdict))
        if not stored.is_new:
            log.info("duplicate delivery acknowledged (inbox %s)", stored.inbox_id)
        elif isinstance(verdict, Invalid):
            log.warning("inbox %s stored as invalid: %s", stored.inbox_id, verdict.reason)
        elif stored.status == InboxStatus.HELD:
            log.warning("inbox %s held: signature reused with another body", stored.inbox_id)
        return stored

    def _commit(self, delivery: Delivery, verdict: Notice | Invalid) -> Stored:
        now = utcnow()
        if self.autocommit is not None:
            with self.autocommit.connect() as connection:
                stored = store_first_delivery(connection, delivery, verdict, now)
            if stored is not None:
                return stored
        with self.sessions.begin() as session:
            return store_notification(session, delivery, verdict, now)

    def store_or_keep_raw(self, delivery: Delivery, body: bytes, partner_id: int) -> Stored:
        """Store the classified body; if the database refuses a value in it (the input, not
        the database: a resend would fail alike), keep it as invalid raw text instead."""
        verdict = classify(body, partner_id)
        try:
            return self.store(delivery, verdict)
        except DataError:
            kept = Invalid(
                "a value does not fit the database",
                hashlib.sha256(body).hexdigest(),
                raw_body=raw_text(body),
            )
            return self.store(delivery, kept)


def _once_more_if_dropped(work: Callable[[], T]) -> T:
    """Run ``work``; again, once, if it failed on a connection the database had dropped.

    The intake engine does not ping a connection before each use (a round trip per request);
    after a PostgreSQL restart the first statement on a kept connection fails instead, and
    SQLAlchemy then invalidates the whole pool, so the second try runs on a fresh connection.
    Storing is idempotent: should the first commit have landed after all, the second finds it.
    """
    try:
        return work()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("database connection dropped (%s), trying once more", type(exc.orig).__name__)
        return work()


def intake_engine(url: str) -> Engine:
    """An engine that gives up on a down or locked database within seconds, not minutes."""
    if url.startswith("postgresql"):
        options = f"-c statement_timeout={DB_WAIT_MS} -c lock_timeout={DB_WAIT_MS}"
        return make_engine(
            url,
            connect_args={"connect_timeout": 2, "options": options},
            pool_size=DB_POOL_SIZE,
            max_overflow=0,
            pool_timeout=2,
            pool_pre_ping=False,  # see _once_more_if_dropped
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
        configure_logging_for(settings)
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
        autocommit=(
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else None
        ),
    )
    app.extensions["callbacks.engine"] = engine
    app.register_blueprint(build_blueprint(settings.callback_path))
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


def _intake() -> Intake:
    intake: Intake = current_app.extensions["callbacks"]
    return intake


def _reply(rejection: Rejection, *, body_unread: bool = False) -> tuple[Response, int]:
    if body_unread:
        _stop_reading()
    return jsonify(rejection.envelope()), rejection.status


def _stop_reading() -> None:
    """Refuse the rest of a body we chose not to read: the server would otherwise drain it,
    at the client's pace, before the connection's next request (gunicorn keeps it alive)."""
    sock = _client_socket()
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)


def build_blueprint(callback_path: str) -> Blueprint:
    bp = Blueprint("callbacks", __name__)

    @bp.post(callback_path)
    def receive() -> tuple[Response, int]:
        intake = _intake()
        settings = intake.settings
        delivery = check_headers(
            dict(request.headers.items()),
            partner_id=settings.zzy_partner_id,
            sign_key=settings.zzy_sign_key.get_secret_value(),
            api_path=settings.callback_signing_path,
            now_ms=intake.now_ms(),
            tolerance_ms=settings.callback_tolerance_s * 1000,
        )
        if isinstance(delivery, Rejection):
            log.warning("callback rejected (%s): %s", delivery.code, delivery.message)
            return _reply(delivery, body_unread=request.content_length != 0)
        body = _read_bounded(settings.callback_max_body, settings.callback_body_timeout_s)
        if isinstance(body, Rejection):
            log.warning("callback rejected (%s): %s", body.code, body.message)
            return _reply(body, body_unread=True)
        try:
            stored = intake.store_or_keep_raw(delivery, body, settings.zzy_partner_id)
        except (SQLAlchemyError, OSError) as exc:
            log.error("callback not stored, answered 503: %s", type(exc).__name__)
            return _reply(UNAVAILABLE)
        if stored.is_new and stored.status == InboxStatus.PENDING:
            intake.enqueue(stored.inbox_id)
        return jsonify(SUCCESS), 200

    @bp.get("/healthz")
    def healthz() -> tuple[Response, int]:
        def ping() -> None:
            with _intake().sessions() as session:
                session.execute(text("SELECT 1"))

        try:
            _once_more_if_dropped(ping)
        except (SQLAlchemyError, OSError) as exc:
            return jsonify({"database": "unavailable", "error": type(exc).__name__}), 503
        return jsonify({"database": "ok"}), 200

    return bp


def _client_socket() -> socket.socket | None:
    """The connection's socket where the server exposes it (gunicorn, werkzeug)."""
    for key in ("gunicorn.socket", "werkzeug.socket"):
        candidate = request.environ.get(key)
        if isinstance(candidate, socket.socket):
            return candidate
    return None


def _read_bounded(limit: int, timeout_s: float) -> bytes | Rejection:
    """The body, or why not: larger than ``limit`` (declared or chunked; never read past it), or
    not all there within ``timeout_s`` (a slow client holds a thread that long, no longer)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        return TOO_LARGE
    stream = request.environ.get("wsgi.input")
    if stream is None or (declared is None and not request.environ.get("wsgi.input_terminated")):
        return b""
    sock = _client_socket()
    previous = sock.gettimeout() if sock is not None else None
    deadline = time.monotonic() + timeout_s
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= limit:
            wanted = (
                limit + 1 - size if declared is None else min(declared - size, limit + 1 - size)
            )
            if wanted <= 0:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return TOO_SLOW
            if sock is not None:
                sock.settimeout(remaining)
            chunk = stream.read(min(wanted, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except Exception:  # a timeout, a reset, the server's own "no more data"
        return TOO_SLOW
    finally:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(previous)
    if size > limit:
        return TOO_LARGE
    if declared is not None and size < declared:
        return TOO_SLOW  # the client closed before sending what it declared
    return b"".join(chunks)


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    status = exc.code or 400
    rejection = Rejection(status, status * 10, exc.name)
    return _reply(rejection)


def _unexpected_error(exc: Exception) -> tuple[Response, int]:
    log.error("callback handler failed: %s", type(exc).__name__)
    return _reply(UNAVAILABLE)
