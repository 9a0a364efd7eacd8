"""End to end: the sandbox signs and sends, the app stores, a real Celery worker on Redis applies.

Also the failure modes: database down or locked (503, nothing half-written, the resend lands
once), Redis down (still acknowledged within a second; the relay delivers it later), a lost
task recovered by the relay, and a scan of every log line for personal data and the sign key.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callbacks.app import create_app
from callbacks.intake import SUCCESS
from callbacks.tasks import _relay_inbox, sender_for
from models.base import utcnow
from models.catalog import DailyPrice, Product
from models.inbox import InboxMessage, InboxSignature
from models.orders import Order
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
    post,
    serving,
    signed,
    wait_for,
)
from tests.support.settings import make_settings
from worker.logs import MaskingFilter
from worker.runtime import get_runtime
from worker.settings import Settings

pytestmark = pytest.mark.timeout(90)

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"


def statuses(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(InboxMessage.status).order_by(InboxMessage.id)))


def all_done(sessions: sessionmaker[Session], count: int) -> bool:
    return statuses(sessions) == ["done"] * count


def test_contract_samples_end_to_end_through_a_real_worker(
    sandbox: Any,
    database_url: str,
    redis_url: str,
    start_celery: Any,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(
        sandbox.url, database_url, redis_url=redis_url, product_notice_coalesce_s=0.5
    )
    celery = start_celery(settings)
    runtime = get_runtime()
    from worker.sync.products import sync_one_product

    product_id = sandbox.state.catalog.authorized_ids()[0]
    sync_one_product(runtime.sessions, runtime.supplier, product_id)
    app = create_app(settings, send=sender_for(celery))
    with serving(app) as url:
        sandbox.state.update_settings({"callback_url": url + PATH})
        for service in ("order_ticket_notify", "order_verify_notify", "order_refund_notify"):
            sandbox.state.notify(service, SAMPLES[service])
        sandbox.state.notify("order_product_notify", SAMPLES["order_product_notify"])
        sandbox.state.catalog.set_shelf(product_id, False, notify=True)
        assert sandbox.state.callbacks.wait_settled(15)
        assert wait_for(lambda: all_done(runtime.sessions, 5), 20), statuses(runtime.sessions)
        replies = [d["last_status"] for d in sandbox.state.callbacks.deliveries()]
    assert replies == [200] * 5
    with runtime.sessions() as session:
        order = session.scalars(select(Order)).one()
        product = session.get(Product, product_id)
    assert (order.supplier_order_id, order.origin_order_id) == (4553010, "1522870633233514497")
    assert (order.ticket_status, order.order_voucher_code) == (1, "202052255633322222124")
    assert order.visitor_vouchers[0]["id_card_no"].endswith("6666")
    assert (order.checked_number, order.order_total, order.refund_status) == (2, 2, 2)
    assert product is not None and product.product_status == 0
    logged = caplog.text
    assert ID_NUMBER not in logged and MOBILE not in logged and SIGN_KEY not in logged


def test_price_notices_refresh_the_calendar_coalesced_into_leading_and_trailing_fetch(
    sandbox: Any, pg_url: str, redis_url: str, start_celery: Any
) -> None:
    settings = make_settings(
        sandbox.url, pg_url, redis_url=redis_url, product_notice_coalesce_s=1.0
    )
    celery = start_celery(settings)
    runtime = get_runtime()
    from worker.sync.products import sync_one_product

    product_id = sandbox.state.catalog.authorized_ids()[1]
    sync_one_product(runtime.sessions, runtime.supplier, product_id)
    app = create_app(settings, send=sender_for(celery))
    price_path = "/product/getProductPriceByDistributor"
    sandbox.state.traffic.reset_stats()
    with serving(app) as url:
        sandbox.state.update_settings({"callback_url": url + PATH})
        for _ in range(4):
            sandbox.state.catalog.reprice(product_id, delta=Decimal("1.00"), notify=True)
        assert sandbox.state.callbacks.wait_settled(15)
        assert wait_for(lambda: all_done(runtime.sessions, 4), 20), statuses(runtime.sessions)
        today = sandbox.state.catalog.today
        truth = sandbox.state.catalog.day(product_id, today)
        assert truth is not None

        def calendar_is_true() -> bool:
            with runtime.sessions() as session:
                stored = session.get(DailyPrice, (product_id, today))
            return stored is not None and stored.sale_price == truth.sale_price

        # The last notices were coalesced: only the trailing refresh can bring the last price.
        assert wait_for(calendar_is_true, 10)
    fetches = sandbox.state.traffic.stats()["by_path"].get(price_path, 0)
    assert 1 <= fetches <= 2, fetches


def test_database_down_answers_503_quickly_and_stores_nothing(tmp_path: Any) -> None:
    settings = make_settings("http://127.0.0.1:9", "postgresql+psycopg://postgres@127.0.0.1:1/none")
    app = create_app(settings, send=Sent())
    started = time.monotonic()
    reply = app.test_client().post(
        PATH,
        data=encode(envelope("order_ticket_notify", SAMPLES["order_ticket_notify"])),
        headers=signed(),
    )
    assert time.monotonic() - started < 5
    assert reply.status_code == 503
    data = reply.get_json()
    assert data["IsSuccess"] is False and data["Code"] != 1000
    assert app.test_client().get("/healthz").status_code == 503


def _lock_database(url: str) -> Any:
    """Hold the inbox locked from another connection, as a stuck migration or vacuum would."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    connection = engine.connect()
    if engine.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN EXCLUSIVE")
    else:
        connection.exec_driver_sql("BEGIN")
        connection.exec_driver_sql("LOCK TABLE inbox_signatures, inbox IN ACCESS EXCLUSIVE MODE")
    return engine, connection


def test_locked_database_answers_503_within_seconds_then_the_resend_lands_once(
    cb_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    sent = Sent()
    app = create_app(cb_settings, send=sent)
    body = encode(envelope("order_verify_notify", SAMPLES["order_verify_notify"]))
    engine, connection = _lock_database(cb_settings.database_url)
    try:
        started = time.monotonic()
        reply = app.test_client().post(PATH, data=body, headers=signed())
        elapsed = time.monotonic() - started
    finally:
        connection.rollback()
        connection.close()
        engine.dispose()
    assert reply.status_code == 503 and reply.get_json()["IsSuccess"] is False
    assert elapsed < 6
    assert inbox_count(sessions) == 0 and sent.ids == []
    with sessions() as session:
        assert list(session.scalars(select(InboxSignature))) == []
    # The supplier sends it again (new timestamp), twice for good measure.
    for offset in (1, 2):
        resend = app.test_client().post(
            PATH, data=body, headers=signed(timestamp_ms=int(time.time() * 1000) + offset)
        )
        assert resend.get_json() == SUCCESS
    assert inbox_count(sessions) == 1 and len(sent.ids) == 1


def test_connections_dropped_by_a_database_restart_cost_no_refusal(
    pg_url: str, tmp_path: Any
) -> None:
    """The intake pool does not ping before each request: a kept connection the server closed
    fails its first statement, and the request is stored on a fresh one instead of a 503."""
    settings = make_settings(
        "http://127.0.0.1:9", pg_url, broker_db_url=f"sqlite:///{tmp_path}/broker.db"
    )
    sent = Sent()
    client = create_app(settings, send=sent).test_client()
    stamp = int(time.time() * 1000)
    for n, service in enumerate(
        ("order_ticket_notify", "order_verify_notify", "order_refund_notify")
    ):
        if n:  # as a restart would: every connection the receiver keeps is closed under it
            admin = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
            with admin.connect() as connection:
                dropped = connection.scalar(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            admin.dispose()
            assert dropped >= 1
        reply = client.post(
            PATH,
            data=encode(envelope(service, SAMPLES[service])),
            headers=signed(timestamp_ms=stamp + n),
        )
        assert reply.status_code == 200 and reply.get_json() == SUCCESS
    assert client.get("/healthz").status_code == 200
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    assert inbox_count(sessionmaker(engine)) == 3 and len(sent.ids) == 3
    engine.dispose()


def test_redis_down_still_acknowledges_within_a_second_and_the_relay_delivers_later(
    sandbox: Any, database_url: str, redis_url: str, start_celery: Any
) -> None:
    down = make_settings(sandbox.url, database_url, redis_url=CLOSED_PORT_REDIS)
    from callbacks.tasks import celery_for

    app = create_app(down, send=sender_for(celery_for(down, queue="never-consumed")))
    with serving(app) as url:
        timings = []
        for service in ("order_ticket_notify", "order_verify_notify"):
            started = time.monotonic()
            reply = post(url, envelope(service, SAMPLES[service]))
            timings.append(time.monotonic() - started)
            assert reply.json() == SUCCESS
    assert max(timings) < 1.0, timings
    # Redis is back: a worker runs and the relay finds what intake could not queue.
    up = make_settings(sandbox.url, database_url, redis_url=redis_url)
    start_celery(up)
    runtime = get_runtime()
    assert statuses(runtime.sessions) == ["pending", "pending"]
    later = utcnow() + timedelta(seconds=61)  # the rows' first retry time has come
    assert _relay_inbox(now=later) == {"requeued": 2, "parked": 0}
    assert wait_for(lambda: all_done(runtime.sessions, 2), 15), statuses(runtime.sessions)
    with runtime.sessions() as session:
        assert session.scalars(select(Order.checked_number)).one() == 2


def test_relay_recovers_a_notice_whose_task_was_lost(
    sandbox: Any, pg_url: str, redis_url: str, start_celery: Any
) -> None:
    settings = make_settings(sandbox.url, pg_url, redis_url=redis_url)
    start_celery(settings)
    runtime = get_runtime()
    lost = Sent()  # the broker "accepted" the message, then lost it
    app = create_app(settings, send=lost)
    reply = app.test_client().post(
        PATH,
        data=encode(envelope("order_refund_notify", SAMPLES["order_refund_notify"])),
        headers=signed(),
    )
    assert reply.get_json() == SUCCESS and len(lost.ids) == 1
    assert _relay_inbox() == {"requeued": 0, "parked": 0}  # not stale yet: left alone
    later = utcnow() + timedelta(seconds=61)
    assert _relay_inbox(now=later) == {"requeued": 1, "parked": 0}
    assert wait_for(lambda: all_done(runtime.sessions, 1), 15), statuses(runtime.sessions)
    with runtime.sessions() as session:
        assert session.scalars(select(Order.refund_status)).one() == 2


def test_logs_never_show_personal_data_or_the_sign_key(
    cb_settings: Settings, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    """Scanned raw (our code must not log them at all) and through the app's masking filter."""
    from tests.support.callbacks import FakeCatalog, run

    caplog.set_level(logging.DEBUG)
    sent = Sent()
    client = create_app(cb_settings, send=sent).test_client()
    ticket = SAMPLES["order_ticket_notify"]
    client.post(PATH, data=encode(envelope("order_ticket_notify", ticket)), headers=signed())
    client.post(  # duplicate
        PATH,
        data=encode(envelope("order_ticket_notify", ticket)),
        headers=signed(timestamp_ms=int(time.time() * 1000) + 5),
    )
    # Rejections whose refused body or headers carry personal data.
    client.post(PATH, data=encode(envelope("order_ticket_notify", ticket)), headers=signed(key="x"))
    broken = {**ticket, "OrderId": f"id {ID_NUMBER} mobile {MOBILE}"}
    client.post(PATH, data=encode(envelope("order_ticket_notify", broken)), headers=signed())
    client.post(PATH, data=f'{{"x": "{ID_NUMBER}'.encode(), headers=signed())
    client.post(PATH, data=b"{}", headers={**signed(), "PartnerId": MOBILE})
    client.post(PATH, data=b"{}", headers={**signed(), "Authorization": f"Bearer {SIGN_KEY}"})
    assert run(sessions, sent.ids[0]).state == "done"
    # A processing failure whose exception text carries an ID number.
    product = client.post(
        PATH,
        data=encode(envelope("order_product_notify", {"ProductId": 3, "Status": 2})),
        headers=signed(),
    )
    assert product.get_json() == SUCCESS
    assert run(sessions, sent.ids[-1], FakeCatalog(fail=True)).state == "retry"
    assert len(caplog.records) >= 6, "expected log lines to scan"
    masking = MaskingFilter([SIGN_KEY])
    for record in caplog.records:
        raw = record.getMessage()
        assert ID_NUMBER not in raw and MOBILE not in raw and SIGN_KEY not in raw, raw
        masking.filter(record)
        assert ID_NUMBER not in record.getMessage() and SIGN_KEY not in record.getMessage()


def test_embedded_mode_without_redis_runs_the_whole_loop(
    sqlite_url: str, tmp_path: Any, celery_queue: str
) -> None:
    """SQLite data, kombu's SQLAlchemy broker on a file, the process-local coalescer."""
    from celery.contrib.testing.worker import start_worker

    from callbacks.tasks import celery_for
    from worker.runtime import build_runtime, set_runtime

    settings = make_settings(
        "http://127.0.0.1:9", sqlite_url, broker_db_url=f"sqlite:///{tmp_path}/broker.db"
    )
    runtime = build_runtime(settings)
    set_runtime(runtime)
    try:
        assert type(runtime.coalescer).__name__ == "LocalCoalescer"
        celery = celery_for(settings, queue=celery_queue)
        app = create_app(settings, send=sender_for(celery))
        started = time.monotonic()
        reply = app.test_client().post(
            PATH,
            data=encode(envelope("order_verify_notify", SAMPLES["order_verify_notify"])),
            headers=signed(),
        )
        assert reply.get_json() == SUCCESS and time.monotonic() - started < 1.0
        with start_worker(
            celery, pool="threads", concurrency=2, perform_ping_check=False, queues=[celery_queue]
        ):
            assert wait_for(lambda: all_done(runtime.sessions, 1), 20), statuses(runtime.sessions)
        with runtime.sessions() as session:
            assert session.scalars(select(Order.checked_number)).one() == 2
    finally:
        set_runtime(None)
        runtime.close()
