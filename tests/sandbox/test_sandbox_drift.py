"""Drift faults move the list under a pager, the way a live catalog does between pages."""

from __future__ import annotations

import httpx

from supplier_sandbox.server import RunningSandbox
from tests.support.sandbox import Supplier

PRODUCTS = "/product/getProductByDistributor"


def naive_walk(supplier: Supplier, size: int) -> list[int]:
    ids: list[int] = []
    index = 1
    while products := supplier.page(index, size)["Data"]["Products"]:
        ids.extend(product["ProductId"] for product in products)
        index += 1
    return ids


def test_drift_insert_before_page_two_repeats_an_item_for_a_naive_pager(
    sandbox: RunningSandbox, admin: httpx.Client, supplier: Supplier
) -> None:
    before = sandbox.state.catalog.authorized_ids()
    admin.post(
        "/faults", json={"kind": "drift_insert", "path": PRODUCTS, "match": {"pageIndex": 2}}
    )
    seen = naive_walk(supplier, 10)
    after = sandbox.state.catalog.authorized_ids()
    assert len(after) == len(before) + 1
    newcomer = after[0]
    assert newcomer < before[0]
    assert newcomer not in seen  # it landed on a page already read
    assert seen.count(before[9]) == 2  # the last of page one slid onto page two
    assert sandbox.state.catalog.product(newcomer)["Version"] == 0
    assert supplier.page(1, 1)["Data"]["TotalCount"] == len(after)


def test_drift_remove_before_page_two_skips_an_item_for_a_naive_pager(
    sandbox: RunningSandbox, admin: httpx.Client, supplier: Supplier
) -> None:
    before = sandbox.state.catalog.authorized_ids()
    admin.post(
        "/faults", json={"kind": "drift_remove", "path": PRODUCTS, "match": {"pageIndex": 2}}
    )
    seen = naive_walk(supplier, 10)
    after = sandbox.state.catalog.authorized_ids()
    assert after == before[1:]
    assert before[10] not in seen  # the first of page two slid onto page one, already read
    assert len(seen) == len(before) - 1 and len(set(seen)) == len(seen)
    assert sandbox.state.catalog.product(before[0])["ProductId"] == before[0]


def test_drift_happens_before_the_matching_request_is_served(
    sandbox: RunningSandbox, admin: httpx.Client, supplier: Supplier
) -> None:
    admin.post("/faults", json={"kind": "drift_insert", "path": PRODUCTS})
    first_page = supplier.page(1, 5)["Data"]["Products"]
    assert first_page[0]["ProductId"] == sandbox.state.catalog.authorized_ids()[0]
    assert first_page[0]["ProductId"] < first_page[1]["ProductId"]
