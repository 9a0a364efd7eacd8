"""The sandbox checks signatures exactly as CONTRACT.md says, and says why it refuses."""

from __future__ import annotations

import pytest

from supplier_sandbox import signing
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


# CONTRACT.md's vectors, computed with openssl: the sandbox signs by its own code
# (``supplier_sandbox.signing``), so it and the client can only agree by both being right.
@pytest.mark.parametrize(
    ("api_path", "expected"),
    [
        ("/product/getProductByDistributor", "d8ZuWvS5u9+5LemwZF7spofNrbk="),
        ("/callbacks/zzy", "7UR/sKbbQlXGXWY3NNL8AgOb9jg="),
    ],
)
def test_the_sandbox_signs_the_contract_vectors(api_path: str, expected: str) -> None:
    assert signing.sign(9258, 1700000000000, api_path, "zzy-sandbox-signkey") == expected
    headers = signing.signed_headers(9258, "zzy-sandbox-signkey", api_path, 1700000000000)
    assert headers["Authorization"] == f"Bearer ZZY-OPENAPI:9258:{expected}"
    checked = dict(partner_id=9258, sign_key="zzy-sandbox-signkey", api_path=api_path)
    assert signing.refusal(headers, now_ms=1700000000000, tolerance_ms=300_000, **checked) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"Authorization": "Bearer ZZY-OPENAPI:9258"}, "Token格式错误"),
        ({"Authorization": "Basic ZZY-OPENAPI:9258:x"}, "Authorization格式错误"),
        ({"Authorization": "Bearer ZZY-OPENAPI:9258:not*base64"}, "签名格式错误"),
        ({"Authorization": "Bearer ZZY-OPENAPI:1:d8ZuWvS5u9+5LemwZF7spofNrbk="}, "Token格式错误"),
        ({"Timestamp": "17e11"}, "时间戳格式错误"),
        ({"PartnerId": "9259"}, "分销商ID无效"),
    ],
)
def test_the_sandbox_refuses_malformed_headers(change: dict[str, str], reason: str) -> None:
    headers = signing.signed_headers(
        9258, "zzy-sandbox-signkey", "/product/getProductByDistributor", 1700000000000
    )
    refused = signing.refusal(
        {**headers, **change},
        partner_id=9258,
        sign_key="zzy-sandbox-signkey",
        api_path="/product/getProductByDistributor",
        now_ms=1700000000000,
        tolerance_ms=300_000,
    )
    assert refused is not None and refused[0] == reason
