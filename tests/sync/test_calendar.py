"""resolve_calendar: CONTRACT.md's precedence, checked case by case and against the sandbox oracle."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from supplier_sandbox.oracle import resolve_payload_calendar
from worker.supplier.payloads import PriceRule
from worker.sync.calendar import resolve_calendar

D = date(2026, 7, 1)


def rule(price_type: int, begin: date, end: date | None, price: str, **extra: Any) -> PriceRule:
    payload = {
        "PriceType": price_type,
        "BeginTime": begin.isoformat(),
        "EndTime": end.isoformat() if end else None,
        "Price": price,
        "SalePrice": price,
        "MarketPrice": price,
        "DailyStock": extra.get("stock", 10),
        "BookingDay": extra.get("booking", 0),
    }
    return PriceRule.model_validate(payload)


def prices(rules: list[PriceRule], start: date = D, days: int = 1) -> list[str]:
    return [str(d.price) for d in resolve_calendar(rules, start, start + timedelta(days=days - 1))]


def test_specific_date_beats_range_and_open_ended() -> None:
    rules = [rule(2, D, D, "3.00"), rule(1, D, D + timedelta(5), "1.00"), rule(3, D, None, "9.00")]
    assert prices(rules) == ["3.00"]
    assert prices(list(reversed(rules))) == ["3.00"]


def test_range_beats_open_ended_even_when_wider() -> None:
    rules = [rule(1, D - timedelta(100), D + timedelta(100), "1.00"), rule(3, D, None, "9.00")]
    assert prices(rules) == ["1.00"]


def test_narrower_range_wins_within_its_type() -> None:
    wide = rule(1, D - timedelta(10), D + timedelta(10), "1.00")
    narrow = rule(1, D, D + timedelta(2), "2.00")
    assert prices([narrow, wide], D - timedelta(1), 5) == ["1.00", "2.00", "2.00", "2.00", "1.00"]


def test_later_rule_wins_a_tie() -> None:
    first, second = rule(2, D, D, "1.00"), rule(2, D, D, "2.00")
    assert prices([first, second]) == ["2.00"]
    assert prices([second, first]) == ["1.00"]


def test_later_starting_open_ended_rule_is_the_narrower() -> None:
    early, late = rule(3, D - timedelta(30), None, "1.00"), rule(3, D + timedelta(1), None, "2.00")
    assert prices([late, early], D, 3) == ["1.00", "2.00", "2.00"]


def test_open_ended_rule_ignores_its_end_time() -> None:
    assert prices([rule(3, D, D, "1.00")], D, 3) == ["1.00", "1.00", "1.00"]


def test_uncovered_days_are_absent_and_zero_stock_is_unlimited() -> None:
    days = resolve_calendar(
        [rule(1, D + timedelta(1), D + timedelta(1), "1.00", stock=0, booking=2)],
        D,
        D + timedelta(2),
    )
    assert [(d.day, d.stock, d.booking_days, d.price) for d in days] == [
        (D + timedelta(1), None, 2, Decimal("1.00"))
    ]


def test_random_rule_sets_agree_with_the_sandbox_oracle() -> None:
    rng = random.Random(3)
    for _ in range(300):
        items = []
        for _ in range(rng.randrange(1, 7)):
            kind = rng.choice((1, 2, 3))
            begin = D + timedelta(rng.randrange(-20, 40))
            end = begin if kind == 2 else begin + timedelta(rng.randrange(0, 30))
            items.append(
                {
                    "PriceType": kind,
                    "BeginTime": begin.isoformat(),
                    "EndTime": None if kind == 3 and rng.random() < 0.5 else end.isoformat(),
                    "Price": f"{rng.randrange(1, 99)}.00",
                    "SalePrice": "1.00",
                    "MarketPrice": "2.00",
                    "DailyStock": rng.choice((0, 5)),
                    "BookingDay": rng.randrange(0, 3),
                }
            )
        ours = resolve_calendar([PriceRule.model_validate(i) for i in items], D, D + timedelta(59))
        theirs = resolve_payload_calendar(items, D, D + timedelta(59))
        assert [(d.day, d.price, d.stock, d.booking_days) for d in ours] == [
            (t.date, t.price, t.stock, t.booking_days) for t in theirs
        ]
