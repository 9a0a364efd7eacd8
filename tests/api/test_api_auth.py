"""The optional bearer token."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.support import builders as b

TOKEN = "s3cret-token"
GUARDED = [
    "/catalog/products",
    "/catalog/products/1",
    "/catalog/products/1/calendar",
    "/catalog/changes",
    "/openapi.json",
    "/metrics",
]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"catalog_api_token": TOKEN}


@pytest.mark.parametrize("path", GUARDED)
def test_every_route_needs_the_token_when_one_is_set(
    client: FlaskClient, arrange: Session, path: str
) -> None:
    b.product(arrange, 1)
    arrange.commit()

    missing = client.get(path)
    assert missing.status_code == 401
    assert missing.json["error"] == "unauthorized"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    for wrong in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN, "Bearer "):
        assert client.get(path, headers={"Authorization": wrong}).status_code == 401, wrong
    assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_healthz_is_open(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_unknown_paths_are_not_revealed_without_the_token(client: FlaskClient) -> None:
    assert client.get("/nowhere").status_code == 401
    assert client.get("/nowhere", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_without_a_token_nothing_is_required(database_url: str, clock: Any) -> None:
    from catalog_api.app import create_app

    client = create_app(b.api_settings(database_url), clock=clock).test_client()
    assert client.get("/catalog/products").status_code == 200
    assert client.get("/metrics").status_code == 200
