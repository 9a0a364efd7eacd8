"""The resolved daily calendar: one price per day from overlapping rules (CONTRACT.md 1.1.2).

Precedence: a specific date (type 2) beats a range (type 1), which beats an open-ended rule
(type 3); within one type the narrower span wins; on a tie the later rule in the response
wins. An open-ended rule covers every day from its BeginTime on, whatever its EndTime says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from worker.supplier.payloads import PriceRule

RANGE = 1
SPECIFIC_DATE = 2
OPEN_ENDED = 3
_TYPE_RANK = {SPECIFIC_DATE: 0, RANGE: 1, OPEN_ENDED: 2}


@dataclass(frozen=True)
class ResolvedDay:
    """One day of the calendar; ``stock`` is None when unlimited (DailyStock 0)."""

    day: date
    price: Decimal
    sale_price: Decimal
    market_price: Decimal
    stock: int | None
    booking_days: int


def last_covered_day(price_type: int, begin: date, end: date | None) -> date | None:
    """The last day a rule covers; None for open-ended (a range missing its end covers none)."""
    if price_type == OPEN_ENDED:
        return None
    if end is None:
        # A specific date without EndTime means that one date; a range without one is unusable.
        return begin if price_type == SPECIFIC_DATE else begin - timedelta(1)
    return end


def _last_day(rule: PriceRule) -> date | None:
    return last_covered_day(rule.price_type, rule.begin_time, rule.end_time)


def _span(rule: PriceRule) -> int:
    last = _last_day(rule)
    return (
        (date.max - rule.begin_time).days + 1 if last is None else (last - rule.begin_time).days + 1
    )


def resolve_calendar(rules: Sequence[PriceRule], start: date, end: date) -> list[ResolvedDay]:
    """Every day of ``[start, end]`` some rule covers, in order, priced by the precedence."""
    # Best rule first: type rank, then narrower span, then later position.
    ranked = sorted(
        range(len(rules)),
        key=lambda i: (_TYPE_RANK.get(rules[i].price_type, 9), _span(rules[i]), -i),
    )
    ordered = [
        (rules[i], rules[i].begin_time, _last_day(rules[i]))
        for i in ranked
        if rules[i].price_type in _TYPE_RANK
    ]
    days: list[ResolvedDay] = []
    day = start
    while day <= end:
        for rule, first, last in ordered:
            if first <= day and (last is None or day <= last):
                days.append(
                    ResolvedDay(
                        day=day,
                        price=rule.price,
                        sale_price=rule.sale_price,
                        market_price=rule.market_price,
                        stock=rule.daily_stock or None,
                        booking_days=rule.booking_day,
                    )
                )
                break
        day += timedelta(days=1)
    return days
