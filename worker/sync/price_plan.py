"""The price decision, pure: what one fetch means for what is stored (no I/O here).

``plan_prices`` compares what the product row holds (hash, window, fetch start) and, when
needed, the stored rules, days and sessions as keys, with what a fetch would store, and picks
one of four actions (``worker.sync.prices`` reads both sides and applies the answer):

- ``OLDER``: the stored calendar was fetched by a refresh that started later (or for a later
  window): nothing is stored;
- ``UNCHANGED``: same window and same content hash: nothing but the product's stamps;
- ``MOVE_WINDOW``: the window moved and every day both windows share is unchanged: days and
  sessions that left are deleted, those entering are inserted, rules are replaced only when
  the set the supplier returns moved; no change row;
- ``REPLACE``: anything else: rules, days and sessions are replaced, with a change row.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from json.encoder import encode_basestring_ascii

from worker.supplier.payloads import PriceCalendar, PriceRule, Seat
from worker.sync.calendar import ResolvedDay, last_covered_day, resolve_calendar

# Comparable forms of a stored or fetched rule, day and session.
RuleKey = tuple[int, date, date | None, int, Decimal, Decimal, Decimal, int]
DayKey = tuple[date, Decimal, Decimal, Decimal, int | None, int]
SeatKey = tuple[date, str, str, str, int]


def price_window(today: date, window_days: int) -> tuple[date, date]:
    """The first and last day of the window (``window_days`` days from today)."""
    return today, today + timedelta(days=window_days - 1)


@dataclass(frozen=True)
class PriceContent:
    """What one fetch would store over its window, its hash, and when the fetch started."""

    calendar: PriceCalendar
    start: date
    end: date
    days: list[ResolvedDay]
    seats: list[Seat]
    content_hash: str
    fetched_at: datetime


@dataclass(frozen=True)
class PriceKeys:
    """A calendar as comparable keys: rules in response order, days by date, sessions sorted."""

    rules: list[RuleKey]
    days: list[DayKey]
    seats: list[SeatKey]


def price_content(
    calendar: PriceCalendar, start: date, end: date, fetched_at: datetime
) -> PriceContent:
    """Resolve a calendar fetched at ``fetched_at`` over the window and hash what it would store."""
    days = resolve_calendar(calendar.daily_price_stock, start, end)
    seats = [seat for seat in calendar.product_seats if start <= seat.time <= end]
    digest = hashlib.sha256(content_text(calendar.daily_price_stock, days, seats).encode())
    return PriceContent(calendar, start, end, days, seats, digest.hexdigest(), fetched_at)


def content_text(
    rules: Sequence[PriceRule], days: Sequence[ResolvedDay], seats: Sequence[Seat]
) -> str:
    """The text the content hash is taken of, written out directly.

    Byte for byte what ``json.dumps(body, sort_keys=True)`` gives for ``body`` = the rules and
    sessions as ``model_dump(mode="json")`` dicts and each day as its values' ``str`` (stored
    hashes depend on it: ``tests/sync/test_price_hash.py`` pins it). Strings that may hold
    anything go through json's own escaping; dates, numbers and ``str`` of Decimals never need
    escaping.
    """
    # The days' values as text, once per run of days with the same values (a rule covers many).
    day_texts: list[str] = []
    run: tuple[object, ...] | None = None
    text = ""
    for day in days:
        values = day[1:]
        if values != run:
            run, text = values, "".join([f', "{part!s}"' for part in values]) + "]"
        day_texts.append(f'["{_iso(day[0])}"{text}')
    rule_texts = [
        f'{{"begin_time": "{_iso(rule.begin_time)}", "booking_day": {rule.booking_day!r}, '
        f'"daily_stock": {rule.daily_stock!r}, "end_time": {_date_json(rule.end_time)}, '
        f'"market_price": "{rule.market_price!s}", "price": "{rule.price!s}", '
        f'"price_type": {rule.price_type!r}, "sale_price": "{rule.sale_price!s}"}}'
        for rule in rules
    ]
    # A product's sessions repeat a few start and end times and capacities day after day.
    slots: dict[tuple[str, int, str], str] = {}
    seat_texts: list[str] = []
    for seat in seats:
        slot = (seat.seats_end_time, seat.seats_num, seat.seats_start_time)
        middle = slots.get(slot)
        if middle is None:
            middle = slots[slot] = (
                f'"seats_end_time": {_string(slot[0])}, "seats_num": {slot[1]!r}, '
                f'"seats_start_time": {_string(slot[2])}'
            )
        seat_texts.append(
            f'{{"seats_code": {_string(seat.seats_code)}, {middle}, "time": "{_iso(seat.time)}"}}'
        )
    return (
        f'{{"days": [{", ".join(day_texts)}], "rules": [{", ".join(rule_texts)}], '
        f'"seats": [{", ".join(seat_texts)}]}}'
    )


@functools.lru_cache(maxsize=1024)
def _iso(day: date) -> str:
    """``date.isoformat``, remembered: every product's calendar names the same few dozen days."""
    return day.isoformat()


_string = encode_basestring_ascii  # json.dumps's own escaping (ensure_ascii)


def _date_json(day: date | None) -> str:
    return "null" if day is None else f'"{_iso(day)}"'


def _rule_key(rule: PriceRule) -> RuleKey:
    return (
        rule.price_type,
        rule.begin_time,
        rule.end_time,
        rule.daily_stock,
        rule.market_price,
        rule.price,
        rule.sale_price,
        rule.booking_day,
    )


def _day_key(day: ResolvedDay) -> DayKey:
    return (
        day.day,
        day.price,
        day.sale_price,
        day.market_price,
        day.stock,
        day.booking_days,
    )


def _seat_key(seat: Seat) -> SeatKey:
    return (
        seat.time,
        seat.seats_start_time,
        seat.seats_end_time,
        seat.seats_code,
        seat.seats_num,
    )


def content_keys(content: PriceContent) -> PriceKeys:
    """The comparable form of what a fetch would store."""
    return PriceKeys(
        rules=[_rule_key(rule) for rule in content.calendar.daily_price_stock],
        days=[_day_key(day) for day in content.days],
        seats=sorted(_seat_key(seat) for seat in content.seats),
    )


def _rule_touches(rule: RuleKey, first: date, last: date) -> bool:
    """Whether a rule covers any day of ``[first, last]``."""
    price_type, begin, end = rule[0], rule[1], rule[2]
    covered_until = last_covered_day(price_type, begin, end)
    return begin <= last and (covered_until is None or covered_until >= first)


def keys_within(keys: PriceKeys, first: date, last: date) -> PriceKeys:
    """The part of a calendar that bears on the days ``[first, last]``."""
    return PriceKeys(
        rules=[rule for rule in keys.rules if _rule_touches(rule, first, last)],
        days=[day for day in keys.days if first <= day[0] <= last],
        seats=[seat for seat in keys.seats if first <= seat[0] <= last],
    )


def only_window_moved(
    held: PriceKeys,
    held_window: tuple[date, date],
    fetched: PriceKeys,
    window: tuple[date, date],
) -> bool:
    """True when two calendars over different windows agree on every day both windows share.

    Windows that share no day prove nothing, so they count as a change.
    """
    first, last = max(held_window[0], window[0]), min(held_window[1], window[1])
    if first > last:
        return False
    return keys_within(held, first, last) == keys_within(fetched, first, last)


class PriceAction(StrEnum):
    """What storing one fetch does (the module docstring has the four cases)."""

    OLDER = "older"
    UNCHANGED = "unchanged"
    MOVE_WINDOW = "move_window"
    REPLACE = "replace"


@dataclass(frozen=True)
class HeldPrices:
    """What the product row says about its stored calendar."""

    content_hash: str | None
    window: tuple[date | None, date | None]
    fetched_at: datetime | None

    @property
    def complete_window(self) -> tuple[date, date] | None:
        first, last = self.window
        return None if first is None or last is None else (first, last)


@dataclass(frozen=True)
class PricePlan:
    """The action, and for ``MOVE_WINDOW`` whether the rules change too."""

    action: PriceAction
    replace_rules: bool = False

    @property
    def is_change(self) -> bool:
        """Whether the calendar changed (only a replacement writes a change row)."""
        return self.action is PriceAction.REPLACE


def is_older(held: HeldPrices, fetched: PriceContent) -> bool:
    """A later window (a batch that crossed the supplier's midnight) or, for the same window, a
    later fetch is already stored: this fetch is older news."""
    first, fetched_at = held.window[0], held.fetched_at
    if first is None or fetched_at is None:
        return False
    return (first, fetched_at) > (fetched.start, fetched.fetched_at)


def is_same(held: HeldPrices, fetched: PriceContent) -> bool:
    """Same window and same content hash."""
    return held.content_hash == fetched.content_hash and held.window == (
        fetched.start,
        fetched.end,
    )


def needs_held_keys(held: HeldPrices, fetched: PriceContent) -> bool:
    """Whether ``plan_prices`` needs the stored rows as keys (only to tell a moved window)."""
    return (
        not is_older(held, fetched)
        and not is_same(held, fetched)
        and held.complete_window is not None
    )


def plan_prices(
    held: HeldPrices, fetched: PriceContent, held_keys: PriceKeys | None = None
) -> PricePlan:
    """Decide what storing ``fetched`` over ``held`` does; ``held_keys`` as ``needs_held_keys`` asks."""
    if is_older(held, fetched):
        return PricePlan(PriceAction.OLDER)
    if is_same(held, fetched):
        return PricePlan(PriceAction.UNCHANGED)
    window = held.complete_window
    if window is not None and held_keys is not None:
        fetched_keys = content_keys(fetched)
        if only_window_moved(held_keys, window, fetched_keys, (fetched.start, fetched.end)):
            return PricePlan(
                PriceAction.MOVE_WINDOW, replace_rules=held_keys.rules != fetched_keys.rules
            )
    return PricePlan(PriceAction.REPLACE)
