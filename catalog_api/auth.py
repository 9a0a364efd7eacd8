"""The bearer token: every route but the open ones (health, readiness, the docs page) requires
it. Serving without one takes an explicit ``CATALOG_API_ANONYMOUS=true``."""

from __future__ import annotations

import hmac

from flask import Flask, Response, jsonify, request

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/docs"})
OPEN_PREFIXES = ("/docs/static/",)

ANONYMOUS_REFUSED = (
    "CATALOG_API_TOKEN: not set: set a token (clients send Authorization: Bearer <token>), "
    "or CATALOG_API_ANONYMOUS=true to serve without one"
)


def init_app(app: Flask, token: str | None) -> None:
    """Require ``Authorization: Bearer <token>`` on every request when ``token`` is set."""
    if not token:
        return
    expected = token.encode()

    @app.before_request
    def _require_token() -> tuple[Response, int] | None:
        if request.path in OPEN_PATHS or request.path.startswith(OPEN_PREFIXES):
            return None
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected):
            return None
        response = jsonify({"error": "unauthorized", "message": "a valid bearer token is required"})
        response.headers["WWW-Authenticate"] = 'Bearer realm="catalog"'
        return response, 401
