"""Lawful ways a real supplier differs from our reading of its document, switchable one by one.

``catalog-sync sandbox --quirks LIST`` turns them on; ``all`` turns on every one. Fault quirks
answer a ``--fail-rate`` share of requests badly (the kind drawn at random among those on);
shape quirks change how the answers are written, never what they mean, so the sandbox's truth
(``/_admin``) stays the same. Like the oracle, nothing here imports the project's own parser
or resolver: the sandbox must be free to disagree with it.

Fault quirks:
  busy          HTTP 200 + ``IsSuccess: false`` with a busy Code or Message (系统繁忙, …)
  http500       HTTP 500, 502 or 503 (an error page or an envelope)
  reset         the connection is closed without an answer
  slow-body     the answer trickles in and stops halfway (a truncated JSON body)
Shape quirks:
  total-in-envelope  1.1.1 ``TotalCount`` beside ``Code`` instead of inside ``Data``
  seats-in-rules     1.1.2 ``ProductSeats`` inside the price rules (some also in ``Data``)
  null-lists         ``null`` for every empty list (answers and notices)
  camel-case         camelCase keys (a .NET serializer setting flipped; answers and notices)
  dotnet-dates       dates as ``yyyy/M/d H:mm:ss``, ISO 8601 with ``T``, or with a time
  version-reset      a product authorized again comes back as new, at Version 0
  negative-stock     unlimited daily stock (0) sent as -1
  notice-body-object a notice's ``OrderNotifyBody`` as a JSON object, not a string holding JSON
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

FAULT_QUIRKS = ("busy", "http500", "reset", "slow-body")
SHAPE_QUIRKS = (
    "total-in-envelope",
    "seats-in-rules",
    "null-lists",
    "camel-case",
    "dotnet-dates",
    "version-reset",
    "negative-stock",
    "notice-body-object",
)
QUIRKS = FAULT_QUIRKS + SHAPE_QUIRKS

# Busy answers as such a supplier words them: (Code, Message). Some say so only in the Message.
BUSY_ANSWERS = (
    (500, "系统繁忙"),
    (500, "系统繁忙，请稍后再试"),
    (503, "服务暂不可用，请稍后重试"),
    (0, "服务器繁忙，请稍后再试"),
    (-1, "请求超时"),
    (1, "Server busy, please retry"),
)
HTTP_ERRORS = (500, 502, 503)


def parse_quirks(text: str | Iterable[str] | None) -> frozenset[str]:
    """``"busy,http500"``, ``"all"`` or names; raises ValueError on an unknown one."""
    if text is None:
        return frozenset()
    names = text.split(",") if isinstance(text, str) else list(text)
    chosen = {name.strip().lower() for name in names if name.strip()}
    if "all" in chosen:
        return frozenset(QUIRKS)
    unknown = chosen - set(QUIRKS)
    if unknown:
        raise ValueError(f"unknown quirks {sorted(unknown)}; expected some of {list(QUIRKS)}")
    return frozenset(chosen)


def fault_kinds(quirks: frozenset[str]) -> tuple[str, ...]:
    """The fault kinds ``--fail-rate`` draws from: the fault quirks on, else plain HTTP 500."""
    kinds = tuple(kind for kind in FAULT_QUIRKS if kind in quirks)
    return kinds or ("http500",)


# -- dates ------------------------------------------------------------------------------------


def dotnet_date(day: datetime.date, variant: int) -> str:
    """A date written one of the lawful ways: .NET's default, ISO with T, or with a time."""
    form = variant % 4
    if form == 0:
        return f"{day.year}/{day.month}/{day.day} 0:00:00"
    if form == 1:
        return f"{day.isoformat()}T00:00:00"
    if form == 2:
        return f"{day.isoformat()} 00:00:00"
    return day.isoformat()


def dotnet_datetime(text: str) -> str:
    """``yyyy-MM-dd HH:mm:ss`` as .NET's zh-CN default ``yyyy/M/d H:mm:ss``."""
    moment = datetime.datetime.fromisoformat(text)
    return (
        f"{moment.year}/{moment.month}/{moment.day} "
        f"{moment.hour}:{moment.minute:02d}:{moment.second:02d}"
    )


def _redate(value: Any, variant: int) -> Any:
    if not isinstance(value, str) or not value.strip():
        return value
    return dotnet_date(datetime.date.fromisoformat(value[:10]), variant)


# -- 1.1.1 ------------------------------------------------------------------------------------


def shape_product(payload: Mapping[str, Any], quirks: frozenset[str]) -> dict[str, Any]:
    """One product as served under the quirks."""
    item = dict(payload)
    if "dotnet-dates" in quirks:
        for key in ("BeginEffectiveTime", "EndEffectiveTime"):
            value = item.get(key)
            if isinstance(value, str) and value.strip():
                item[key] = dotnet_datetime(value)
    return item


def product_page(
    items: Sequence[Mapping[str, Any]], total: int, quirks: frozenset[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``Data`` of a 1.1.1 answer and the extra envelope keys, under the quirks."""
    return page_layout([shape_product(item, quirks) for item in items], total, quirks)


def page_layout(
    products: Any, total: int, quirks: frozenset[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Where ``products`` (a list, or what stands for one) and ``total`` sit, under the quirks."""
    if not products and "null-lists" in quirks:
        products = None
    if "total-in-envelope" in quirks:
        return {"Products": products}, {"TotalCount": total}
    return {"Products": products, "TotalCount": total}, {}


# -- 1.1.2 ------------------------------------------------------------------------------------


def _covers(rule: Mapping[str, Any], day: datetime.date) -> bool:
    begin = datetime.date.fromisoformat(str(rule["BeginTime"])[:10])
    end_text = rule.get("EndTime")
    if day < begin:
        return False
    if rule.get("PriceType") == 3 or not end_text:
        return True
    return day <= datetime.date.fromisoformat(str(end_text)[:10])


def price_data(
    rules: Sequence[Mapping[str, Any]],
    seats: Sequence[Mapping[str, Any]],
    quirks: frozenset[str],
    rng: random.Random,
) -> dict[str, Any]:
    """``Data`` of a 1.1.2 answer under the quirks (payloads PascalCase, dates ISO)."""
    served_rules = [dict(rule) for rule in rules]
    top_seats: list[dict[str, Any]] = [dict(seat) for seat in seats]
    if "seats-in-rules" in quirks and served_rules:
        top_seats = []
        for index, seat in enumerate(seats):
            day = datetime.date.fromisoformat(str(seat["Time"])[:10])
            home = next((rule for rule in served_rules if _covers(rule, day)), served_rules[0])
            home.setdefault("ProductSeats", []).append(dict(seat))
            if index % 3 == 0:  # some sessions listed in both places: merged, counted once
                top_seats.append(dict(seat))
        for rule in served_rules:
            rule.setdefault("ProductSeats", [])
    if "negative-stock" in quirks:
        for rule in served_rules:
            if rule.get("DailyStock") == 0 and rng.random() < 0.5:
                rule["DailyStock"] = -1
    if "dotnet-dates" in quirks:
        for index, rule in enumerate(served_rules):
            rule["BeginTime"] = _redate(rule.get("BeginTime"), index)
            rule["EndTime"] = _redate(rule.get("EndTime"), index + 1)
            for offset, seat in enumerate(rule.get("ProductSeats") or []):
                seat["Time"] = _redate(seat.get("Time"), index + offset)
        for index, seat in enumerate(top_seats):
            seat["Time"] = _redate(seat.get("Time"), index + 2)
    if "null-lists" in quirks:
        for rule in served_rules:
            if rule.get("ProductSeats") == []:
                rule["ProductSeats"] = None
    return {
        "DailyPriceStock": served_rules or (None if "null-lists" in quirks else []),
        "ProductSeats": top_seats or (None if "null-lists" in quirks else []),
    }
