"""Client edge cases at the httpx seam (MockTransport): answers the sandbox does not give."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable

import httpx
import pytest

from worker.supplier.client import SupplierClient
from worker.supplier.errors import SupplierInconsistent, SupplierOutcomeUnknown, SupplierUnavailable
from worker.supplier.payloads import CreateOrderRequest, Person

Handler = Callable[[httpx.Request], httpx.Response]


def envelope(data: object) -> dict[str, object]:
    return {"Data": data, "Code": 0, "IsSuccess": True, "LogId": "L1", "Message": ""}


def client_for(handler: Handler, **kwargs: object) -> SupplierClient:
    http = httpx.Client(base_url="http://supplier.test", transport=httpx.MockTransport(handler))
    options: dict[str, object] = {"partner_id": 9258, "sign_key": "k", "backoff_initial_s": 0.001}
    options.update(kwargs)
    return SupplierClient(http, **options)  # type: ignore[arg-type]


def product(pid: int) -> dict[str, object]:
    return {"ProductId": pid, "Version": 1, "ProductName": "x", "ProductStatus": 1}


def test_get_product_is_none_only_for_an_empty_answer() -> None:
    with client_for(
        lambda r: httpx.Response(200, json=envelope({"Products": [], "TotalCount": 0}))
    ) as c:
        assert c.get_product(5) is None


@pytest.mark.parametrize(
    "data",
    [
        {"Products": [product(6)], "TotalCount": 40},  # the supplier ignored the productId filter
        {"Products": [], "TotalCount": 1},  # a count without the item
    ],
)
def test_get_product_refuses_an_answer_that_is_not_about_the_product(
    data: dict[str, object],
) -> None:
    with client_for(lambda r: httpx.Response(200, json=envelope(data))) as c:
        with pytest.raises(SupplierInconsistent):
            c.get_product(5)


def test_a_non_json_error_page_on_create_is_an_unknown_outcome() -> None:
    page = httpx.Response(404, text="<html>gateway</html>")
    request = CreateOrderRequest(
        origin_order_id="o1",
        contact_person=Person(name="a", mobile="13800000000", id_card="330106199001011234"),
        product_id=1,
        order_quantity=1,
        visit_date=datetime.date(2026, 12, 1),
    )
    with client_for(lambda r: page) as c, pytest.raises(SupplierOutcomeUnknown):
        c.create_order(request)


def test_http_408_on_a_read_is_retried() -> None:
    answers = iter(
        [httpx.Response(408), httpx.Response(200, json=envelope({"Products": [], "TotalCount": 0}))]
    )
    with client_for(lambda r: next(answers)) as c:
        assert c.list_products() == []


def test_the_timestamp_is_taken_after_the_rate_limit_wait() -> None:
    clock = [1_700_000_000.0]
    stamps: list[str] = []

    class SlowLimiter:
        def acquire(self) -> None:
            clock[0] += 400.0  # a long wait in the shared budget

    def handler(request: httpx.Request) -> httpx.Response:
        stamps.append(request.headers["Timestamp"])
        return httpx.Response(200, json=envelope({"Products": [], "TotalCount": 0}))

    with client_for(handler, rate_limiter=SlowLimiter(), clock=lambda: clock[0]) as c:
        c.list_products()
    assert stamps == [str(int((1_700_000_000.0 + 400.0) * 1000))]


def test_retries_stop_at_the_time_budget() -> None:
    calls = 0

    def failing(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        time.sleep(0.05)
        return httpx.Response(500)

    started = time.monotonic()
    with (
        client_for(failing, read_retries=1000, retry_budget_s=0.3) as c,
        pytest.raises(SupplierUnavailable),
    ):
        c.list_products()
    # No attempt starts after the budget, so the whole call ends within it plus one request.
    assert time.monotonic() - started < 0.3 + 0.05 + 0.5
    assert 1 < calls < 100


def test_an_unknown_outcome_is_never_caught_as_retriable() -> None:
    """Tasks retry ``SupplierUnavailable``: a write that may have been applied must not match."""
    from worker.supplier.errors import SupplierBadPayload, SupplierError, SupplierRejected
    from worker.tasks import RETRY

    assert not issubclass(SupplierOutcomeUnknown, SupplierUnavailable)
    assert not issubclass(SupplierOutcomeUnknown, RETRY["autoretry_for"])
    assert issubclass(SupplierOutcomeUnknown, SupplierError)
    assert not issubclass(SupplierBadPayload, SupplierRejected)
