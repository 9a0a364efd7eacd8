"""The price decision without a database: held state and a fetch in, one of four actions out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from worker.supplier.payloads import PriceCalendar
from worker.sync.price_plan import (
    HeldPrices,
    PriceAction,
    PriceContent,
    PriceKeys,
    content_keys,
    needs_held_keys,
    plan_prices,
    price_content,
)

D = date(2026, 7, 1)
T = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
EARLIER, LATER = T - timedelta(minutes=5), T + timedelta(minutes=5)


def rule(begin: date, end: date, price: str = "10.00") -> dict[str, Any]:
    return {
        "PriceType": 1,
        "BeginTime": begin.isoformat(),
        "EndTime": end.isoformat(),
        "DailyStock": 5,
        "Price": price,
        "SalePrice": "12.00",
        "MarketPrice": "15.00",
    }


def fetch(
    first: date = D,
    days: int = 5,
    *,
    rules: list[dict[str, Any]] | None = None,
    at: datetime = T,
) -> PriceContent:
    """What a fetch over ``days`` days from ``first`` would store; by default one wide rule."""
    body = {"DailyPriceStock": rules if rules is not None else [rule(D, D + timedelta(30))]}
    calendar = PriceCalendar.model_validate(body)
    return price_content(calendar, first, first + timedelta(days=days - 1), at)


def held_from(content: PriceContent | None, *, at: datetime | None = None) -> HeldPrices:
    """The product row after storing ``content`` (nothing stored when None)."""
    if content is None:
        return HeldPrices(None, (None, None), None)
    return HeldPrices(content.content_hash, (content.start, content.end), at or content.fetched_at)


def keys_of(content: PriceContent | None) -> PriceKeys | None:
    return None if content is None else content_keys(content)


@dataclass(frozen=True)
class Case:
    name: str
    stored: PriceContent | None
    fetched: PriceContent
    action: PriceAction
    replace_rules: bool = False
    stored_at: datetime | None = None


NEXT_DAY = D + timedelta(days=1)
CASES = [
    Case("nothing stored yet", None, fetch(), PriceAction.REPLACE),
    Case("same window, same content", fetch(at=EARLIER), fetch(), PriceAction.UNCHANGED),
    Case(
        "same window, a later fetch already stored",
        fetch(at=LATER),
        fetch(rules=[rule(D, D + timedelta(30), "11.00")]),
        PriceAction.OLDER,
    ),
    Case(
        "a later window already stored (a batch crossed midnight)",
        fetch(NEXT_DAY, at=EARLIER),
        fetch(D),
        PriceAction.OLDER,
    ),
    Case(
        "same window, repriced",
        fetch(at=EARLIER),
        fetch(rules=[rule(D, D + timedelta(30), "11.00")]),
        PriceAction.REPLACE,
    ),
    Case(
        "next day, nothing else moved",
        fetch(at=EARLIER),
        fetch(NEXT_DAY),
        PriceAction.MOVE_WINDOW,
    ),
    Case(
        "next day, only a rule for the day that left the window is gone",
        fetch(rules=[rule(D, D), rule(NEXT_DAY, D + timedelta(30))], at=EARLIER),
        fetch(NEXT_DAY, rules=[rule(NEXT_DAY, D + timedelta(30))]),
        PriceAction.MOVE_WINDOW,
        replace_rules=True,
    ),
    Case(
        "next day with a real change on a shared day",
        fetch(at=EARLIER),
        fetch(NEXT_DAY, rules=[rule(D, D + timedelta(30), "11.00")]),
        PriceAction.REPLACE,
    ),
    Case(
        "windows that share no day prove nothing",
        fetch(at=EARLIER),
        fetch(D + timedelta(days=10)),
        PriceAction.REPLACE,
    ),
    Case(
        "same start, an earlier fetch than the stored one",
        fetch(),
        fetch(at=EARLIER),
        PriceAction.OLDER,
        stored_at=T,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_plan_prices_picks_one_of_four_actions(case: Case) -> None:
    held = held_from(case.stored, at=case.stored_at)
    held_keys = keys_of(case.stored) if needs_held_keys(held, case.fetched) else None

    plan = plan_prices(held, case.fetched, held_keys)

    assert (plan.action, plan.replace_rules) == (case.action, case.replace_rules)
    assert plan.is_change == (case.action is PriceAction.REPLACE)


@pytest.mark.parametrize(
    ("stored", "fetched", "needed"),
    [
        (None, fetch(), False),  # nothing held: a replacement, nothing to compare
        (fetch(at=EARLIER), fetch(), False),  # same hash and window
        (fetch(at=LATER), fetch(NEXT_DAY, at=EARLIER), True),  # a new window from a fresh fetch
        (fetch(NEXT_DAY, at=EARLIER), fetch(D), False),  # older news
    ],
)
def test_the_stored_rows_are_read_only_when_a_moved_window_is_possible(
    stored: PriceContent | None, fetched: PriceContent, needed: bool
) -> None:
    assert needs_held_keys(held_from(stored), fetched) is needed


def test_without_the_held_keys_a_moved_window_is_a_replacement() -> None:
    held = held_from(fetch(at=EARLIER))
    assert plan_prices(held, fetch(NEXT_DAY)).action is PriceAction.REPLACE


def test_a_held_row_without_a_fetch_time_is_never_older_news() -> None:
    stored = fetch(NEXT_DAY)
    held = HeldPrices(stored.content_hash, (stored.start, stored.end), None)
    assert plan_prices(held, fetch(D), content_keys(stored)).action is not PriceAction.OLDER
