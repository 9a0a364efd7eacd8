"""Notices in every lawful shape the receiver reads, sent by the sandbox over real HTTP: empty
lists as ``null``, camelCase keys (the envelope's too) and the body as a JSON object instead of
a string. Each is received, stored, and applied to the ledger and the catalog by a real worker.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from models.catalog import Product
from models.inbox import InboxMessage, InboxStatus
from supplier_sandbox.server import SandboxConfig
from tests.orders.conftest import Stack
from tests.orders.test_orders_e2e import pay, place, request, status, view
from tests.support.callbacks import wait_for
from worker.orders import service

pytestmark = pytest.mark.timeout(120)

SHAPES = frozenset({"null-lists", "camel-case", "notice-body-object"})


@pytest.fixture
def sandbox_config() -> Any:
    return SandboxConfig(products=30, seed=7, quirks=SHAPES)


def test_order_and_product_notices_in_every_shape_are_applied(stack: Stack) -> None:
    assert stack.sandbox.state.config.quirks == SHAPES  # how supplier_sandbox.notifier sends
    product_id = stack.product()
    req = request(stack, product_id, quantity=3)
    origin = req.origin_order_id
    assert place(stack, req).result == "done"
    assert pay(stack, origin).result == "done"
    (supplier_order,) = stack.supplier_orders(origin)
    assert wait_for(
        lambda: any(h["action"] == "ticket_notice" for h in view(stack, origin)["history"])
    )
    assert [v["voucher_code"] for v in view(stack, origin)["vouchers"]] == [
        supplier_order["voucher_code"]
    ]

    stack.book.redeem(supplier_order["order_id"], 1)
    assert wait_for(lambda: view(stack, origin)["redeemed_quantity"] == 1)

    assert (
        service.refund(stack.runtime.sessions, stack.runtime.supplier, origin, 1).result == "done"
    )
    stack.book.review_refund(stack.book.refund_applications()[-1]["apply_id"], approve=True)
    assert wait_for(lambda: view(stack, origin)["refunded_quantity"] == 1)
    assert status(stack, origin) == "issued"

    stack.sandbox.state.catalog.set_shelf(product_id, False, notify=True)

    def off_shelf() -> bool:
        with stack.runtime.sessions() as session:
            row = session.get(Product, product_id)
            return row is not None and row.product_status == 0

    assert wait_for(off_shelf)
    assert stack.sandbox.state.callbacks.wait_settled(15)
    deliveries = stack.sandbox.state.callbacks.deliveries()
    assert {d["service"] for d in deliveries} >= {
        "order_ticket_notify",
        "order_verify_notify",
        "order_refund_notify",
        "order_product_notify",
    }
    assert all(d["done"] and d["attempts"] == 1 for d in deliveries), deliveries
    # Each notice was received and applied (the inbox keeps them read into one form).
    with stack.runtime.sessions() as session:
        stored = session.scalars(select(InboxMessage)).all()
    assert len(stored) == len(deliveries)
    assert all(m.status == InboxStatus.DONE for m in stored), [m.last_error for m in stored]
