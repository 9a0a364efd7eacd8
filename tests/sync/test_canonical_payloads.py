"""The canonical lane of calendar validation reads every payload exactly as the lenient model
does, or refuses it and leaves it to the lenient model (``worker.supplier.canonical``)."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from worker.supplier import payloads
from worker.supplier.fields import negatives_read_as_zero
from worker.supplier.payloads import PriceCalendar

RULE = {
    "DailyStock": 5,
    "MarketPrice": Decimal("15.00"),
    "Price": Decimal("10.5"),
    "SalePrice": Decimal("12"),
    "BookingDay": 1,
    "BeginTime": "2026-07-01",
    "EndTime": "",
    "PriceType": 3,
}
SEAT = {
    "Time": "2026-07-02",
    "SeatsStartTime": "09:00",
    "SeatsEndTime": "10:30",
    "SeatsCode": "S1",
    "SeatsNum": 20,
}


def lenient(data: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[int]]:
    """What the lenient model alone makes of ``data``: the calendar (or the error) and negatives."""
    with monkeypatch.context() as patch:
        patch.setattr(payloads, "_calendar_style", lambda _: None)
        return validated(data)


def validated(data: Any) -> tuple[Any, list[int]]:
    with negatives_read_as_zero() as negatives:
        try:
            calendar = PriceCalendar.model_validate(data)
        except ValidationError:
            return "invalid", list(negatives)
    return _as_values(calendar), list(negatives)


def _as_values(calendar: PriceCalendar) -> Any:
    """Every value with its type and exact text (Decimal("1.0") and Decimal("1") differ)."""

    def exact(model: Any) -> list[tuple[str, str, str]]:
        return [(name, type(value).__name__, repr(value)) for name, value in model.__dict__.items()]

    return (
        [exact(rule) for rule in calendar.daily_price_stock],
        [exact(seat) for seat in calendar.product_seats],
        [sorted(rule.model_fields_set) for rule in calendar.daily_price_stock],
    )


def test_a_plain_calendar_takes_the_canonical_lane() -> None:
    lane = payloads._CANONICAL_CALENDARS["pascal"]
    calendar = lane.validate_python({"DailyPriceStock": [RULE], "ProductSeats": [SEAT]})
    assert calendar.daily_price_stock[0].end_time is None
    assert calendar.product_seats[0].time == datetime.date(2026, 7, 2)
    # Really the lane and not the lenient model behind it, which ignores keys it does not know.
    with pytest.raises(ValidationError):
        lane.validate_python({"ProductSeats": [{**SEAT, "Note": "x"}]})


def test_camel_case_takes_its_own_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    camel = {
        "dailyPriceStock": [{k[0].lower() + k[1:]: v for k, v in RULE.items()}],
        "productSeats": [{k[0].lower() + k[1:]: v for k, v in SEAT.items()}],
    }
    payloads._CANONICAL_CALENDARS["camel"].validate_python(camel)
    assert validated(camel) == lenient(camel, monkeypatch)
    assert validated(camel)[0] == validated({"DailyPriceStock": [RULE], "ProductSeats": [SEAT]})[0]


def test_repeated_sessions_are_merged_in_the_lane_too() -> None:
    calendar = PriceCalendar.model_validate({"ProductSeats": [SEAT, {**SEAT, "SeatsNum": 3}]})
    assert [seat.seats_num for seat in calendar.product_seats] == [20]


ODD_DECIMALS = [
    Decimal("9999999999.99"), Decimal("-9999999999.99"), Decimal("1E+10"), Decimal("1E+1"),
    Decimal("0E-30"), Decimal("-0"), Decimal("12.50"), Decimal("1.0000000000000000000000000001"),
    Decimal("1.000"), Decimal("0.001"), Decimal("sNaN"), Decimal("Infinity"),
]  # fmt: skip
decimals = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.decimals(min_value=-(10**10), max_value=10**10, places=3),
    st.decimals(min_value=-(10**10), max_value=10**10, places=2),
    st.sampled_from(ODD_DECIMALS),
)
money = st.one_of(
    decimals,
    decimals,
    st.integers(min_value=-(10**11), max_value=10**11),
    st.integers(min_value=-100, max_value=100),
    st.floats(allow_nan=False, width=32),
    st.sampled_from(["12.50", "", " ", "abc", None, True, "1E+2"]),
)
ODD_DATES: list[Any] = [
    "2026/7/4 0:00:00", "2026-07-04T00:00:00", "2026-07-04 10:00:00", "", " ", None,
    "1764460800", "2026-7-4", " 2026-07-04", "2026-07-04Z", "٢٠٢٦-٠٧-٠٤", "2026-02-30",
    datetime.date(2026, 7, 4), datetime.datetime(2026, 7, 4, 10, 0),
]  # fmt: skip
dates = st.one_of(
    st.sampled_from(ODD_DATES),
    st.dates().map(datetime.date.isoformat),
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"),
)
counts = st.one_of(
    st.integers(min_value=-5, max_value=5),
    st.integers(min_value=-5, max_value=2**31 + 5),
    st.sampled_from([2**31 - 1, 2**31, True, False, "7", "-1", 7.0, -0.5, None, ""]),
)
texts = st.one_of(st.text(max_size=10), st.integers(), st.just(Decimal("1.50")), st.none())
price_types = st.sampled_from([1, 2, 3, 0, 4, "1", 1.0, True, None])


def field_values(draw: st.DrawFn, choices: dict[str, Any]) -> dict[str, Any]:
    """One or two fields drawn (most payloads stay lawful but for one value), sometimes an
    extra key."""
    names = draw(st.lists(st.sampled_from(sorted(choices)), max_size=1))
    chosen = {name: draw(choices[name]) for name in names}
    if draw(st.integers(0, 19)) == 0:
        chosen[draw(st.sampled_from(["Extra", "price", "seats_num", "PRICE", "ProductSeats"]))] = (
            draw(counts)
        )
    return chosen


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    plain = dict(RULE)
    plain.update(
        field_values(
            draw,
            {
                "DailyStock": counts,
                "MarketPrice": money,
                "Price": money,
                "SalePrice": money,
                "BookingDay": counts,
                "BeginTime": dates,
                "EndTime": dates,
                "PriceType": price_types,
            },
        )
    )
    if draw(st.integers(0, 9)) == 0:
        plain.pop(draw(st.sampled_from(sorted(RULE))))
    return plain


@st.composite
def seats(draw: st.DrawFn) -> dict[str, Any]:
    plain = dict(SEAT)
    plain.update(
        field_values(
            draw,
            {
                "Time": dates,
                "SeatsStartTime": texts,
                "SeatsEndTime": texts,
                "SeatsCode": texts,
                "SeatsNum": counts,
            },
        )
    )
    if draw(st.integers(0, 9)) == 0:
        plain.pop(draw(st.sampled_from(sorted(SEAT))))
    return plain


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rule_list=st.lists(rules(), min_size=1, max_size=2) | st.sampled_from([None, []]),
    seat_list=st.lists(seats(), max_size=2) | st.sampled_from([None, []]),
    camel=st.booleans(),
)
def test_the_lane_reads_any_calendar_as_the_lenient_model(
    rule_list: list[dict[str, Any]] | None,
    seat_list: list[dict[str, Any]] | None,
    camel: bool,
) -> None:
    def style(item: dict[str, Any]) -> dict[str, Any]:
        return {k[0].lower() + k[1:]: v for k, v in item.items()} if camel else item

    data = style(
        {
            "DailyPriceStock": rule_list if rule_list is None else [style(r) for r in rule_list],
            "ProductSeats": seat_list if seat_list is None else [style(s) for s in seat_list],
        }
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert validated(data) == lenient(data, monkeypatch)


EDGES: list[tuple[str, str, Any]] = [
    *(
        (item, name, value)
        for item, name in (("rule", "BeginTime"), ("rule", "EndTime"), ("seat", "Time"))
        for value in ODD_DATES
    ),
    *(("rule", "Price", value) for value in [*ODD_DECIMALS, 12, 10**10, "12.50", 1.5, True]),
    *(("rule", "DailyStock", value) for value in (-1, 0, 2**31 - 1, 2**31, True, "7", "-1", 7.0)),
    *(("seat", "SeatsStartTime", value) for value in ("12345678", "123456789", 9, None)),
    *(("seat", "SeatsCode", value) for value in ("x" * 255, "x" * 256, Decimal("1.50"), 12)),
]


@pytest.mark.parametrize(("item", "name", "value"), EDGES)
def test_edge_values_read_as_the_lenient_model(
    item: str, name: str, value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule, seat = dict(RULE), dict(SEAT)
    (rule if item == "rule" else seat)[name] = value
    data = {"DailyPriceStock": [rule], "ProductSeats": [seat]}
    assert validated(data) == lenient(data, monkeypatch)
