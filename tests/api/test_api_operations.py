"""Operating the read API: the token rule, readiness, 503 on a dead database, long-polling the
change feed, the docs page."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from catalog_api.app import create_app
from models.db import make_engine, make_session_factory
from tests.support import builders as b
from worker.settings import ConfigError

DEAD_DATABASE = "postgresql+psycopg://nobody@127.0.0.1:1/x"


def test_the_api_refuses_to_start_without_a_token_unless_anonymous_is_asked_for(
    database_url: str,
) -> None:
    with pytest.raises(ConfigError, match="CATALOG_API_TOKEN"):
        create_app(b.api_settings(database_url, catalog_api_anonymous=False))
    secured = create_app(b.api_settings(database_url, catalog_api_token="t" * 20))
    client = secured.test_client()
    assert client.get("/catalog/products").status_code == 401
    for open_path in ("/healthz", "/readyz", "/docs", "/docs/static/swagger-ui-bundle.js"):
        assert client.get(open_path).status_code == 200, open_path
    assert client.get("/openapi.json").status_code == 401
    secured.extensions["catalog_api"].engine.dispose()


def test_readyz_answers_when_the_database_does(client: FlaskClient) -> None:
    assert client.get("/readyz").get_json() == {"status": "ok"}


def test_a_dead_database_is_503_json_not_500(app: Flask) -> None:
    state = app.extensions["catalog_api"]
    state.sessions = make_session_factory(make_engine(DEAD_DATABASE))  # it went away after start
    client = app.test_client()
    assert client.get("/healthz").status_code == 200  # liveness never needs it
    for path in ("/readyz", "/catalog/products", "/catalog/products/1", "/catalog/changes"):
        reply = client.get(path)
        assert reply.status_code == 503, path
        assert reply.get_json()["error"] == "database_unavailable", path
    assert client.get("/catalog/products").headers["Retry-After"] == "5"


def test_docs_serve_swagger_ui_from_the_package_not_a_cdn(client: FlaskClient) -> None:
    page = client.get("/docs").get_data(as_text=True)
    assert "/openapi.json" in page and "/docs/static/swagger-ui-bundle.js" in page
    assert "http://" not in page and "https://" not in page
    bundle = client.get("/docs/static/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.data) > 100_000
    assert client.get("/docs/static/../../etc/passwd").status_code == 404


def test_wait_is_bounded(client: FlaskClient) -> None:
    assert client.get("/catalog/changes?wait=61").status_code == 400
    assert client.get("/catalog/changes?wait=-1").status_code == 400


def test_an_empty_long_poll_returns_after_wait(client: FlaskClient) -> None:
    started = time.monotonic()
    reply = client.get("/catalog/changes?after=0&wait=1").get_json()
    assert reply == {"changes": [], "next_after": 0, "has_more": False}
    assert 0.9 <= time.monotonic() - started < 3


def test_a_long_poll_wakes_within_a_second_of_a_commit(
    app: Flask, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        b.product(session, 1)
        first = b.change(session, 1, "created").seq
    answers: list[tuple[float, Any]] = []

    def poll() -> None:
        reply = app.test_client().get(f"/catalog/changes?after={first}&wait=20")
        answers.append((time.monotonic(), reply.get_json()))

    pollers = [threading.Thread(target=poll) for _ in range(3)]
    for poller in pollers:
        poller.start()
    time.sleep(1.0)
    engine = app.extensions["catalog_api"].engine
    if hasattr(engine.pool, "checkedout"):  # PostgreSQL's pool: waiting holds no connection
        held = [engine.pool.checkedout() for _ in range(10) if time.sleep(0.05) is None]
        assert max(held) <= 1, held  # the watcher's one short read at most, not one per waiter
    assert not answers, "answered before any change committed"
    with session_factory.begin() as session:
        added = b.change(session, 1, "prices").seq
    committed = time.monotonic()
    for poller in pollers:
        poller.join(timeout=10)
    assert len(answers) == 3
    for answered, body in answers:
        assert [c["seq"] for c in body["changes"]] == [added]
        assert answered - committed < 1.0, f"woke {answered - committed:.2f} s after the commit"
