"""1.1.1 and 1.1.2 as the sandbox serves them: paging, the cap, productId, prices, seats."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from supplier_sandbox.envelope import camelize, dumps, envelope
from supplier_sandbox.quirks import parse_quirks, product_page
from supplier_sandbox.server import RunningSandbox, SandboxConfig, start_sandbox
from tests.support.sandbox import TODAY, Supplier

PRODUCTS = "/product/getProductByDistributor"
PRICES = "/product/getProductPriceByDistributor"


def test_paging_walks_every_authorized_product_in_id_order(
    sandbox: RunningSandbox, supplier: Supplier
) -> None:
    seen: list[dict[str, Any]] = []
    index = 1
    while True:
        body = supplier.page(index, 7)
        assert body["Data"]["TotalCount"] == 30
        assert body["Code"] == 0 and body["LogId"]
        if not body["Data"]["Products"]:
            break
        seen.extend(body["Data"]["Products"])
        index += 1
    assert index == 6  # 30 products in pages of 7: 5 pages, then an empty one
    assert seen == sandbox.state.catalog.true_products()
    ids = [product["ProductId"] for product in seen]
    assert ids == sorted(ids)


def test_page_size_is_capped_at_max_page_size() -> None:
    config = SandboxConfig(products=25, seed=2, today=TODAY, max_page_size=10)
    with start_sandbox(config) as running:
        supplier = Supplier(running.url)
        body = supplier.page(1, 50)["Data"]
        assert len(body["Products"]) == 10
        assert body["TotalCount"] == 25
        assert len(supplier.page(3, 50)["Data"]["Products"]) == 5
        supplier.http.close()


def test_page_beyond_the_end_is_empty_but_keeps_the_total(supplier: Supplier) -> None:
    body = supplier.page(99, 10)["Data"]
    assert body == {"Products": [], "TotalCount": 30}


def test_product_id_returns_only_that_product_or_nothing_when_unauthorized(
    sandbox: RunningSandbox, supplier: Supplier
) -> None:
    catalog = sandbox.state.catalog
    first, second = catalog.authorized_ids()[:2]
    body = supplier.get(PRODUCTS, {"productId": second}).json()
    assert body["Data"]["TotalCount"] == 1
    assert body["Data"]["Products"] == [catalog.product(second)]
    catalog.deauthorize(first)
    body = supplier.get(PRODUCTS, {"pageIndex": 1, "pageSize": 10, "productId": first}).json()
    assert body["IsSuccess"] is True
    assert body["Data"] == {"Products": [], "TotalCount": 0}
    assert supplier.page(1, 100)["Data"]["TotalCount"] == 29


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"pageIndex": 0, "pageSize": 10}, "pageIndex"),
        ({"pageIndex": 1, "pageSize": 0}, "pageSize"),
        ({"pageSize": 10}, "pageIndex"),
        ({"pageIndex": "one", "pageSize": 10}, "格式错误"),
        ({"productId": "x1"}, "格式错误"),
    ],
)
def test_bad_paging_parameters_are_refused_in_chinese(
    supplier: Supplier, params: dict[str, Any], fragment: str
) -> None:
    response = supplier.get(PRODUCTS, params)
    assert response.status_code == 200
    body = response.json()
    assert body["IsSuccess"] is False
    assert fragment in body["Message"]
    assert body["LogId"]


def test_query_parameter_names_are_case_insensitive_like_aspnet(supplier: Supplier) -> None:
    body = supplier.get(PRODUCTS, {"PageIndex": 1, "PAGESIZE": 3}).json()
    assert len(body["Data"]["Products"]) == 3


def test_corrupt_product_is_served_invalid_until_uncorrupted(
    sandbox: RunningSandbox, supplier: Supplier
) -> None:
    catalog = sandbox.state.catalog
    target = catalog.authorized_ids()[1]
    catalog.corrupt(target, "version")
    assert supplier.page(1, 5)["Data"]["Products"][1]["Version"] == "abc"
    catalog.corrupt(target, "missing_id")
    assert "ProductId" not in supplier.page(1, 5)["Data"]["Products"][1]
    assert catalog.product(target)["ProductId"] == target  # the truth stays valid
    catalog.uncorrupt(target)
    assert supplier.page(1, 5)["Data"]["Products"][1] == catalog.product(target)


def test_camel_case_setting_flips_every_key() -> None:
    config = SandboxConfig(products=3, seed=1, today=TODAY, camel_case=True)
    with start_sandbox(config) as running:
        supplier = Supplier(running.url)
        body = supplier.get(PRODUCTS, {"pageIndex": 1, "pageSize": 3}).json()
        assert set(body) == {"data", "code", "isSuccess", "logId", "message"}
        product = body["data"]["products"][0]
        assert (
            "productId" in product and "totoalStock" in product and "maxNumberByCardID" in product
        )
        supplier.http.close()


def test_price_window_returns_overlapping_rules_in_order_and_seats_inside(
    sandbox: RunningSandbox, supplier: Supplier
) -> None:
    catalog = sandbox.state.catalog
    timed = next(pid for pid in catalog.authorized_ids() if catalog.has_seats(pid))
    start, end = TODAY + datetime.timedelta(days=10), TODAY + datetime.timedelta(days=16)
    response = supplier.get(
        PRICES, {"StartTime": start.isoformat(), "EndTime": end.isoformat(), "productId": timed}
    )
    data = response.json()["Data"]
    expected = [rule.to_payload() for rule in catalog.rules(timed) if rule.overlaps(start, end)]
    assert len(data["DailyPriceStock"]) == len(expected)
    for served, wanted in zip(data["DailyPriceStock"], expected, strict=True):
        assert served["BeginTime"] == wanted["BeginTime"]
        assert served["PriceType"] == wanted["PriceType"]
        assert served["Price"] == float(wanted["Price"])
        assert isinstance(served["SalePrice"], float | int)
    seats = data["ProductSeats"]
    assert seats and all(start.isoformat() <= seat["Time"] <= end.isoformat() for seat in seats)
    assert set(seats[0]) == {"Time", "SeatsStartTime", "SeatsEndTime", "SeatsCode", "SeatsNum"}


def test_price_rules_outside_the_window_are_left_out(
    sandbox: RunningSandbox, supplier: Supplier
) -> None:
    catalog = sandbox.state.catalog
    product_id = catalog.authorized_ids()[0]
    catalog.reprice(
        product_id,
        rules=[
            {"PriceType": 1, "BeginTime": "2025-04-01", "EndTime": "2025-04-10", "Price": 1,
             "SalePrice": 2, "MarketPrice": 3, "DailyStock": 0, "BookingDay": 0},
            {"PriceType": 2, "BeginTime": "2025-05-01", "EndTime": "2025-05-01", "Price": 1,
             "SalePrice": 2, "MarketPrice": 3, "DailyStock": 0, "BookingDay": 0},
            {"PriceType": 3, "BeginTime": "2025-04-20", "EndTime": "", "Price": 1,
             "SalePrice": 2, "MarketPrice": 3, "DailyStock": 0, "BookingDay": 0},
        ],
    )  # fmt: skip
    window = {"StartTime": "2025-04-11", "EndTime": "2025-04-25", "productId": product_id}
    served = supplier.get(PRICES, window).json()["Data"]["DailyPriceStock"]
    assert [(rule["PriceType"], rule["EndTime"]) for rule in served] == [(3, "")]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"StartTime": "2025-03-10", "EndTime": "2025-03-01"}, "结束时间"),
        ({"StartTime": "2025/13/01", "EndTime": "2025-03-01"}, "日期格式错误"),
        ({"EndTime": "2025-03-01"}, "StartTime"),
    ],
)
def test_bad_price_parameters_are_refused(
    sandbox: RunningSandbox, supplier: Supplier, params: dict[str, Any], fragment: str
) -> None:
    params = {**params, "productId": sandbox.state.catalog.authorized_ids()[0]}
    body = supplier.get(PRICES, params).json()
    assert body["IsSuccess"] is False
    assert fragment in body["Message"]


def test_prices_of_an_unauthorized_product_are_refused(
    sandbox: RunningSandbox, supplier: Supplier
) -> None:
    product_id = sandbox.state.catalog.authorized_ids()[0]
    sandbox.state.catalog.deauthorize(product_id)
    window = {"StartTime": "2025-03-03", "EndTime": "2025-03-09", "productId": product_id}
    body = supplier.get(PRICES, window).json()
    assert body["IsSuccess"] is False
    assert "未授权" in body["Message"]


@pytest.mark.parametrize(
    "quirks", ["", "camel-case,dotnet-dates,null-lists,total-in-envelope,negative-stock"]
)
def test_pages_served_again_are_written_as_new_and_show_every_edit_at_once(quirks: str) -> None:
    """Each product's text is kept between pages: the answer must not tell."""
    config = SandboxConfig(products=12, seed=3, today=TODAY, quirks=parse_quirks(quirks))
    with start_sandbox(config) as running:
        supplier = Supplier(running.url)
        state = running.state
        catalog = state.catalog

        def served_and_expected(index: int) -> tuple[str, str]:
            body = supplier.get(PRODUCTS, {"pageIndex": index, "pageSize": 5}).json()
            items, total = catalog.page(index, 5)
            data, extra = product_page(items, total, state.config.quirks)
            log_id = body.get("LogId", body.get("logId"))
            expected: Any = {**envelope(data, code=0, ok=True, message="获取成功", log_id=log_id)}
            expected.update(extra)
            if state.config.camel_case:
                expected = camelize(expected)
            return json.dumps(body, ensure_ascii=False), json.dumps(
                json.loads(dumps(expected)), ensure_ascii=False
            )

        for index in (1, 2, 3, 4):
            for _ in range(2):
                served, expected = served_and_expected(index)
                assert served == expected
        first, second, third = catalog.authorized_ids()[:3]
        catalog.bump_version(first, {"ProductName": "新的名字"})
        catalog.corrupt(second, "missing_id")
        catalog.set_shelf(third, on_shelf=False)
        served, expected = served_and_expected(1)
        assert served == expected and "新的名字" in served
        catalog.uncorrupt(second)
        state.config.camel_case = not state.config.camel_case
        served, expected = served_and_expected(1)
        assert served == expected
        supplier.http.close()
