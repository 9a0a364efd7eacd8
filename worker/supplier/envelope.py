"""Reading the supplier's answers: HTTP status and envelope mapped to the error tree (``unwrap``),
product pages, Retry-After, and a value-free summary of what did not validate. Pure functions;
the client calls them.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import ValidationError

from worker.supplier.contract import casefold_get
from worker.supplier.errors import (
    SupplierBadPayload,
    SupplierBusy,
    SupplierOutcomeUnknown,
    SupplierRejected,
    SupplierUnavailable,
)
from worker.supplier.fields import negatives_read_as_zero
from worker.supplier.payloads import InvalidProduct, Product, ProductPage
from worker.supplier.transient import TransientRule

log = logging.getLogger(__name__)


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_product_page(
    envelope: dict[str, Any], index: int, size: int, fetched_at: datetime | None = None
) -> ProductPage:
    """One page of 1.1.1; its entries are validated when first asked for (``ProductPage``)."""
    data = casefold_get(envelope, "Data")
    if not isinstance(data, dict):
        raise SupplierBadPayload("product page Data is not an object")
    items = casefold_get(data, "Products") or []
    # The document's table lists TotalCount beside the envelope's fields: accept both places.
    total = as_int(casefold_get(data, "TotalCount"))
    if total is None:
        total = as_int(casefold_get(envelope, "TotalCount"))
    if not isinstance(items, list) or total is None:
        raise SupplierBadPayload("product page lacks Products or TotalCount")
    return ProductPage(
        page_index=index,
        page_size=size,
        total_count=total,
        entries=items,
        read_entry=read_product_entry,
        fetched_at=fetched_at,
    )


def read_product_entry(item: Any) -> Product | InvalidProduct:
    """One entry of a product page: the product, or the entry kept with a value-free reason."""
    try:
        with negatives_read_as_zero() as negatives:
            product = Product.model_validate(item)
    except ValidationError as exc:
        pid = as_int(casefold_get(item, "ProductId")) if isinstance(item, dict) else None
        return InvalidProduct(product_id=pid, raw=item, error=summarize(exc))
    if negatives:
        log.warning(
            "drift: product %s: %d negative count(s) read as 0",
            product.product_id,
            len(negatives),
        )
    return product


def retry_after_s(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def summarize(exc: ValidationError, limit: int = 500) -> str:
    """A compact, value-free summary of a validation error (values may hold personal data)."""
    parts = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:5]]
    return "; ".join(parts)[:limit]


def unwrap(
    method: str, path: str, response: httpx.Response, *, idempotent: bool, transient: TransientRule
) -> dict[str, Any]:
    """The success envelope of an answer, or the error of the tree it maps to (writes never
    become ``SupplierUnavailable`` once sent: they may have been applied)."""
    status = response.status_code
    retry_after = retry_after_s(response.headers.get("Retry-After"))
    if status == 429:
        raise SupplierUnavailable(
            f"{method} {path}: rate limited (HTTP 429)",
            status_code=status,
            retry_after_s=retry_after,
        )
    if status == 408 and idempotent:
        raise SupplierUnavailable(
            f"{method} {path}: request timeout (HTTP 408)", status_code=status
        )
    if status >= 500:
        if not idempotent:
            raise SupplierOutcomeUnknown(f"{method} {path}: HTTP {status}", status_code=status)
        raise SupplierUnavailable(
            f"{method} {path}: HTTP {status}", status_code=status, retry_after_s=retry_after
        )
    try:
        envelope = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        if not idempotent:
            # A gateway's error page says nothing about whether the write was applied.
            raise SupplierOutcomeUnknown(
                f"{method} {path}: answer is not JSON (HTTP {status})", status_code=status
            ) from None
        if status >= 400:
            raise SupplierRejected(
                None, f"HTTP {status} without a JSON body", "", status_code=status
            ) from None
        raise SupplierUnavailable(
            f"{method} {path}: answer is not JSON (HTTP {status})", status_code=status
        ) from None
    if not isinstance(envelope, dict) or casefold_get(envelope, "IsSuccess") is None:
        raise SupplierBadPayload(f"{method} {path}: answer is not the supplier's envelope")
    code = as_int(casefold_get(envelope, "Code"))
    message = str(casefold_get(envelope, "Message") or "")
    log_id = str(casefold_get(envelope, "LogId") or "")
    if casefold_get(envelope, "IsSuccess") is not True or status >= 400:
        if idempotent and status < 400 and transient.is_transient(code, message):
            raise SupplierBusy(code, message, log_id)
        log.warning(
            "supplier rejected %s %s: Code=%s LogId=%s Message=%s",
            method,
            path,
            code,
            log_id,
            message,
        )
        raise SupplierRejected(code, message, log_id, status_code=status)
    return envelope
