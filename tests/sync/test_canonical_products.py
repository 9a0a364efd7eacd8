"""The canonical lane of product validation reads every entry exactly as the lenient model does,
or refuses it and leaves it to the lenient model (``worker.supplier.canonical``)."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.limits import NAME_TEXT, SHORT_TEXT
from worker.supplier import payloads
from worker.supplier.fields import negatives_read_as_zero
from worker.supplier.payloads import Product

PRODUCT: dict[str, Any] = {
    "ProductId": 10004,
    "Version": 2,
    "ProductCode": "ZZY00010004",
    "IsTicket": 1,
    "TicketGetAddress": "武夷山游客中心售票窗口",
    "ProductName": "武夷山家庭套票【周末专享】",
    "ProductDesc": "武夷山家庭套票，多人一码，扫码入园。",
    "EntranceMode": 0,
    "ProductKind": "家庭套票",
    "AdultNumber": 2,
    "ChildNumber": 1,
    "MaxNumberByOrder": 50,
    "MaxNumberByMobile": 10,
    "LimitDayByMobile": 1,
    "MaxNumberByCardID": 0,
    "LimitDayByCardID": 30,
    "CustomerSet": 2,
    "TotoalStock": 500,
    "ProductStatus": 1,
    "RefundSet": 1,
    "ScenicSpots": "武夷山",
    "ScenicId": 2032,
    "OutId": "SC002032",
    "MinAge": None,
    "MaxAge": None,
    "EffectiveTimeMode": 5,
    "EffectiveTime": 0,
    "BecomeEffectiveTime": 1,
    "BeginEffectiveTime": "2026-07-01 00:00:00",
    "EndEffectiveTime": "2026-10-29 23:59:59",
    "BookingTime": "16:30",
}
INTS = ["ProductId", "Version", "ProductStatus", "IsTicket", "EntranceMode", "CustomerSet"]
INTS += ["RefundSet", "ScenicId", "MinAge", "MaxAge", "EffectiveTimeMode", "EffectiveTime"]
INTS += ["BecomeEffectiveTime"]
COUNTS = ["AdultNumber", "ChildNumber", "MaxNumberByOrder", "MaxNumberByMobile"]
COUNTS += ["LimitDayByMobile", "MaxNumberByCardID", "LimitDayByCardID", "TotoalStock"]
TEXTS = ["ProductCode", "TicketGetAddress", "ProductName", "ProductDesc", "ProductKind"]
TEXTS += ["ScenicSpots", "OutId"]
DATE_TIMES = ["BeginEffectiveTime", "EndEffectiveTime"]


def camel(item: dict[str, Any]) -> dict[str, Any]:
    return {k[0].lower() + k[1:]: v for k, v in item.items()}


def lenient(data: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[int]]:
    """What the lenient model alone makes of ``data``: the product (or the error) and negatives."""
    with monkeypatch.context() as patch:
        patch.setattr(payloads, "_product_style", lambda _: None)
        return validated(data)


def validated(data: Any) -> tuple[Any, list[int]]:
    with negatives_read_as_zero() as negatives:
        try:
            product = Product.model_validate(data)
        except ValidationError:
            return "invalid", list(negatives)
    values = [(name, type(value).__name__, repr(value)) for name, value in vars(product).items()]
    return (values, sorted(product.model_fields_set)), list(negatives)


def test_a_plain_entry_takes_the_canonical_lane() -> None:
    lane = payloads._CANONICAL_PRODUCTS["pascal"]
    product = lane.validate_python(PRODUCT)
    assert product.begin_effective_time == datetime.datetime(2026, 7, 1)
    assert product.booking_time == datetime.time(16, 30)
    assert product.total_stock == 500
    # Really the lane and not the lenient model behind it, which ignores keys it does not know.
    with pytest.raises(ValidationError):
        lane.validate_python({**PRODUCT, "Note": "x"})


def test_camel_case_takes_its_own_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    payloads._CANONICAL_PRODUCTS["camel"].validate_python(camel(PRODUCT))
    assert validated(camel(PRODUCT)) == lenient(camel(PRODUCT), monkeypatch)
    assert validated(camel(PRODUCT))[0] == validated(PRODUCT)[0]


def test_long_text_is_cut_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    data = {**PRODUCT, "ProductCode": "x" * (SHORT_TEXT + 5), "ScenicSpots": "y" * (NAME_TEXT + 1)}
    product = Product.model_validate(data)
    assert product.product_code == "x" * SHORT_TEXT
    assert product.scenic_spots == "y" * NAME_TEXT
    assert validated(data) == lenient(data, monkeypatch)


def test_a_negative_count_is_still_read_as_zero_and_reported_once() -> None:
    _, negatives = validated({**PRODUCT, "TotoalStock": -3})
    assert negatives == [-3]


ints = st.one_of(
    st.integers(min_value=-5, max_value=5),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63 - 1, 2**63, True, False]),
    st.sampled_from(["7", "-1", " 7", 7.0, -0.5, Decimal("3"), Decimal("3.5"), None, "", " "]),
)
texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "x" * SHORT_TEXT, "x" * (SHORT_TEXT + 1), "y" * (NAME_TEXT + 1)]),
    st.integers(),
    st.just(Decimal("1.50")),
    st.none(),
    st.just(True),
)
ODD_DATE_TIMES: list[Any] = [
    "2026-07-04 10:00:00", "2026-07-04T10:00:00", "2026/7/4 0:00:00", "2026-07-04", "",
    " ", None, "2026-07-04 24:00:00", "2026-07-04 23:59:60", "2026-02-30 00:00:00",
    "0000-01-01 00:00:00", "2026-07-04 10:00:00Z", "2026-07-04 10:00:00+08:00",
    "2026-07-04 10:00:00.5", " 2026-07-04 10:00:00", "2026-07-04 10:00", "abc", 1764460800,
    "٢٠٢٦-٠٧-٠٤ 10:00:00", datetime.datetime(2026, 7, 4, 10, 0), datetime.date(2026, 7, 4),
]  # fmt: skip
date_times = st.one_of(
    st.sampled_from(ODD_DATE_TIMES),
    st.datetimes().map(lambda value: value.isoformat(sep=" ", timespec="seconds")),
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}\Z"),
)
ODD_TIMES: list[Any] = [
    "16:30", "00:00", "23:59", "24:00", "9:30", "16:30:45", " 16:30", "16:60", "", " ", None,
    "1630", 1630, datetime.time(16, 30), "٢٣:٥٩",
]  # fmt: skip
times = st.one_of(st.sampled_from(ODD_TIMES), st.from_regex(r"\A[0-9]{2}:[0-9]{2}\Z"))
KEYS = ["Extra", "productId", "product_id", "TotalStock", "PRODUCTNAME", "totoalStock"]


@st.composite
def entries(draw: st.DrawFn) -> dict[str, Any]:
    """Most entries stay lawful but for one or two values; some lose a key or gain one."""
    choices = {
        **{name: ints for name in INTS},
        **{name: ints for name in COUNTS},
        **{name: texts for name in TEXTS},
        **{name: date_times for name in DATE_TIMES},
        "BookingTime": times,
    }
    entry = dict(PRODUCT)
    for name in draw(st.lists(st.sampled_from(sorted(choices)), max_size=2)):
        entry[name] = draw(choices[name])
    if draw(st.integers(0, 9)) == 0:
        entry.pop(draw(st.sampled_from(sorted(PRODUCT))))
    if draw(st.integers(0, 19)) == 0:
        entry[draw(st.sampled_from(KEYS))] = draw(ints)
    return entry


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entry=entries(), in_camel=st.booleans())
def test_the_lane_reads_any_entry_as_the_lenient_model(
    entry: dict[str, Any], in_camel: bool
) -> None:
    data = camel(entry) if in_camel else entry
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert validated(data) == lenient(data, monkeypatch)


EDGES: list[tuple[str, Any]] = [
    *((name, value) for name in DATE_TIMES for value in ODD_DATE_TIMES),
    *(("BookingTime", value) for value in ODD_TIMES),
    *((name, value) for name in ("ProductId", "ScenicId") for value in (2**63 - 1, 2**63, -1)),
    *((name, value) for name in ("Version", "TotoalStock") for value in (2**31 - 1, 2**31, -1)),
    *((name, value) for name in ("Version", "AdultNumber", "MinAge") for value in (True, "7")),
    *(("ProductName", value) for value in ("", "z" * NAME_TEXT, "z" * (NAME_TEXT + 1), 12)),
    *(("OutId", value) for value in ("", "z" * SHORT_TEXT, "z" * (SHORT_TEXT + 1), 12, None)),
]


@pytest.mark.parametrize(("name", "value"), EDGES)
def test_edge_values_read_as_the_lenient_model(
    name: str, value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = {**PRODUCT, name: value}
    assert validated(data) == lenient(data, monkeypatch)
