"""The test oracle: a product's per-day calendar resolved from its rules, the brute-force way.

Precedence (CONTRACT.md 1.1.2): a specific date (type 2) beats a range (type 1), which beats
an open-ended rule (type 3); within one type the narrower span wins; on a tie the later rule
in the list wins. An open-ended rule covers every day from BeginTime on, whatever its
EndTime says, so between two of them the one that begins later is the narrower.
Deliberately written without cleverness: it checks another engineer's faster resolver.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from supplier_sandbox.pricing import OPEN_ENDED, RANGE, SPECIFIC_DATE, PriceRule, rule_from_payload

_TYPE_RANK = {SPECIFIC_DATE: 0, RANGE: 1, OPEN_ENDED: 2}


@dataclass(frozen=True)
class CalendarDay:
    """One resolved day; ``stock`` is None when the winning rule's DailyStock is 0 (unlimited)."""

    date: datetime.date
    price: Decimal
    sale_price: Decimal
    market_price: Decimal
    stock: int | None
    booking_days: int

    def to_json(self) -> dict[str, Any]:
        """Snake-case truth for the admin interface, money left as Decimal for the encoder."""
        return {
            "date": self.date.isoformat(),
            "price": self.price,
            "sale_price": self.sale_price,
            "market_price": self.market_price,
            "stock": self.stock,
            "booking_days": self.booking_days,
        }


def _covers(rule: PriceRule, day: datetime.date) -> bool:
    if rule.price_type not in _TYPE_RANK or day < rule.begin:
        return False
    if rule.price_type == OPEN_ENDED:
        return True
    return rule.end is not None and day <= rule.end


def _span_days(rule: PriceRule) -> int:
    if rule.price_type == OPEN_ENDED or rule.end is None:
        return (datetime.date.max - rule.begin).days + 1
    return (rule.end - rule.begin).days + 1


def resolve_day(rules: Sequence[PriceRule], day: datetime.date) -> CalendarDay | None:
    """The winning rule's figures for one day, or None when no rule covers it."""
    winner: PriceRule | None = None
    winner_key: tuple[int, int, int] | None = None
    for index, rule in enumerate(rules):
        if not _covers(rule, day):
            continue
        key = (_TYPE_RANK[rule.price_type], _span_days(rule), -index)
        if winner_key is None or key < winner_key:
            winner, winner_key = rule, key
    if winner is None:
        return None
    return CalendarDay(
        date=day,
        price=winner.price,
        sale_price=winner.sale_price,
        market_price=winner.market_price,
        stock=winner.daily_stock or None,
        booking_days=winner.booking_day,
    )


def resolve_calendar(
    rules: Sequence[PriceRule], start: datetime.date, end: datetime.date
) -> list[CalendarDay]:
    """Every covered day of [start, end] in order; days no rule covers are absent."""
    days: list[CalendarDay] = []
    day = start
    while day <= end:
        resolved = resolve_day(rules, day)
        if resolved is not None:
            days.append(resolved)
        day += datetime.timedelta(days=1)
    return days


def resolve_payload_calendar(
    items: Iterable[Mapping[str, Any]], start: datetime.date, end: datetime.date
) -> list[CalendarDay]:
    """The oracle over raw ``DailyPriceStock`` items, for checking a client's own parse."""
    return resolve_calendar([rule_from_payload(item) for item in items], start, end)
