"""schemathesis against /openapi.json: generated requests, valid and invalid, never get a server
error or a response the document does not describe."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from catalog_api.app import create_app
from models.orders import Order
from tests.support import builders as b

EXAMPLES = 40
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def seed(session: Session) -> None:
    """A small catalog for generated requests to hit: ids 0..5 exist."""
    for product_id in range(6):
        b.product(session, product_id, scenic_id=product_id % 2, is_authorized=product_id != 3)
        b.prices(session, product_id, b.TODAY, 5, sale=f"{90 + product_id}.50")
        b.timed_session(session, product_id, b.TODAY, "09:00", "11:00", "AM", 40)
        b.change(session, product_id, "created", version=0, detail={"n": product_id})
    b.product(session, 6, prices_refreshed_at=None, product_status=0, scenic_id=None)
    b.day_price(session, 6, b.TODAY + timedelta(days=1), "1.00", stock=None)
    b.sync_run(session, "products", "ok", b.T0 - timedelta(minutes=5), b.T0)
    # Orders for the order routes to read and refuse: one ticketed, one awaiting payment.
    session.add(
        Order(
            origin_order_id="O-ISSUED",
            supplier_order_id=4553010,
            status="issued",
            quantity=2,
            product_id=1,
            visit_date=b.TODAY,
            order_voucher_code="OV-1",
            holders={"contact": {"name": "张*", "mobile": "181****2623"}},
            visitor_vouchers=[{"voucher_code": "V-1", "id_card_no": "36220163556666666"}],
        )
    )
    session.add(Order(origin_order_id="O-NEW", status="awaiting_payment", quantity=1))


@pytest.fixture
def contract_app(database_url: str, session_factory: Any, clock: Any) -> Iterator[Flask]:
    with session_factory.begin() as session:
        seed(session)
    # Generated ``wait`` values would hold each empty answer up to 60 s: cap them here.
    app = create_app(b.api_settings(database_url), clock=clock, change_wait_cap_s=0.05)
    yield app
    app.extensions["catalog_api"].engine.dispose()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_responses_match_the_document(contract_app: Flask, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", contract_app)
    tried: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and not list(operation.iter_parameters()):
            continue  # nothing to make invalid

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            tried[case.operation.label] = tried.get(case.operation.label, 0) + 1
            case.call_and_validate(checks=CHECKS)

        check()
    # Every operation but /openapi.json itself, which schemathesis leaves out.
    assert len(tried) == (13 if mode is GenerationMode.POSITIVE else 9), tried
