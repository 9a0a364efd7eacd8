"""The pure parts: the lifecycle state machine and the pre-checks, without I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from worker.orders import lifecycle as lc
from worker.orders.checks import (
    Approved,
    DayFacts,
    Facts,
    Holder,
    OrderRequest,
    ProductFacts,
    Refusal,
    SessionFacts,
    age_on,
    check_order,
    holder_key,
)

DAY = date(2026, 12, 10)
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
PRODUCT = ProductFacts(
    product_id=1,
    is_authorized=True,
    product_status=1,
    product_name="西湖",
    entrance_mode=0,
    customer_set=2,
    max_number_by_order=5,
    max_number_by_mobile=0,
    limit_day_by_mobile=0,
    max_number_by_card_id=0,
    limit_day_by_card_id=0,
    min_age=0,
    max_age=0,
    booking_time=None,
    sells_by_session=False,
)
PRICED = DayFacts(DAY, Decimal("88.50"), Decimal("99.00"), Decimal("120.00"), 10, 0)
CONTACT = Holder(name="张三", mobile="13812345678")
ADULT = Holder(name="李四", mobile="13900001111", id_number="110101199003071234")


def ask(**changes: object) -> OrderRequest:
    values: dict[str, object] = {
        "origin_order_id": "A1",
        "product_id": 1,
        "visit_date": DAY,
        "quantity": 2,
        "contact": CONTACT,
    }
    values.update(changes)
    return OrderRequest.model_validate(values)


def rule(request: OrderRequest, facts: Facts, now: datetime = NOW) -> str | None:
    verdict = check_order(request, facts, now)
    return verdict.rule if isinstance(verdict, Refusal) else None


@pytest.mark.parametrize(
    ("current", "target", "verdict", "after"),
    [
        ("unknown", "awaiting_payment", "applied", "awaiting_payment"),
        ("unknown", "issued", "applied", "issued"),
        ("awaiting_payment", "issued", "applied", "issued"),
        ("awaiting_payment", "payment_failed", "applied", "payment_failed"),
        ("awaiting_payment", "cancelled", "applied", "cancelled"),
        ("paid", "ticket_failed", "applied", "ticket_failed"),
        ("ticket_failed", "issued", "applied", "issued"),
        ("issued", "awaiting_payment", "stale", "issued"),
        ("issued", "paid", "stale", "issued"),
        ("refund_pending", "issued", "same", "refund_pending"),
        ("issued", "ticket_failed", "anomaly", "issued"),
        ("cancelled", "issued", "anomaly", "cancelled"),
        ("payment_failed", "paid", "anomaly", "payment_failed"),
        ("rejected", "awaiting_payment", "anomaly", "rejected"),
        ("issued", "unknown", "anomaly", "issued"),
    ],
)
def test_moves_are_applied_stale_same_or_anomalies(
    current: str, target: str, verdict: str, after: str
) -> None:
    move = lc.decide(current, target)
    assert (move.verdict, move.status) == (verdict, after)


def test_order_status_2_and_5_are_failures() -> None:
    assert [lc.from_supplier_status(code) for code in range(6)] == [
        "awaiting_payment",
        "paid",
        "payment_failed",
        "awaiting_ticket",
        "issued",
        "ticket_failed",
    ]
    assert {lc.from_supplier_status(2), lc.from_supplier_status(5)} == lc.FAILURES
    assert lc.from_supplier_status(9) == "unknown"


def test_issued_orders_settle_from_quantities_and_pending_batches() -> None:
    assert lc.settle("issued", 3, 0, 0, 1) == "refund_pending"
    assert lc.settle("refund_pending", 3, 0, 1, 0) == "issued"
    assert lc.settle("issued", 3, 3, 0, 0) == "redeemed"
    assert lc.settle("issued", 3, 2, 1, 0) == "redeemed"
    assert lc.settle("issued", 3, 0, 3, 0) == "refunded"
    assert lc.settle("awaiting_payment", 3, 0, 0, 1) == "awaiting_payment"


def test_counts_only_move_forward_and_back_off_is_bounded() -> None:
    assert lc.forward(3, 2) == 3 and lc.forward(1, 2) == 2
    delays = [lc.reconcile_delay_s(n) for n in range(12)]
    assert delays == sorted(delays) and delays[0] == 30 and max(delays) == 3600


def test_a_plain_order_passes_and_keeps_what_it_was_sold_on() -> None:
    verdict = check_order(ask(), Facts(PRODUCT, PRICED), NOW)
    assert isinstance(verdict, Approved)
    assert verdict.day.price == Decimal("88.50")
    assert verdict.bookable_until.isoformat() == "2026-12-10T23:59:59+08:00"


def test_each_rule_is_named() -> None:
    per_visitor = replace(PRODUCT, entrance_mode=1, customer_set=1)
    assert rule(ask(quantity=0), Facts(PRODUCT, PRICED)) == "quantity"
    assert rule(ask(), Facts(None, None)) == "product_known"
    assert rule(ask(), Facts(replace(PRODUCT, is_authorized=False), PRICED)) == (
        "product_authorized"
    )
    assert rule(ask(), Facts(replace(PRODUCT, product_status=0), PRICED)) == "product_on_shelf"
    assert rule(ask(), Facts(PRODUCT, None)) == "price_on_date"
    late = datetime(2026, 12, 10, 16, 1, tzinfo=UTC)  # 00:01 on the 11th in Shanghai
    assert rule(ask(), Facts(PRODUCT, PRICED), late) == "bookable_until"
    cut_off = replace(PRODUCT, booking_time=time(16, 30))
    ahead = replace(PRICED, booking_days=2)
    at = datetime(2026, 12, 8, 8, 31, tzinfo=UTC)  # 16:31 on the 8th in Shanghai
    assert rule(ask(), Facts(cut_off, ahead), at) == "bookable_until"
    assert rule(ask(), Facts(cut_off, ahead), at.replace(minute=29)) is None
    assert rule(ask(quantity=6), Facts(PRODUCT, PRICED)) == "max_number_by_order"
    assert rule(ask(quantity=11), Facts(replace(PRODUCT, max_number_by_order=0), PRICED)) == (
        "day_stock"
    )
    assert (
        rule(
            ask(quantity=20),
            Facts(replace(PRODUCT, max_number_by_order=0), replace(PRICED, stock=None)),
        )
        is None
    )
    assert rule(ask(visitors=(ADULT,)), Facts(per_visitor, PRICED)) == "visitor_ids"
    no_id = Holder(name="王五", mobile="13900002222")
    assert rule(ask(visitors=(ADULT, no_id)), Facts(per_visitor, PRICED)) == "visitor_ids"
    assert rule(ask(visitors=(ADULT, ADULT)), Facts(per_visitor, PRICED)) is None


def test_sessions_ages_and_holder_limits() -> None:
    timed = replace(PRODUCT, sells_by_session=True)
    am = SessionFacts("AM", "09:00", "11:00", 3)
    assert rule(ask(), Facts(timed, PRICED)) == "session"  # no session that day
    assert rule(ask(), Facts(timed, PRICED, [am])) == "session"  # none chosen
    assert rule(ask(session_code="PM"), Facts(timed, PRICED, [am])) == "session"
    assert rule(ask(session_code="AM", quantity=4), Facts(timed, PRICED, [am])) == ("session_stock")
    assert rule(ask(session_code="AM"), Facts(timed, PRICED, [am])) is None
    assert rule(ask(session_code="AM"), Facts(PRODUCT, PRICED)) == "session"
    child = Holder(name="小明", mobile="13900003333", id_number="110101201505051236")
    adults_only = replace(PRODUCT, min_age=18)
    assert rule(ask(visitors=(ADULT, child)), Facts(adults_only, PRICED)) == "age"
    assert rule(ask(visitors=(ADULT, ADULT)), Facts(replace(PRODUCT, max_age=30), PRICED)) == (
        "age"
    )
    assert age_on("110101201505051236", DAY) == 11
    by_mobile = replace(PRODUCT, max_number_by_mobile=3, limit_day_by_mobile=1)
    prior = {holder_key("mobile", CONTACT.mobile): 2}
    assert rule(ask(), Facts(by_mobile, PRICED, prior_by_holder=prior)) == "max_number_by_mobile"
    assert rule(ask(quantity=1), Facts(by_mobile, PRICED, prior_by_holder=prior)) is None
    by_id = replace(PRODUCT, max_number_by_card_id=1)
    assert rule(ask(quantity=2, visitors=(ADULT,)), Facts(by_id, PRICED)) == (
        "max_number_by_card_id"
    )
