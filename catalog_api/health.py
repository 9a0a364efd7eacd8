"""Liveness (``/healthz``: answers without the database or a token) and readiness
(``/readyz``: the database answers)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from catalog_api.context import state

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    try:
        with state().sessions() as session:
            session.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError):
        body = {"error": "database_unavailable", "message": "the database does not answer"}
        return jsonify(body), 503
    return jsonify({"status": "ok"}), 200
