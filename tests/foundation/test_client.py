"""Every client method against the sandbox supplier over real HTTP on loopback."""

from __future__ import annotations

import datetime
import math
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from supplier_sandbox.server import RunningSandbox, SandboxConfig, start_sandbox
from tests.support.settings import SANDBOX_PARTNER_ID, SANDBOX_SIGN_KEY, make_settings
from worker.supplier.client import CREATE_PATH, PAY_PATH, PRICES_PATH, PRODUCTS_PATH, SupplierClient
from worker.supplier.errors import (
    SupplierBadPayload,
    SupplierOutcomeUnknown,
    SupplierRejected,
    SupplierUnavailable,
)
from worker.supplier.payloads import (
    CreateOrderRequest,
    Passenger,
    PayOrderRequest,
    Person,
    RefundRequest,
    VerifyOrderRequest,
)


def make_client(
    url: str, *, timeout_s: float = 2.0, retries: int = 3, **kwargs: Any
) -> SupplierClient:
    http = httpx.Client(base_url=url, timeout=httpx.Timeout(timeout_s, connect=1.0))
    return SupplierClient(
        http,
        partner_id=SANDBOX_PARTNER_ID,
        sign_key=SANDBOX_SIGN_KEY,
        read_retries=retries,
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
        **kwargs,
    )


@pytest.fixture
def client(sandbox: RunningSandbox) -> Iterator[SupplierClient]:
    with make_client(sandbox.url) as supplier:
        yield supplier


def counts(sandbox: RunningSandbox) -> dict[str, int]:
    return dict(sandbox.state.traffic.stats()["by_path"])


# --- products -----------------------------------------------------------------------------


def test_list_products_returns_every_authorized_product(
    sandbox: RunningSandbox, client: SupplierClient
) -> None:
    products = client.list_products()
    truth = sandbox.state.catalog.true_products()
    assert [p.product_id for p in products] == [t["ProductId"] for t in truth]
    first, raw = products[0], truth[0]
    assert first.version == raw["Version"]
    assert first.product_name == raw["ProductName"]
    assert first.total_stock == raw["TotoalStock"]
    assert first.product_status == raw["ProductStatus"]


@pytest.mark.parametrize(("cap", "asked"), [(7, 20), (30, 100), (1, 5)])
def test_paging_stays_exact_when_the_supplier_caps_page_size(cap: int, asked: int) -> None:
    with start_sandbox(SandboxConfig(products=45, seed=3, max_page_size=cap)) as running:
        with make_client(running.url, page_size=asked) as supplier:
            pages = list(supplier.iter_product_pages())
        ids = [p.product_id for page in pages for p in page.products]
        assert ids == running.state.catalog.authorized_ids()
        assert len(ids) == len(set(ids)) == 45
        assert counts(running)[PRODUCTS_PATH] == math.ceil(45 / cap)


def test_paging_stops_on_an_empty_page(sandbox: RunningSandbox, client: SupplierClient) -> None:
    sandbox.state.traffic.add_fault(
        {"kind": "empty_page", "path": PRODUCTS_PATH, "match": {"pageIndex": "1"}}
    )
    pages = list(client.iter_product_pages())
    assert len(pages) == 1 and pages[0].size == 0


def test_get_product_by_id_and_unknown_is_none(
    sandbox: RunningSandbox, client: SupplierClient
) -> None:
    wanted = sandbox.state.catalog.authorized_ids()[3]
    product = client.get_product(wanted)
    assert product is not None and product.product_id == wanted
    sandbox.state.catalog.deauthorize(wanted)
    assert client.get_product(wanted) is None
    assert client.get_product(999_999_999) is None


def test_camel_case_keys_parse_the_same() -> None:
    with start_sandbox(SandboxConfig(products=5, seed=2, camel_case=True)) as running:
        with make_client(running.url) as supplier:
            products = supplier.list_products()
            calendar = supplier.get_price_calendar(
                products[0].product_id,
                running.state.today,
                running.state.today + datetime.timedelta(days=30),
            )
    assert [p.product_id for p in products] == running.state.catalog.authorized_ids()
    assert all(p.product_name for p in products)
    assert calendar.daily_price_stock


# --- prices -------------------------------------------------------------------------------


def test_price_calendar_has_decimal_money_and_sessions(
    sandbox: RunningSandbox, client: SupplierClient
) -> None:
    today = sandbox.state.today
    end = today + datetime.timedelta(days=60)
    with_seats = next(
        pid
        for pid in sandbox.state.catalog.authorized_ids()
        if sandbox.state.catalog.has_seats(pid)
    )
    calendar = client.get_price_calendar(with_seats, today, end)
    assert calendar.daily_price_stock
    assert {r.price_type for r in calendar.daily_price_stock} <= {1, 2, 3}
    for rule in calendar.daily_price_stock:
        assert isinstance(rule.sale_price, Decimal) and isinstance(rule.price, Decimal)
    assert calendar.product_seats
    assert all(today <= seat.time <= end for seat in calendar.product_seats)


def test_fetch_price_calendars_is_bounded_and_complete(
    sandbox: RunningSandbox, client: SupplierClient
) -> None:
    ids = sandbox.state.catalog.authorized_ids()
    today = sandbox.state.today
    before = datetime.datetime.now(datetime.UTC)
    fetches = list(client.fetch_price_calendars(ids, today, today + datetime.timedelta(days=10)))
    assert [f.product_id for f in fetches] == ids
    assert all(not isinstance(f.result, Exception) for f in fetches)
    assert all(before <= f.started_at <= datetime.datetime.now(datetime.UTC) for f in fetches)
    assert counts(sandbox)[PRICES_PATH] == len(ids)


# --- failures and retries -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["http500", "http429", "not_json"])
def test_reads_retry_transient_failures_then_succeed(
    sandbox: RunningSandbox, client: SupplierClient, kind: str
) -> None:
    sandbox.state.traffic.add_fault({"kind": kind, "path": PRODUCTS_PATH, "count": 2})
    assert client.list_products()
    assert counts(sandbox)[PRODUCTS_PATH] == 2 + math.ceil(30 / 100)


def test_reads_retry_a_timeout_then_succeed(sandbox: RunningSandbox) -> None:
    sandbox.state.traffic.add_fault(
        {"kind": "timeout", "path": PRICES_PATH, "count": 1, "hold_s": 3}
    )
    pid = sandbox.state.catalog.authorized_ids()[0]
    with make_client(sandbox.url, timeout_s=0.3) as supplier:
        calendar = supplier.get_price_calendar(pid, sandbox.state.today, sandbox.state.today)
    assert calendar is not None
    assert counts(sandbox)[PRICES_PATH] == 2


def test_retries_give_up_with_supplier_unavailable(sandbox: RunningSandbox) -> None:
    sandbox.state.traffic.add_fault({"kind": "http500", "path": PRODUCTS_PATH, "count": -1})
    with (
        make_client(sandbox.url, retries=2) as supplier,
        pytest.raises(SupplierUnavailable) as error,
    ):
        supplier.list_products()
    assert error.value.status_code == 500
    assert counts(sandbox)[PRODUCTS_PATH] == 3


def test_unreachable_supplier_is_unavailable() -> None:
    with (
        make_client("http://127.0.0.1:9", retries=1) as supplier,
        pytest.raises(SupplierUnavailable),
    ):
        supplier.list_products()


def test_rejection_surfaces_code_message_and_log_id(
    sandbox: RunningSandbox, client: SupplierClient
) -> None:
    sandbox.state.traffic.add_fault(
        {"kind": "rejected", "path": PRODUCTS_PATH, "message": "分销商未授权", "code": 403}
    )
    with pytest.raises(SupplierRejected) as error:
        client.list_products()
    assert error.value.code == 403
    assert error.value.message == "分销商未授权"
    assert error.value.log_id
    assert counts(sandbox)[PRODUCTS_PATH] == 1  # a rejection is final: not retried


def test_wrong_sign_key_is_rejected_by_the_supplier(sandbox: RunningSandbox) -> None:
    http = httpx.Client(base_url=sandbox.url, timeout=2)
    with SupplierClient(http, partner_id=SANDBOX_PARTNER_ID, sign_key="wrong") as supplier:
        with pytest.raises(SupplierRejected) as error:
            supplier.list_products()
    assert error.value.status_code == 401
    assert error.value.message


def test_stale_clock_is_rejected_by_the_supplier(sandbox: RunningSandbox) -> None:
    http = httpx.Client(base_url=sandbox.url, timeout=2)
    stale = SupplierClient(
        http, partner_id=SANDBOX_PARTNER_ID, sign_key=SANDBOX_SIGN_KEY, clock=lambda: 1_000_000.0
    )
    with stale, pytest.raises(SupplierRejected) as error:
        stale.list_products()
    assert error.value.status_code == 401


def test_signs_the_full_path_when_the_base_url_has_a_prefix(sandbox: RunningSandbox) -> None:
    """Behind a prefix the signed path must be what is sent; the sandbox has no prefix, so it refuses."""
    with (
        make_client(sandbox.url + "/gateway") as supplier,
        pytest.raises(SupplierRejected) as error,
    ):
        supplier.list_products()
    assert error.value.status_code in {401, 404}


# --- orders -------------------------------------------------------------------------------


def bookable(sandbox: RunningSandbox, entrance_mode: int) -> tuple[int, datetime.date]:
    for product in sandbox.state.catalog.true_products():
        if product["ProductStatus"] != 1 or product.get("EntranceMode") != entrance_mode:
            continue
        if product.get("RefundSet") != 1:
            continue
        for offset in range(1, 30):
            day = sandbox.state.today + datetime.timedelta(days=offset)
            if sandbox.state.catalog.day(product["ProductId"], day) is not None:
                return int(product["ProductId"]), day
    raise AssertionError("the sandbox catalog has no bookable product")


def visitor(n: int) -> Person:
    return Person(name=f"游客{n}", mobile=f"1381234{n:04d}", id_card=f"33010619900101{n:04d}")


def test_order_lifecycle_verify_create_pay_qr_refund(
    sandbox: RunningSandbox, client: SupplierClient
) -> None:
    product_id, day = bookable(sandbox, entrance_mode=1)
    people = [visitor(1), visitor(2)]
    client.verify_order(
        VerifyOrderRequest(
            product_id=product_id,
            visit_date=day,
            order_users=[
                Passenger(user_name=p.name, mobile=p.mobile, card_id=p.id_card) for p in people
            ],
        )
    )
    origin = uuid.uuid4().hex
    created = client.create_order(
        CreateOrderRequest(
            origin_order_id=origin,
            contact_person=people[0],
            product_id=product_id,
            order_quantity=2,
            visit_date=day,
            visit_person=people,
        )
    )
    assert created.origin_order_id == origin and created.order_status == 0
    paid = client.pay_order(PayOrderRequest(order_id=created.order_id, ticket_count=2))
    assert paid.order_status in {1, 3, 4}
    assert len(paid.order_user_vouchers) == 2
    assert isinstance(paid.pay_money, Decimal) and paid.pay_money > 0
    codes = client.person_qr_codes(origin)
    assert len(codes) == 2 and all(c.qr_code for c in codes)
    refund = client.refund_order(
        RefundRequest(order_id=created.order_id, refund_count=1, refund_id=uuid.uuid4().hex)
    )
    assert refund.refund_status == 0 and refund.apply_id


def test_cancel_an_unpaid_order_and_not_a_paid_one(
    sandbox: RunningSandbox, client: SupplierClient
) -> None:
    product_id, day = bookable(sandbox, entrance_mode=0)

    def create() -> int:
        request = CreateOrderRequest(
            origin_order_id=uuid.uuid4().hex,
            contact_person=visitor(7),
            product_id=product_id,
            order_quantity=1,
            visit_date=day,
        )
        return client.create_order(request).order_id

    unpaid = create()
    client.cancel_order(unpaid)
    with pytest.raises(SupplierRejected):
        client.pay_order(PayOrderRequest(order_id=unpaid))
    paid = create()
    client.pay_order(PayOrderRequest(order_id=paid))
    with pytest.raises(SupplierRejected):
        client.cancel_order(paid)


def test_verify_rejection_carries_the_reason(
    sandbox: RunningSandbox, client: SupplierClient
) -> None:
    with pytest.raises(SupplierRejected) as error:
        client.verify_order(
            VerifyOrderRequest(product_id=987654321, visit_date=sandbox.state.today, order_users=[])
        )
    assert error.value.message


@pytest.mark.parametrize(
    ("path", "kind"), [(CREATE_PATH, "timeout"), (CREATE_PATH, "http500"), (PAY_PATH, "timeout")]
)
def test_create_and_pay_are_never_retried_after_a_failure_in_flight(
    sandbox: RunningSandbox, path: str, kind: str
) -> None:
    product_id, day = bookable(sandbox, entrance_mode=0)
    with make_client(sandbox.url, timeout_s=0.3) as supplier:
        order_id = 0
        if path == PAY_PATH:
            order_id = supplier.create_order(
                CreateOrderRequest(
                    origin_order_id=uuid.uuid4().hex,
                    contact_person=visitor(3),
                    product_id=product_id,
                    order_quantity=1,
                    visit_date=day,
                )
            ).order_id
        sandbox.state.traffic.add_fault({"kind": kind, "path": path, "hold_s": 2})
        with pytest.raises(SupplierOutcomeUnknown):
            if path == CREATE_PATH:
                supplier.create_order(
                    CreateOrderRequest(
                        origin_order_id=uuid.uuid4().hex,
                        contact_person=visitor(4),
                        product_id=product_id,
                        order_quantity=1,
                        visit_date=day,
                    )
                )
            else:
                supplier.pay_order(PayOrderRequest(order_id=order_id))
    assert counts(sandbox)[path] == 1


def test_client_from_settings_uses_the_configured_supplier(sandbox: RunningSandbox) -> None:
    settings = make_settings(sandbox.url, page_size=11)
    with SupplierClient.from_settings(settings) as supplier:
        assert len(supplier.list_products()) == 30
        assert supplier.requests_sent == 3


def test_paging_never_loops_forever_on_a_supplier_that_never_ends() -> None:
    """A broken supplier whose TotalCount keeps growing: the pager gives up instead of spinning."""
    served = 0

    def endless(request: httpx.Request) -> httpx.Response:
        nonlocal served
        served += 1
        product = {"ProductId": served, "Version": 0, "ProductName": "x", "ProductStatus": 1}
        data = {"Products": [product], "TotalCount": served + 5}
        return httpx.Response(
            200, json={"Data": data, "Code": 0, "IsSuccess": True, "LogId": "", "Message": ""}
        )

    http = httpx.Client(base_url="http://supplier.test", transport=httpx.MockTransport(endless))
    with SupplierClient(http, partner_id=1, sign_key="k", page_size=1) as supplier:
        with pytest.raises(SupplierBadPayload, match="did not end"):
            list(supplier.iter_product_pages())
    assert served < 100
