"""Health, metrics, the OpenAPI document and the CLI command."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.support import builders as b


def scrape(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_healthz(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}


def test_metrics_report_catalog_counts_freshness_and_last_passes(
    client: FlaskClient, arrange: Session, clock: Any
) -> None:
    b.product(arrange, 1)
    b.product(arrange, 2, prices_refreshed_at=b.T0 - timedelta(hours=2))
    b.product(arrange, 3, product_status=0, prices_refreshed_at=None)
    b.product(arrange, 4, is_authorized=False, prices_refreshed_at=b.T0 - timedelta(days=9))
    b.change(arrange, 1)
    b.change(arrange, 2)
    b.sync_run(
        arrange, "products", "ok", b.T0 - timedelta(minutes=30), b.T0 - timedelta(minutes=20)
    )
    b.sync_run(
        arrange, "products", "failed", b.T0 - timedelta(minutes=10), b.T0 - timedelta(minutes=5)
    )
    b.sync_run(arrange, "prices", "ok", b.T0 - timedelta(minutes=3), b.T0 - timedelta(minutes=1))
    b.sync_run(arrange, "prices", "running", b.T0, None)
    arrange.commit()

    m = scrape(client)
    assert m[("catalog_api_database_up", ())] == 1
    assert m[("catalog_products", (("authorized", "true"), ("status", "on_shelf")))] == 2
    assert m[("catalog_products", (("authorized", "true"), ("status", "off_shelf")))] == 1
    assert m[("catalog_products", (("authorized", "false"), ("status", "on_shelf")))] == 1
    assert m[("catalog_products", (("authorized", "false"), ("status", "off_shelf")))] == 0
    assert m[("catalog_prices_oldest_refresh_age_seconds", ())] == 7200
    assert m[("catalog_products_without_prices", ())] == 1
    assert m[("catalog_sync_last_run_outcome", (("kind", "products"), ("outcome", "failed")))] == 1
    assert m[("catalog_sync_last_run_outcome", (("kind", "products"), ("outcome", "ok")))] == 0
    assert m[("catalog_sync_last_run_outcome", (("kind", "prices"), ("outcome", "ok")))] == 1
    finished = b.T0 - timedelta(minutes=5)
    assert m[("catalog_sync_last_run_finished_timestamp_seconds", (("kind", "products"),))] == (
        finished.timestamp()
    )
    assert m[("catalog_sync_last_success_age_seconds", (("kind", "products"),))] == 1200
    assert m[("catalog_sync_last_success_age_seconds", (("kind", "prices"),))] == 60
    assert m[("catalog_changes_last_seq", ())] == 2


def test_metrics_count_requests_per_route(client: FlaskClient) -> None:
    client.get("/catalog/products")
    client.get("/catalog/products?limit=0")
    m = scrape(client)
    key = "catalog_api_requests_total"
    assert m[(key, (("route", "/catalog/products"), ("status", "200")))] == 1
    assert m[(key, (("route", "/catalog/products"), ("status", "400")))] == 1


def test_each_app_has_its_own_registry(app: Flask, database_url: str, clock: Any) -> None:
    from catalog_api.app import create_app

    other = create_app(b.api_settings(database_url), clock=clock)
    app.test_client().get("/healthz")
    assert app.extensions["catalog_api"].registry is not other.extensions["catalog_api"].registry
    samples = scrape(other.test_client())
    assert (
        ("catalog_api_requests_total", (("route", "/healthz"), ("status", "200")))
    ) not in samples


def test_metrics_report_the_inbox_backlog(client: FlaskClient, engine: Engine) -> None:
    created = not sa.inspect(engine).has_table("inbox")
    try:
        b.inbox_rows(engine, ["pending", "failed", "pending", "done"])
        assert scrape(client)[("catalog_inbox_backlog", ())] == 3
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE inbox" if created else "DELETE FROM inbox"))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_metrics_work_without_an_inbox_table(database_url: str, clock: Any) -> None:
    from catalog_api.app import create_app

    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE IF EXISTS inbox"))
    engine.dispose()

    samples = scrape(create_app(b.api_settings(database_url), clock=clock).test_client())
    assert samples[("catalog_api_database_up", ())] == 1
    assert ("catalog_products", (("authorized", "true"), ("status", "on_shelf"))) in samples
    assert not any(name == "catalog_inbox_backlog" for name, _ in samples)


def test_openapi_document_describes_every_route(client: FlaskClient, app: Flask) -> None:
    """Every route and method the app serves, so schemathesis exercises each one."""
    doc = client.get("/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    routes = {
        (re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and not rule.endpoint.startswith("docs.")  # the UI, not API
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    documented = {
        (path, method) for path, operations in doc["paths"].items() for method in operations
    }
    assert documented == routes
    assert ("/orders/{origin_order_id}/refund", "post") in routes


def test_api_command_is_registered_with_a_port_option() -> None:
    from worker.cli import main

    result = CliRunner().invoke(main, ["api", "--help"])
    assert result.exit_code == 0, result.output
    assert "--port" in result.output
    bad = CliRunner().invoke(main, ["api", "--port", "0"])
    assert bad.exit_code != 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_create_app_reads_settings_from_the_environment(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog_api.app import create_app

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ZZY_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ZZY_PARTNER_ID", "9258")
    monkeypatch.setenv("ZZY_SIGN_KEY", "k")
    monkeypatch.setenv("CATALOG_API_TOKEN", "from-env")
    client = create_app().test_client()
    assert client.get("/catalog/products").status_code == 401
    ok = client.get("/catalog/products", headers={"Authorization": "Bearer from-env"})
    assert ok.status_code == 200
