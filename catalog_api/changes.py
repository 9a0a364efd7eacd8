"""The change feed: every change in ``seq`` order after a cursor, never skipping one that
commits late (see ``queries.changes_after``); ``wait`` long-polls (see ``waiting``)."""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify, request

from catalog_api import queries, representations
from catalog_api.context import close_session, db, state
from catalog_api.params import parse_id, parse_limit, parse_wait
from models.catalog import Change

bp = Blueprint("changes", __name__, url_prefix="/catalog")

# While a hole in the feed is settling no new seq may arrive: look again at this pace.
SETTLE_RECHECK_S = 1.0


@bp.get("/changes")
def list_changes() -> Response:
    after = parse_id("after", request.args.get("after")) or 0
    limit = parse_limit(request.args.get("limit"))
    api = state()
    wait = min(float(parse_wait(request.args.get("wait"))), api.change_wait_cap_s)
    deadline = time.monotonic() + wait

    def read() -> list[Change]:
        return queries.changes_after(
            db(), after, limit, now=api.clock(), settle=api.change_settle, gaps=api.gaps
        )

    rows = read()
    known = after
    while not rows and (remaining := deadline - time.monotonic()) > 0:
        close_session(None)  # no connection held while waiting
        seen = api.watcher.last_seen
        if seen is not None and seen > known:
            known = seen  # a later seq exists but is not yet readable: wait for it to settle
            api.watcher.wait_past(known, min(remaining, SETTLE_RECHECK_S))
        else:
            api.watcher.wait_past(known, remaining)
        rows = read()
    return jsonify(
        {
            "changes": [representations.change(r) for r in rows],
            "next_after": rows[-1].seq if rows else after,
            "has_more": len(rows) == limit,
        }
    )
