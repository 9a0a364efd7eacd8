"""The resolved daily calendar: one price per day from overlapping rules (CONTRACT.md 1.1.2).

Precedence: a specific date (type 2) beats a range (type 1), which beats an open-ended rule
(type 3); within one type the narrower span wins; on a tie the later rule in the response
wins. An open-ended rule covers every day from its BeginTime on, whatever its EndTime says.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import NamedTuple

from worker.supplier.payloads import PriceRule

RANGE = 1
SPECIFIC_DATE = 2
OPEN_ENDED = 3
_TYPE_RANK = {SPECIFIC_DATE: 0, RANGE: 1, OPEN_ENDED: 2}


class ResolvedDay(NamedTuple):
    """One day of the calendar; ``stock`` is None when unlimited (DailyStock 0). A named tuple:
    a window holds dozens per product and a refresh builds them by the thousand."""

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
    # Each day takes the best rule covering it: paint the worst first, the best last.
    slots: list[int] = [-1] * max((end - start).days + 1, 0)
    for i in reversed(ranked):
        rule = rules[i]
        if rule.price_type not in _TYPE_RANK:
            continue
        last = _last_day(rule)
        first_slot = max((rule.begin_time - start).days, 0)
        last_slot = len(slots) - 1 if last is None else min((last - start).days, len(slots) - 1)
        if first_slot <= last_slot:
            slots[first_slot : last_slot + 1] = [i] * (last_slot - first_slot + 1)
    # A day's values are its rule's: one tuple per rule, shared by the days it prices.
    values = [
        (rule.price, rule.sale_price, rule.market_price, rule.daily_stock or None, rule.booking_day)
        for rule in rules
    ]
    new_day = tuple.__new__  # a named tuple without its keyword-parsing constructor
    return [
        new_day(ResolvedDay, (day, *values[i]))
        for day, i in zip(window_days(start, len(slots)), slots, strict=True)
        if i >= 0
    ]


@functools.lru_cache(maxsize=16)
def window_days(start: date, count: int) -> tuple[date, ...]:
    """The ``count`` days from ``start``; a refresh resolves every product over one window."""
    return tuple(start + timedelta(days=offset) for offset in range(count))
