"""Building Flask responses for both faces of the sandbox, and finding its state."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app

from supplier_sandbox.envelope import camelize, dumps, envelope
from supplier_sandbox.state import SandboxState

STATE_KEY = "supplier_sandbox"
JSON_TYPE = "application/json; charset=utf-8"
# Stands for a page's products in ``data`` until the answer is written (no payload holds NUL).
PRODUCTS_SLOT = "\x00products\x00"


def current_state() -> SandboxState:
    """The state the running app was created with."""
    state: SandboxState = current_app.extensions[STATE_KEY]
    return state


def supplier_reply(
    data: Any,
    *,
    code: int,
    ok: bool,
    message: str,
    status: int = 200,
    extra: dict[str, Any] | None = None,
    products_json: str | None = None,
) -> Response:
    """An enveloped answer with a fresh LogId, camelCased when the sandbox is set so;
    ``extra`` keys sit beside ``Code`` (the total-in-envelope quirk); ``products_json``, a
    list already written as JSON, goes where ``PRODUCTS_SLOT`` stands in ``data``."""
    state = current_state()
    body: Any = envelope(
        data, code=code, ok=ok, message=message, log_id=state.traffic.next_log_id()
    )
    if extra:
        body.update(extra)
    if state.config.camel_case:
        body = camelize(body)
    text = dumps(body)
    if products_json is not None:
        text = text.replace(dumps(PRODUCTS_SLOT), products_json, 1)
    return Response(text, status=status, content_type=JSON_TYPE)


def admin_reply(data: Any, status: int = 200) -> Response:
    """A plain JSON answer of the admin interface (never enveloped, never camelCased)."""
    return Response(dumps(data), status=status, content_type=JSON_TYPE)
