"""The product list (filters, keyset pagination under writes) and one product."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from catalog_api.representations import PRODUCT_FIELDS
from models.catalog import Product
from tests.support import builders as b


def ids(client: FlaskClient, query: str = "") -> list[int]:
    response = client.get(f"/catalog/products{query}")
    assert response.status_code == 200, response.json
    return [p["product_id"] for p in response.json["products"]]


def walk(client: FlaskClient, query: str, between: Any = None) -> list[int]:
    """Follow next_cursor to the end, calling ``between(page_number)`` after each page."""
    seen: list[int] = []
    cursor: str | None = None
    page = 0
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        response = client.get(f"/catalog/products?{query}{suffix}")
        assert response.status_code == 200, response.json
        seen += [p["product_id"] for p in response.json["products"]]
        cursor = response.json["next_cursor"]
        page += 1
        if cursor is None:
            return seen
        if between is not None:
            between(page)
        assert page < 100


def test_list_shows_authorized_products_by_default(client: FlaskClient, arrange: Session) -> None:
    b.product(arrange, 1)
    b.product(arrange, 2, is_authorized=False)
    b.product(arrange, 3, product_status=0)
    arrange.commit()

    assert ids(client) == [1, 3]
    assert ids(client, "?authorized=false") == [2]
    assert ids(client, "?authorized=any") == [1, 2, 3]


def test_list_filters_on_status_scenic_and_updated_since(
    client: FlaskClient, arrange: Session
) -> None:
    b.product(arrange, 1, scenic_id=7, updated_at=datetime(2026, 2, 1, tzinfo=UTC))
    b.product(
        arrange, 2, scenic_id=8, product_status=0, updated_at=datetime(2026, 2, 20, tzinfo=UTC)
    )
    b.product(arrange, 3, scenic_id=7, updated_at=datetime(2026, 2, 28, 16, 0, tzinfo=UTC))
    arrange.commit()

    assert ids(client, "?status=on_shelf") == [1, 3]
    assert ids(client, "?status=off_shelf") == [2]
    assert ids(client, "?scenic_id=7") == [1, 3]
    assert ids(client, "?scenic_id=7&status=off_shelf") == []
    assert ids(client, "?updated_since=2026-02-20T00:00:00Z") == [2, 3]
    # A bare date is midnight in Shanghai: 2026-03-01 00:00+08:00 is 2026-02-28 16:00 UTC.
    assert ids(client, "?updated_since=2026-03-01") == [3]
    # An offset whose "+" arrived unencoded (as a space) still counts.
    assert ids(client, "?updated_since=2026-03-01T00:00:01+08:00") == []
    assert ids(client, "?updated_since=2026-03-01T00:00:00%2B08:00") == [3]


def test_list_items_carry_every_field_with_wire_formats(
    client: FlaskClient, arrange: Session
) -> None:
    b.product(arrange, 5, prices_refreshed_at=None)
    arrange.commit()

    item = client.get("/catalog/products").json["products"][0]
    assert set(PRODUCT_FIELDS) <= set(item)
    assert item["status"] == "on_shelf"
    assert item["authorized"] is True
    assert item["updated_at"] == "2026-03-01T04:00:00Z"
    assert item["prices_refreshed_at"] is None


def test_pages_cover_every_product_once(client: FlaskClient, arrange: Session) -> None:
    for product_id in range(1, 24):
        b.product(arrange, product_id)
    arrange.commit()

    assert walk(client, "limit=5") == list(range(1, 24))
    first = client.get("/catalog/products?limit=23").json
    assert len(first["products"]) == 23
    assert first["next_cursor"] is None


def test_pagination_neither_skips_nor_repeats_while_rows_change(
    client: FlaskClient, arrange: Session
) -> None:
    for product_id in range(10, 110, 10):
        b.product(arrange, product_id)
    arrange.commit()

    def write(page: int) -> None:
        # Rows appear before and after the cursor, listed rows are updated, an unlisted one
        # changes, all between page requests.
        b.product(arrange, page)  # 1, 2, ... land behind the cursor
        b.product(arrange, 1000 + page)  # ahead of it
        for row in arrange.query(Product).filter(Product.product_id.in_([10, 90])):
            row.product_name = f"renamed {page}"
            row.updated_at = row.updated_at + timedelta(seconds=page)
            row.version += 1
        arrange.commit()

    seen = walk(client, "limit=3", between=write)
    assert len(seen) == len(set(seen)), "a product was listed twice"
    assert set(range(10, 110, 10)) <= set(seen), "a product present throughout was skipped"
    assert seen == sorted(seen)


def test_product_detail_has_every_field_and_lowest_price_in_window(
    client: FlaskClient, arrange: Session
) -> None:
    b.product(arrange, 42, version=7, deauthorized_at=None, product_desc="desc")
    b.day_price(arrange, 42, b.TODAY - timedelta(days=1), "10.00")  # yesterday: out of window
    b.day_price(arrange, 42, b.TODAY, "99.50")
    b.day_price(arrange, 42, b.TODAY + timedelta(days=3), "88.10")
    b.day_price(arrange, 42, b.TODAY + timedelta(days=31), "1.00")  # past the 30-day window
    arrange.commit()

    response = client.get("/catalog/products/42")
    assert response.status_code == 200
    body = response.json
    assert set(PRODUCT_FIELDS) <= set(body)
    assert body["product_id"] == 42
    assert body["version"] == 7
    assert body["product_desc"] == "desc"
    assert body["authorized"] is True
    assert body["updated_at"] == "2026-03-01T04:00:00Z"
    assert body["prices_refreshed_at"] == "2026-03-01T04:00:00Z"
    assert body["lowest_sale_price"] == "88.10"
    assert body["price_window"] == {"from": "2026-03-01", "to": "2026-03-31"}
    assert Decimal(body["lowest_sale_price"]) == Decimal("88.10")


def test_product_detail_without_prices_has_null_lowest_price(
    client: FlaskClient, arrange: Session
) -> None:
    b.product(arrange, 43, is_authorized=False)
    arrange.commit()

    body = client.get("/catalog/products/43").json
    assert body["lowest_sale_price"] is None
    assert body["authorized"] is False


def test_unknown_product_is_404(client: FlaskClient) -> None:
    response = client.get("/catalog/products/999")
    assert response.status_code == 404
    assert response.json["error"] == "not_found"
    assert "999" in response.json["message"]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?limit=ten", "limit"),
        ("?status=sold", "status"),
        ("?scenic_id=-1", "scenic_id"),
        ("?authorized=yes", "authorized"),
        ("?updated_since=yesterday", "updated_since"),
        ("?updated_since=2026-03-01T00:00:00", "offset"),
        ("?updated_since=2026-02-30", "updated_since"),
        ("?updated_since=0001-01-01T00:00:00%2B14:00", "range"),
        ("?updated_since=0001-01-01", "range"),
        ("?cursor=!!!", "cursor"),
        ("?cursor=eDo1", "cursor"),  # base64 of "x:5": not one of ours
    ],
)
def test_bad_list_parameters_are_400(client: FlaskClient, query: str, words: str) -> None:
    response = client.get(f"/catalog/products{query}")
    assert response.status_code == 400
    assert response.json["error"] == "bad_request"
    assert words in response.json["message"]


@pytest.mark.parametrize(
    "path", ["/catalog/products/abc", "/catalog/products/99999999999999999999"]
)
def test_bad_product_id_is_400(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    assert "product_id" in response.json["message"]


def test_total_stock_follows_the_calendar_convention_null_is_unlimited(
    client: FlaskClient, arrange: Session
) -> None:
    b.product(arrange, 1, total_stock=0)  # the supplier's TotoalStock 0: unlimited
    b.product(arrange, 2, total_stock=500)
    arrange.commit()

    assert client.get("/catalog/products/1").json["total_stock"] is None
    assert client.get("/catalog/products/2").json["total_stock"] == 500
