"""Intake: verification, the few refusals, replay cache, durable storage, hostile input.

Once the headers verify, every body is stored and acknowledged (``invalid`` when it cannot be
applied); only authentication, size, time and storage failures are refused.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from callbacks.intake import SUCCESS
from models.inbox import InboxMessage, InboxSignature
from tests.support.callbacks import (
    ID_NUMBER,
    MOBILE,
    PATH,
    SAMPLES,
    SIGN_KEY,
    Sent,
    encode,
    envelope,
    inbox_count,
    post_chunked,
    serving,
    signed,
)
from worker.supplier.signing import sign

pytestmark = pytest.mark.timeout(60)


def test_contract_callback_vector_is_what_we_verify() -> None:
    assert sign(9258, 1700000000000, PATH, SIGN_KEY) == "7UR/sKbbQlXGXWY3NNL8AgOb9jg="


@pytest.mark.parametrize("service", sorted(SAMPLES))
@pytest.mark.parametrize("as_string", [True, False], ids=["string-body", "object-body"])
def test_sample_is_committed_then_acknowledged_with_the_exact_envelope(
    app: Flask, sessions: sessionmaker[Session], sent: Sent, service: str, as_string: bool
) -> None:
    reply = app.test_client().post(
        PATH,
        data=encode(envelope(service, SAMPLES[service], as_string=as_string)),
        headers=signed(),
    )
    assert reply.status_code == 200
    assert reply.get_json() == SUCCESS
    assert reply.mimetype == "application/json"
    assert list(reply.get_json()) == ["Code", "IsSuccess", "LogId", "Message"]
    with sessions() as session:
        rows = list(session.scalars(select(InboxMessage)))
    assert [(r.service_name, r.status, r.attempts) for r in rows] == [(service, "pending", 0)]
    assert sent.ids == [rows[0].id]
    stored = json.dumps(rows[0].payload)
    assert ID_NUMBER not in stored and MOBILE not in stored


def _rejections() -> list[Any]:
    # Headers are made when the test runs: a timestamp taken at collection ages with the suite.
    good = envelope("order_product_notify", {"ProductId": 1, "Status": 2})

    def at(offset_ms: int) -> Any:
        return lambda: signed(timestamp_ms=int(time.time() * 1000) + offset_ms)

    cases = [
        ("bad-signature", good, lambda: signed(key="not-the-key"), 401, 4010, "does not match"),
        (
            "missing-headers",
            good,
            lambda: {"Content-Type": "application/json"},
            401,
            4010,
            "missing",
        ),
        ("wrong-partner-header", good, lambda: signed(partner_id=1234), 403, 4030, "PartnerId"),
        ("stale", good, at(-400_000), 401, 4011, "window"),
        ("future", good, at(400_000), 401, 4011, "window"),
    ]
    return [pytest.param(*case[1:], id=case[0]) for case in cases]


@pytest.mark.parametrize(("payload", "make_headers", "status", "code", "words"), _rejections())
def test_authentication_failures_are_refused_and_store_nothing(
    app: Flask,
    sessions: sessionmaker[Session],
    sent: Sent,
    payload: Any,
    make_headers: Any,
    status: int,
    code: int,
    words: str,
) -> None:
    body = payload if isinstance(payload, bytes) else encode(payload)
    reply = app.test_client().post(PATH, data=body, headers=make_headers())
    assert reply.status_code == status
    data = reply.get_json()
    assert data["IsSuccess"] is False and data["Code"] == code
    assert words in data["Message"]
    assert inbox_count(sessions) == 0 and sent.ids == []


def _unusable() -> list[Any]:
    good = envelope("order_product_notify", {"ProductId": 1, "Status": 2})
    cases = [
        (
            "body-partner-differs",
            envelope("order_product_notify", {"ProductId": 1, "Status": 2}, partner_id=1234),
            "OrderNotifyHeader.PartnerId",
        ),
        ("invalid-json", b'{"OrderNotifyHeader": ', "not valid JSON"),
        ("invalid-inner-json", {**good, "OrderNotifyBody": "{'ProductId': 1"}, "OrderNotifyBody"),
        ("not-an-object", [1, 2], "object"),
        ("unknown-service", envelope("order_teleport_notify", {"OrderId": 1}), "NotifyServiceName"),
        (
            "missing-field",
            envelope("order_verify_notify", {"OrderId": 1, "OrderTotal": 2}),
            "CheckedNumber",
        ),
        (
            "mistyped-field",
            envelope("order_product_notify", {"ProductId": "eleven", "Status": 2}),
            "ProductId",
        ),
        (
            "status-out-of-range",
            envelope("order_product_notify", {"ProductId": 1, "Status": 9}),
            "Status",
        ),
        ("missing-header-object", {"OrderNotifyBody": "{}"}, "OrderNotifyHeader"),
    ]
    return [pytest.param(*case[1:], id=case[0]) for case in cases]


@pytest.mark.parametrize(("payload", "words"), _unusable())
def test_a_verified_body_that_cannot_be_applied_is_stored_invalid_and_acknowledged(
    app: Flask, sessions: sessionmaker[Session], sent: Sent, payload: Any, words: str
) -> None:
    body = payload if isinstance(payload, bytes) else encode(payload)
    headers = signed()
    for _ in range(2):  # the same delivery twice: one row
        reply = app.test_client().post(PATH, data=body, headers=headers)
        assert reply.status_code == 200 and reply.get_json() == SUCCESS
    with sessions() as session:
        rows = list(session.scalars(select(InboxMessage)))
    assert [(r.status, r.attempts) for r in rows] == [("invalid", 0)]
    assert rows[0].reason and words in rows[0].reason
    assert sent.ids == []  # never queued, never applied


def test_duplicate_is_acknowledged_and_stored_once(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    client = app.test_client()
    body = SAMPLES["order_ticket_notify"]
    first = client.post(PATH, data=encode(envelope("order_ticket_notify", body)), headers=signed())
    # The supplier resends later: new timestamp, new signature, keys in another order.
    again = dict(reversed(list(body.items())))
    second = client.post(
        PATH,
        data=encode(envelope("order_ticket_notify", again, as_string=False)),
        headers=signed(timestamp_ms=int(time.time() * 1000) + 7),
    )
    assert first.get_json() == SUCCESS and second.get_json() == SUCCESS
    assert inbox_count(sessions) == 1
    assert len(sent.ids) == 1


def test_a_new_notice_is_one_autocommitted_statement_on_postgresql_only(
    app: Flask, cb_settings: Any, sessions: sessionmaker[Session], sent: Sent
) -> None:
    """On PostgreSQL, signature and inbox row in one round trip, committed by the statement
    itself; a signature seen before takes the transaction (nothing was written by the first
    try). SQLite always takes the transaction."""
    engine = app.extensions["callbacks.engine"]
    postgres = engine.dialect.name == "postgresql"
    statements: list[tuple[str, bool]] = []

    def seen(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        autocommit = bool(postgres and cursor.connection.autocommit)
        statements.append((statement.split()[0].upper(), autocommit))

    event.listen(engine, "before_cursor_execute", seen)
    client = app.test_client()
    stamp = int(time.time() * 1000)
    ticket = encode(envelope("order_ticket_notify", SAMPLES["order_ticket_notify"]))
    assert client.post(PATH, data=ticket, headers=signed(timestamp_ms=stamp)).get_json() == SUCCESS
    if postgres:
        assert statements == [("WITH", True)]
    else:
        assert len(statements) >= 2 and ("WITH", True) not in statements
    first = len(statements)
    verify = encode(envelope("order_verify_notify", SAMPLES["order_verify_notify"]))
    assert client.post(PATH, data=verify, headers=signed(timestamp_ms=stamp)).get_json() == SUCCESS
    if postgres:
        assert statements[1] == ("WITH", True)
        assert statements[2:] and not any(autocommit for _, autocommit in statements[2:])
    else:
        assert statements[first:] and ("WITH", True) not in statements
    with sessions() as session:
        rows = session.execute(select(InboxMessage.service_name, InboxMessage.status)).all()
    assert sorted(rows) == [("order_ticket_notify", "pending"), ("order_verify_notify", "held")]
    assert len(sent.ids) == 1


def test_a_product_notice_sharing_a_signature_is_stored_and_applied(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    """Two product notices signed in the same millisecond share one signature."""
    client = app.test_client()
    headers = signed()
    body = encode(envelope("order_product_notify", {"ProductId": 5, "Status": 2}))
    assert client.post(PATH, data=body, headers=headers).get_json() == SUCCESS
    assert client.post(PATH, data=body, headers=headers).get_json() == SUCCESS  # duplicate
    other = encode(envelope("order_product_notify", {"ProductId": 6, "Status": 3}))
    assert client.post(PATH, data=other, headers=headers).get_json() == SUCCESS
    with sessions() as session:
        rows = list(session.scalars(select(InboxMessage).order_by(InboxMessage.id)))
        assert len(list(session.scalars(select(InboxSignature)))) == 1
    assert [(r.payload, r.status) for r in rows] == [
        ({"ProductId": 5, "Status": 2}, "pending"),
        ({"ProductId": 6, "Status": 3}, "pending"),
    ]
    assert sent.ids == [r.id for r in rows]


def test_an_order_notice_under_a_reused_signature_is_held_not_queued(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    client = app.test_client()
    headers = signed()
    first = encode(envelope("order_verify_notify", SAMPLES["order_verify_notify"]))
    forged = encode(
        envelope("order_verify_notify", {**SAMPLES["order_verify_notify"], "CheckedNumber": 1})
    )
    for body in (first, forged, forged):
        assert client.post(PATH, data=body, headers=headers).get_json() == SUCCESS
    with sessions() as session:
        rows = list(session.scalars(select(InboxMessage).order_by(InboxMessage.id)))
    assert [r.status for r in rows] == ["pending", "held"]
    assert rows[1].reason and "signature" in rows[1].reason
    assert sent.ids == [rows[0].id]


def test_signing_path_is_the_configured_public_path(
    cb_settings: Any, sessions: sessionmaker[Session], sent: Sent
) -> None:
    from callbacks.app import create_app

    settings = cb_settings.model_copy(update={"callback_public_path": "/public/notify"})
    client = create_app(settings, send=sent).test_client()
    body = encode(envelope("order_product_notify", {"ProductId": 5, "Status": 2}))
    assert client.post(PATH, data=body, headers=signed(PATH)).status_code == 401
    assert client.post(PATH, data=body, headers=signed("/public/notify")).get_json() == SUCCESS


def _raw_post(url: str, headers: list[tuple[str, bytes | str]], body: bytes) -> int:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", PATH)
    for name, value in headers:
        connection.putheader(name, value)
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    status = connection.getresponse().status
    connection.close()
    return status


def _hostile_headers() -> list[Any]:
    good = signed()
    base = [("Timestamp", good["Timestamp"]), ("PartnerId", good["PartnerId"])]
    return [
        pytest.param(
            [*base, ("Authorization", "Bearer ZZY-OPENAPI:9258:签名签名".encode())],
            id="non-ascii-sig",
        ),
        pytest.param(
            [
                ("Timestamp", "１７００".encode()),
                ("PartnerId", "9258"),
                ("Authorization", good["Authorization"]),
            ],
            id="non-ascii-timestamp",
        ),
        pytest.param(
            [*base, ("Authorization", "Bearer ZZY-OPENAPI:9258:%%%not==base64")], id="bad-b64"
        ),
        pytest.param(
            [*base, ("Authorization", "Bearer ZZY-OPENAPI:9258:" + "A" * 10_000)], id="10kB"
        ),
        pytest.param(
            [
                ("Timestamp", "9" * 10_000),
                ("PartnerId", "9258"),
                ("Authorization", good["Authorization"]),
            ],
            id="10kB-timestamp",
        ),
        pytest.param([*base, ("Authorization", "Basic Zm9vOmJhcg==")], id="not-bearer"),
        pytest.param([("PartnerId", "9258\x00"), ("Timestamp", good["Timestamp"])], id="nul"),
    ]


@pytest.mark.parametrize("headers", _hostile_headers())
def test_hostile_headers_get_a_4xx_never_a_5xx(
    app: Flask, sessions: sessionmaker[Session], headers: list[tuple[str, Any]]
) -> None:
    body = encode(envelope("order_product_notify", {"ProductId": 5, "Status": 2}))
    with serving(app) as url:
        status = _raw_post(url, [("Content-Type", "application/json"), *headers], body)
    assert 400 <= status < 500
    assert inbox_count(sessions) == 0


def test_oversized_body_gets_413_declared_or_chunked(
    app: Flask, sessions: sessionmaker[Session]
) -> None:
    limit = 65536
    big = encode(
        envelope("order_product_notify", {"ProductId": 5, "Status": 2, "Pad": "x" * limit})
    )
    declared = app.test_client().post(PATH, data=big, headers=signed())
    with serving(app) as url:
        chunked_status = post_chunked(url, big, 4 * limit, signed())
        small_chunked = post_chunked(
            url,
            encode(envelope("order_product_notify", {"ProductId": 5, "Status": 2})),
            1,
            signed(),
        )
    assert declared.status_code == 413 and declared.get_json()["Code"] == 4130
    assert chunked_status == 413
    assert small_chunked == 200  # chunked itself is fine; only the size is refused
    assert inbox_count(sessions) == 1


def test_wrong_method_and_unknown_path_answer_json_4xx(app: Flask) -> None:
    client = app.test_client()
    assert client.get(PATH).status_code == 405
    assert client.get(PATH).get_json()["IsSuccess"] is False
    assert client.post("/nowhere", data=b"{}").status_code == 404


def test_healthz_reports_the_database(app: Flask) -> None:
    reply = app.test_client().get("/healthz")
    assert reply.status_code == 200 and reply.get_json() == {"database": "ok"}


def test_an_identical_product_notice_delivered_again_later_is_a_new_event(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    client = app.test_client()
    body = encode(envelope("order_product_notify", {"ProductId": 5, "Status": 3}))
    stamp = int(time.time() * 1000)
    for offset in (0, 60_000):
        reply = client.post(PATH, data=body, headers=signed(timestamp_ms=stamp + offset))
        assert reply.get_json() == SUCCESS
    assert inbox_count(sessions) == 2 and len(sent.ids) == 2


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 50_000 + b"]" * 10_000, id="deep-nesting"),
        pytest.param(
            encode({**envelope("order_product_notify", {}), "OrderNotifyBody": "[" * 5000}),
            id="deep-inner",
        ),
        pytest.param(
            encode(envelope("order_product_notify", {"ProductId": int("9" * 4000), "Status": 2})),
            id="huge-int",
        ),
        pytest.param(
            b'{"OrderNotifyHeader": {"PartnerId": 9258}, "OrderNotifyBody": NaN}', id="nan"
        ),
        pytest.param(b"\xff\xfe{\x00}", id="not-utf8"),
        pytest.param(b"", id="empty"),
        pytest.param(b"null", id="null"),
        pytest.param(
            encode({"OrderNotifyHeader": "9258", "OrderNotifyBody": {"ProductId": 1}}),
            id="header-str",
        ),
        pytest.param(
            encode(
                {
                    **envelope("order_product_notify", {"ProductId": 1, "Status": 2}),
                    "OrderNotifyBody": 7,
                }
            ),
            id="body-int",
        ),
        pytest.param(
            encode(
                {
                    "OrderNotifyHeader": {"PartnerId": 9258, "NotifyServiceName": ["x"]},
                    "OrderNotifyBody": {},
                }
            ),
            id="service-list",
        ),
        pytest.param(
            encode(
                envelope(
                    "order_ticket_notify", {"OrderId": 1, "TicketStatus": 1, "VoucherCode": "x"}
                )
            ),
            id="vouchers-str",
        ),
        pytest.param(
            encode(
                envelope(
                    "order_verify_notify", {"OrderId": 1, "OrderTotal": -1, "CheckedNumber": 0}
                )
            ),
            id="negative-count",
        ),
    ],
)
def test_hostile_bodies_are_acknowledged_and_stored_invalid_once(
    app: Flask, sessions: sessionmaker[Session], sent: Sent, body: bytes
) -> None:
    headers = signed()
    for _ in range(2):
        reply = app.test_client().post(PATH, data=body, headers=headers)
        assert reply.status_code == 200, reply.get_json()
        assert reply.get_json() == SUCCESS
    with sessions() as session:
        rows = list(session.scalars(select(InboxMessage)))
    assert [r.status for r in rows] == ["invalid"] and rows[0].reason
    assert sent.ids == []


def test_migrations_match_the_models(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from models.base import Base
    from models.db import make_engine

    engine = make_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_concurrent_replays_of_one_signature_store_one_body_and_hold_the_other(
    app: Flask, sessions: sessionmaker[Session], sent: Sent
) -> None:
    """Same signature from 12 threads at once: 6 carry the signed body, 6 a forged one."""
    import threading

    headers = signed()
    honest = encode(envelope("order_refund_notify", SAMPLES["order_refund_notify"]))
    forged = encode(
        envelope("order_refund_notify", {**SAMPLES["order_refund_notify"], "RefundStatus": 1})
    )
    replies: list[tuple[bytes, int]] = []
    barrier = threading.Barrier(12)

    def send(body: bytes) -> None:
        barrier.wait()
        status = app.test_client().post(PATH, data=body, headers=headers).status_code
        replies.append((body, status))

    threads = [threading.Thread(target=send, args=(b,)) for b in [honest, forged] * 6]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(status for _, status in replies) == [200] * 12
    with sessions() as session:
        statuses = sorted(r.status for r in session.scalars(select(InboxMessage)))
    assert statuses == ["held", "pending"], "one body owns the signature, the other is held"
    assert len(sent.ids) == 1
