"""Callback intake: check a signed notification, then commit it to the inbox.

``check_notification`` is pure (headers, body and the time in; a verdict out) and never
raises. ``store_notification`` writes inside the caller's transaction and raises
``ReplayedSignature`` or the database's own errors; the route maps both to replies.

Reply codes (``Code`` in the supplier's envelope; HTTP status beside it):

====  ====  =====================================================================
HTTP  Code  meaning
====  ====  =====================================================================
200   1000  stored (or a duplicate of a stored notification)
400   4001  body is not valid JSON (or ``OrderNotifyBody`` is a string that is not)
400   4002  missing or mistyped fields
400   4003  unknown ``NotifyServiceName``
401   4010  missing, malformed or wrong signature
401   4011  timestamp outside the accepted window
403   4030  ``PartnerId`` header is not ours
403   4031  ``OrderNotifyHeader.PartnerId`` differs from the header
409   4090  a signature already seen arrives with a different body (a replay)
413   4130  body larger than ``CALLBACK_MAX_BODY``
503   5030  could not be stored; send it again
====  ====  =====================================================================

The signature covers the partner id, the millisecond timestamp and the path, not the body.
So two different notices the supplier signs in the same millisecond share a signature: the
first is stored, the second is refused as a replay (409 4090, ``IsSuccess`` false). It is
not lost: the supplier resends any reply that is not a success (CONTRACT, "Callbacks": reply
``IsSuccess:false`` "so that the supplier sends it again"), and a resend carries a fresh
timestamp, hence a fresh signature, and is stored then.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks.sql import insert_ignore
from models.inbox import InboxMessage, InboxSignature, InboxStatus
from worker.logs import mask_id_card, mask_mobile
from worker.payloads import NOTICE_MODELS, Notification, ProductNotice
from worker.signing import verify_request

SUCCESS = {"Code": 1000, "IsSuccess": True, "LogId": "", "Message": "收到通知"}

_VERDICT_CODES: dict[str, tuple[int, int]] = {
    "PartnerId header does not match our partner id": (403, 4030),
    "Timestamp outside the accepted window": (401, 4011),
}
_ID_KEYS = {"idcardno", "idcard", "cardid"}
_MOBILE_KEYS = {"mobile"}
# Column widths of the ledger (models/orders.py); anything else free text up to 4000.
_MAX_TEXT = {"originorderid": 64, "refundapplyno": 64, "ordervouchercode": 255}


@dataclass(frozen=True)
class Rejection:
    """Why a request was refused, as the HTTP status, our ``Code`` and a message."""

    status: int
    code: int
    message: str

    def envelope(self) -> dict[str, Any]:
        return {"Code": self.code, "IsSuccess": False, "LogId": "", "Message": self.message}


@dataclass(frozen=True)
class Accepted:
    """A verified, validated notification, personal data already masked, ready to store."""

    service_name: str
    subject: str
    payload: dict[str, Any]
    dedupe_key: str
    signature: str  # hex of the decoded signature: the replay-cache key


@dataclass(frozen=True)
class Stored:
    inbox_id: int
    is_new: bool


class ReplayedSignature(Exception):
    """A signature already stored arrived with a different body."""


REPLAYED = Rejection(409, 4090, "signature already used with a different body")
UNAVAILABLE = Rejection(503, 5030, "notification could not be stored; please send it again")
TOO_LARGE = Rejection(413, 4130, "body too large")
UNSTORABLE = Rejection(400, 4002, "a value does not fit the inbox")


def check_notification(
    headers: Mapping[str, str],
    body: bytes,
    *,
    partner_id: int,
    sign_key: str,
    api_path: str,
    now_ms: int,
    tolerance_ms: int,
) -> Accepted | Rejection:
    """Verify the signature headers, then parse and validate the body. Never raises."""
    try:
        return _check(headers, body, partner_id, sign_key, api_path, now_ms, tolerance_ms)
    except Exception:  # pragma: no cover - defence in depth: hostile input is a 400, not a 500
        return Rejection(400, 4002, "malformed notification")


def _check(
    headers: Mapping[str, str],
    body: bytes,
    partner_id: int,
    sign_key: str,
    api_path: str,
    now_ms: int,
    tolerance_ms: int,
) -> Accepted | Rejection:
    verdict = verify_request(
        headers,
        partner_id=partner_id,
        sign_key=sign_key,
        api_path=api_path,
        now_ms=now_ms,
        tolerance_ms=tolerance_ms,
    )
    if not verdict.ok:
        status, code = _VERDICT_CODES.get(verdict.reason, (401, 4010))
        return Rejection(status, code, verdict.reason)
    try:
        data = json.loads(body.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Rejection(400, 4001, "body is not valid UTF-8 JSON")
    if not isinstance(data, dict):
        return Rejection(400, 4002, "body is not a JSON object")
    if not _inner_body_is_json(data):
        return Rejection(400, 4001, "OrderNotifyBody is not valid JSON")
    try:
        notification = Notification.model_validate(data)
    except ValidationError as exc:
        return Rejection(400, 4002, "invalid envelope: " + _describe(exc))
    if notification.header.partner_id != partner_id:
        return Rejection(
            403, 4031, "OrderNotifyHeader.PartnerId does not match the PartnerId header"
        )
    service = notification.header.notify_service_name.strip()
    model = NOTICE_MODELS.get(service)
    if model is None:
        return Rejection(400, 4003, "unknown NotifyServiceName")
    try:
        notice = model.model_validate(notification.body)
    except ValidationError as exc:
        return Rejection(400, 4002, f"invalid {service} body: " + _describe(exc))
    payload = redact(notice.model_dump(by_alias=True, mode="json"))
    out_of_range = _out_of_range(payload)
    if out_of_range:
        return Rejection(400, 4002, f"invalid {service} body: {out_of_range} is out of range")
    return Accepted(
        service_name=service,
        subject=subject_of(notice),
        payload=payload,
        dedupe_key=dedupe_key(
            service, payload, verdict.signature.hex() if model is ProductNotice else ""
        ),
        signature=verdict.signature.hex(),
    )


def _inner_body_is_json(data: dict[str, Any]) -> bool:
    """``OrderNotifyBody`` given as a string must hold JSON (an object is checked later)."""
    for key, value in data.items():
        if str(key).lower() == "ordernotifybody" and isinstance(value, str):
            try:
                json.loads(value, parse_float=Decimal)
            except (ValueError, RecursionError):
                return False
    return True


def _out_of_range(value: Any, key: str = "") -> str | None:
    """The first value the ledger could not store: ids 64-bit, other numbers 32-bit, widths."""
    if isinstance(value, dict):
        for name, item in value.items():
            found = _out_of_range(item, str(name))
            if found:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _out_of_range(item, key)
            if found:
                return found
    elif isinstance(value, int) and not isinstance(value, bool):
        bits = 63 if key.lower().endswith("id") else 31
        if not -(2**bits) <= value < 2**bits:
            return key or "a number"
    elif isinstance(value, str) and len(value) > _MAX_TEXT.get(key.lower(), 4000):
        return key or "a string"
    return None


def _describe(exc: ValidationError) -> str:
    """Field paths and pydantic's messages only: never the offending input (it may be personal)."""
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)[:300]


def subject_of(notice: BaseModel) -> str:
    """What a notice is about, for operators: ``product:ID`` or ``order:ID``."""
    if isinstance(notice, ProductNotice):
        return f"product:{notice.product_id}"
    return f"order:{getattr(notice, 'order_id', '?')}"


def redact(value: Any) -> Any:
    """Mask ID card numbers (last four kept) and mobiles anywhere in a JSON value."""
    if isinstance(value, dict):
        masked: dict[str, Any] = {}
        for key, item in value.items():
            lowered = str(key).lower()
            if lowered in _ID_KEYS and isinstance(item, str):
                masked[key] = mask_id_card(item)
            elif lowered in _MOBILE_KEYS and isinstance(item, str):
                masked[key] = mask_mobile(item)
            else:
                masked[key] = redact(item)
        return masked
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def dedupe_key(service_name: str, payload: dict[str, Any], delivery: str = "") -> str:
    """The same notice resent (any key order or case) yields the same key.

    An order notice carries its state (counts, vouchers, refund numbers), so equal bodies are
    one fact. A product notice carries none: ``{"ProductId": 1, "Status": 3}`` tomorrow is a
    new price change, so its key includes ``delivery`` (the signature) and only a byte-equal
    resend is a duplicate; its effects are idempotent and coalesced instead.
    """
    canonical = json.dumps([service_name, payload, delivery], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def store_notification(session: Session, accepted: Accepted, now: datetime) -> Stored:
    """Record the signature, then the notification, in the caller's transaction.

    Idempotent: a notification already stored answers ``Stored(id, is_new=False)``.
    Raises ``ReplayedSignature`` when the signature was first seen with another body.
    """
    if None is insert_ignore(
        session,
        InboxSignature,
        {"signature": accepted.signature, "dedupe_key": accepted.dedupe_key, "seen_at": now},
    ):
        first = session.scalar(
            select(InboxSignature.dedupe_key).where(InboxSignature.signature == accepted.signature)
        )
        if first != accepted.dedupe_key:
            raise ReplayedSignature
    inbox_id = insert_ignore(
        session,
        InboxMessage,
        {
            "service_name": accepted.service_name,
            "dedupe_key": accepted.dedupe_key,
            "subject": accepted.subject,
            "payload": accepted.payload,
            "status": InboxStatus.PENDING,
            "attempts": 0,
            "received_at": now,
            "updated_at": now,
        },
        returning=InboxMessage.id,
    )
    if inbox_id is not None:
        return Stored(int(inbox_id), is_new=True)
    existing = session.scalar(
        select(InboxMessage.id).where(InboxMessage.dedupe_key == accepted.dedupe_key)
    )
    return Stored(int(existing or 0), is_new=False)
