"""Which answers a read retries, how long it waits, and that writes are never retried.

At the httpx seam (MockTransport), with the client's sleep recorded instead of slept.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from worker.settings import ConfigError, load_settings
from worker.supplier.client import PRICES_PATH, PRODUCTS_PATH, SupplierClient
from worker.supplier.errors import SupplierBusy, SupplierRejected, SupplierUnavailable
from worker.supplier.payloads import CreateOrderRequest, Person
from worker.supplier.transient import TransientRule, parse_codes

TODAY = datetime.date(2026, 7, 1)
PAGE = {"Products": [{"ProductId": 1, "Version": 0, "ProductName": "x", "ProductStatus": 1}]}


def ok(data: object, **extra: object) -> httpx.Response:
    return httpx.Response(
        200, json={"Data": data, "Code": 0, "IsSuccess": True, "LogId": "L", "Message": "", **extra}
    )


def refusal(code: int, message: str) -> httpx.Response:
    return httpx.Response(
        200,
        json={"Data": None, "Code": code, "IsSuccess": False, "LogId": "L9", "Message": message},
    )


class Script:
    """Answers in order (the last one repeats), counting requests and recording sleeps."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests = 0
        self.sleeps: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        answer = self.answers[min(self.requests, len(self.answers) - 1)]
        self.requests += 1
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self, **options: Any) -> SupplierClient:
        http = httpx.Client(base_url="http://supplier.test", transport=httpx.MockTransport(self))
        settings: dict[str, Any] = {
            "partner_id": 9258,
            "sign_key": "k",
            "read_retries": 3,
            "backoff_initial_s": 0.001,
            "backoff_max_s": 0.002,
            "sleep": self.sleeps.append,
        }
        settings.update(options)
        return SupplierClient(http, **settings)


@pytest.fixture
def page_total() -> Iterator[dict[str, object]]:
    yield {**PAGE, "TotalCount": 1}


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (500, "系统繁忙"),
        (503, ""),
        (0, "服务器繁忙，请稍后再试"),
        (1, "请稍后重试"),
        (-1, "请求超时"),
        (1, "Server BUSY"),
        (2, "gateway timeout"),
    ],
)
def test_busy_refusals_of_a_read_are_retried(
    code: int, message: str, page_total: dict[str, object]
) -> None:
    script = Script(refusal(code, message), ok(page_total))
    with script.client() as client:
        assert [p.product_id for p in client.list_products()] == [1]
    assert (script.requests, client.retries_sent) == (2, 1)


@pytest.mark.parametrize(
    ("code", "message"),
    [(400, "参数错误"), (403, "分销商未授权"), (0, "产品不存在"), (499, "签名错误")],
)
def test_other_refusals_are_permanent(code: int, message: str) -> None:
    script = Script(refusal(code, message))
    with script.client() as client, pytest.raises(SupplierRejected) as error:
        client.list_products()
    assert not isinstance(error.value, SupplierBusy)
    assert (script.requests, client.retries_sent) == (1, 0)


def test_a_busy_read_still_failing_after_the_budget_raises_busy() -> None:
    script = Script(refusal(500, "系统繁忙"))
    with script.client(read_retries=2) as client, pytest.raises(SupplierBusy) as error:
        client.list_products()
    assert (error.value.code, error.value.log_id) == (500, "L9")
    assert (script.requests, client.retries_sent) == (3, 2)


def test_the_transient_rule_is_configuration(page_total: dict[str, object]) -> None:
    rule = TransientRule(parse_codes("429"), ("排队",))
    script = Script(refusal(500, "系统繁忙"))
    with script.client(transient=rule) as client, pytest.raises(SupplierRejected):
        client.list_products()
    assert script.requests == 1
    queued = Script(refusal(7, "请求排队中"), ok(page_total))
    with queued.client(transient=rule) as client:
        client.list_products()
    assert queued.requests == 2


def test_settings_read_the_rule_and_refuse_a_bad_range(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"ZZY_BASE_URL": "http://127.0.0.1:9", "ZZY_PARTNER_ID": "1", "ZZY_SIGN_KEY": "k"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SUPPLIER_TRANSIENT_CODES", "429,500-599")
    monkeypatch.setenv("SUPPLIER_TRANSIENT_MESSAGES", "繁忙, Busy")
    rule = load_settings().transient_rule
    assert rule.is_transient(503, "") and rule.is_transient(429, "")
    assert not rule.is_transient(600, "") and rule.is_transient(0, "BUSY now")
    monkeypatch.setenv("SUPPLIER_TRANSIENT_CODES", "five hundred")
    with pytest.raises(ConfigError, match="SUPPLIER_TRANSIENT_CODES"):
        load_settings()


def test_writes_are_never_retried_even_when_busy() -> None:
    script = Script(refusal(500, "系统繁忙"))
    request = CreateOrderRequest(
        origin_order_id="o1",
        contact_person=Person(name="a", mobile="13800000000", id_card="330106199001011234"),
        product_id=1,
        order_quantity=1,
        visit_date=TODAY,
    )
    with script.client() as client, pytest.raises(SupplierRejected) as error:
        client.create_order(request)
    assert not isinstance(error.value, SupplierBusy)
    assert (script.requests, client.retries_sent) == (1, 0)


def test_retry_after_seconds_is_honoured(page_total: dict[str, object]) -> None:
    limited = httpx.Response(429, headers={"Retry-After": "3"}, json={})
    script = Script(limited, ok(page_total))
    with script.client() as client:
        client.list_products()
    assert script.requests == 2 and script.sleeps[0] >= 3


def test_retry_after_as_a_date_on_a_503_is_honoured(page_total: dict[str, object]) -> None:
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=5)
    unavailable = httpx.Response(503, headers={"Retry-After": format_datetime(when, usegmt=True)})
    script = Script(unavailable, ok(page_total))
    with script.client() as client:
        client.list_products()
    assert script.requests == 2 and 3 <= script.sleeps[0] <= 5


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500, text="oops"),
        httpx.Response(502, text="<html>bad gateway</html>"),
        httpx.Response(200, text='{"Data": {"Products": [{"Produ'),  # cut short
        httpx.Response(200, text="<html>maintenance</html>"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("Connection reset by peer"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("refused"),
    ],
)
def test_transport_failures_of_a_read_are_retried(
    failure: httpx.Response | Exception, page_total: dict[str, object]
) -> None:
    script = Script(failure, ok(page_total))
    with script.client() as client:
        assert len(client.list_products()) == 1
    assert (script.requests, client.retries_sent) == (2, 1)


def test_data_null_on_a_price_call_is_retried_then_an_error_never_an_empty_calendar() -> None:
    script = Script(ok(None))
    with script.client(read_retries=1) as client, pytest.raises(SupplierUnavailable):
        client.get_price_calendar(1, TODAY, TODAY)
    assert script.requests == 2
    healed = Script(ok(None), ok({"DailyPriceStock": None, "ProductSeats": None}))
    with healed.client() as client:
        calendar = client.get_price_calendar(1, TODAY, TODAY)
    assert calendar.daily_price_stock == [] and healed.requests == 2


def test_total_count_beside_the_envelope_fields_is_read() -> None:
    script = Script(ok(PAGE, TotalCount=1))
    with script.client() as client:
        assert [p.product_id for p in client.list_products()] == [1]
    assert script.requests == 1


def test_retries_are_logged_at_debug_with_attempt_numbers(
    caplog: pytest.LogCaptureFixture, page_total: dict[str, object]
) -> None:
    script = Script(refusal(500, "系统繁忙"), httpx.Response(500), ok(page_total))
    with caplog.at_level(logging.DEBUG, logger="worker.supplier.client"), script.client() as client:
        client.list_products()
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.DEBUG, logging.DEBUG]
    assert "attempt 1 of 4" in retries[0].getMessage()
    assert "attempt 2 of 4" in retries[1].getMessage()
    assert PRODUCTS_PATH in retries[0].getMessage() and PRICES_PATH not in retries[0].getMessage()


def test_negative_stock_is_read_as_zero_and_logged_once_as_drift(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rule = {
        "DailyStock": -1,
        "MarketPrice": 10,
        "Price": 8,
        "SalePrice": 9,
        "BookingDay": -2,
        "BeginTime": "2026/7/1 0:00:00",
        "EndTime": "",
        "PriceType": 3,
    }
    script = Script(ok({"DailyPriceStock": [rule, rule], "ProductSeats": None}))
    with (
        caplog.at_level(logging.WARNING, logger="worker.supplier.client"),
        script.client() as client,
    ):
        calendar = client.get_price_calendar(7, TODAY, TODAY)
    assert [(r.daily_stock, r.booking_day) for r in calendar.daily_price_stock] == [(0, 0)] * 2
    drift = [r.getMessage() for r in caplog.records if "drift" in r.getMessage()]
    assert drift == ["drift: prices of product 7: 4 negative stock or count value(s) read as 0"]
