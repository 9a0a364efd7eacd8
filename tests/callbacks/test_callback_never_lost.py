"""A verified request is never lost or misapplied: stored once with the right status, through
the real HTTP receiver, on SQLite and PostgreSQL.

Each body the supplier's document allows, or a .NET service would plausibly send, is
acknowledged and stored exactly once: ``pending`` when it can be applied, ``invalid`` with a
reason when it cannot; order notices under a reused signature are ``held``.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from callbacks.intake import SUCCESS
from callbacks.processing import run_follow_up
from callbacks.relay import run_relay
from models.base import utcnow
from models.orders import Order, OrderEvent, OrderRefund
from tests.support.callbacks import (
    ID_NUMBER,
    MOBILE,
    PATH,
    SAMPLES,
    FakeCatalog,
    Publisher,
    Sent,
    body_of,
    cli_env,
    deliver,
    envelope,
    rows,
    run,
    serving,
    signed,
    stamps,
)
from tests.support.fuzz import lawful_notice
from worker.cli import main
from worker.coalesce import LocalCoalescer
from worker.runtime import build_runtime, set_runtime

pytestmark = pytest.mark.timeout(180)

# Coalescing window of the trailing-refresh tests: long enough that a loaded machine still
# handles both notices inside it.
WINDOW_S = 1.0


TICKET = SAMPLES["order_ticket_notify"]
REFUND = SAMPLES["order_refund_notify"]
VERIFY = SAMPLES["order_verify_notify"]
FAILED_TICKET = {"OriginOrderId": "O-1", "OrderId": 4553011, "TicketStatus": 2}

BODIES = [
    ("refund-vouchers-null", envelope("order_refund_notify", {**REFUND, "VoucherCode": None})),
    ("verify-vouchers-null", envelope("order_verify_notify", {**VERIFY, "VoucherCode": None})),
    (
        "ticket-failed-vouchers-list",
        envelope("order_ticket_notify", {**FAILED_TICKET, "VoucherCode": []}),
    ),
    (
        "ticket-failed-vouchers-blank",
        envelope("order_ticket_notify", {**FAILED_TICKET, "VoucherCode": ""}),
    ),
    (
        "ticket-user-vouchers-null",
        envelope(
            "order_ticket_notify",
            {**FAILED_TICKET, "VoucherCode": {"OrderVoucherCode": "", "OrderUserVouchers": None}},
        ),
    ),
    (
        "refund-reason-nul",
        envelope("order_refund_notify", {**REFUND, "RefundReason": "bad\x00reason"}),
    ),
    (
        "refund-reason-surrogate",
        envelope("order_refund_notify", {**REFUND, "RefundReason": "x\ud800y"}),
    ),
    ("unknown-service", envelope("order_teleport_notify", {"OrderId": 1})),
    ("not-json", b"OrderNotifyHeader=9258&body=" + MOBILE.encode()),
    ("not-utf8", b'{"OrderNotifyHeader": "\xff\xfe ' + ID_NUMBER.encode() + b'"}'),
    ("product-missing-field", envelope("order_product_notify", {"ProductId": 11063})),
    (
        "body-partner-differs",
        envelope("order_product_notify", {"ProductId": 1, "Status": 2}, partner_id=1),
    ),
    ("order-id-out-of-range", envelope("order_verify_notify", {**VERIFY, "OrderId": 2**70})),
    ("checked-over-total", envelope("order_verify_notify", {**VERIFY, "CheckedNumber": 3})),
    (
        "absurd-number",
        b'{"OrderNotifyHeader": {"PartnerId": 9258, "NotifyServiceName": "order_verify_notify"}, "OrderNotifyBody": {"OrderId": 1, "OrderTotal": 1e100000000, "CheckedNumber": 0}}',
    ),
]
LAWFUL = {
    "refund-vouchers-null",
    "verify-vouchers-null",
    "ticket-failed-vouchers-list",
    "ticket-failed-vouchers-blank",
    "ticket-user-vouchers-null",
    "refund-reason-nul",
    "refund-reason-surrogate",
}


@pytest.mark.parametrize(("name", "payload"), [pytest.param(n, p, id=n) for n, p in BODIES])
def test_each_body_is_acknowledged_and_stored_once_with_the_right_status(
    app: Flask, sessions: sessionmaker[Session], sent: Sent, name: str, payload: Any
) -> None:
    headers = signed(timestamp_ms=next(stamps))
    with serving(app) as url:
        started = time.monotonic()
        first = deliver(url, payload, headers)
        elapsed = time.monotonic() - started
        again = deliver(url, payload, headers)  # the same delivery resent: still one row
    assert first.status_code == 200 and first.json() == SUCCESS
    assert again.status_code == 200 and again.json() == SUCCESS
    assert elapsed < 1.0, f"{name} took {elapsed:.3f} s"
    stored = rows(sessions)
    assert len(stored) == 1
    row = stored[0]
    if name in LAWFUL:
        assert (row.status, row.reason) == ("pending", None)
        assert sent.ids == [row.id]
        assert run(sessions, row.id).state == "done"
    else:
        assert row.status == "invalid" and row.reason, row.reason
        assert sent.ids == []
    dumped = json.dumps([row.payload, row.raw_body, row.reason], ensure_ascii=False)
    assert "\x00" not in dumped and ID_NUMBER not in dumped and MOBILE not in dumped
    if name in {"not-json", "not-utf8"}:
        assert row.raw_body and "OrderNotifyHeader" in row.raw_body
    if name.startswith("refund-reason"):
        with sessions() as session:
            reason = session.scalars(select(OrderRefund.refund_reason)).one()
        assert reason is not None and "\ufffd" in reason


def test_a_signed_absurd_number_is_stored_invalid_in_milliseconds(
    app: Flask, sessions: sessionmaker[Session]
) -> None:
    body = dict(BODIES)["absurd-number"]
    client = app.test_client()
    started = time.perf_counter()
    reply = client.post(PATH, data=body, headers=signed(timestamp_ms=next(stamps)))
    elapsed = time.perf_counter() - started
    assert reply.get_json() == SUCCESS
    assert elapsed < 0.25, elapsed
    assert "number out of range" in (rows(sessions)[0].reason or "")


# --- property: random lawful and unlawful bodies ---------------------------------------------


@st.composite
def unlawful_body(draw: st.DrawFn) -> bytes:
    service, body = draw(lawful_notice())
    how = draw(
        st.sampled_from(
            ["drop", "mistype", "service", "partner", "garbage", "huge", "inner", "list"]
        )
    )
    required = {
        "order_product_notify": "ProductId",
        "order_refund_notify": "OrderId",
        "order_verify_notify": "CheckedNumber",
        "order_ticket_notify": "TicketStatus",
    }[service]
    partner = 9258
    if how == "drop":
        body.pop(required)
    elif how == "mistype":
        body[required] = draw(st.sampled_from(["eleven", [1], {"a": 1}, 1.5, True]))
    elif how == "service":
        service = draw(st.sampled_from(["order_teleport_notify", "", "order_product_notify_v2"]))
    elif how == "partner":
        partner = draw(st.integers(1, 9000))
    elif how == "garbage":
        return draw(st.binary(max_size=200).filter(lambda b: not b.strip().startswith(b"{")))
    elif how == "huge":
        body[required] = draw(st.sampled_from([2**80, -(2**80)]))
    elif how == "list":
        return json.dumps([service, body]).encode()
    else:
        return json.dumps(
            {
                "OrderNotifyHeader": {"PartnerId": partner, "NotifyServiceName": service},
                "OrderNotifyBody": "{" + json.dumps(body)[:-1],
            }
        ).encode()
    return body_of(envelope(service, body, partner_id=partner))


@given(
    case=st.one_of(
        lawful_notice().map(lambda sb: ("pending", body_of(envelope(*sb)))),
        unlawful_body().map(lambda b: ("invalid", b)),
    )
)
@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_random_signed_bodies_are_acknowledged_and_stored_once_with_the_right_status(
    app: Flask, sessions: sessionmaker[Session], case: tuple[str, bytes]
) -> None:
    expected, body = case
    before = len(rows(sessions))
    headers = signed(timestamp_ms=next(stamps))
    with serving(app) as url:
        replies = [deliver(url, body, headers) for _ in range(2)]
    assert [(r.status_code, r.json()) for r in replies] == [(200, SUCCESS)] * 2
    stored = rows(sessions)
    assert len(stored) == before + 1
    newest = stored[-1]
    assert newest.status == expected, (newest.reason, body[:300])
    dumped = json.dumps([newest.payload, newest.raw_body], ensure_ascii=False)
    assert ID_NUMBER not in dumped and MOBILE not in dumped and "\x00" not in dumped


# --- replays, forgeries and plausibility -----------------------------------------------------


@pytest.fixture
def runtime(cb_settings: Any) -> Any:
    built = build_runtime(cb_settings)
    set_runtime(built)
    yield built
    set_runtime(None)
    built.close()


def test_a_reused_signature_on_an_order_notice_is_held_until_an_operator_releases_it(
    app: Flask, sessions: sessionmaker[Session], sent: Sent, runtime: Any
) -> None:
    headers = signed(timestamp_ms=next(stamps))
    genuine = envelope("order_verify_notify", {**VERIFY, "CheckedNumber": 1})
    forged = envelope("order_verify_notify", {**VERIFY, "CheckedNumber": 2})
    with serving(app) as url:
        assert deliver(url, genuine, headers).json() == SUCCESS
        assert deliver(url, forged, headers).json() == SUCCESS
    first, held = rows(sessions)
    assert (first.status, held.status) == ("pending", "held")
    assert sent.ids == [first.id]
    assert run(sessions, first.id).state == "done"
    assert run(sessions, held.id).state == "skipped"  # a held row is never claimed
    with sessions() as session:
        assert session.scalars(select(Order)).one().checked_number == 1
    cli = CliRunner()
    listed = cli.invoke(main, ["inbox", "list", "--status", "held", "--json"])
    assert [r["id"] for r in json.loads(listed.output)] == [held.id]
    refused = cli.invoke(main, ["inbox", "replay", str(held.id)])
    assert refused.exit_code != 0 and "release" in refused.output
    released = cli.invoke(main, ["inbox", "release", str(held.id)])
    assert released.exit_code == 0, released.output
    assert run(sessions, held.id).state == "done"
    with sessions() as session:
        assert session.scalars(select(Order)).one().checked_number == 2
        assert session.scalar(select(func.count()).select_from(OrderEvent)) == 2


def test_an_implausible_redemption_is_invalid_and_leaves_the_ledger_unchanged(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    with serving(app) as url:
        deliver(url, envelope("order_verify_notify", {**VERIFY, "CheckedNumber": 1}))
        assert run(sessions, sent.ids[-1]).state == "done"
        with sessions() as session:
            before = [
                (o.checked_number, o.order_total, o.origin_order_id)
                for o in session.scalars(select(Order))
            ]
        # More redeemed than usable: refused by the model at intake.
        deliver(url, envelope("order_verify_notify", {**VERIFY, "CheckedNumber": 2147483647}))
        # Counts fine, but the order id contradicts the ledger row: refused when processed.
        deliver(url, envelope("order_verify_notify", {**VERIFY, "OriginOrderId": "someone-else"}))
        assert run(sessions, sent.ids[-1]).state == "invalid"
    stored = rows(sessions)
    assert [r.status for r in stored] == ["done", "invalid", "invalid"]
    assert "CheckedNumber" in (stored[1].reason or "")
    assert "OriginOrderId" in (stored[2].reason or "")
    with sessions() as session:
        after = [
            (o.checked_number, o.order_total, o.origin_order_id)
            for o in session.scalars(select(Order))
        ]
        events = session.scalar(select(func.count()).select_from(OrderEvent))
    assert after == before and events == 1


def test_ledger_history_shows_what_each_notice_changed(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    with serving(app) as url:
        for checked in (1, 2):
            deliver(
                url,
                envelope(
                    "order_verify_notify",
                    {**VERIFY, "CheckedNumber": checked, "VoucherCode": [f"V{checked}"]},
                ),
            )
            run(sessions, sent.ids[-1])
    with sessions() as session:
        effects = [
            e.effect["changed"] for e in session.scalars(select(OrderEvent).order_by(OrderEvent.id))
        ]
    assert effects[0]["checked_number"] == [0, 1]
    assert effects[1]["checked_number"] == [1, 2]
    assert effects[1]["redeemed_vouchers"] == [["V1"], ["V1", "V2"]]


def test_invalid_rows_are_replayed_after_a_fix(
    app: Flask,
    sessions: sessionmaker[Session],
    sent: Sent,
    runtime: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from worker.supplier import notices

    with monkeypatch.context() as before_the_fix:
        before_the_fix.delitem(notices.NOTICE_MODELS, "order_refund_notify")
        with serving(app) as url:
            deliver(url, envelope("order_refund_notify", REFUND))
            deliver(url, envelope("order_refund_notify", {**REFUND, "OrderId": 7}))
        cli = CliRunner()
        listed = cli.invoke(main, ["inbox", "list", "--status", "invalid", "--json"])
        assert len(json.loads(listed.output)) == 2
        still = cli.invoke(main, ["inbox", "replay", str(rows(sessions)[0].id)])
        assert still.exit_code == 0 and "still invalid" in still.output
    one, _other = rows(sessions)
    replayed = CliRunner().invoke(main, ["inbox", "replay", str(one.id)])
    assert replayed.exit_code == 0 and f"inbox {one.id} pending again" in replayed.output
    everything = CliRunner().invoke(main, ["inbox", "replay", "--status", "invalid"])
    assert everything.exit_code == 0 and "1 of 1 invalid rows pending again" in everything.output
    assert [r.status for r in rows(sessions)] == ["pending", "pending"]
    assert [run(sessions, r.id).state for r in rows(sessions)] == ["done", "done"]
    status = CliRunner().invoke(main, ["status", "--json"], env=cli_env(runtime.settings)).stdout
    assert json.loads(status)["inbox"]["done"] == 2


def test_invalid_and_held_rows_are_counted_in_status_and_metrics(
    app: Flask, sessions: sessionmaker[Session], runtime: Any, cb_settings: Any
) -> None:
    headers = signed(timestamp_ms=next(stamps))
    with serving(app) as url:
        deliver(url, b"not json at all")
        deliver(url, envelope("order_verify_notify", VERIFY), headers)
        deliver(url, envelope("order_verify_notify", {**VERIFY, "CheckedNumber": 1}), headers)
    env = cli_env(cb_settings)
    report = json.loads(CliRunner().invoke(main, ["status", "--json"], env=env).stdout)
    assert report["inbox"] == {"pending": 1, "done": 0, "failed": 0, "invalid": 1, "held": 1}
    human = CliRunner().invoke(main, ["status"], env=env).stdout
    assert "1 invalid" in human and "1 held" in human
    from catalog_api.app import create_app as create_api
    from worker.settings import ReadApiSettings

    read = ReadApiSettings(database_url=cb_settings.database_url, catalog_api_token="t0ken")
    api = create_api(read).test_client()
    metrics = api.get("/metrics", headers={"Authorization": "Bearer t0ken"}).get_data(as_text=True)
    assert 'catalog_inbox_rows{status="invalid"} 1.0' in metrics
    assert 'catalog_inbox_rows{status="held"} 1.0' in metrics


# --- deliveries, refunds and trailing refreshes ----------------------------------------------

FORCED = {
    "OrderId": 88,
    "RefundApplyNo": "",
    "RefundStatus": 1,
    "RefundReason": "闭园",
    "VoucherCode": ["OV"],
}


def test_two_identical_forced_refunds_sent_as_two_deliveries_are_two_refund_rows(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    body = envelope("order_refund_notify", FORCED)
    with serving(app) as url:
        first = signed(timestamp_ms=next(stamps))
        deliver(url, body, first)
        deliver(url, body, first)  # the same delivery again: a duplicate
        deliver(url, body)  # another delivery with the same body: another refund
    assert len(sent.ids) == 2
    assert [run(sessions, i).state for i in sent.ids] == ["done", "done"]
    with sessions() as session:
        refunds = list(session.scalars(select(OrderRefund)))
        order = session.scalars(select(Order)).one()
    assert len(refunds) == 2 and all(r.is_supplier_forced for r in refunds)
    assert order.refunded_vouchers == ["OV"]  # idempotent per voucher


def test_a_refund_batch_notified_again_is_one_refund_row(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    batch = {**REFUND, "RefundApplyNo": "B-1", "RefundStatus": 1, "VoucherCode": ["V1"]}
    with serving(app) as url:
        deliver(url, envelope("order_refund_notify", batch))
        deliver(url, envelope("order_refund_notify", {**batch, "RefundReason": "again"}))
    assert [run(sessions, i).state for i in sent.ids] == ["done", "done"]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(OrderRefund)) == 1


def test_a_failed_trailing_refresh_is_retried_until_it_succeeds(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    coalescer, catalog, down = LocalCoalescer(), FakeCatalog(), FakeCatalog(fail=True)
    with serving(app) as url:
        for _ in range(2):
            deliver(url, envelope("order_product_notify", {"ProductId": 9, "Status": 3}))
    leading, trailing = sent.ids
    assert run(sessions, leading, catalog, coalescer, window_s=WINDOW_S).state == "done"
    scheduled = run(
        sessions, trailing, catalog, coalescer, window_s=WINDOW_S, publisher=Publisher()
    )
    assert scheduled.state == "scheduled"
    time.sleep(scheduled.follow_up_s or 0)
    outcome = run_follow_up(
        sessions, trailing, catalog=down.port(), coalescer=coalescer, window_s=WINDOW_S
    )
    assert "failed" in outcome
    row = rows(sessions)[1]
    assert row.status == "pending" and row.last_error and "trailing refresh" in row.last_error
    # The relay owns the retry: due after the back-off, re-queued, refreshed at once, done.
    with sessions.begin() as session:
        plan = run_relay(
            session,
            now=utcnow() + timedelta(minutes=5),  # two attempts made: a 4-minute back-off
            stale_after_s=60,
            max_attempts=5,
            signature_ttl_s=600,
        )
    assert plan.requeue == [trailing]
    time.sleep(WINDOW_S)  # past the coalescing window the follow-up opened
    assert run(sessions, trailing, catalog, coalescer, window_s=WINDOW_S).state == "done"
    assert catalog.calls == [("prices", 9, None)] * 2
    assert (rows(sessions)[1].status, rows(sessions)[1].attempts) == ("done", 3)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_value_the_database_still_refuses_is_kept_as_raw_text_not_refused(
    app: Flask, sessions: sessionmaker[Session], sent: Sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were the sanitizing ever to miss something, the request is still stored (as text)."""
    monkeypatch.setattr("callbacks.intake.storable", lambda value: value)
    with serving(app) as url:
        reply = deliver(url, envelope("order_refund_notify", {**REFUND, "RefundReason": "a\x00b"}))
    assert reply.status_code == 200 and reply.json() == SUCCESS
    (row,) = rows(sessions)
    assert (row.status, row.reason) == ("invalid", "a value does not fit the database")
    assert row.raw_body and "RefundReason" in row.raw_body
    assert sent.ids == []


def test_a_trailing_refresh_takes_an_attempt_so_it_is_bounded_too(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    coalescer, down = LocalCoalescer(), FakeCatalog(fail=True)
    with serving(app) as url:
        for _ in range(2):
            deliver(url, envelope("order_product_notify", {"ProductId": 9, "Status": 3}))
    leading, trailing = sent.ids
    run(sessions, leading, FakeCatalog(), coalescer, window_s=WINDOW_S, max_attempts=3)
    run(sessions, trailing, FakeCatalog(), coalescer, window_s=WINDOW_S, max_attempts=3)
    outcomes = [
        run_follow_up(
            sessions,
            trailing,
            catalog=down.port(),
            coalescer=coalescer,
            window_s=WINDOW_S,
            max_attempts=3,
        )
        for _ in range(4)
    ]
    assert [o.startswith("nothing to do") for o in outcomes] == [False, False, True, True]
    assert len(down.calls) == 2
    assert (rows(sessions)[1].status, rows(sessions)[1].attempts) == ("failed", 3)
