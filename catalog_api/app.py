"""The catalog read API: a read-only Flask app for the distributor's internal consumers.

``gunicorn 'catalog_api.app:create_app()'`` reads settings from the environment; tests pass them in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Response, jsonify
from prometheus_client import CollectorRegistry
from werkzeug.exceptions import HTTPException

from catalog_api import auth, changes, health, metrics, openapi, products
from catalog_api.context import ApiState, close_session
from catalog_api.params import BadParameter
from catalog_api.queries import GapClock
from models.db import ensure_schema, make_engine, make_session_factory
from worker.settings import ReadApiSettings, load_settings

# How long a hole in the change feed must persist, while writers are busy, before the feed
# treats it as a rollback and passes it (see ``queries.changes_after``).
DEFAULT_CHANGE_SETTLE = timedelta(seconds=10)


def create_app(
    settings: ReadApiSettings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    change_settle: timedelta = DEFAULT_CHANGE_SETTLE,
) -> Flask:
    """Build the app; ``settings`` default to the environment (``load_settings``)."""
    settings = settings or load_settings(ReadApiSettings)
    engine = make_engine(settings.database_url)
    if engine.dialect.name == "sqlite":
        # The embedded default sets itself up on first use, as the worker does.
        ensure_schema(engine)
    app = Flask(__name__)
    registry = CollectorRegistry(auto_describe=True)
    app.extensions["catalog_api"] = ApiState(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        registry=registry,
        clock=clock or (lambda: datetime.now(UTC)),
        change_settle=change_settle,
        gaps=GapClock(),
    )
    token = settings.catalog_api_token
    auth.init_app(app, token.get_secret_value() if token else None)
    metrics.init_app(app, registry)
    for module in (products, changes, openapi, health, metrics):
        app.register_blueprint(module.bp)
    app.teardown_appcontext(close_session)
    app.register_error_handler(BadParameter, _bad_parameter)
    app.register_error_handler(HTTPException, _http_error)
    return app


def error(status: int, code: str, message: str) -> tuple[Response, int]:
    """The one error shape: ``{"error": code, "message": message}``."""
    return jsonify({"error": code, "message": message}), status


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
