"""Shared helpers of the sandbox tests: a signing client and product set-up."""

from __future__ import annotations

import datetime
import time
from typing import Any

import httpx

from supplier_sandbox.server import RunningSandbox
from worker.supplier.signing import auth_headers

PARTNER_ID = 9258
SIGN_KEY = "zzy-sandbox-signkey"
TODAY = datetime.date(2025, 3, 3)  # a Monday; pinned so the catalog is the same every run


def now_ms() -> int:
    return int(time.time() * 1000)


class Supplier:
    """A signing client for the sandbox, with knobs to sign wrongly on purpose."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout, trust_env=False)

    def headers(
        self,
        path: str,
        *,
        partner_id: int = PARTNER_ID,
        sign_key: str = SIGN_KEY,
        timestamp_ms: int | None = None,
    ) -> dict[str, str]:
        stamp = now_ms() if timestamp_ms is None else timestamp_ms
        return auth_headers(partner_id, sign_key, path, stamp)

    def get(self, path: str, params: dict[str, Any] | None = None, **sign: Any) -> httpx.Response:
        return self.http.get(path, params=params, headers=self.headers(path, **sign))

    def post(
        self,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        **sign: Any,
    ) -> httpx.Response:
        return self.http.post(path, json=body, params=params, headers=self.headers(path, **sign))

    def page(self, index: int, size: int) -> dict[str, Any]:
        response = self.get(
            "/product/getProductByDistributor", {"pageIndex": index, "pageSize": size}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["IsSuccess"] is True, body
        return body


def make_bookable(sandbox: RunningSandbox, *, entrance_mode: int = 0, stock: int = 0) -> int:
    """A product without sessions, on shelf, priced every day from TODAY at 100.00/120.00."""
    catalog = sandbox.state.catalog
    product_id = next(pid for pid in catalog.authorized_ids() if not catalog.has_seats(pid))
    catalog.bump_version(
        product_id,
        {
            "ProductStatus": 1,
            "EntranceMode": entrance_mode,
            "MaxNumberByOrder": 0,
            "TotoalStock": 0,
            "RefundSet": 1,
        },
    )
    catalog.reprice(
        product_id,
        rules=[
            {
                "PriceType": 3,
                "BeginTime": TODAY.isoformat(),
                "EndTime": None,
                "Price": 100,
                "SalePrice": 110,
                "MarketPrice": 120,
                "DailyStock": stock,
                "BookingDay": 0,
            }
        ],
    )
    return product_id
