"""Every fault kind does what it says, on the requests it is aimed at, as often as told."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from supplier_sandbox.server import RunningSandbox, SandboxConfig, start_sandbox
from tests.support.sandbox import TODAY, Supplier, make_bookable

PRODUCTS = "/product/getProductByDistributor"
PAGE = {"pageIndex": 1, "pageSize": 5}


def add_fault(admin: httpx.Client, **spec: object) -> dict[str, object]:
    response = admin.post("/faults", json=spec)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_http500_fires_count_times_then_clears_itself(
    admin: httpx.Client, supplier: Supplier
) -> None:
    add_fault(admin, kind="http500", path=PRODUCTS, count=2)
    statuses = [supplier.get(PRODUCTS, PAGE).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    failed = supplier.http.get(PRODUCTS, params=PAGE)  # unsigned: faults come before auth
    assert failed.status_code == 401


def test_http500_body_is_an_envelope_with_a_log_id(admin: httpx.Client, supplier: Supplier) -> None:
    add_fault(admin, kind="http500", path="*")
    body = supplier.get(PRODUCTS, PAGE).json()
    assert body["IsSuccess"] is False and body["Code"] == 500 and body["LogId"]


def test_http429_says_when_to_retry(admin: httpx.Client, supplier: Supplier) -> None:
    add_fault(admin, kind="http429", path=PRODUCTS)
    response = supplier.get(PRODUCTS, PAGE)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert supplier.get(PRODUCTS, PAGE).status_code == 200


def test_rejected_is_http_200_with_is_success_false(
    admin: httpx.Client, supplier: Supplier
) -> None:
    add_fault(admin, kind="rejected", path=PRODUCTS, message="供应商系统维护中")
    response = supplier.get(PRODUCTS, PAGE)
    assert response.status_code == 200
    body = response.json()
    assert (body["IsSuccess"], body["Code"], body["Message"]) == (False, 500, "供应商系统维护中")


def test_not_json_is_an_html_page_with_status_200(admin: httpx.Client, supplier: Supplier) -> None:
    add_fault(admin, kind="not_json", path=PRODUCTS)
    response = supplier.get(PRODUCTS, PAGE)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    with pytest.raises(ValueError):
        response.json()


def test_empty_page_matches_only_the_named_page(admin: httpx.Client, supplier: Supplier) -> None:
    add_fault(admin, kind="empty_page", path=PRODUCTS, match={"pageIndex": 2})
    assert len(supplier.page(1, 5)["Data"]["Products"]) == 5
    page_two = supplier.page(2, 5)["Data"]
    assert page_two["Products"] == [] and page_two["TotalCount"] == 30
    assert len(supplier.page(2, 5)["Data"]["Products"]) == 5


def test_after_skips_the_first_matching_requests(admin: httpx.Client, supplier: Supplier) -> None:
    add_fault(admin, kind="http500", path=PRODUCTS, after=2, count=1)
    statuses = [supplier.get(PRODUCTS, PAGE).status_code for _ in range(4)]
    assert statuses == [200, 200, 500, 200]


def test_count_minus_one_fires_until_cleared(admin: httpx.Client, supplier: Supplier) -> None:
    fault = add_fault(admin, kind="http500", path="*", count=-1)
    assert all(supplier.get(PRODUCTS, PAGE).status_code == 500 for _ in range(5))
    listed = admin.get("/faults").json()["faults"]
    assert listed[0]["fired"] == 5 and listed[0]["spent"] is False
    assert admin.delete("/faults", params={"id": fault["id"]}).json() == {"removed": 1}
    assert supplier.get(PRODUCTS, PAGE).status_code == 200


def test_fault_on_another_path_leaves_this_one_alone(
    admin: httpx.Client, supplier: Supplier
) -> None:
    add_fault(admin, kind="http500", path="/order/Create", count=-1)
    assert supplier.get(PRODUCTS, PAGE).status_code == 200


def test_timeout_holds_the_request_yet_the_work_is_done(
    sandbox: RunningSandbox, admin: httpx.Client, supplier: Supplier
) -> None:
    product_id = make_bookable(sandbox)
    add_fault(admin, kind="timeout", path="/order/Create", hold_s=1.0)
    order = {
        "PartnerId": 9258,
        "OriginOrderId": "T-1",
        "ProductId": product_id,
        "OrderQuantity": 1,
        "VisitDate": TODAY.isoformat(),
        "ContactPerson": {"Name": "张三", "Mobile": "13800000000", "IdCard": "330101199001011234"},
    }
    impatient = httpx.Client(base_url=sandbox.url, timeout=0.3, trust_env=False)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        impatient.post("/order/Create", json=order, headers=supplier.headers("/order/Create"))
    assert time.monotonic() - started < 0.9
    deadline = time.monotonic() + 3
    while not sandbox.state.orders.orders() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [o["origin_order_id"] for o in sandbox.state.orders.orders()] == ["T-1"]
    retry = supplier.post("/order/Create", order).json()
    assert retry["IsSuccess"] is False and "已存在" in retry["Message"]
    impatient.close()


def test_stop_releases_a_held_request() -> None:
    running = start_sandbox(SandboxConfig(products=3, today=TODAY))
    running.state.traffic.add_fault({"kind": "timeout", "path": "*", "hold_s": 30})
    supplier = Supplier(running.url, timeout=10)
    outcome: list[int] = []
    worker = threading.Thread(target=lambda: outcome.append(supplier.page(1, 1)["Code"]))
    worker.start()
    time.sleep(0.3)
    started = time.monotonic()
    running.stop()
    worker.join(timeout=5)
    assert time.monotonic() - started < 3
    assert outcome == [0]


def test_fail_rate_is_random_but_the_same_for_the_same_seed() -> None:
    patterns = []
    for _ in range(2):
        config = SandboxConfig(products=3, seed=11, today=TODAY, fail_rate=0.5)
        with start_sandbox(config) as running:
            supplier = Supplier(running.url)
            patterns.append([supplier.get(PRODUCTS, PAGE).status_code for _ in range(40)])
            supplier.http.close()
    assert patterns[0] == patterns[1]
    assert set(patterns[0]) == {200, 500}
    assert 8 <= patterns[0].count(500) <= 32


def test_latency_is_added_to_every_request(admin: httpx.Client, supplier: Supplier) -> None:
    assert admin.post("/settings", json={"latency_ms": 150}).status_code == 200
    started = time.monotonic()
    supplier.get(PRODUCTS, PAGE)
    assert time.monotonic() - started >= 0.15


def test_unknown_fault_kind_is_refused(admin: httpx.Client) -> None:
    response = admin.post("/faults", json={"kind": "meltdown"})
    assert response.status_code == 400
    assert "unknown fault kind" in response.json()["error"]
