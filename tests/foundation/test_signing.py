"""Signing against CONTRACT.md's openssl vectors, and the callback check at its edges."""

from __future__ import annotations

import pytest

from worker.supplier.signing import auth_headers, sign, verify_request

KEY = "zzy-sandbox-signkey"
NOW_MS = 1_700_000_000_000
PATH = "/callbacks/zzy"


@pytest.mark.parametrize(
    ("api_path", "expected"),
    [
        ("/product/getProductByDistributor", "d8ZuWvS5u9+5LemwZF7spofNrbk="),
        ("/callbacks/zzy", "7UR/sKbbQlXGXWY3NNL8AgOb9jg="),
    ],
)
def test_sign_matches_openssl_vectors(api_path: str, expected: str) -> None:
    assert sign(9258, 1700000000000, api_path, KEY) == expected


def test_auth_headers_carry_the_contract_token() -> None:
    headers = auth_headers(9258, KEY, "/product/getProductByDistributor", 1700000000000)
    assert headers == {
        "Timestamp": "1700000000000",
        "PartnerId": "9258",
        "Authorization": "Bearer ZZY-OPENAPI:9258:d8ZuWvS5u9+5LemwZF7spofNrbk=",
    }


def check(headers: dict[str, str], now_ms: int = NOW_MS, **kwargs: object) -> object:
    options: dict[str, object] = {
        "partner_id": 9258,
        "sign_key": KEY,
        "api_path": PATH,
        "now_ms": now_ms,
    }
    options.update(kwargs)
    return verify_request(headers, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("skew_s", [-300, 300, 0])
def test_timestamp_inside_the_window_passes(skew_s: int) -> None:
    headers = auth_headers(9258, KEY, PATH, NOW_MS + skew_s * 1000)
    verdict = check(headers)
    assert verdict, verdict


@pytest.mark.parametrize("skew_s", [-301, 301])
def test_timestamp_one_second_outside_the_window_fails(skew_s: int) -> None:
    verdict = check(auth_headers(9258, KEY, PATH, NOW_MS + skew_s * 1000))
    assert not verdict
    assert "window" in verdict.reason  # type: ignore[attr-defined]


def test_the_vector_verifies_and_returns_the_decoded_signature() -> None:
    headers = {
        "Timestamp": "1700000000000",
        "PartnerId": "9258",
        "Authorization": "Bearer ZZY-OPENAPI:9258:7UR/sKbbQlXGXWY3NNL8AgOb9jg=",
    }
    verdict = check(headers)
    assert verdict.ok  # type: ignore[attr-defined]
    assert len(verdict.signature) == 20  # type: ignore[attr-defined]


def test_header_names_are_case_insensitive() -> None:
    headers = {k.lower(): v for k, v in auth_headers(9258, KEY, PATH, NOW_MS).items()}
    assert check(headers)


def test_wrong_key_path_or_partner_fails() -> None:
    good = auth_headers(9258, KEY, PATH, NOW_MS)
    assert not check(auth_headers(9258, "other-key", PATH, NOW_MS))
    assert not check(auth_headers(9258, KEY, "/elsewhere", NOW_MS))
    assert not check(auth_headers(9259, KEY, PATH, NOW_MS))
    assert not check(good, body_partner_id=9259)
    assert check(good, body_partner_id="9258")


def test_token_partner_must_match_header_partner() -> None:
    headers = auth_headers(9258, KEY, PATH, NOW_MS)
    headers["Authorization"] = headers["Authorization"].replace(":9258:", ":9259:")
    assert not check(headers)


HOSTILE: list[dict[str, str]] = [
    {},
    {"Timestamp": str(NOW_MS), "PartnerId": "9258"},
    {"Timestamp": "ｓｔａｍｐ", "PartnerId": "9258", "Authorization": "Bearer x"},
    {
        "Timestamp": str(NOW_MS),
        "PartnerId": "９２５８",
        "Authorization": "Bearer ZZY-OPENAPI:9258:AAAA",
    },
    {
        "Timestamp": str(NOW_MS),
        "PartnerId": "9258",
        "Authorization": "Bearer ZZY-OPENAPI:9258:not base64!!",
    },
    {
        "Timestamp": str(NOW_MS),
        "PartnerId": "9258",
        "Authorization": "Bearer ZZY-OPENAPI:9258:签名",
    },
    {"Timestamp": str(NOW_MS), "PartnerId": "9258", "Authorization": "Basic ZZY-OPENAPI:9258:AAAA"},
    {"Timestamp": str(NOW_MS), "PartnerId": "9258", "Authorization": "Bearer " + "A" * 10_000},
    {
        "Timestamp": "9" * 10_000,
        "PartnerId": "9258",
        "Authorization": "Bearer ZZY-OPENAPI:9258:AAAA",
    },
    {"Timestamp": "-5", "PartnerId": "9258", "Authorization": "Bearer ZZY-OPENAPI:9258:AAAA"},
    {"Timestamp": str(NOW_MS), "PartnerId": "", "Authorization": ""},
    {
        "Timestamp": str(NOW_MS),
        "PartnerId": "9258",
        "Authorization": "Bearer ZZY-OPENAPI:9258:AAA=",
    },
]


@pytest.mark.parametrize("headers", HOSTILE)
def test_hostile_headers_are_rejected_without_raising(headers: dict[str, str]) -> None:
    verdict = check(headers)
    assert not verdict
    assert verdict.reason  # type: ignore[attr-defined]
