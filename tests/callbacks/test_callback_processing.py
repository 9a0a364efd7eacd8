"""Processing inbox rows: the order ledger, product notices, coalescing, once-only, parking."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callbacks.processing import run_follow_up
from callbacks.relay import replay, run_relay
from models.base import utcnow
from models.inbox import InboxMessage
from models.orders import Order, OrderRefund
from tests.support.callbacks import (
    ID_NUMBER,
    MOBILE,
    PATH,
    SAMPLES,
    FakeCatalog,
    Publisher,
    Sent,
    Stamps,
    encode,
    envelope,
    receive,
    run,
    signed,
)
from worker.coalesce import LocalCoalescer, RedisCoalescer

pytestmark = pytest.mark.timeout(60)


_stamps = Stamps()


def order(sessions: sessionmaker[Session], order_id: int = 4553010) -> Order:
    with sessions() as session:
        return session.scalars(select(Order).where(Order.supplier_order_id == order_id)).one()


def test_ticket_notice_records_vouchers_with_personal_data_masked(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    inbox_id = receive(app, "order_ticket_notify", SAMPLES["order_ticket_notify"], sent)
    assert run(sessions, inbox_id).state == "done"
    row = order(sessions)
    assert (row.origin_order_id, row.ticket_status) == ("1522870633233514497", 1)
    assert row.order_voucher_code == "202052255633322222124"
    assert row.visitor_vouchers == [
        {
            "voucher_code": "2020522556333222221-2",
            "id_card_no": "*************6666",
            "mobile": "181****2623",
        }
    ]


def test_notice_for_an_unknown_order_is_stored_not_dropped(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    inbox_id = receive(app, "order_refund_notify", SAMPLES["order_refund_notify"], sent)
    assert run(sessions, inbox_id).state == "done"
    row = order(sessions)
    assert row.refund_status == 2 and row.ticket_status is None
    with sessions() as session:
        refund = session.scalars(select(OrderRefund)).one()
    assert (refund.refund_apply_no, refund.refund_status, refund.is_supplier_forced) == (
        "1522870740750303232",
        2,
        False,
    )
    assert refund.refund_reason is None  # the sample's " " is no reason


def test_supplier_forced_refund_has_no_apply_number_and_refunds_its_vouchers(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    body = {
        "OrderId": 77,
        "RefundApplyNo": "",
        "RefundStatus": 1,
        "RefundReason": "景区闭园",
        "VoucherCode": ["V1", "V2"],
    }
    assert run(sessions, receive(app, "order_refund_notify", body, sent)).state == "done"
    with sessions() as session:
        refund = session.scalars(select(OrderRefund)).one()
    assert refund.is_supplier_forced and refund.refund_apply_no is None
    assert refund.refund_reason == "景区闭园" and refund.voucher_codes == ["V1", "V2"]
    assert order(sessions, 77).refunded_vouchers == ["V1", "V2"]


def test_late_redemption_notice_never_moves_the_count_backwards(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    base = SAMPLES["order_verify_notify"]
    later = receive(
        app, "order_verify_notify", {**base, "CheckedNumber": 2, "VoucherCode": ["B"]}, sent
    )
    earlier = receive(
        app, "order_verify_notify", {**base, "CheckedNumber": 1, "VoucherCode": ["A"]}, sent
    )
    assert run(sessions, later).state == "done"
    assert run(sessions, earlier).state == "done"
    row = order(sessions)
    assert (row.checked_number, row.order_total) == (2, 2)
    assert sorted(row.redeemed_vouchers) == ["A", "B"]


def test_a_row_is_applied_once_even_when_processed_concurrently(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    body = {**SAMPLES["order_refund_notify"], "RefundStatus": 1, "VoucherCode": ["V9"]}
    inbox_id = receive(app, "order_refund_notify", body, sent)
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        barrier.wait()
        outcomes.append(run(sessions, inbox_id).state)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("done") == 1 and outcomes.count("skipped") == 5
    with sessions() as session:
        assert len(list(session.scalars(select(OrderRefund)))) == 1
    assert run(sessions, inbox_id).state == "skipped"


def test_concurrent_resends_are_acknowledged_and_applied_once(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    body = encode(envelope("order_verify_notify", SAMPLES["order_verify_notify"]))
    replies: list[int] = []
    barrier = threading.Barrier(8)

    def resend(offset: int) -> None:
        headers = signed(timestamp_ms=int(time.time() * 1000) + offset)
        barrier.wait()
        replies.append(app.test_client().post(PATH, data=body, headers=headers).status_code)

    threads = [threading.Thread(target=resend, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert replies == [200] * 8
    assert len(sent.ids) == 1
    assert run(sessions, sent.ids[0]).state == "done"
    assert order(sessions).checked_number == 2


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (0, [("shelf", 9, 0), ("queue-product", 9, None)]),
        (1, [("shelf", 9, 1), ("queue-product", 9, None)]),
        (2, [("product", 9, None)]),
        (3, [("prices", 9, None)]),
    ],
)
def test_product_notice_routes_to_the_catalog_sync(
    app: Flask, sessions: sessionmaker[Session], sent: Sent, status: int, expected: list[Any]
) -> None:
    catalog = FakeCatalog()
    inbox_id = receive(app, "order_product_notify", {"ProductId": 9, "Status": status}, sent)
    assert run(sessions, inbox_id, catalog).state == "done"
    assert catalog.calls == expected


def _coalescers(request: pytest.FixtureRequest) -> Any:
    if request.param == "redis":
        client: redis.Redis = request.getfixturevalue("redis_client")
        return RedisCoalescer(client)
    return LocalCoalescer()


@pytest.fixture(params=["redis", "local"])
def coalescer(request: pytest.FixtureRequest) -> Any:
    return _coalescers(request)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_repeated_notices_coalesce_into_one_refresh_and_one_trailing_refresh(
    app: Flask, sessions: sessionmaker[Session], sent: Sent, coalescer: Any
) -> None:
    catalog = FakeCatalog()
    ids = [
        receive(app, "order_product_notify", {"ProductId": 9, "Status": 3}, sent) for n in range(5)
    ]
    outcomes = [run(sessions, i, catalog, coalescer, window_s=0.5) for i in ids]
    assert [o.state for o in outcomes] == ["done", "scheduled", "done", "done", "done"]
    assert catalog.calls == [("prices", 9, None)]
    trailing = [o for o in outcomes if o.follow_up_s is not None]
    assert len(trailing) == 1 and 0 < trailing[0].follow_up_s <= 0.5 + 0.25
    assert _row(sessions, trailing[0].inbox_id).status == "pending"  # until its refresh is done
    time.sleep(trailing[0].follow_up_s)
    run_follow_up(
        sessions, trailing[0].inbox_id, catalog=catalog.port(), coalescer=coalescer, window_s=0.5
    )
    assert catalog.calls == [("prices", 9, None)] * 2
    assert _row(sessions, trailing[0].inbox_id).status == "done"
    # Another product is not held back by this one's window.
    other = receive(app, "order_product_notify", {"ProductId": 10, "Status": 3}, sent)
    run(sessions, other, catalog, coalescer, window_s=0.5)
    assert catalog.calls[-1] == ("prices", 10, None)


def test_failures_are_recorded_masked_then_parked_and_replayable(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    inbox_id = receive(app, "order_product_notify", {"ProductId": 9, "Status": 2}, sent)
    failing = FakeCatalog(fail=True)
    states = [run(sessions, inbox_id, failing, max_attempts=3).state for _ in range(4)]
    assert states == ["retry", "retry", "failed", "skipped"]
    with sessions() as session:
        row = session.get(InboxMessage, inbox_id)
        assert row is not None
        assert (row.status, row.attempts) == ("failed", 3)
        assert row.last_error and "6666" in row.last_error and ID_NUMBER not in row.last_error
    with sessions.begin() as session:
        assert replay(session, inbox_id, utcnow())
    assert run(sessions, inbox_id).state == "done"


def test_relay_requeues_stale_rows_and_parks_exhausted_ones(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    lost = receive(app, "order_product_notify", {"ProductId": 1, "Status": 2}, sent)
    exhausted = receive(app, "order_product_notify", {"ProductId": 2, "Status": 2}, sent)
    done = receive(app, "order_product_notify", {"ProductId": 3, "Status": 2}, sent)
    for _ in range(2):
        run(sessions, exhausted, FakeCatalog(fail=True), max_attempts=5)
    run(sessions, done)
    with sessions.begin() as session:
        fresh = run_relay(
            session, now=utcnow(), stale_after_s=60, max_attempts=2, signature_ttl_s=600
        )
    assert fresh.requeue == [] and fresh.parked == []
    with sessions.begin() as session:
        plan = run_relay(
            session,
            now=utcnow() + timedelta(minutes=5),  # past every row's next attempt time
            stale_after_s=60,
            max_attempts=2,
            signature_ttl_s=0,
        )
    assert plan.requeue == [lost] and plan.parked == [exhausted]
    assert plan.pruned_signatures == 3
    with sessions() as session:
        assert session.get(InboxMessage, exhausted).status == "failed"  # type: ignore[union-attr]


def test_personal_data_stays_out_of_stored_rows(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    inbox_id = receive(app, "order_ticket_notify", SAMPLES["order_ticket_notify"], sent)
    run(sessions, inbox_id)
    with sessions() as session:
        dumped = repr([(r.payload, r.last_error) for r in session.scalars(select(InboxMessage))])
        dumped += repr([r.visitor_vouchers for r in session.scalars(select(Order))])
    assert ID_NUMBER not in dumped and MOBILE not in dumped
    assert all(isinstance(i, int) for i in sent.ids)


def test_issued_received_after_failed_wins_whatever_the_processing_order(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    base = SAMPLES["order_ticket_notify"]
    failed = receive(
        app, "order_ticket_notify", {"OrderId": base["OrderId"], "TicketStatus": 2}, sent
    )
    issued = receive(app, "order_ticket_notify", base, sent)
    assert run(sessions, issued).state == "done"
    assert run(sessions, failed).state == "done"  # a relay retry, processed last
    row = order(sessions)
    assert row.ticket_status == 1 and row.ticket_inbox_id == issued
    assert row.order_voucher_code == "202052255633322222124"
    assert [v["voucher_code"] for v in row.visitor_vouchers] == ["2020522556333222221-2"]


def test_a_ticket_notice_received_later_still_overrides_an_earlier_one(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    base = SAMPLES["order_ticket_notify"]
    issued = receive(app, "order_ticket_notify", base, sent)
    failed = receive(
        app, "order_ticket_notify", {"OrderId": base["OrderId"], "TicketStatus": 2}, sent
    )
    run(sessions, issued)
    run(sessions, failed)
    run(sessions, issued)  # a duplicate delivery changes nothing (the row is done)
    assert order(sessions).ticket_status == 2


def test_refund_summary_is_the_review_received_last_whatever_the_processing_order(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    base = SAMPLES["order_refund_notify"]
    rejected = receive(app, "order_refund_notify", {**base, "RefundApplyNo": "A1"}, sent)
    approved = receive(
        app,
        "order_refund_notify",
        {**base, "RefundApplyNo": "A2", "RefundStatus": 1, "VoucherCode": ["V1"]},
        sent,
    )
    assert run(sessions, approved).state == "done"
    assert run(sessions, rejected).state == "done"
    row = order(sessions)
    assert (row.refund_status, row.refunded_vouchers) == (1, ["V1"])
    with sessions() as session:
        assert len(list(session.scalars(select(OrderRefund)))) == 2


def _row(sessions: sessionmaker[Session], inbox_id: int) -> InboxMessage:
    with sessions() as session:
        row = session.get(InboxMessage, inbox_id)
    assert row is not None
    return row


def _relay(sessions: sessionmaker[Session], now: datetime, max_attempts: int = 5) -> list[int]:
    with sessions.begin() as session:
        plan = run_relay(
            session, now=now, stale_after_s=60, max_attempts=max_attempts, signature_ttl_s=600
        )
    return plan.requeue


def test_relay_stamps_a_requeued_row_so_it_is_not_queued_again_every_minute(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    lost = receive(app, "order_product_notify", {"ProductId": 1, "Status": 2}, sent)
    received = _row(sessions, lost).updated_at
    assert _relay(sessions, received + timedelta(seconds=30)) == []
    assert _relay(sessions, received + timedelta(seconds=61)) == [lost]
    # The worker is busy or away: the queued message waits; it is not queued again at once.
    assert _relay(sessions, received + timedelta(seconds=90)) == []
    assert _relay(sessions, received + timedelta(seconds=122)) == [lost]
    assert _row(sessions, lost).attempts == 0


def test_relay_backs_off_a_row_no_worker_claims_instead_of_requeueing_every_tick(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    """Workers away for a quarter of an hour: the row is queued 4 times, not 15."""
    lost = receive(app, "order_product_notify", {"ProductId": 3, "Status": 2}, sent)
    received = _row(sessions, lost).updated_at
    queued_at = [
        minute
        for minute in range(1, 16)
        if _relay(sessions, received + timedelta(minutes=minute, seconds=1)) == [lost]
    ]
    assert queued_at == [1, 3, 7, 15]
    assert _row(sessions, lost).attempts == 0


def test_relay_backs_off_by_attempts_so_a_five_minute_outage_parks_nothing(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    """Beat every minute, the default five attempts, the supplier down for five minutes."""
    inbox_id = receive(app, "order_product_notify", {"ProductId": 9, "Status": 2}, sent)
    start = _row(sessions, inbox_id).updated_at
    clock = [start]
    supplier_back = start + timedelta(minutes=5)
    catalog, down = FakeCatalog(), FakeCatalog(fail=True)
    assert run(sessions, inbox_id, down, max_attempts=5, now=lambda: clock[0]).state == "retry"
    tried_at = [0]
    for minute in range(1, 16):
        clock[0] = start + timedelta(minutes=minute, seconds=1)
        for queued in _relay(sessions, clock[0]):
            tried_at.append(minute)
            current = catalog if clock[0] >= supplier_back else down
            run(sessions, queued, current, max_attempts=5, now=lambda: clock[0])
    row = _row(sessions, inbox_id)
    assert row.status == "done", (row.status, tried_at)
    assert tried_at == [0, 2, 6] and row.attempts == 3
    assert catalog.calls == [("product", 9, None)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_failed_follow_up_publish_frees_the_trailing_slot_and_leaves_the_row_pending(
    app: Flask, sessions: sessionmaker[Session], sent: Sent, coalescer: Any
) -> None:
    catalog = FakeCatalog()
    ids = [
        receive(app, "order_product_notify", {"ProductId": 9, "Status": 3}, sent) for _ in range(3)
    ]
    broker_down, broker_up = Publisher(fail=True), Publisher()
    assert run(sessions, ids[0], catalog, coalescer, window_s=5).state == "done"
    failed = run(sessions, ids[1], catalog, coalescer, window_s=5, publisher=broker_down)
    assert failed.state == "retry" and "ConnectionError" in failed.detail
    assert _row(sessions, ids[1]).status == "pending"
    # The next notice in the window is not dropped: it takes the trailing slot.
    third = run(sessions, ids[2], catalog, coalescer, window_s=5, publisher=broker_up)
    assert third.state == "scheduled" and [i for i, _ in broker_up.published] == [ids[2]]
    # The relay's retry of the failed row refreshes at once rather than be coalesced away.
    assert run(sessions, ids[1], catalog, coalescer, window_s=5, publisher=broker_up).state == (
        "done"
    )
    assert catalog.calls == [("prices", 9, None)] * 2
