"""Optional bearer token: when configured, every route but ``/healthz`` requires it."""

from __future__ import annotations

import hmac

from flask import Flask, Response, jsonify, request

OPEN_PATHS = frozenset({"/healthz"})


def init_app(app: Flask, token: str | None) -> None:
    """Require ``Authorization: Bearer <token>`` on every request when ``token`` is set."""
    if not token:
        return
    expected = token.encode()

    @app.before_request
    def _require_token() -> tuple[Response, int] | None:
        if request.path in OPEN_PATHS:
            return None
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected):
            return None
        response = jsonify({"error": "unauthorized", "message": "a valid bearer token is required"})
        response.headers["WWW-Authenticate"] = 'Bearer realm="catalog"'
        return response, 401
