"""Guards of the price refresh and the payload bounds, on SQLite and PostgreSQL.

Values the columns cannot hold are refused at the boundary (one product quarantined, one
refresh failed), an older fetch never overwrites a newer one, failing products do not starve
the rolling refresh, and a new supplier day moves the window without rewriting the calendar.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.catalog import DailyPrice, QuarantinedProduct
from models.catalog import Product as ProductRow
from tests.support.sync import (
    SANDBOX_PARTNER_ID,
    SANDBOX_SIGN_KEY,
    WINDOW,
    WriteProbe,
    assert_matches_truth,
    changes_after,
    full_sync,
    last_seq,
    stored,
)
from worker.clock import clock_for
from worker.supplier.client import PRICES_PATH, SupplierClient
from worker.supplier.errors import SupplierBadPayload, SupplierBusy
from worker.supplier.payloads import PriceCalendar, PriceRule, Product
from worker.sync.price_plan import PriceKeys, only_window_moved, price_content, price_window
from worker.sync.prices import refresh_many, refresh_prices, store_prices
from worker.sync.products import sync_products
from worker.sync.rolling import drop_expired_days, due_for_refresh

D = date(2026, 7, 1)


def product_payload(**changes: Any) -> dict[str, Any]:
    return {"ProductId": 1, "Version": 1, "ProductName": "园", "ProductStatus": 1, **changes}


def rule_payload(**changes: Any) -> dict[str, Any]:
    base = {"PriceType": 1, "BeginTime": "2026-07-01", "EndTime": "2026-07-10", "DailyStock": 5}
    return {**base, "Price": "10.00", "SalePrice": "12.00", "MarketPrice": "15.00", **changes}


def faulty_prices(sandbox: Any, product_id: int) -> None:
    """The supplier rejects every price request for this product until cleared."""
    sandbox.state.traffic.add_fault(
        {
            "kind": "rejected",
            "path": PRICES_PATH,
            "match": {"productId": str(product_id)},
            "count": -1,
        }
    )


def tampering_client(sandbox_url: str, product_id: int, seat: dict[str, Any]) -> SupplierClient:
    """A client whose supplier answers truly, except for one extra session on one product."""
    upstream = httpx.Client(base_url=sandbox_url, timeout=5.0)

    def handler(request: httpx.Request) -> httpx.Response:
        response = upstream.send(request)
        if request.url.path != PRICES_PATH or request.url.params["productId"] != str(product_id):
            return httpx.Response(response.status_code, content=response.content)
        envelope = json.loads(response.content)
        envelope["Data"]["ProductSeats"] = [*(envelope["Data"]["ProductSeats"] or []), seat]
        return httpx.Response(200, json=envelope)

    return SupplierClient(
        httpx.Client(base_url=sandbox_url, transport=httpx.MockTransport(handler)),
        partner_id=SANDBOX_PARTNER_ID,
        sign_key=SANDBOX_SIGN_KEY,
        read_retries=0,
    )


# --- payload bounds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"ProductName": "名" * 501},
        {"Version": 2**31},
        {"ProductId": 2**63},
    ],
)
def test_required_values_no_column_can_hold_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Product.model_validate(product_payload(**changes))


@pytest.mark.parametrize(
    ("changes", "field", "stored"),
    [
        ({"ProductCode": "C" * 256}, "product_code", "C" * 255),
        ({"ScenicSpots": "景" * 501}, "scenic_spots", "景" * 500),
        ({"OutId": "o" * 256}, "out_id", "o" * 255),
        ({"ProductKind": "k" * 256}, "product_kind", "k" * 255),
        ({"TotoalStock": 2**31}, "total_stock", None),
        ({"ScenicId": 2**63}, "scenic_id", None),
        (
            {"BeginEffectiveTime": "2026-07-01T00:00:00.123456+08:00:30"},
            "begin_effective_time",
            "2026-07-01T00:00:00.123456+08:00",
        ),
    ],
)
def test_informational_values_no_column_can_hold_are_cut_or_dropped(
    changes: dict[str, Any], field: str, stored: Any
) -> None:
    assert getattr(Product.model_validate(product_payload(**changes)), field) == stored


def test_product_values_at_the_column_limits_are_accepted() -> None:
    product = Product.model_validate(
        product_payload(ProductCode="C" * 255, ProductName="名" * 500, TotoalStock=2**31 - 1)
    )
    assert (len(product.product_code or ""), product.total_stock) == (255, 2**31 - 1)


@pytest.mark.parametrize(
    "changes",
    [
        {"Price": "10000000000.00"},
        {"SalePrice": "-10000000000"},
        {"MarketPrice": "1.005"},
        {"Price": "NaN"},
        {"DailyStock": 2**31},
        {"BookingDay": 2**31},
    ],
)
def test_price_rule_values_no_column_can_hold_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PriceRule.model_validate(rule_payload(**changes))


def test_money_with_trailing_zeros_beyond_two_decimals_is_accepted() -> None:
    rule = PriceRule.model_validate(rule_payload(Price="9999999999.9900"))
    assert rule.price == Decimal("9999999999.99")


@pytest.mark.parametrize(
    "seat",
    [
        {"SeatsStartTime": "09:00:00.000"},
        {"SeatsEndTime": "a" * 9},
        {"SeatsCode": "S" * 256},
        {"SeatsNum": 2**31},
    ],
)
def test_sessions_no_column_can_hold_are_refused(seat: dict[str, Any]) -> None:
    base = {"Time": "2026-07-01", "SeatsStartTime": "09:00", "SeatsEndTime": "10:00"}
    with pytest.raises(ValidationError):
        PriceCalendar.model_validate({"ProductSeats": [{**base, "SeatsCode": "S1", **seat}]})


def test_overlong_product_name_is_quarantined_while_the_rest_of_the_pass_completes(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    full_sync(session_factory, supplier, sandbox)
    catalog = sandbox.state.catalog
    overlong, renamed, coded = catalog.authorized_ids()[2:5]
    good = stored(session_factory, overlong)
    catalog.bump_version(overlong, {"ProductName": "名" * 501})
    catalog.bump_version(renamed, {"ProductName": "改过的名字"})
    catalog.bump_version(coded, {"ProductCode": "C" * 300})  # informational: cut, not refused
    (added,) = catalog.add_products(1)

    result = sync_products(session_factory, supplier)

    assert (result.outcome, result.quarantined, result.new, result.deauthorized) == ("ok", 1, 1, 0)
    assert stored(session_factory, renamed).product_name == "改过的名字"
    assert stored(session_factory, coded).product_code == "C" * 255
    assert stored(session_factory, added).is_authorized is True
    kept = stored(session_factory, overlong)
    assert (kept.version, kept.product_name) == (good.version, good.product_name)
    with session_factory() as session:
        held = session.scalar(
            select(QuarantinedProduct).where(QuarantinedProduct.product_id == overlong)
        )
    assert held is not None and "ProductName" in held.error


def test_calendar_that_cannot_be_stored_fails_only_its_product(
    session_factory: sessionmaker[Session], sandbox: Any
) -> None:
    catalog = sandbox.state.catalog
    today = sandbox.state.today
    ids = catalog.authorized_ids()
    dear, crowded = ids[4], ids[9]
    client = tampering_client(
        sandbox.url,
        crowded,
        {
            "Time": today.isoformat(),
            "SeatsStartTime": "09:00",
            "SeatsEndTime": "10:00",
            "SeatsCode": "S" * 300,
            "SeatsNum": 10,
        },
    )
    end = today + timedelta(days=10)
    catalog.reprice(
        dear,
        rules=[
            {
                "PriceType": 1,
                "BeginTime": today.isoformat(),
                "EndTime": end.isoformat(),
                "Price": "12345678901.00",
                "SalePrice": "1.00",
                "MarketPrice": "1.00",
                "DailyStock": 5,
                "BookingDay": 0,
            }
        ],
    )
    try:
        sync_products(session_factory, client)
        batch = refresh_many(session_factory, client, ids, today=today, window_days=WINDOW)
        assert (batch.refreshed, batch.errors) == (len(ids) - 2, 2)
        with session_factory() as session:
            refreshed = set(
                session.scalars(
                    select(ProductRow.product_id).where(ProductRow.prices_refreshed_at.isnot(None))
                )
            )
        assert refreshed == set(ids) - {dear, crowded}
        with pytest.raises(SupplierBadPayload):
            refresh_prices(session_factory, client, dear, today=today, window_days=WINDOW)
    finally:
        client.close()


# --- an older fetch never overwrites a newer one ---------------------------------------------


def test_older_fetch_finishing_last_does_not_overwrite_the_newer_one(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    full_sync(session_factory, supplier, sandbox)
    pid = sandbox.state.catalog.authorized_ids()[0]
    start, end = price_window(sandbox.state.today, WINDOW)
    rolling_started = utcnow()
    old = price_content(supplier.get_price_calendar(pid, start, end), start, end, rolling_started)
    sandbox.state.catalog.reprice(pid, delta="2.00")
    notice_started = utcnow()
    new = price_content(supplier.get_price_calendar(pid, start, end), start, end, notice_started)
    before = last_seq(session_factory)

    assert store_prices(session_factory, pid, new) is True  # the notice-driven refresh is faster
    assert store_prices(session_factory, pid, old) is False  # the rolling one finishes later

    assert changes_after(session_factory, before) == [(pid, "prices")]
    assert stored(session_factory, pid).prices_fetched_at == notice_started
    assert_matches_truth(session_factory, sandbox)


def test_a_fetch_for_yesterdays_window_never_overwrites_todays(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    """A batch that crossed the supplier's midnight finishes after a refresh of the new day."""
    full_sync(session_factory, supplier, sandbox)
    pid = sandbox.state.catalog.authorized_ids()[0]
    today = sandbox.state.today
    y_start, y_end = price_window(today - timedelta(days=1), WINDOW)
    t_start, t_end = price_window(today, WINDOW)
    todays = price_content(
        supplier.get_price_calendar(pid, t_start, t_end), t_start, t_end, utcnow()
    )
    yesterdays = price_content(
        supplier.get_price_calendar(pid, y_start, y_end), y_start, y_end, utcnow()
    )

    store_prices(session_factory, pid, todays)
    assert store_prices(session_factory, pid, yesterdays) is False  # fetched later, but older news

    assert stored(session_factory, pid).prices_window_start == t_start


# --- failing products do not starve the rolling refresh -------------------------------------


def test_products_whose_refresh_always_fails_do_not_starve_the_others(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    ids = sorted(sync_products(session_factory, supplier).price_due)
    failing = ids[:5]  # first in line: never attempted, lowest ids
    for pid in failing:
        faulty_prices(sandbox, pid)

    for _ in range(7):  # 25 others at 5 a tick, after one tick of the failing ones
        due = due_for_refresh(session_factory, interval_s=60, max_age=timedelta(hours=6), cap=5)
        refresh_many(session_factory, supplier, due, today=sandbox.state.today, window_days=WINDOW)

    with session_factory() as session:
        rows = session.execute(
            select(
                ProductRow.product_id,
                ProductRow.prices_refreshed_at,
                ProductRow.prices_attempted_at,
            )
        ).all()
    assert {pid for pid, refreshed, _ in rows if refreshed is None} == set(failing)
    assert all(attempted is not None for _, _, attempted in rows)


def test_a_failed_single_refresh_is_recorded_as_an_attempt(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    sync_products(session_factory, supplier)
    pid = sandbox.state.catalog.authorized_ids()[0]
    faulty_prices(sandbox, pid)
    started = clock_for(session_factory).now()  # the clock the refresh stamps with

    with pytest.raises(SupplierBusy):  # the fault's busy answer, still busy after the retries
        refresh_prices(session_factory, supplier, pid, today=sandbox.state.today)

    row = stored(session_factory, pid)
    assert row.prices_refreshed_at is None
    assert row.prices_error is not None and "busy" in row.prices_error
    assert row.prices_attempted_at is not None and row.prices_attempted_at >= started
    # Attempted within the max age: not overdue, so the never-attempted ones are due first.
    due = due_for_refresh(session_factory, interval_s=60, max_age=timedelta(hours=6), cap=50)
    assert due == sorted(set(sandbox.state.catalog.authorized_ids()) - {pid})


# --- a new supplier day moves the window without rewriting the calendar ----------------------


def test_next_day_over_an_unchanged_supplier_only_adds_the_day_entering_the_window(
    engine: Engine, session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    full_sync(session_factory, supplier, sandbox)
    catalog = sandbox.state.catalog
    ids = catalog.authorized_ids()
    tomorrow = sandbox.state.today + timedelta(days=1)
    new_last = tomorrow + timedelta(days=WINDOW - 1)
    entering_days = sum(1 for pid in ids if catalog.day(pid, new_last) is not None)
    entering_seats = sum(len(catalog.seats(pid, new_last, new_last)) for pid in ids)
    assert entering_days > 0 and entering_seats > 0  # the sandbox covers the day being tested
    drop_expired_days(session_factory, tomorrow)  # the rolling tick's first step
    before = last_seq(session_factory)
    probe = WriteProbe(engine, ("daily_prices", "sessions", "changes"))
    probe.start()

    batch = refresh_many(session_factory, supplier, ids, today=tomorrow, window_days=WINDOW)

    assert (batch.refreshed, batch.changed) == (len(ids), 0)
    assert changes_after(session_factory, before) == []
    # Only inserts of the new last day: no day or session already held was rewritten.
    assert probe.writes() == {"daily_prices": entering_days, "sessions": entering_seats}
    with session_factory() as session:
        last_days = session.scalar(
            select(func.count()).where(DailyPrice.day == new_last).select_from(DailyPrice)
        )
    assert last_days == entering_days
    sandbox.state.today = catalog.today = tomorrow
    assert_matches_truth(session_factory, sandbox)


def test_a_real_change_on_a_new_day_is_still_a_change(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    full_sync(session_factory, supplier, sandbox)
    catalog = sandbox.state.catalog
    repriced = catalog.authorized_ids()[1]
    catalog.reprice(repriced, delta="0.50")
    tomorrow = sandbox.state.today + timedelta(days=1)
    before = last_seq(session_factory)

    refresh_many(
        session_factory, supplier, catalog.authorized_ids(), today=tomorrow, window_days=WINDOW
    )

    assert changes_after(session_factory, before) == [(repriced, "prices")]
    sandbox.state.today = catalog.today = tomorrow
    assert_matches_truth(session_factory, sandbox)


def _keys(days: list[tuple[date, str]], seats: tuple[date, ...] = ()) -> PriceKeys:
    return PriceKeys(
        rules=[],
        days=[(day, Decimal(p), Decimal(p), Decimal(p), None, 0) for day, p in days],
        seats=[(day, "09:00", "10:00", f"S{day:%d}", 5) for day in seats],
    )


def test_only_window_moved_compares_the_days_both_windows_share() -> None:
    d1, d2, d3 = D + timedelta(1), D + timedelta(2), D + timedelta(3)
    held = _keys([(D, "1.00"), (d1, "1.00"), (d2, "1.00")], (D, d2))
    moved = _keys([(d1, "1.00"), (d2, "1.00"), (d3, "9.00")], (d2, d3))
    assert only_window_moved(held, (D, d2), moved, (d1, d3))
    repriced = _keys([(d1, "1.00"), (d2, "2.00"), (d3, "9.00")], (d2, d3))
    assert not only_window_moved(held, (D, d2), repriced, (d1, d3))
    session_gone = _keys([(d1, "1.00"), (d2, "1.00"), (d3, "9.00")], (d3,))
    assert not only_window_moved(held, (D, d2), session_gone, (d1, d3))
    far = _keys([(d3, "1.00")])
    assert not only_window_moved(held, (D, d2), far, (d3, d3))  # nothing shared proves nothing


def test_invalid_entry_whose_id_no_key_can_hold_is_not_quarantined(
    session_factory: sessionmaker[Session],
) -> None:
    from worker.supplier.payloads import InvalidProduct
    from worker.sync.product_rows import apply_products

    huge = InvalidProduct(product_id=2**63, raw={"ProductId": 2**63}, error="ProductId: too big")
    assert apply_products(session_factory, [], [huge]) == {}
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(QuarantinedProduct)) == 0
