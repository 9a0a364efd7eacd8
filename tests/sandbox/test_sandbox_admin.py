"""The admin interface: loopback only, request counts, truth and product mutations."""

from __future__ import annotations

import httpx
import pytest

from supplier_sandbox.admin import is_loopback
from supplier_sandbox.app import create_app
from supplier_sandbox.server import RunningSandbox, SandboxConfig
from supplier_sandbox.state import SandboxState
from tests.support.sandbox import TODAY, Supplier

PRODUCTS = "/product/getProductByDistributor"
PRICES = "/product/getProductPriceByDistributor"


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("192.168.1.20", False),
        ("0.0.0.0", False),
        ("::ffff:10.0.0.1", False),
        ("2001:db8::1", False),
        ("", False),
        (None, False),
        ("localhost", False),
    ],
)
def test_is_loopback(address: str | None, expected: bool) -> None:
    assert is_loopback(address) is expected


def test_admin_refuses_a_remote_peer_but_serves_loopback() -> None:
    app = create_app(SandboxState(SandboxConfig(products=2, today=TODAY)))
    client = app.test_client()
    remote = client.get("/_admin/stats", environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert remote.status_code == 403
    assert client.get("/_admin/stats", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200


def test_stats_count_requests_per_path_including_refused_ones(
    admin: httpx.Client, supplier: Supplier
) -> None:
    supplier.page(1, 5)
    supplier.page(2, 5)
    supplier.get(PRICES, {"StartTime": "2025-03-03", "EndTime": "2025-03-04", "productId": 1})
    supplier.http.get(PRODUCTS)  # unsigned, still a request the supplier received
    admin.get("/products")  # the admin interface is not counted
    stats = admin.get("/stats").json()
    assert {k: stats[k] for k in ("total", "by_path")} == {
        "total": 4,
        "by_path": {PRICES: 1, PRODUCTS: 3},
    }
    assert 1 <= stats["peak_per_s"] <= 4  # four requests, one after another
    assert admin.post("/stats/reset").status_code == 200
    assert admin.get("/stats").json() == {"total": 0, "by_path": {}, "peak_per_s": 0}


def test_peak_rate_is_the_most_requests_in_any_sliding_window() -> None:
    import threading

    from supplier_sandbox.traffic import Traffic

    traffic = Traffic(threading.RLock(), seed=1, latency_ms=0, fail_rate=0)
    traffic._arrivals.extend([0.0, 0.5, 0.9, 1.2, 1.3, 1.35, 3.0])
    assert traffic.peak(1.0) == 5  # 0.5 .. 1.35
    assert traffic.peak(0.2) == 3  # 1.2, 1.3, 1.35
    assert traffic.peak(10.0) == 7


def test_version_bump_changes_fields_and_moves_version(
    sandbox: RunningSandbox, admin: httpx.Client, supplier: Supplier
) -> None:
    product_id = sandbox.state.catalog.authorized_ids()[0]
    before = supplier.get(PRODUCTS, {"productId": product_id}).json()["Data"]["Products"][0]
    response = admin.post(
        f"/products/{product_id}/version", json={"changes": {"ProductName": "西湖游船票"}}
    )
    assert response.status_code == 200
    after = supplier.get(PRODUCTS, {"productId": product_id}).json()["Data"]["Products"][0]
    assert after["Version"] == before["Version"] + 1
    assert after["ProductName"] == "西湖游船票"
    refusal = admin.post(f"/products/{product_id}/version", json={"changes": {"ProductId": 1}})
    assert refusal.status_code == 400


def test_reprice_changes_prices_but_not_version(
    sandbox: RunningSandbox, admin: httpx.Client
) -> None:
    product_id = sandbox.state.catalog.authorized_ids()[0]
    version = sandbox.state.catalog.product(product_id)["Version"]
    before = admin.get(f"/products/{product_id}/rules").json()["rules"]
    after = admin.post(
        f"/products/{product_id}/reprice", json={"delta": "10.00", "daily_stock": 9}
    ).json()["rules"]
    assert [round(r["Price"] - 10, 2) for r in after] == [r["Price"] for r in before]
    assert {r["DailyStock"] for r in after} == {9}
    assert sandbox.state.catalog.product(product_id)["Version"] == version
    calendar = admin.get(f"/products/{product_id}/calendar").json()["days"]
    assert calendar and {day["stock"] for day in calendar} == {9}


def test_shelf_deauthorize_reauthorize_and_add(
    sandbox: RunningSandbox, admin: httpx.Client, supplier: Supplier
) -> None:
    first = sandbox.state.catalog.authorized_ids()[0]
    off = admin.post(f"/products/{first}/shelf", json={"on_shelf": False}).json()["product"]
    assert off["ProductStatus"] == 0
    admin.post(f"/products/{first}/deauthorize")
    assert first not in [p["ProductId"] for p in admin.get("/products").json()["products"]]
    assert supplier.page(1, 100)["Data"]["TotalCount"] == 29
    admin.post(f"/products/{first}/reauthorize")
    added = admin.post("/products/add", json={"count": 3}).json()["product_ids"]
    assert len(added) == 3 and min(added) > max(sandbox.state.catalog.authorized_ids()[:-3])
    listed = supplier.page(1, 100)["Data"]
    assert listed["TotalCount"] == 33
    assert [p["ProductId"] for p in listed["Products"][-3:]] == added
    assert all(p["Version"] == 0 for p in listed["Products"][-3:])


def test_truth_endpoints(sandbox: RunningSandbox, admin: httpx.Client) -> None:
    catalog = sandbox.state.catalog
    timed = next(pid for pid in catalog.authorized_ids() if catalog.has_seats(pid))
    seats = admin.get(
        f"/products/{timed}/seats", params={"from": TODAY.isoformat(), "to": TODAY.isoformat()}
    ).json()["seats"]
    assert seats == [seat.to_payload() for seat in catalog.seats(timed, TODAY, TODAY)]
    product = admin.get(f"/products/{timed}").json()
    assert product == {"product": catalog.product(timed), "authorized": True}
    assert admin.get("/products/1").status_code == 404
    assert admin.get("/products").json()["total"] == 30
    assert admin.get("/orders").json() == {"orders": []}


def test_corrupt_and_uncorrupt_through_admin(
    sandbox: RunningSandbox, admin: httpx.Client, supplier: Supplier
) -> None:
    product_id = sandbox.state.catalog.authorized_ids()[0]
    admin.post(f"/products/{product_id}/corrupt", json={"mode": "version"})
    assert supplier.page(1, 1)["Data"]["Products"][0]["Version"] == "abc"
    admin.post(f"/products/{product_id}/uncorrupt")
    assert isinstance(supplier.page(1, 1)["Data"]["Products"][0]["Version"], int)
    assert admin.post(f"/products/{product_id}/corrupt", json={"mode": "x"}).status_code == 400


def test_settings_change_the_page_cap_at_runtime(admin: httpx.Client, supplier: Supplier) -> None:
    assert admin.post("/settings", json={"max_page_size": 4}).json()["max_page_size"] == 4
    assert len(supplier.page(1, 50)["Data"]["Products"]) == 4
    assert admin.post("/settings", json={"nonsense": 1}).status_code == 400
