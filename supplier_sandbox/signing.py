"""The supplier's side of signing: how it signs its notices and checks a distributor's requests.

Written from the supplier's document (its C# sample: HMAC-SHA1 of ``{PartnerId}{Timestamp}{apiPath}``
under the sign key, base64) and CONTRACT.md, never from the client's code: were the client to
misread the scheme, the sandbox would refuse its requests and its notices would fail our
receiver's check, instead of both sides sharing the mistake.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

AUTH_PUB = "ZZY-OPENAPI"


def sign(partner_id: int | str, timestamp_ms: int | str, api_path: str, sign_key: str) -> str:
    """base64 (standard, padded) of HMAC-SHA1 over the three values run together, UTF-8."""
    message = f"{partner_id}{timestamp_ms}{api_path}".encode()
    return base64.b64encode(hmac.new(sign_key.encode(), message, hashlib.sha1).digest()).decode()


def signed_headers(partner_id: int, sign_key: str, api_path: str, now_ms: int) -> dict[str, str]:
    """The three headers the supplier puts on each notice it sends."""
    token = sign(partner_id, now_ms, api_path, sign_key)
    return {
        "Timestamp": str(now_ms),
        "PartnerId": str(partner_id),
        "Authorization": f"Bearer {AUTH_PUB}:{partner_id}:{token}",
    }


def refusal(
    headers: Mapping[str, str],
    *,
    partner_id: int,
    sign_key: str,
    api_path: str,
    now_ms: int,
    tolerance_ms: int,
) -> tuple[str, str] | None:
    """Why the supplier's gateway refuses a request: its own words and a short English tag;
    None when the request is signed as the document says."""
    folded = {name.lower(): value.strip() for name, value in headers.items()}
    partner = folded.get("partnerid")
    timestamp = folded.get("timestamp")
    authorization = folded.get("authorization")
    if partner is None or timestamp is None or authorization is None:
        return "缺少鉴权请求头", "missing PartnerId, Timestamp or Authorization"
    if partner != str(partner_id):
        return "分销商ID无效", "unknown PartnerId"
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 16:
        return "时间戳格式错误", "Timestamp is not milliseconds"
    if abs(now_ms - int(timestamp)) > tolerance_ms:
        return "时间戳已过期或超前，请校准服务器时间", "Timestamp outside the window"
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return "Authorization格式错误", "not a Bearer token"
    parts = token.strip().split(":")
    if len(parts) != 3 or parts[0] != AUTH_PUB or parts[1] != partner:
        return "Token格式错误", "token is not ZZY-OPENAPI:{PartnerId}:{sign}"
    try:
        given = base64.b64decode(parts[2].encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return "签名格式错误", "sign is not base64"
    expected = base64.b64decode(sign(partner, timestamp, api_path, sign_key))
    if not hmac.compare_digest(given, expected):
        return "签名错误", "signature does not match"
    return None
