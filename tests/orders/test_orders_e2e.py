"""Orders end to end: our service and CLI against the sandbox over real HTTP, its signed notices
received by our callback app and applied by a real Celery worker on Redis."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from pydantic import SecretStr

from models.orders import Order, OrderEvent, OrderHistory
from tests.orders.conftest import UNIT_PRICE, Stack
from tests.support.callbacks import wait_for
from worker.orders import service
from worker.orders.checks import Holder, OrderRequest

pytestmark = pytest.mark.timeout(120)

CREATE = "/order/Create"
PAY = "/order/Pay"
ORDER_PATHS = (
    "/order/Verify",
    CREATE,
    PAY,
    "/order/PersonQrCodes",
    "/order/Refund",
    "/order/CancelOrder",
)
MOBILE = "13812345678"
ID_ADULT = "110101199003071234"
ID_ADULT_2 = "110101198805052345"
ID_CHILD = "110101201505051236"
TOKEN = SecretStr("orders-test-token")
BEARER = {"Authorization": "Bearer orders-test-token"}
CONTACT = Holder(name="张三", mobile=MOBILE, id_number=ID_ADULT)


def request(stack: Stack, product_id: int, quantity: int = 2, **overrides: Any) -> OrderRequest:
    values: dict[str, Any] = {
        "origin_order_id": service.new_origin_order_id(),
        "product_id": product_id,
        "visit_date": stack.today + timedelta(days=3),
        "quantity": quantity,
        "contact": CONTACT,
    }
    values.update(overrides)
    return OrderRequest(**values)


def status(stack: Stack, origin: str) -> str | None:
    with stack.runtime.sessions() as session:
        view = service.show(session, origin)
    return None if view is None else view["status"]


def view(stack: Stack, origin: str) -> dict[str, Any]:
    with stack.runtime.sessions() as session:
        found = service.show(session, origin)
    assert found is not None
    return found


def place(stack: Stack, req: OrderRequest) -> service.Outcome:
    return service.place(stack.runtime.sessions, stack.runtime.supplier, req)


def pay(stack: Stack, origin: str) -> service.Outcome:
    return service.pay(stack.runtime.sessions, stack.runtime.supplier, origin)


def test_one_code_order_from_verify_to_redeemed(stack: Stack) -> None:
    product_id = stack.product()
    req = request(stack, product_id, quantity=2)
    verified = service.verify(stack.runtime.sessions, stack.runtime.supplier, req)
    assert verified.result == "done", verified
    assert stack.requests("/order/Verify") == 1

    created = place(stack, req)
    assert created.result == "done", created
    assert created.order is not None and created.order["status"] == "awaiting_payment"
    assert created.order["snapshot"]["day"]["price"] == UNIT_PRICE

    paid = pay(stack, req.origin_order_id)
    assert paid.result == "done", paid
    assert paid.order is not None and paid.order["status"] == "issued"
    (supplier_order,) = stack.supplier_orders(req.origin_order_id)
    # UnitPrice went out as a JSON number the sandbox accepts (it refuses a string).
    assert Decimal(str(supplier_order["pay_money"])) == Decimal(UNIT_PRICE) * 2
    assert wait_for(
        lambda: any(
            h["action"] == "ticket_notice" for h in view(stack, req.origin_order_id)["history"]
        )
    )

    stack.book.redeem(supplier_order["order_id"], 1)
    assert wait_for(lambda: view(stack, req.origin_order_id)["redeemed_quantity"] == 1)
    assert status(stack, req.origin_order_id) == "issued"
    stack.book.redeem(supplier_order["order_id"], 1)
    assert wait_for(lambda: status(stack, req.origin_order_id) == "redeemed")
    shown = view(stack, req.origin_order_id)
    assert (shown["quantity"], shown["redeemed_quantity"], shown["refunded_quantity"]) == (2, 2, 0)
    assert shown["order_id"] == supplier_order["order_id"]
    assert [v["voucher_code"] for v in shown["vouchers"]] == [supplier_order["voucher_code"]]
    sources = {(h["source"], h["action"]) for h in shown["history"]}
    assert {("call", "create"), ("call", "pay"), ("notice", "ticket_notice")} <= sources
    assert ("notice", "redemption_notice") in sources


def test_one_code_per_visitor_order_from_verify_to_redeemed(stack: Stack) -> None:
    product_id = stack.product(EntranceMode=1, CustomerSet=1)
    visitors = (
        Holder(name="李四", mobile="13900001111", id_number=ID_ADULT),
        Holder(name="王五", mobile="13900002222", id_number=ID_ADULT_2),
    )
    req = request(stack, product_id, quantity=2, visitors=visitors)
    assert service.verify(stack.runtime.sessions, stack.runtime.supplier, req).result == "done"
    assert place(stack, req).result == "done"
    paid = pay(stack, req.origin_order_id)
    assert paid.result == "done" and paid.order is not None
    vouchers = paid.order["vouchers"]
    assert len(vouchers) == 2
    assert {v["holder"]["id_number"][-4:] for v in vouchers} == {"1234", "2345"}
    assert all("*" in v["holder"]["mobile"] for v in vouchers)
    (supplier_order,) = stack.supplier_orders(req.origin_order_id)
    qr = service.qr_codes(stack.runtime.sessions, stack.runtime.supplier, req.origin_order_id)
    assert qr.result == "done" and len(qr.extra["qr_codes"]) == 2
    stack.book.redeem(supplier_order["order_id"], 2)
    assert wait_for(lambda: status(stack, req.origin_order_id) == "redeemed")
    assert view(stack, req.origin_order_id)["redeemed_quantity"] == 2


def test_partial_refund_approved_and_one_rejected(stack: Stack) -> None:
    product_id = stack.product()
    req = request(stack, product_id, quantity=3)
    assert place(stack, req).result == "done"
    assert pay(stack, req.origin_order_id).result == "done"
    origin = req.origin_order_id

    first = service.refund(stack.runtime.sessions, stack.runtime.supplier, origin, 1)
    assert first.result == "done", first
    assert status(stack, origin) == "refund_pending"
    applications = stack.book.refund_applications()
    stack.book.review_refund(applications[-1]["apply_id"], approve=True)
    assert wait_for(lambda: status(stack, origin) == "issued")
    assert view(stack, origin)["refunded_quantity"] == 1

    second = service.refund(stack.runtime.sessions, stack.runtime.supplier, origin, 1)
    assert second.result == "done"
    assert status(stack, origin) == "refund_pending"
    stack.book.review_refund(stack.book.refund_applications()[-1]["apply_id"], approve=False)
    assert wait_for(lambda: status(stack, origin) == "issued")
    shown = view(stack, origin)
    assert shown["refunded_quantity"] == 1
    assert [b["status"] for b in shown["refund_batches"]] == ["approved", "rejected"]
    assert len({b["refund_id"] for b in shown["refund_batches"]}) == 2
    # More than is left is refused before the supplier is asked.
    too_many = service.refund(stack.runtime.sessions, stack.runtime.supplier, origin, 3)
    assert (too_many.result, too_many.rule) == ("refused", "refund_count")


def test_cancel_before_pay(stack: Stack) -> None:
    product_id = stack.product()
    req = request(stack, product_id)
    assert place(stack, req).result == "done"
    cancelled = service.cancel(stack.runtime.sessions, stack.runtime.supplier, req.origin_order_id)
    assert cancelled.result == "done" and status(stack, req.origin_order_id) == "cancelled"
    (supplier_order,) = stack.supplier_orders(req.origin_order_id)
    assert supplier_order["cancelled"] is True
    refused = pay(stack, req.origin_order_id)
    assert (refused.result, refused.rule) == ("refused", "status")
    assert supplier_order["pays_accepted"] == 0 and stack.requests(PAY) == 0


def test_every_precheck_refusal_names_its_rule_and_never_reaches_the_supplier(
    stack: Stack,
) -> None:
    plain = stack.product()
    per_visitor = stack.product(EntranceMode=1, CustomerSet=1)
    ahead = stack.product(booking_day=5)
    few = stack.product(stock=2)
    adults = stack.product(MinAge=18, MaxAge=60, EntranceMode=1, CustomerSet=1)
    by_mobile = stack.product(MaxNumberByMobile=2, LimitDayByMobile=1)
    by_id = stack.product(MaxNumberByCardID=1, LimitDayByCardID=1, EntranceMode=1, CustomerSet=1)
    off_shelf = stack.product(ProductStatus=0)
    gone = stack.product()
    timed = stack.product(sessions=True)
    stack.sandbox.state.catalog.deauthorize(gone)
    from worker.sync.products import sync_one_product

    sync_one_product(stack.runtime.sessions, stack.runtime.supplier, gone)
    child = Holder(name="小明", mobile="13900003333", id_number=ID_CHILD)
    adult = Holder(name="李四", mobile="13900001111", id_number=ID_ADULT)
    adult2 = Holder(name="王五", mobile="13900002222", id_number=ID_ADULT_2)
    far = stack.today + timedelta(days=200)
    cases = {
        "quantity": request(stack, plain, quantity=0),
        "product_known": request(stack, 987654321),
        "product_authorized": request(stack, gone),
        "product_on_shelf": request(stack, off_shelf),
        "price_on_date": request(stack, plain, visit_date=far),
        "bookable_until": request(stack, ahead, visit_date=stack.today + timedelta(days=1)),
        "max_number_by_order": request(stack, plain, quantity=6),
        "day_stock": request(stack, few, quantity=3),
        "visitor_ids": request(stack, per_visitor, quantity=2, visitors=(adult,)),
        "session": request(stack, timed),
        "age": request(stack, adults, quantity=2, visitors=(adult, child)),
        "max_number_by_mobile": request(stack, by_mobile, quantity=3),
        "max_number_by_card_id": request(
            stack,
            by_id,
            quantity=2,
            visitors=(adult, adult2),
            contact=Holder(name="张三", mobile=MOBILE, id_number=ID_ADULT),
        ),
    }
    stack.sandbox.state.traffic.reset_stats()
    for rule, req in cases.items():
        outcome = place(stack, req)
        assert (outcome.result, outcome.rule) == ("refused", rule), (rule, outcome)
        checked = service.verify(stack.runtime.sessions, stack.runtime.supplier, req)
        assert checked.rule == rule
    wrong_session = request(stack, timed, session_code="NO-SUCH-SESSION")
    assert place(stack, wrong_session).rule == "session"
    assert sum(stack.requests(path) for path in ORDER_PATHS) == 0
    with stack.runtime.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0


def test_create_whose_answer_is_lost_ends_with_exactly_one_supplier_order(stack: Stack) -> None:
    product_id = stack.product()
    req = request(stack, product_id)
    stack.sandbox.state.traffic.add_fault({"kind": "lost", "path": CREATE})
    outcome = place(stack, req)
    assert (outcome.result, outcome.rule) == ("unknown", "outcome_unknown")
    assert status(stack, req.origin_order_id) == "unknown"
    # Nothing sends it again: not a second create, not a pay, not the beat task.
    again = place(stack, req)
    assert (again.result, again.rule) == ("refused", "origin_order_id")
    assert pay(stack, req.origin_order_id).result == "unknown"
    later = datetime.now(UTC) + timedelta(hours=2)
    checked = service.reconcile_unknown(
        stack.runtime.sessions, stack.runtime.supplier, clock=lambda: later
    )
    assert checked == {"checked": 1, "resolved": 0}
    assert len(stack.supplier_orders(req.origin_order_id)) == 1
    assert stack.requests(CREATE) == 1 and stack.requests(PAY) == 0
    with stack.runtime.sessions() as session:
        unknown, _ = service.list_orders(session, status="unknown")
    assert [o["origin_order_id"] for o in unknown] == [req.origin_order_id]
    assert unknown[0]["unknown_step"] == "create"


def _cli(stack: Stack, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    from worker.cli import main

    settings = stack.runtime.settings
    env = {
        "ZZY_BASE_URL": settings.zzy_base_url,
        "ZZY_PARTNER_ID": str(settings.zzy_partner_id),
        "ZZY_SIGN_KEY": settings.zzy_sign_key.get_secret_value(),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url or "",
        "HTTP_TIMEOUT_S": "2",
        "ZZY_ALLOW_HTTP": "true",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return CliRunner().invoke(main, ["order", *args], catch_exceptions=False)


def test_pay_whose_answer_is_lost_then_repeated_pay_ends_issued_with_one_pay(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    product_id = stack.product()
    day = (stack.today + timedelta(days=3)).isoformat()
    created = _cli(
        stack,
        monkeypatch,
        "create",
        "--product",
        str(product_id),
        "--date",
        day,
        "--quantity",
        "2",
        "--contact",
        f"张三,{MOBILE}",
        "--json",
    )
    assert created.exit_code == 0, created.output
    origin = json.loads(created.output)["order"]["origin_order_id"]
    stack.sandbox.state.traffic.add_fault({"kind": "lost", "path": PAY})
    lost = _cli(stack, monkeypatch, "pay", origin)
    assert lost.exit_code == 3, lost.output
    codes = []
    for _ in range(5):
        codes.append(_cli(stack, monkeypatch, "pay", origin).exit_code)
    assert set(codes) <= {0, 3}
    assert wait_for(lambda: status(stack, origin) == "issued")
    assert _cli(stack, monkeypatch, "pay", origin).exit_code == 0
    (supplier_order,) = stack.supplier_orders(origin)
    assert supplier_order["pays_accepted"] == 1 and supplier_order["pays_refused"] == 0
    assert stack.requests(PAY) == 1
    shown = _cli(stack, monkeypatch, "show", origin, "--json")
    assert json.loads(shown.output)["status"] == "issued"


def test_lost_pay_reconciled_by_person_qr_codes_and_the_beat_task_without_notices(
    stack: Stack,
) -> None:
    stack.sandbox.state.update_settings({"callback_url": "http://127.0.0.1:9/callbacks/zzy"})
    product_id = stack.product()
    first, second = request(stack, product_id), request(stack, product_id)
    for req in (first, second):
        assert place(stack, req).result == "done"
    stack.sandbox.state.traffic.add_fault({"kind": "lost", "path": PAY, "count": 2})
    assert pay(stack, first.origin_order_id).result == "unknown"
    assert pay(stack, second.origin_order_id).result == "unknown"
    # pay again: PersonQrCodes (a read) finds the tickets; Pay is not sent again
    again = pay(stack, first.origin_order_id)
    assert again.result == "done" and status(stack, first.origin_order_id) == "issued"
    # the beat task finds the other once its back-off is due
    later = datetime.now(UTC) + timedelta(hours=1)
    done = service.reconcile_unknown(
        stack.runtime.sessions, stack.runtime.supplier, clock=lambda: later
    )
    assert done == {"checked": 1, "resolved": 1}
    assert status(stack, second.origin_order_id) == "issued"
    assert stack.requests(PAY) == 2
    for req in (first, second):
        assert stack.supplier_orders(req.origin_order_id)[0]["pays_accepted"] == 1


@pytest.mark.parametrize("http_timeout_s", [12.0])
def test_ticket_notice_arriving_before_the_create_call_returns(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    product_id = stack.product()
    req = request(stack, product_id)
    stack.sandbox.state.traffic.add_fault({"kind": "late", "path": CREATE, "hold_s": 6.0})
    results: list[service.Outcome] = []
    worker = threading.Thread(target=lambda: results.append(place(stack, req)))
    worker.start()
    assert wait_for(lambda: bool(stack.supplier_orders(req.origin_order_id)), 5)
    (made,) = stack.supplier_orders(req.origin_order_id)
    stack.sandbox.state.notify(
        "order_ticket_notify",
        {
            "OriginOrderId": req.origin_order_id,
            "OrderId": made["order_id"],
            "VoucherCode": {"OrderVoucherCode": "V-EARLY-1", "OrderUserVouchers": []},
            "TicketStatus": 1,
        },
    )
    assert wait_for(
        lambda: any(
            h["action"] == "ticket_notice" for h in view(stack, req.origin_order_id)["history"]
        ),
        5.5,
    )
    assert results == []  # the notice was applied while Create had not returned yet
    worker.join(10)
    assert results and results[0].result == "done", results
    shown = view(stack, req.origin_order_id)
    assert shown["status"] == "issued" and shown["order_id"] == made["order_id"]
    actions = [(h["action"], h["outcome"]) for h in shown["history"]]
    assert actions.index(("ticket_notice", "applied")) < actions.index(("create", "stale"))


def test_personal_data_masked_in_ledger_api_cli_and_logs(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    product_id = stack.product(EntranceMode=1, CustomerSet=1)
    visitors = (
        Holder(name="李四", mobile="13900001111", id_number=ID_ADULT),
        Holder(name="王五", mobile="13900002222", id_number=ID_ADULT_2),
    )
    req = request(stack, product_id, visitors=visitors)
    assert place(stack, req).result == "done"
    assert pay(stack, req.origin_order_id).result == "done"
    assert wait_for(
        lambda: any(
            h["action"] == "ticket_notice" for h in view(stack, req.origin_order_id)["history"]
        )
    )
    secrets = (MOBILE, ID_ADULT, ID_ADULT_2, "13900001111", "13900002222")
    with stack.runtime.sessions() as session:
        rows = [
            json.dumps(
                {c.name: getattr(row, c.name) for c in row.__table__.columns},
                default=str,
                ensure_ascii=False,
            )
            for model in (Order, OrderHistory, OrderEvent)
            for row in session.scalars(sa.select(model))
        ]
    ledger = "\n".join(rows)
    shown = _cli(stack, monkeypatch, "show", req.origin_order_id, "--json").output
    listed = _cli(stack, monkeypatch, "list", "--json").output
    from catalog_api.app import create_app as create_api

    api = create_api(stack.runtime.settings.model_copy(update={"catalog_api_token": TOKEN}))
    client = api.test_client()
    assert client.get(f"/orders/{req.origin_order_id}").status_code == 401
    got = client.get(f"/orders/{req.origin_order_id}", headers=BEARER)
    assert got.status_code == 200 and got.get_json()["status"] == "issued"
    listed_api = client.get("/orders?status=issued", headers=BEARER).get_data(as_text=True)
    for text in (ledger, shown, listed, got.get_data(as_text=True), listed_api, caplog.text):
        for secret in secrets:
            assert secret not in text


def test_unit_price_is_a_json_number_with_its_exact_text() -> None:
    from worker.supplier.payloads import PayOrderRequest, wire_json

    body = PayOrderRequest(order_id=7, unit_price=Decimal("88.50"), ticket_count=2).to_wire()
    text = wire_json({"PartnerId": 1, **body}).decode()
    assert '"UnitPrice": 88.50' in text
    assert json.loads(text, parse_float=Decimal)["UnitPrice"] == Decimal("88.50")


def _unused(value: date) -> None:  # keeps date imported for builders above
    del value


def test_lost_create_reconciled_by_the_ticket_notice_merging_what_came_before(
    stack: Stack,
) -> None:
    product_id = stack.product()
    req = request(stack, product_id, quantity=2)
    stack.sandbox.state.traffic.add_fault({"kind": "lost", "path": CREATE})
    assert place(stack, req).result == "unknown"
    (made,) = stack.supplier_orders(req.origin_order_id)
    # A refund notice names only the OrderId: it lands on a ledger-only row first.
    stack.sandbox.state.notify(
        "order_refund_notify",
        {
            "OrderId": made["order_id"],
            "RefundApplyNo": "",
            "RefundStatus": 1,
            "RefundReason": "",
            "VoucherCode": ["V-1"],
        },
    )
    with stack.runtime.sessions() as session:
        assert wait_for(
            lambda: (
                session.scalar(
                    sa.select(sa.func.count())
                    .select_from(Order)
                    .where(Order.supplier_order_id == made["order_id"])
                )
                == 1
            )
        )
    stack.sandbox.state.notify(
        "order_ticket_notify",
        {
            "OriginOrderId": req.origin_order_id,
            "OrderId": made["order_id"],
            "VoucherCode": {"OrderVoucherCode": "V-1", "OrderUserVouchers": []},
            "TicketStatus": 1,
        },
    )
    assert wait_for(lambda: view(stack, req.origin_order_id)["order_id"] == made["order_id"])
    assert wait_for(lambda: status(stack, req.origin_order_id) == "issued")
    shown = view(stack, req.origin_order_id)
    assert shown["refunded_quantity"] == 1
    with stack.runtime.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Order)) == 1
    assert stack.requests(CREATE) == 1 and len(stack.supplier_orders(req.origin_order_id)) == 1


def test_read_api_places_pays_and_lists_orders_with_the_same_token(stack: Stack) -> None:
    from catalog_api.app import create_app as create_api

    product_id = stack.product()
    api = create_api(stack.runtime.settings.model_copy(update={"catalog_api_token": TOKEN}))
    client = api.test_client()
    day = (stack.today + timedelta(days=3)).isoformat()
    body = {
        "product_id": product_id,
        "visit_date": day,
        "quantity": 1,
        "contact": {"name": "张三", "mobile": MOBILE},
    }
    assert client.post("/orders", json=body).status_code == 401
    created = client.post("/orders", json=body, headers=BEARER)
    assert created.status_code == 201, created.get_json()
    origin = created.get_json()["order"]["origin_order_id"]
    refused = client.post("/orders", json={**body, "quantity": 6}, headers=BEARER)
    assert refused.status_code == 422 and refused.get_json()["rule"] == "max_number_by_order"
    assert client.post("/orders", json={**body, "quantity": "x"}, headers=BEARER).status_code == 400
    stack.sandbox.state.traffic.add_fault({"kind": "lost", "path": PAY})
    lost = client.post(f"/orders/{origin}/pay", headers=BEARER)
    assert lost.status_code == 202 and lost.get_json()["result"] == "unknown"
    second = client.post("/orders", json=body, headers=BEARER).get_json()["order"]
    listed = client.get("/orders?status=awaiting_payment", headers=BEARER).get_json()
    assert [o["origin_order_id"] for o in listed["orders"]] == [second["origin_order_id"]]
    page = client.get("/orders?limit=1", headers=BEARER).get_json()
    assert page["next_cursor"] is not None
    rest = client.get(f"/orders?limit=1&cursor={page['next_cursor']}", headers=BEARER).get_json()
    assert [o["origin_order_id"] for o in rest["orders"]] == [second["origin_order_id"]]
    cancelled = client.post(f"/orders/{second['origin_order_id']}/cancel", headers=BEARER)
    assert cancelled.status_code == 200 and cancelled.get_json()["order"]["status"] == "cancelled"
    assert client.get("/orders/nope", headers=BEARER).status_code == 404
    assert wait_for(lambda: status(stack, origin) == "issued")
    assert stack.requests(PAY) == 1
