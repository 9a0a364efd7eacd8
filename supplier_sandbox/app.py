"""The sandbox's Flask app: the supplier's endpoints and the loopback-only admin interface."""

from __future__ import annotations

from flask import Flask

from supplier_sandbox import admin, api
from supplier_sandbox.replies import STATE_KEY
from supplier_sandbox.state import SandboxState


def create_app(state: SandboxState) -> Flask:
    """One app per state, so several sandboxes can run in one process."""
    app = Flask("supplier_sandbox")
    app.config["MAX_CONTENT_LENGTH"] = 1 << 20
    app.extensions[STATE_KEY] = state
    app.register_blueprint(api.bp)
    app.register_blueprint(admin.bp)
    return app
