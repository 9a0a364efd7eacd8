"""A read API started without supplier settings (``ReadApiSettings``) answers every order call
that needs the supplier with 503 ``orders_unavailable``, before it writes anything."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from catalog_api.app import create_app
from models.orders import Order, OrderRefundBatch
from worker.settings import ReadApiSettings


@pytest.fixture
def read_only_app(database_url: str) -> Iterator[Flask]:
    settings = ReadApiSettings(database_url=database_url, catalog_api_anonymous=True)
    app = create_app(settings)
    yield app
    app.extensions["catalog_api"].engine.dispose()


def test_a_refund_without_supplier_settings_is_503_and_sends_nothing(
    read_only_app: Flask, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        session.add(
            Order(
                origin_order_id="O-ISSUED",
                supplier_order_id=4553010,
                status="issued",
                quantity=2,
                product_id=1,
            )
        )
    client = read_only_app.test_client()
    reply = client.post("/orders/O-ISSUED/refund", json={"count": 1})
    assert reply.status_code == 503, reply.get_data(as_text=True)
    assert reply.get_json()["error"] == "orders_unavailable"
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(OrderRefundBatch)) == 0
        assert session.scalars(select(Order)).one().status == "issued"
    for path in ("/orders/O-ISSUED/pay", "/orders/O-ISSUED/cancel"):
        assert client.post(path).status_code == 503, path
    assert client.get("/orders/O-ISSUED").status_code == 200  # reading needs no supplier
