"""The oracle resolves overlapping rules by the contract's precedence, and the truth agrees."""

from __future__ import annotations

import datetime
from decimal import Decimal

from supplier_sandbox.oracle import resolve_calendar, resolve_payload_calendar
from supplier_sandbox.pricing import OPEN_ENDED, RANGE, SPECIFIC_DATE, PriceRule
from supplier_sandbox.server import RunningSandbox
from tests.support.sandbox import TODAY, Supplier

D = datetime.date


def rule(
    price_type: int, begin: D, end: D | None, price: str, stock: int = 100, booking: int = 0
) -> PriceRule:
    amount = Decimal(price)
    return PriceRule(
        price_type=price_type,
        begin=begin,
        end=end,
        price=amount,
        sale_price=amount + 10,
        market_price=amount + 20,
        daily_stock=stock,
        booking_day=booking,
    )


def prices(rules: list[PriceRule], start: D, end: D) -> dict[D, Decimal]:
    return {day.date: day.price for day in resolve_calendar(rules, start, end)}


def test_specific_date_beats_range_beats_open_ended_whatever_the_order() -> None:
    rules = [
        rule(SPECIFIC_DATE, D(2025, 5, 3), D(2025, 5, 3), "300.00"),
        rule(RANGE, D(2025, 5, 1), D(2025, 5, 5), "200.00"),
        rule(OPEN_ENDED, D(2025, 4, 1), None, "100.00"),
    ]
    for ordering in (rules, list(reversed(rules))):
        got = prices(ordering, D(2025, 4, 30), D(2025, 5, 6))
        assert got == {
            D(2025, 4, 30): Decimal("100.00"),
            D(2025, 5, 1): Decimal("200.00"),
            D(2025, 5, 2): Decimal("200.00"),
            D(2025, 5, 3): Decimal("300.00"),
            D(2025, 5, 4): Decimal("200.00"),
            D(2025, 5, 5): Decimal("200.00"),
            D(2025, 5, 6): Decimal("100.00"),
        }


def test_narrower_range_wins_even_when_listed_first() -> None:
    rules = [
        rule(RANGE, D(2025, 5, 2), D(2025, 5, 3), "250.00"),
        rule(RANGE, D(2025, 5, 1), D(2025, 5, 31), "200.00"),
    ]
    got = prices(rules, D(2025, 5, 1), D(2025, 5, 4))
    assert got[D(2025, 5, 1)] == Decimal("200.00")
    assert got[D(2025, 5, 2)] == got[D(2025, 5, 3)] == Decimal("250.00")
    assert got[D(2025, 5, 4)] == Decimal("200.00")


def test_tie_goes_to_the_later_rule_in_the_list() -> None:
    first = rule(RANGE, D(2025, 5, 1), D(2025, 5, 10), "200.00")
    second = rule(RANGE, D(2025, 5, 5), D(2025, 5, 14), "222.00")
    got = prices([first, second], D(2025, 5, 5), D(2025, 5, 5))
    assert got[D(2025, 5, 5)] == Decimal("222.00")
    got = prices([second, first], D(2025, 5, 5), D(2025, 5, 5))
    assert got[D(2025, 5, 5)] == Decimal("200.00")
    same_day = [
        rule(SPECIFIC_DATE, D(2025, 5, 5), D(2025, 5, 5), "300.00"),
        rule(SPECIFIC_DATE, D(2025, 5, 5), D(2025, 5, 5), "399.00"),
    ]
    assert prices(same_day, D(2025, 5, 5), D(2025, 5, 5))[D(2025, 5, 5)] == Decimal("399.00")


def test_later_open_ended_rule_is_the_narrower_one() -> None:
    rules = [
        rule(OPEN_ENDED, D(2025, 6, 1), None, "150.00"),
        rule(OPEN_ENDED, D(2025, 1, 1), None, "100.00"),
    ]
    got = prices(rules, D(2025, 5, 31), D(2025, 6, 1))
    assert got == {D(2025, 5, 31): Decimal("100.00"), D(2025, 6, 1): Decimal("150.00")}


def test_uncovered_days_are_absent_and_unlimited_stock_is_none() -> None:
    rules = [
        rule(RANGE, D(2025, 5, 1), D(2025, 5, 2), "200.00", stock=0, booking=2),
        rule(SPECIFIC_DATE, D(2025, 5, 5), D(2025, 5, 5), "300.00", stock=7),
    ]
    days = resolve_calendar(rules, D(2025, 4, 30), D(2025, 5, 6))
    assert [day.date for day in days] == [D(2025, 5, 1), D(2025, 5, 2), D(2025, 5, 5)]
    assert days[0].stock is None
    assert days[0].booking_days == 2
    assert days[0].sale_price == Decimal("210.00")
    assert days[0].market_price == Decimal("220.00")
    assert days[2].stock == 7


def test_oracle_reads_raw_payload_rules_with_blank_or_null_open_end() -> None:
    items = [
        {"PriceType": 3, "BeginTime": "2025-05-01", "EndTime": "", "Price": 80, "SalePrice": 90,
         "MarketPrice": 99, "DailyStock": 0, "BookingDay": 0},
        {"PriceType": 1, "BeginTime": "2025-05-03 00:00:00", "EndTime": "2025-05-04 00:00:00",
         "Price": 85.5, "SalePrice": 95, "MarketPrice": 99, "DailyStock": 10, "BookingDay": 1},
    ]  # fmt: skip
    days = resolve_payload_calendar(items, D(2025, 5, 1), D(2025, 5, 5))
    assert [str(day.price) for day in days] == ["80.00", "80.00", "85.50", "85.50", "80.00"]
    assert [day.stock for day in days] == [None, None, 10, 10, None]


def test_truth_calendar_is_the_oracle_over_the_rules_the_api_serves(
    sandbox: RunningSandbox, supplier: Supplier
) -> None:
    end = TODAY + datetime.timedelta(days=89)
    for product_id in sandbox.state.catalog.authorized_ids()[:10]:
        response = supplier.get(
            "/product/getProductPriceByDistributor",
            {"StartTime": TODAY.isoformat(), "EndTime": end.isoformat(), "productId": product_id},
        )
        served = response.json()["Data"]["DailyPriceStock"]
        expected = resolve_payload_calendar(served, TODAY, end)
        truth = supplier.http.get(
            f"/_admin/products/{product_id}/calendar",
            params={"from": TODAY.isoformat(), "to": end.isoformat()},
        ).json()["days"]
        assert truth == [
            {
                "date": day.date.isoformat(),
                "price": float(day.price),
                "sale_price": float(day.sale_price),
                "market_price": float(day.market_price),
                "stock": day.stock,
                "booking_days": day.booking_days,
            }
            for day in expected
        ]
