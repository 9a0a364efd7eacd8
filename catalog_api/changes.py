"""The change feed: every change in ``seq`` order after a cursor, never skipping one that
commits late (see ``queries.changes_after``)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from catalog_api import queries, representations
from catalog_api.context import db, state
from catalog_api.params import parse_id, parse_limit

bp = Blueprint("changes", __name__, url_prefix="/catalog")


@bp.get("/changes")
def list_changes() -> Response:
    after = parse_id("after", request.args.get("after")) or 0
    limit = parse_limit(request.args.get("limit"))
    api = state()
    rows = queries.changes_after(
        db(), after, limit, now=api.clock(), settle=api.change_settle, gaps=api.gaps
    )
    return jsonify(
        {
            "changes": [representations.change(r) for r in rows],
            "next_after": rows[-1].seq if rows else after,
            "has_more": len(rows) == limit,
        }
    )
