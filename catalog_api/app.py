"""The catalog read API: a read-only Flask app for the distributor's internal consumers.

``gunicorn 'catalog_api.app:create_app()'`` reads settings from the environment; tests pass them in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Response, jsonify
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from catalog_api import auth, changes, docs, health, metrics, openapi, orders, products
from catalog_api.context import ApiState, close_session
from catalog_api.params import MAX_WAIT_S, BadParameter
from catalog_api.queries import GapClock
from catalog_api.reads import ReadCounter
from catalog_api.waiting import ChangeWatcher
from models.db import ensure_schema, make_engine, make_session_factory
from worker.logs import configure_logging_for
from worker.settings import ConfigError, ReadApiSettings, Settings, load_settings

log = logging.getLogger(__name__)

# How long a client should wait before retrying when the database is down.
RETRY_AFTER_S = 5

# How long a hole in the change feed must persist, while writers are busy, before the feed
# treats it as a rollback and passes it (see ``queries.changes_after``).
DEFAULT_CHANGE_SETTLE = timedelta(seconds=10)


def create_app(
    settings: ReadApiSettings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    change_settle: timedelta = DEFAULT_CHANGE_SETTLE,
    change_wait_cap_s: float = MAX_WAIT_S,
) -> Flask:
    """Build the app; ``settings`` default to the environment (``load_settings``).

    Raises ``ConfigError`` when no token is set and anonymous access was not asked for.
    """
    if settings is None:
        settings = _settings_from_environment()
        configure_logging_for(settings)
    if settings.catalog_api_token is None and not settings.catalog_api_anonymous:
        raise ConfigError(auth.ANONYMOUS_REFUSED)
    engine = make_engine(settings.database_url)
    ensure_schema(engine)  # once across processes (a lock); quick when already at head
    sessions = make_session_factory(engine)
    app = Flask(__name__)
    registry = CollectorRegistry(auto_describe=True)
    app.extensions["catalog_api"] = ApiState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        registry=registry,
        clock=clock or (lambda: datetime.now(UTC)),
        change_settle=change_settle,
        gaps=GapClock(),
        watcher=ChangeWatcher(sessions),
        change_wait_cap_s=change_wait_cap_s,
        reads=ReadCounter(sessions),
    )
    token = settings.catalog_api_token
    auth.init_app(app, token.get_secret_value() if token else None)
    metrics.init_app(app, registry, multiprocess=settings.prometheus_multiproc_dir is not None)
    for module in (products, changes, orders, openapi, health, metrics, docs):
        app.register_blueprint(module.bp)
    app.teardown_appcontext(close_session)
    app.register_error_handler(BadParameter, _bad_parameter)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DBAPIError, _database_unavailable)
    app.register_error_handler(PoolTimeout, _database_unavailable)
    return app


def _settings_from_environment() -> ReadApiSettings:
    """The full settings when the supplier is configured (the order routes use it), else the
    read-only ones."""
    try:
        return load_settings(Settings)
    except ConfigError:
        return load_settings(ReadApiSettings)


def error(status: int, code: str, message: str) -> tuple[Response, int]:
    """The one error shape: ``{"error": code, "message": message}``."""
    return jsonify({"error": code, "message": message}), status


def _database_unavailable(exc: Exception) -> tuple[Response, int]:
    """A database outage is the service being unavailable (503, retry), not a server bug."""
    log.error("database unavailable: %s", type(getattr(exc, "orig", None) or exc).__name__)
    body, status = error(503, "database_unavailable", "the database is unavailable; retry later")
    body.headers["Retry-After"] = str(RETRY_AFTER_S)
    return body, status


def _bad_parameter(exc: BadParameter) -> tuple[Response, int]:
    return error(400, "bad_request", str(exc))


def _http_error(exc: HTTPException) -> Any:
    code = (exc.name or "error").lower().replace(" ", "_")
    response = exc.get_response()
    body, status = error(exc.code or 500, code, exc.description or exc.name)
    for name, value in response.headers.items():
        if name.lower() not in {"content-type", "content-length"}:
            body.headers[name] = value
    return body, status
