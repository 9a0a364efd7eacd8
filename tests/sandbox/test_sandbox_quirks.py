"""The sandbox's quirks really change its answers (else the quirk tests of the sync prove nothing)."""

from __future__ import annotations

import datetime
import json
import pathlib
from collections.abc import Iterator

import httpx
import pytest

import supplier_sandbox
from supplier_sandbox.quirks import QUIRKS, parse_quirks
from supplier_sandbox.server import RunningSandbox, SandboxConfig, start_sandbox
from tests.support.sandbox import TODAY, Supplier

PRICES = "/product/getProductPriceByDistributor"
PRODUCTS = "/product/getProductByDistributor"


def quirky(*quirks: str, fail_rate: float = 0.0) -> SandboxConfig:
    return SandboxConfig(
        products=30, seed=7, today=TODAY, quirks=parse_quirks(quirks), fail_rate=fail_rate
    )


@pytest.fixture
def shaped() -> Iterator[tuple[RunningSandbox, Supplier]]:
    shapes = [q for q in QUIRKS if q not in ("busy", "http500", "reset", "slow-body")]
    with start_sandbox(quirky(*shapes)) as running:
        client = Supplier(running.url)
        yield running, client
        client.http.close()


def test_quirk_names_parse_and_all_means_every_one() -> None:
    assert parse_quirks("all") == frozenset(QUIRKS)
    assert parse_quirks(" busy, http500 ,") == {"busy", "http500"}
    with pytest.raises(ValueError, match="unknown quirks"):
        parse_quirks("busy,sloppy")


def test_shape_quirks_change_how_answers_are_written(
    shaped: tuple[RunningSandbox, Supplier],
) -> None:
    running, client = shaped
    page = client.get(PRODUCTS, {"pageIndex": 1, "pageSize": 100}).json()
    assert set(page) >= {"data", "totalCount", "isSuccess"}  # camelCase, total in the envelope
    assert "totalCount" not in page["data"] and page["totalCount"] == 30
    empty = client.get(PRODUCTS, {"pageIndex": 9, "pageSize": 100}).json()
    assert empty["data"]["products"] is None  # null-lists
    catalog = running.state.catalog
    timed = next(pid for pid in catalog.authorized_ids() if catalog.has_seats(pid))
    window = {
        "StartTime": TODAY.isoformat(),
        "EndTime": (TODAY + datetime.timedelta(30)).isoformat(),
    }
    data = client.get(PRICES, {**window, "productId": timed}).json()["data"]
    nested = [seat for rule in data["dailyPriceStock"] for seat in rule["productSeats"] or []]
    assert nested and len(data["productSeats"] or []) < len(nested)  # seats-in-rules
    dates = [rule["beginTime"] for rule in data["dailyPriceStock"]]
    assert any("/" in d or "T" in d or " " in d for d in dates)  # dotnet-dates


def test_negative_stock_sends_unlimited_as_minus_one(
    shaped: tuple[RunningSandbox, Supplier],
) -> None:
    running, client = shaped
    window = {
        "StartTime": TODAY.isoformat(),
        "EndTime": (TODAY + datetime.timedelta(59)).isoformat(),
    }
    stocks = {
        rule["dailyStock"]
        for pid in running.state.catalog.authorized_ids()
        for _ in range(2)
        for rule in client.get(PRICES, {**window, "productId": pid}).json()["data"][
            "dailyPriceStock"
        ]
        or []
    }
    assert -1 in stocks and 0 in stocks  # some unlimited rules sent as -1, never any other


def test_version_reset_serves_a_returning_product_at_version_zero(
    shaped: tuple[RunningSandbox, Supplier],
) -> None:
    running, client = shaped
    catalog = running.state.catalog
    pid = catalog.authorized_ids()[0]
    catalog.bump_version(pid)
    catalog.deauthorize(pid)
    catalog.reauthorize(pid)
    served = client.get(PRODUCTS, {"pageIndex": 1, "pageSize": 1, "productId": pid}).json()
    assert served["data"]["products"][0]["version"] == 0


@pytest.mark.parametrize("kind", ["busy", "http500", "reset", "slow-body"])
def test_each_fault_quirk_fails_answers_its_own_way(kind: str) -> None:
    with start_sandbox(quirky(kind, fail_rate=1.0)) as running:
        client = Supplier(running.url)
        try:
            response = client.get(PRODUCTS, {"pageIndex": 1, "pageSize": 10})
        except httpx.TransportError:
            assert kind == "reset"
            return
        finally:
            client.http.close()
    assert kind != "reset"
    if kind == "busy":
        body = response.json()
        assert response.status_code == 200 and body["IsSuccess"] is False
    elif kind == "http500":
        assert response.status_code in (500, 502, 503)
    else:
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.content)


def test_without_quirks_nothing_changes(sandbox: RunningSandbox, supplier: Supplier) -> None:
    page = supplier.page(1, 100)
    assert page["Data"]["TotalCount"] == 30 and "TotalCount" not in page


_SANDBOX = pathlib.Path(supplier_sandbox.__file__).parent


@pytest.mark.parametrize("module", sorted(p.stem for p in _SANDBOX.glob("*.py")))
def test_no_sandbox_module_imports_the_code_under_test(module: str) -> None:
    """Truth, quirks, signing and serving alike: the sandbox reads the document on its own."""
    import ast

    source = _SANDBOX / f"{module}.py"
    imported = {
        name
        for node in ast.walk(ast.parse(source.read_text()))
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    assert not {name for name in imported if name.split(".")[0] == "worker"}
