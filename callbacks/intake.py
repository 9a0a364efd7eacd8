"""Callback intake: verify the headers, classify the body, commit it to the inbox.

``check_headers`` runs before the body is read (an unsigned request costs no read);
``classify`` is pure (bytes in, a ``Notice`` or an ``Invalid`` out) and never raises;
``store_notification`` writes inside the caller's transaction.

**A verified request is always stored and acknowledged.** Once the ``PartnerId`` header, the
timestamp window and the signature pass, the body is committed whatever it holds and the
supplier gets ``Code`` 1000: a notice the code cannot apply (not JSON, an unknown service, a
missing or mistyped field, a body partner id that is not ours, an implausible count) is kept
as ``invalid`` with its reason, for an operator to replay after a fix. Refusing it would lose
it for good once the supplier stops resending.

Reply codes (``Code`` in the supplier's envelope; HTTP status beside it):

====  ====  =====================================================================
HTTP  Code  meaning
====  ====  =====================================================================
200   1000  stored (pending, invalid or held), or a duplicate of a stored delivery
401   4010  missing, malformed or wrong signature
401   4011  timestamp outside the accepted window
403   4030  ``PartnerId`` header is not ours
408   4080  the body did not arrive within ``CALLBACK_BODY_TIMEOUT_S``
413   4130  body larger than ``CALLBACK_MAX_BODY``
503   5030  could not be stored; send it again
====  ====  =====================================================================

The signature covers the partner id, the millisecond timestamp and the path, not the body:
two notices signed in the same millisecond share one, and whoever sees one request's headers
can send another body under them within the window. So a signature seen before with another
body is not refused: a product notice is only a hint (the product is re-fetched from the
supplier) and is applied; an order notice is stored ``held`` until an operator releases it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Select, bindparam, exists, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from models.dialect import insert_ignore
from models.inbox import InboxMessage, InboxSignature, InboxStatus
from models.limits import ORDER_ID_TEXT, SHORT_TEXT
from worker.logs import mask, mask_id_card, mask_mobile
from worker.supplier.contract import casefold_key
from worker.supplier.notices import (
    NOTICE_MODELS,
    Notification,
    ProductNotice,
    RefundNotice,
    UnreadableNumber,
    loads_notice_json,
)
from worker.supplier.signing import RejectCode, verify_request

SUCCESS = {"Code": 1000, "IsSuccess": True, "LogId": "", "Message": "收到通知"}
# A stored row whose processing task is lost is re-queued by the relay after this long.
FIRST_RETRY_S = 60.0
HELD_REASON = "signature already used with a different body: held for an operator"
# ``catalog-sync doctor`` sends a signed notice under this name: stored like every verified
# request (as ``done``, never applied), which proves the path, the key and the storage at once.
PROBE_SERVICE_NAME = "catalog_sync_probe"
PROBE_REASON = "doctor probe: verified and stored, nothing to apply"

_VERDICT_CODES: dict[RejectCode | None, tuple[int, int]] = {
    RejectCode.WRONG_PARTNER: (403, 4030),
    RejectCode.STALE_TIMESTAMP: (401, 4011),
}
_ID_KEYS = {"idcardno", "idcard", "cardid"}
_MOBILE_KEYS = {"mobile"}
# Identifiers the ledger matches on: never rewritten by the free-text masking.
_IDENTIFIER_KEYS = {
    "orderid",
    "originorderid",
    "refundapplyno",
    "vouchercode",
    "ordervouchercode",
    "productid",
    "notifyservicename",
}
# Column widths of the ledger (models/orders.py); anything else free text up to 4000.
_MAX_TEXT = {
    "originorderid": ORDER_ID_TEXT,
    "refundapplyno": ORDER_ID_TEXT,
    "ordervouchercode": SHORT_TEXT,
}
# What no database column can hold: NUL, and UTF-16 surrogates left unpaired by JSON's \\u escapes.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class Rejection:
    """Why a request was refused, as the HTTP status, our ``Code`` and a message."""

    status: int
    code: int
    message: str

    def envelope(self) -> dict[str, Any]:
        return {"Code": self.code, "IsSuccess": False, "LogId": "", "Message": self.message}


@dataclass(frozen=True)
class Delivery:
    """One verified request: its signature (hex of the decoded bytes) identifies the delivery."""

    signature: str


@dataclass(frozen=True)
class Notice:
    """A body that validated: personal data masked, strings storable."""

    service_name: str
    subject: str
    payload: dict[str, Any]
    # Keyed on the delivery too: a product notice carries no state, and a refund without an
    # apply number cannot be told from another identical one by its body.
    by_delivery: bool = False

    @property
    def is_order_notice(self) -> bool:
        return self.service_name not in ("order_product_notify", PROBE_SERVICE_NAME)


@dataclass(frozen=True)
class Invalid:
    """A verified body the code cannot apply, kept for an operator with the reason."""

    reason: str
    digest: str  # sha256 of the body as received
    service_name: str = "unknown"
    subject: str = "unknown"
    payload: dict[str, Any] = field(default_factory=dict)
    raw_body: str | None = None


@dataclass(frozen=True)
class Stored:
    inbox_id: int
    is_new: bool
    status: str = InboxStatus.PENDING


UNAVAILABLE = Rejection(503, 5030, "notification could not be stored; please send it again")
TOO_LARGE = Rejection(413, 4130, "body too large")
TOO_SLOW = Rejection(408, 4080, "body not received in time")


def check_headers(
    headers: Mapping[str, str],
    *,
    partner_id: int,
    sign_key: str,
    api_path: str,
    now_ms: int,
    tolerance_ms: int,
) -> Delivery | Rejection:
    """Partner, timestamp window and signature, from the headers alone. Never raises."""
    verdict = verify_request(
        headers,
        partner_id=partner_id,
        sign_key=sign_key,
        api_path=api_path,
        now_ms=now_ms,
        tolerance_ms=tolerance_ms,
    )
    if not verdict.ok:
        status, code = _VERDICT_CODES.get(verdict.code, (401, 4010))
        return Rejection(status, code, verdict.reason)
    return Delivery(signature=verdict.signature.hex())


def classify(body: bytes, partner_id: int) -> Notice | Invalid:
    """What a verified body is: a notice to apply, or why it cannot be. Never raises."""
    digest = hashlib.sha256(body).hexdigest()
    try:
        return _classify(body, partner_id, digest)
    except Exception as exc:  # pragma: no cover - defence in depth: keep it, never 500
        return Invalid(f"could not be read ({type(exc).__name__})", digest, raw_body=raw_text(body))


def _classify(body: bytes, partner_id: int, digest: str) -> Notice | Invalid:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return Invalid("body is not valid UTF-8", digest, raw_body=raw_text(body))
    try:
        data = loads_notice_json(text)
    except (ValueError, RecursionError) as exc:
        return Invalid(
            f"body is not valid JSON: {_json_error(exc)}", digest, raw_body=raw_text(body)
        )
    if not isinstance(data, dict):
        return Invalid("body is not a JSON object", digest, raw_body=raw_text(body))
    service, subject = _hints(data)

    def invalid(reason: str, kept: dict[str, Any] = data) -> Invalid:
        return Invalid(reason, digest, service, subject, storable(masked(jsonable(kept))))

    inner = _decoded_inner_body(data)
    if inner is None:
        return invalid("OrderNotifyBody is not valid JSON")
    try:
        notification = Notification.model_validate(inner)
    except ValidationError as exc:
        return invalid("invalid envelope: " + describe(exc), inner)
    except (ValueError, RecursionError):
        return invalid("OrderNotifyBody is not valid JSON")
    if notification.header.partner_id != partner_id:
        return invalid("OrderNotifyHeader.PartnerId does not match the PartnerId header", inner)
    name = notification.header.notify_service_name.strip().lower()
    if name == PROBE_SERVICE_NAME:
        return Notice(service_name=name, subject="probe", payload={}, by_delivery=True)
    model = NOTICE_MODELS.get(name)
    if model is None:
        return invalid("unknown NotifyServiceName", inner)
    try:
        notice = model.model_validate(notification.body)
    except ValidationError as exc:
        return invalid(f"invalid {name} body: " + describe(exc), inner)
    payload = storable(masked(notice.model_dump(by_alias=True, mode="json")))
    too_big = _out_of_range(payload)
    if too_big:
        return invalid(f"invalid {name} body: {too_big} is out of range", inner)
    return Notice(
        service_name=name,
        subject=subject_of(notice),
        payload=payload,
        by_delivery=isinstance(notice, ProductNotice)
        or (isinstance(notice, RefundNotice) and notice.is_supplier_forced),
    )


def _json_error(exc: Exception) -> str:
    """The parser's complaint without the input (``JSONDecodeError`` keeps only a position)."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at character {exc.pos}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)[:100] if isinstance(exc, UnreadableNumber) else type(exc).__name__


def _decoded_inner_body(data: dict[str, Any]) -> dict[str, Any] | None:
    """The envelope with ``OrderNotifyBody`` decoded when it is a string; ``None`` if not JSON."""
    decoded = dict(data)
    for key, value in data.items():
        if str(key).lower() == "ordernotifybody" and isinstance(value, str):
            try:
                decoded[key] = loads_notice_json(value)
            except (ValueError, RecursionError):
                return None
    return decoded


def _hints(data: dict[str, Any]) -> tuple[str, str]:
    """Service name and subject, best effort, for an operator looking at an invalid row."""
    lowered = {str(k).lower(): v for k, v in data.items()}
    header = lowered.get("ordernotifyheader")
    service = "unknown"
    if isinstance(header, dict):
        for key, value in header.items():
            if str(key).lower() == "notifyservicename" and isinstance(value, str):
                service = storable(mask(value.strip()))[:64] or "unknown"
    body = lowered.get("ordernotifybody")
    if isinstance(body, str):
        try:
            body = loads_notice_json(body)
        except (ValueError, RecursionError):
            body = None
    subject = "unknown"
    if isinstance(body, dict):
        for key, value in body.items():
            kind = {"orderid": "order", "productid": "product"}.get(str(key).lower())
            if kind and isinstance(value, int | str) and len(str(value)) <= 20:
                subject = storable(f"{kind}:{mask(str(value))}")[:64]
                break
    return service, subject


def _out_of_range(value: Any, key: str = "") -> str | None:
    """The first string the ledger could not store (numbers are bounded by the models)."""
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
    elif isinstance(value, str) and len(value) > _MAX_TEXT.get(key.lower(), 4000):
        return key or "a string"
    return None


def describe(exc: ValidationError) -> str:
    """Field paths and pydantic's messages only: never the offending input (it may be personal)."""
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return mask("; ".join(parts))[:300]


def subject_of(notice: BaseModel) -> str:
    """What a notice is about, for operators: ``product:ID`` or ``order:ID``."""
    if isinstance(notice, ProductNotice):
        return f"product:{notice.product_id}"
    return f"order:{getattr(notice, 'order_id', '?')}"


def redact(value: Any) -> Any:
    """Mask ID card numbers (last four kept) and mobiles by key anywhere in a JSON value."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            lowered = str(key).lower()
            if lowered in _ID_KEYS and isinstance(item, str | int):
                out[key] = mask_id_card(str(item))
            elif lowered in _MOBILE_KEYS and isinstance(item, str | int):
                out[key] = mask_mobile(str(item))
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def masked(value: Any, key: str = "") -> Any:
    """``redact`` by key, and ID numbers and mobiles masked inside every other free-text string."""
    lowered = key.lower()
    if lowered in _ID_KEYS and isinstance(value, str | int) and not isinstance(value, bool):
        return mask_id_card(str(value))
    if lowered in _MOBILE_KEYS and isinstance(value, str | int) and not isinstance(value, bool):
        return mask_mobile(str(value))
    if isinstance(value, dict):
        return {k: masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(item, key) for item in value]
    if isinstance(value, str) and lowered not in _IDENTIFIER_KEYS:
        return mask(value)
    return value


def storable(value: Any) -> Any:
    """NUL and lone surrogates replaced by U+FFFD, in keys and strings: fits every database."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {storable(str(k)): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


def jsonable(value: Any) -> Any:
    """A parsed body as JSON column values: Decimals as their text (exact, not float)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    return value


def raw_text(body: bytes) -> str:
    """The body as text for an operator: bytes that are not UTF-8 escaped, personal data masked."""
    return str(storable(mask(body.decode("utf-8", "backslashreplace"))))


def dedupe_key(service_name: str, payload: dict[str, Any], delivery: str = "") -> str:
    """The same notice resent (any key order or case) yields the same key.

    An order notice carries its state (counts, vouchers, refund numbers), so equal bodies are
    one fact. A product notice carries none, nor does a refund without an apply number (two
    identical supplier-side refunds are two refunds): their key includes ``delivery`` (the
    signature), so only a repeat of the same request is a duplicate.
    """
    canonical = json.dumps([service_name, payload, delivery], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def store_notification(
    session: Session, delivery: Delivery, verdict: Notice | Invalid, now: datetime
) -> Stored:
    """Commit a verified request as ``pending``, ``invalid`` or ``held``, in the caller's
    transaction. Idempotent: a delivery already stored answers ``Stored(id, is_new=False)``."""
    key, status, reason = _as_first_delivery(delivery, verdict)
    first = _first_body_of(session, delivery.signature, key, now)
    if isinstance(verdict, Notice) and verdict.is_order_notice and first != key:
        status, reason = InboxStatus.HELD, HELD_REASON
        key = dedupe_key(verdict.service_name, verdict.payload, "held:" + delivery.signature)
    inbox_id = insert_ignore(
        session,
        InboxMessage,
        _inbox_row(verdict, key, status, reason, now),
        returning=InboxMessage.id,
    )
    if inbox_id is not None:
        return Stored(int(inbox_id), is_new=True, status=status)
    return _stored_before(session, key)


def store_first_delivery(
    connection: Connection, delivery: Delivery, verdict: Notice | Invalid, now: datetime
) -> Stored | None:
    """``store_notification`` in one statement, for a signature not seen before (nearly every
    request): on PostgreSQL, on a connection in autocommit mode, so the statement is its own
    transaction, committed durably before this returns, in one round trip instead of four
    (BEGIN, two inserts, COMMIT). ``None``, with nothing written, when the signature was seen
    before: the caller runs ``store_notification`` in a transaction to decide what the body is.
    """
    key, status, reason = _as_first_delivery(delivery, verdict)
    values = {"signature": delivery.signature, **_inbox_row(verdict, key, status, reason, now)}
    row = connection.execute(_first_delivery_statement(), values).one()
    signature_new, inbox_id = row[0], row[1]
    if not signature_new:
        return None
    if inbox_id is not None:
        return Stored(int(inbox_id), is_new=True, status=status)
    return _stored_before(connection, key)  # stored before under another signature (a resend)


@cache
def _first_delivery_statement() -> Select[Any]:
    """Record the signature and, only if it is new, insert the inbox row (each ignored on a
    clash); returns (signature recorded: 0 or 1, the new row's id or NULL)."""
    signature = (
        postgresql.insert(InboxSignature)
        .values(
            signature=bindparam("signature"),
            dedupe_key=bindparam("dedupe_key"),
            seen_at=bindparam("received_at"),
        )
        .on_conflict_do_nothing()
        .returning(InboxSignature.signature)
        .cte("new_signature")
    )
    columns = [InboxMessage.__table__.c[name] for name in _INBOX_COLUMNS]
    row = select(*(bindparam(column.key, type_=column.type) for column in columns)).where(
        exists(select(signature.c.signature))
    )
    message = (
        postgresql.insert(InboxMessage)
        .from_select(columns, row)
        .on_conflict_do_nothing()
        .returning(InboxMessage.id)
        .cte("new_message")
    )
    return select(
        select(func.count()).select_from(signature).scalar_subquery(),
        select(message.c.id).scalar_subquery(),
    )


_INBOX_COLUMNS = (
    "service_name",
    "dedupe_key",
    "subject",
    "payload",
    "status",
    "attempts",
    "reason",
    "raw_body",
    "received_at",
    "updated_at",
    "next_attempt_at",
)


def _as_first_delivery(
    delivery: Delivery, verdict: Notice | Invalid
) -> tuple[str, str, str | None]:
    """Dedupe key, status and reason of the row, should the signature be new."""
    if isinstance(verdict, Invalid):
        key = dedupe_key("invalid", {"body": verdict.digest}, delivery.signature)
        return key, InboxStatus.INVALID, verdict.reason
    key = dedupe_key(
        verdict.service_name, verdict.payload, delivery.signature if verdict.by_delivery else ""
    )
    if verdict.service_name == PROBE_SERVICE_NAME:
        return key, InboxStatus.DONE, PROBE_REASON
    return key, InboxStatus.PENDING, None


def _inbox_row(
    verdict: Notice | Invalid, key: str, status: str, reason: str | None, now: datetime
) -> dict[str, Any]:
    return {
        "service_name": verdict.service_name,
        "dedupe_key": key,
        "subject": verdict.subject,
        "payload": verdict.payload,
        "status": status,
        "attempts": 0,
        "reason": reason,
        "raw_body": verdict.raw_body if isinstance(verdict, Invalid) else None,
        "received_at": now,
        "updated_at": now,
        "next_attempt_at": (
            now + timedelta(seconds=FIRST_RETRY_S) if status == InboxStatus.PENDING else None
        ),
    }


def _stored_before(session: Session | Connection, key: str) -> Stored:
    existing = session.execute(
        select(InboxMessage.id, InboxMessage.status).where(InboxMessage.dedupe_key == key)
    ).one()
    return Stored(int(existing[0]), is_new=False, status=str(existing[1]))


def _first_body_of(session: Session, signature: str, key: str, now: datetime) -> str | None:
    """Record the signature's first body (the replay cache); return the key it was first seen with."""
    if insert_ignore(
        session, InboxSignature, {"signature": signature, "dedupe_key": key, "seen_at": now}
    ):
        return key
    first: str | None = session.scalar(
        select(InboxSignature.dedupe_key).where(InboxSignature.signature == signature)
    )
    return first


def revalidate(
    service_name: str, payload: dict[str, Any], raw_body: str | None, partner_id: int
) -> Notice | Invalid:
    """Classify a stored invalid row again (after a fix): from its raw text when it had no JSON,
    from its envelope, or, for a notice found invalid while processing, from the notice."""
    if raw_body is not None:
        return classify(raw_body.encode(), partner_id)
    if casefold_key(payload, "OrderNotifyHeader") is None:
        header = {"PartnerId": partner_id, "NotifyServiceName": service_name}
        payload = {"OrderNotifyHeader": header, "OrderNotifyBody": payload}
    return classify(json.dumps(payload, ensure_ascii=False).encode(), partner_id)
