"""HMAC-SHA1 request signing and callback verification (CONTRACT.md, "Signing").

Pure functions: no clock, no settings, no I/O. Callers pass the time in.
The verifier never raises on hostile input; it answers with a ``Verdict``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from worker.supplier.contract import casefold_get

AUTH_PUB = "ZZY-OPENAPI"
DEFAULT_TOLERANCE_MS = 300_000
# Far longer than any honest header; anything past this is refused unread.
_MAX_HEADER_LEN = 512


def signature_bytes(
    partner_id: int | str, timestamp_ms: int | str, api_path: str, sign_key: str
) -> bytes:
    """Raw HMAC-SHA1 digest of ``f"{PartnerId}{Timestamp}{apiPath}"`` under the sign key."""
    message = f"{partner_id}{timestamp_ms}{api_path}".encode()
    return hmac.new(sign_key.encode(), message, hashlib.sha1).digest()


def sign(partner_id: int | str, timestamp_ms: int | str, api_path: str, sign_key: str) -> str:
    """The contract's ``sign``: standard base64, with padding, of the HMAC-SHA1 digest."""
    return base64.b64encode(signature_bytes(partner_id, timestamp_ms, api_path, sign_key)).decode()


def auth_headers(
    partner_id: int, sign_key: str, api_path: str, timestamp_ms: int
) -> dict[str, str]:
    """The three headers every signed request (and callback) carries."""
    token = sign(partner_id, timestamp_ms, api_path, sign_key)
    return {
        "Timestamp": str(timestamp_ms),
        "PartnerId": str(partner_id),
        "Authorization": f"Bearer {AUTH_PUB}:{partner_id}:{token}",
    }


class RejectCode(StrEnum):
    """Why a signed request was refused; callers pick replies by the code, never by the words."""

    MISSING_HEADERS = "missing PartnerId, Timestamp or Authorization header"
    HEADER_TOO_LONG = "signature header too long"
    WRONG_PARTNER = "PartnerId header does not match our partner id"
    BODY_PARTNER_MISMATCH = "OrderNotifyHeader.PartnerId does not match the PartnerId header"
    BAD_TIMESTAMP = "Timestamp header is not milliseconds since the epoch"
    STALE_TIMESTAMP = "Timestamp outside the accepted window"
    NOT_BEARER = "Authorization is not a Bearer token"
    WRONG_TOKEN = "Authorization token is not ZZY-OPENAPI for this partner"
    NOT_BASE64 = "signature is not base64"
    BAD_SIGNATURE = "signature does not match"
    MALFORMED = "malformed signature headers"


@dataclass(frozen=True)
class Verdict:
    """Outcome of checking a signed request: ``ok``, or the reason it failed."""

    ok: bool
    code: RejectCode | None = None
    signature: bytes = b""  # the decoded signature when well formed (replay-cache key)

    @property
    def reason(self) -> str:
        """The refusal in words (for logs and replies); empty when ``ok``."""
        return "" if self.code is None else self.code.value

    def __bool__(self) -> bool:
        return self.ok


def _reject(code: RejectCode) -> Verdict:
    return Verdict(ok=False, code=code)


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def verify_request(
    headers: Mapping[str, str],
    *,
    partner_id: int,
    sign_key: str,
    api_path: str,
    now_ms: int,
    tolerance_ms: int = DEFAULT_TOLERANCE_MS,
    body_partner_id: object = None,
) -> Verdict:
    """Check a signed request's headers: partner, timestamp window (both ways), signature.

    ``body_partner_id``, when given, must equal the partner id too (a callback's
    ``OrderNotifyHeader.PartnerId``). Never raises; hostile input is a rejection.
    """
    try:
        return _verify(
            headers, partner_id, sign_key, api_path, now_ms, tolerance_ms, body_partner_id
        )
    except Exception:  # pragma: no cover - defence in depth: a verifier must answer, not crash
        return _reject(RejectCode.MALFORMED)


def _verify(
    headers: Mapping[str, str],
    partner_id: int,
    sign_key: str,
    api_path: str,
    now_ms: int,
    tolerance_ms: int,
    body_partner_id: object,
) -> Verdict:
    raw_partner = casefold_get(headers, "PartnerId")
    raw_timestamp = casefold_get(headers, "Timestamp")
    raw_auth = casefold_get(headers, "Authorization")
    if raw_partner is None or raw_timestamp is None or raw_auth is None:
        return _reject(RejectCode.MISSING_HEADERS)
    if max(len(raw_partner), len(raw_timestamp), len(raw_auth)) > _MAX_HEADER_LEN:
        return _reject(RejectCode.HEADER_TOO_LONG)
    raw_partner, raw_timestamp, raw_auth = (
        raw_partner.strip(),
        raw_timestamp.strip(),
        raw_auth.strip(),
    )
    if not _is_digits(raw_partner) or int(raw_partner) != partner_id:
        return _reject(RejectCode.WRONG_PARTNER)
    if body_partner_id is not None and str(body_partner_id).strip() != str(partner_id):
        return _reject(RejectCode.BODY_PARTNER_MISMATCH)
    if not _is_digits(raw_timestamp) or len(raw_timestamp) > 16:
        return _reject(RejectCode.BAD_TIMESTAMP)
    if abs(now_ms - int(raw_timestamp)) > tolerance_ms:
        return _reject(RejectCode.STALE_TIMESTAMP)

    scheme, _, token = raw_auth.partition(" ")
    if scheme.lower() != "bearer":
        return _reject(RejectCode.NOT_BEARER)
    pub, _, rest = token.strip().partition(":")
    token_partner, _, provided = rest.partition(":")
    if pub != AUTH_PUB or token_partner != raw_partner:
        return _reject(RejectCode.WRONG_TOKEN)
    if not provided.isascii():
        return _reject(RejectCode.NOT_BASE64)
    try:
        provided_bytes = base64.b64decode(provided, validate=True)
    except (binascii.Error, ValueError):
        return _reject(RejectCode.NOT_BASE64)
    expected = signature_bytes(raw_partner, raw_timestamp, api_path, sign_key)
    if not hmac.compare_digest(expected, provided_bytes):
        return _reject(RejectCode.BAD_SIGNATURE)
    return Verdict(ok=True, signature=provided_bytes)
