"""The sandbox checks signatures exactly as CONTRACT.md says, and says why it refuses."""

from __future__ import annotations

from tests.support.sandbox import Supplier, now_ms

PATH = "/product/getProductByDistributor"
PAGE = {"pageIndex": 1, "pageSize": 5}


def _refusal(response_status: int, body: dict[str, object], reason_fragment: str) -> None:
    assert response_status == 401
    assert body["IsSuccess"] is False
    assert body["LogId"]
    assert reason_fragment in str(body["Message"])


def test_correctly_signed_request_is_served(supplier: Supplier) -> None:
    response = supplier.get(PATH, PAGE)
    assert response.status_code == 200
    assert response.json()["IsSuccess"] is True


def test_wrong_sign_key_is_refused_with_401(supplier: Supplier) -> None:
    response = supplier.get(PATH, PAGE, sign_key="not-the-key")
    _refusal(response.status_code, response.json(), "签名错误")


def test_other_partner_is_refused_even_when_signed_consistently(supplier: Supplier) -> None:
    response = supplier.get(PATH, PAGE, partner_id=1234)
    _refusal(response.status_code, response.json(), "分销商ID无效")


def test_stale_timestamp_is_refused_but_one_inside_the_window_is_not(supplier: Supplier) -> None:
    stale = supplier.get(PATH, PAGE, timestamp_ms=now_ms() - 301_000)
    _refusal(stale.status_code, stale.json(), "时间戳")
    recent = supplier.get(PATH, PAGE, timestamp_ms=now_ms() - 295_000)
    assert recent.status_code == 200


def test_future_timestamp_is_refused(supplier: Supplier) -> None:
    response = supplier.get(PATH, PAGE, timestamp_ms=now_ms() + 301_000)
    _refusal(response.status_code, response.json(), "时间戳")


def test_signature_covers_the_path_without_query_string(supplier: Supplier) -> None:
    with_query = supplier.http.get(
        PATH, params=PAGE, headers=supplier.headers(PATH + "?pageIndex=1&pageSize=5")
    )
    _refusal(with_query.status_code, with_query.json(), "签名错误")


def test_signature_for_another_path_is_refused(supplier: Supplier) -> None:
    response = supplier.http.get(
        PATH, params=PAGE, headers=supplier.headers("/product/getProductPriceByDistributor")
    )
    _refusal(response.status_code, response.json(), "签名错误")


def test_missing_headers_are_refused(supplier: Supplier) -> None:
    response = supplier.http.get(PATH, params=PAGE)
    _refusal(response.status_code, response.json(), "缺少鉴权请求头")


def test_order_endpoints_are_signed_too(supplier: Supplier) -> None:
    response = supplier.post("/order/CancelOrder", params={"orderId": 1}, sign_key="wrong")
    _refusal(response.status_code, response.json(), "签名错误")
