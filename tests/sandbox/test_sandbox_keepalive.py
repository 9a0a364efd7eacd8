"""The sandbox keeps a caller's connection open across requests without a body, as a gateway
does, and closes every connection when it stops."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from supplier_sandbox.server import open_connections
from tests.support.sync import SANDBOX_PARTNER_ID, SANDBOX_SIGN_KEY
from worker.supplier.signing import auth_headers

PRODUCTS = "/product/getProductByDistributor"


def _signed(path: str) -> dict[str, str]:
    return auth_headers(SANDBOX_PARTNER_ID, SANDBOX_SIGN_KEY, path, int(time.time() * 1000))


def _get(client: httpx.Client, index: int = 1) -> tuple[httpx.Response, Any]:
    """A product page, and the local address of the connection it came on."""
    reply = client.get(
        PRODUCTS, params={"pageIndex": index, "pageSize": 5}, headers=_signed(PRODUCTS)
    )
    return reply, reply.extensions["network_stream"].get_extra_info("client_addr")


def test_gets_reuse_one_connection(sandbox: Any) -> None:
    with httpx.Client(base_url=sandbox.url, timeout=5) as client:
        replies = [_get(client, i) for i in (1, 2, 3)]
    assert all(r.json()["IsSuccess"] for r, _ in replies)
    assert all("close" not in r.headers.get("connection", "") for r, _ in replies)
    assert len({peer for _, peer in replies}) == 1


def test_a_request_with_a_body_closes_its_connection(sandbox: Any) -> None:
    with httpx.Client(base_url=sandbox.url, timeout=5) as client:
        _, before = _get(client)
        posted = client.post("/order/Verify", content=b"{}", headers=_signed("/order/Verify"))
        after, peer = _get(client)
    assert posted.headers["connection"] == "close"
    assert after.json()["IsSuccess"] is True
    assert peer != before  # the POST used the kept connection, which then closed


def test_stopping_closes_kept_alive_connections() -> None:
    from supplier_sandbox.server import SandboxConfig, start_sandbox

    running = start_sandbox(SandboxConfig(products=3))
    client = httpx.Client(base_url=running.url, timeout=2)
    try:
        _get(client)
        assert len(open_connections(running._server)) == 1
        running.stop()
        with pytest.raises(httpx.TransportError):
            _get(client)
    finally:
        client.close()
        running.stop()
