"""Product rows: what a fetched product stores, and the writes of the product pass.

``apply_products`` upserts a page's valid products (each only over an older fetch) and
quarantines invalid ones; ``deauthorize`` and ``quarantine`` are the other row writes. Each
write that changes what consumers see appends a change row.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeGuard

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.catalog import Change, ChangeKind, QuarantinedProduct
from models.catalog import Product as ProductRow
from models.limits import INT64_MAX, INT64_MIN
from worker.clock import clock_for
from worker.supplier.payloads import InvalidProduct, Product
from worker.sync.plan import (
    LocalProduct,
    RemoteProduct,
    plan_products,
)
from worker.sync.upsert import upsert_products

log = logging.getLogger(__name__)

# Payload fields whose column holds text rather than the parsed value.
_TEXT_COLUMNS = ("begin_effective_time", "end_effective_time", "booking_time")
_HASH_EXCLUDES = frozenset({"product_status", "version"})


class ItemOutcome(StrEnum):
    """What storing one fetched product did, besides the change kinds (created, updated, ...)."""

    UNCHANGED = "unchanged"
    STALE = "stale"  # a later fetch or notice is already stored
    QUARANTINED = "quarantined"


UNCHANGED = ItemOutcome.UNCHANGED


def content_hash(product: Product) -> str:
    """A hash of every contract field but Version and ProductStatus (each compared on its own)."""
    data = product.model_dump(mode="json", exclude=set(_HASH_EXCLUDES))
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def product_row(
    product: Product, raw: dict[str, Any], now: datetime, fetched_at: datetime | None = None
) -> dict[str, Any]:
    """The full products row for an upsert (every column but first_seen_at's default)."""
    row: dict[str, Any] = product.model_dump()
    for name in _TEXT_COLUMNS:
        value = row[name]
        if isinstance(value, str):
            continue  # an informational date that did not parse, kept as sent
        if value is not None:
            row[name] = value.strftime("%H:%M") if name == "booking_time" else value.isoformat()
    row.update(
        fetched_at=fetched_at or now,
        raw=raw,
        content_hash=content_hash(product),
        is_authorized=True,
        first_seen_at=now,
        last_seen_at=now,
        updated_at=now,
        deauthorized_at=None,
    )
    return row


def _remote(product: Product) -> RemoteProduct:
    return RemoteProduct(
        product.product_id, product.version, content_hash(product), product.product_status
    )


def _load_local(session: Session, ids: Iterable[int]) -> dict[int, LocalProduct]:
    rows = session.execute(
        select(
            ProductRow.product_id,
            ProductRow.version,
            ProductRow.content_hash,
            ProductRow.product_status,
            ProductRow.is_authorized,
        ).where(ProductRow.product_id.in_(list(ids)))
    )
    return {row.product_id: LocalProduct(*row) for row in rows}


def raw_of(product: Product) -> dict[str, Any]:
    """A payload rebuilt from the model, for calls that return no raw item."""
    return product.model_dump(mode="json", by_alias=True)


def apply_products(
    sessions: sessionmaker[Session],
    products: Sequence[tuple[Product, dict[str, Any]]],
    invalid: Sequence[InvalidProduct] = (),
    *,
    now: datetime | None = None,
    fetched_at: datetime | None = None,
    regressed: set[int] | None = None,
) -> dict[int, str]:
    """Plan and write one batch in one transaction; returns each id's outcome (a kind,
    "unchanged", or "stale" when a later fetch or notice is already stored).

    ``fetched_at`` is when the batch's fetch started (default: now on the database's clock).
    Ids written at a lower Version than held are added to ``regressed``.
    """
    now = now or utcnow()
    fetched_at = fetched_at or clock_for(sessions).now()
    latest = {product.product_id: (product, raw) for product, raw in products}
    outcomes: dict[int, str] = {}
    with sessions.begin() as session:
        local = _load_local(session, latest)
        plan = plan_products((_remote(product) for product, _ in latest.values()), local)
        rows = [product_row(*latest[pid], now, fetched_at) for pid in plan.writes]
        written = upsert_products(session, rows)
        for pid in plan.regressions:
            if pid in written:
                log.warning(
                    "drift: product %s applied at Version %s, below the %s held",
                    pid,
                    latest[pid][0].version,
                    local[pid].version,
                )
                if regressed is not None:
                    regressed.add(pid)
        for pid, kind in plan.writes.items():
            if pid in written:
                session.add(
                    Change(
                        product_id=pid, kind=kind, version=latest[pid][0].version, created_at=now
                    )
                )
                outcomes[pid] = kind.value
            else:
                outcomes[pid] = ItemOutcome.STALE
        outcomes.update({pid: UNCHANGED for pid in plan.unchanged})
        if latest:
            session.execute(
                delete(QuarantinedProduct).where(QuarantinedProduct.product_id.in_(list(latest)))
            )
        for item in invalid:
            if _is_storable_id(item.product_id) and item.product_id not in latest:
                quarantine(session, item.product_id, item.raw, item.error, now)
                outcomes[item.product_id] = ItemOutcome.QUARANTINED
    return outcomes


def _is_storable_id(product_id: int | None) -> TypeGuard[int]:
    """Whether a ProductId fits the BigInteger key (an invalid entry's id is not validated)."""
    return product_id is not None and INT64_MIN <= product_id <= INT64_MAX


def quarantine(session: Session, product_id: int, raw: Any, error: str, now: datetime) -> None:
    """Keep a bad payload and why; rewritten only when it differs from what is held."""
    held = session.scalar(
        select(QuarantinedProduct).where(QuarantinedProduct.product_id == product_id)
    )
    if held is None:
        session.add(
            QuarantinedProduct(
                product_id=product_id, raw=raw, error=error, first_seen_at=now, last_seen_at=now
            )
        )
    elif held.raw != raw or held.error != error:
        held.raw, held.error, held.last_seen_at = raw, error, now
    log.warning("product %s quarantined: %s", product_id, error)


def deauthorize(
    sessions: sessionmaker[Session], product_id: int, now: datetime, fetched_at: datetime
) -> bool:
    """Soft-delete one confirmed-missing product with a change row; False when already so, or
    when the row holds a fetch that started after the confirming one (``fetched_at``)."""
    with sessions.begin() as session:
        version = session.scalar(
            update(ProductRow)
            .where(
                ProductRow.product_id == product_id,
                ProductRow.is_authorized.is_(True),
                or_(ProductRow.fetched_at.is_(None), ProductRow.fetched_at <= fetched_at),
            )
            .values(is_authorized=False, deauthorized_at=now, updated_at=now, fetched_at=fetched_at)
            .returning(ProductRow.version)
        )
        if version is None:
            return False
        session.add(
            Change(
                product_id=product_id, kind=ChangeKind.DEAUTHORIZED, version=version, created_at=now
            )
        )
    return True
