"""The generated catalog is deterministic, complete, varied and fast to build."""

from __future__ import annotations

import datetime
from collections import Counter

from supplier_sandbox.catalog import generate_catalog
from supplier_sandbox.pricing import OPEN_ENDED, RANGE, SPECIFIC_DATE
from tests.support.sandbox import TODAY

PRODUCT_FIELDS = {
    "ProductId", "Version", "ProductCode", "IsTicket", "TicketGetAddress", "ProductName",
    "ProductDesc", "EntranceMode", "ProductKind", "AdultNumber", "ChildNumber",
    "MaxNumberByOrder", "MaxNumberByMobile", "LimitDayByMobile", "MaxNumberByCardID",
    "LimitDayByCardID", "CustomerSet", "TotoalStock", "ProductStatus", "RefundSet",
    "ScenicSpots", "ScenicId", "OutId", "MinAge", "MaxAge", "EffectiveTimeMode",
    "EffectiveTime", "BecomeEffectiveTime", "BeginEffectiveTime", "EndEffectiveTime",
    "BookingTime",
}  # fmt: skip


def test_same_seed_same_catalog_and_another_seed_another() -> None:
    first = generate_catalog(3, 40, TODAY)
    again = generate_catalog(3, 40, TODAY)
    other = generate_catalog(4, 40, TODAY)
    assert [p.payload for p in first.products] == [p.payload for p in again.products]
    assert [p.rules for p in first.products] == [p.rules for p in again.products]
    assert [p.payload for p in first.products] != [p.payload for p in other.products]


def test_every_product_has_every_contract_field_and_increasing_ids() -> None:
    products = [p.payload for p in generate_catalog(1, 300, TODAY).products]
    assert all(set(p) == PRODUCT_FIELDS for p in products)
    ids = [p["ProductId"] for p in products]
    assert ids == sorted(set(ids))
    assert {p["Version"] for p in products} <= set(range(6))
    assert all(p["ProductName"].startswith(p["ScenicSpots"]) for p in products)
    assert all(p["ProductKind"] in p["ProductName"] for p in products)
    assert {p["ProductStatus"] for p in products} == {0, 1}
    assert {p["EntranceMode"] for p in products} == {0, 1}
    assert all(p["CustomerSet"] == 1 for p in products if p["EntranceMode"] == 1)
    nullable = {key for p in products for key, value in p.items() if value is None}
    assert {"ProductDesc", "MinAge", "BookingTime", "ProductCode"} <= nullable
    assert all(
        p["BeginEffectiveTime"] and p["EndEffectiveTime"]
        for p in products
        if p["EffectiveTimeMode"] == 5
    )


def test_rules_overlap_with_all_three_types_and_unlimited_stock_appears() -> None:
    generated = generate_catalog(1, 300, TODAY).products
    rules = [rule for product in generated for rule in product.rules]
    assert {rule.price_type for rule in rules} == {RANGE, SPECIFIC_DATE, OPEN_ENDED}
    assert all(r.begin == r.end for r in rules if r.price_type == SPECIFIC_DATE)
    assert all(r.end is None for r in rules if r.price_type == OPEN_ENDED)
    assert any(r.daily_stock == 0 for r in rules)
    assert {r.blank_end_as_empty for r in rules if r.price_type == OPEN_ENDED} == {True, False}
    horizon = TODAY + datetime.timedelta(days=89)
    assert all(r.begin <= horizon for r in rules)
    assert all(r.price < r.sale_price <= r.market_price for r in rules)
    assert all(
        money.as_tuple().exponent == -2
        for r in rules
        for money in (r.price, r.sale_price, r.market_price)
    )
    overlapping = 0
    for product in generated:
        days: Counter[datetime.date] = Counter()
        for rule in product.rules:
            end = rule.end or horizon
            for offset in range((end - rule.begin).days + 1):
                days[rule.begin + datetime.timedelta(days=offset)] += 1
        overlapping += any(count > 1 for count in days.values())
    assert overlapping > len(generated) // 2


def test_about_a_fifth_of_products_have_timed_sessions() -> None:
    generated = generate_catalog(1, 1000, TODAY).products
    timed = [p for p in generated if p.seat_plan is not None]
    assert 120 <= len(timed) <= 280
    plan = timed[0].seat_plan
    assert plan is not None
    seats = plan.seats_between(
        timed[0].payload["ProductId"], TODAY, TODAY + datetime.timedelta(days=6)
    )
    assert seats
    assert all(len(seat.start) == 5 and seat.start < seat.end for seat in seats)
    assert len({seat.code for seat in seats}) == len(seats)


def test_ten_thousand_products_generate_with_distinct_ids() -> None:
    # How fast is the benchmarks' business (bench/report.py starts 10,000-product sandboxes).
    catalog = generate_catalog(1, 10_000, TODAY)
    assert len(catalog.products) == 10_000
    ids = [product.payload["ProductId"] for product in catalog.products]
    assert len(set(ids)) == 10_000
