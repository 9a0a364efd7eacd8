"""Applying inbox rows: plain functions taking their collaborators as arguments.

A row is claimed (attempts + 1, committed, so a worker killed mid-way still counts), then
applied. Order notices change the ledger in the same transaction that marks the row done, and
that ``UPDATE ... WHERE status = 'pending'`` comes first, so two workers racing on one row
apply it once. Product notices call the catalog sync (its own transactions; idempotent) and
publish their trailing refresh (idempotent too) before the row is marked done: a publish
that fails frees the trailing slot and leaves the row pending, and a retried product notice
refreshes at once (an earlier attempt may have died holding the slot). A failure is recorded
on the row (masked); the relay re-queues it and parks it as failed after ``max_attempts``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from callbacks.coalesce import NOW, Coalescer
from callbacks.ledger import record_redemption, record_refund, record_ticket
from models.base import utcnow
from models.inbox import InboxMessage, InboxStatus
from worker.logs import mask
from worker.payloads import (
    NOTICE_MODELS,
    ProductNotice,
    RedemptionNotice,
    RefundNotice,
    TicketNotice,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Catalog:
    """The catalog sync's operations a product notice needs (bound to sessions and a client)."""

    set_shelf_status: Callable[[int, int], object]
    refresh_product: Callable[[int], object]
    refresh_prices: Callable[[int], object]
    queue_product_refresh: Callable[[int], object]


# Publishes the trailing refresh of inbox row ``inbox_id`` to run ``delay_s`` from now; raises
# when it could not be published.
FollowUp = Callable[[int, float], object]


@dataclass(frozen=True)
class Outcome:
    inbox_id: int
    state: str  # done | skipped | retry | failed | missing
    detail: str = ""
    follow_up_s: float | None = None  # ``run_follow_up`` was published to run this much later


def process_message(
    sessions: sessionmaker[Session],
    inbox_id: int,
    *,
    catalog: Catalog,
    coalescer: Coalescer,
    window_s: float,
    max_attempts: int,
    follow_up: FollowUp,
    secrets: Iterable[str] = (),
) -> Outcome:
    """Apply one inbox row once. Never raises for a bad row; the outcome says what happened."""
    row = _claim(sessions, inbox_id)
    if row is None:
        return Outcome(inbox_id, "skipped", "not pending (done, failed or unknown)")
    service, payload, attempts = row
    try:
        notice = NOTICE_MODELS[service].model_validate(payload)
        if isinstance(notice, ProductNotice):
            detail, delay_s = apply_product_notice(
                notice, catalog, coalescer, window_s, is_retry=attempts > 1
            )
            if delay_s is not None:
                _publish_follow_up(follow_up, inbox_id, delay_s, coalescer, notice)
            with sessions.begin() as session:
                _mark_done(session, inbox_id)
            return Outcome(inbox_id, "done", detail, delay_s)
        with sessions.begin() as session:
            if not _mark_done(session, inbox_id):
                return Outcome(inbox_id, "skipped", "applied by another worker")
            apply_order_notice(session, notice, inbox_id)
        return Outcome(inbox_id, "done", service)
    except Exception as exc:
        error = mask(f"{type(exc).__name__}: {exc}", secrets)[:500]
        parked = _record_failure(sessions, inbox_id, error, attempts, max_attempts)
        log.warning(
            "inbox %s (%s) attempt %s failed%s: %s",
            inbox_id,
            service,
            attempts,
            ", parked as failed" if parked else "",
            error,
        )
        return Outcome(inbox_id, "failed" if parked else "retry", error)


def apply_product_notice(
    notice: ProductNotice,
    catalog: Catalog,
    coalescer: Coalescer,
    window_s: float,
    *,
    is_retry: bool = False,
) -> tuple[str, float | None]:
    """Status 0/1: shelf status now plus a confirming refresh; 2: refresh it; 3: its prices.

    Returns what was done and, when the refresh was coalesced into a trailing one, the delay
    to schedule it with. A retry is never coalesced away.
    """
    product_id = notice.product_id
    if notice.status in (0, 1):
        catalog.set_shelf_status(product_id, notice.status)
    key = _coalesce_key(notice)
    decision = NOW if is_retry else coalescer.claim(key, window_s)
    if decision.run_now:
        try:
            _refresh(notice, catalog)
        except Exception:
            coalescer.release(key)
            raise
        return f"status {notice.status}: refreshed", None
    if decision.run_after_s is not None:
        return f"status {notice.status}: trailing refresh scheduled", decision.run_after_s
    return f"status {notice.status}: coalesced", None


def _publish_follow_up(
    follow_up: FollowUp, inbox_id: int, delay_s: float, coalescer: Coalescer, notice: ProductNotice
) -> None:
    try:
        follow_up(inbox_id, delay_s)
    except Exception:
        coalescer.release_trailing(_coalesce_key(notice))
        raise


def run_follow_up(
    sessions: sessionmaker[Session],
    inbox_id: int,
    *,
    catalog: Catalog,
    coalescer: Coalescer,
    window_s: float,
) -> str:
    """The trailing refresh of a coalesced product notice (never re-applies a shelf status)."""
    with sessions.begin() as session:
        row = session.get(InboxMessage, inbox_id)
        payload = None if row is None else (row.service_name, row.payload)
    if payload is None or payload[0] != "order_product_notify":
        return "nothing to refresh"
    notice = ProductNotice.model_validate(payload[1])
    coalescer.restart(_coalesce_key(notice), window_s)
    _refresh(notice, catalog)
    return f"trailing refresh of product {notice.product_id}"


def _coalesce_key(notice: ProductNotice) -> str:
    kind = "prices" if notice.status == 3 else "product"
    return f"{kind}:{notice.product_id}"


def _refresh(notice: ProductNotice, catalog: Catalog) -> None:
    if notice.status in (0, 1):
        catalog.queue_product_refresh(notice.product_id)
    elif notice.status == 2:
        catalog.refresh_product(notice.product_id)
    else:
        catalog.refresh_prices(notice.product_id)


def apply_order_notice(session: Session, notice: Any, inbox_id: int) -> None:
    """Route an order notice to the ledger, inside the caller's transaction."""
    if isinstance(notice, TicketNotice):
        record_ticket(session, notice, inbox_id)
    elif isinstance(notice, RedemptionNotice):
        record_redemption(session, notice)
    elif isinstance(notice, RefundNotice):
        record_refund(session, notice, inbox_id)
    else:  # pragma: no cover - NOTICE_MODELS and this function move together
        raise TypeError(f"no ledger rule for {type(notice).__name__}")


def _claim(
    sessions: sessionmaker[Session], inbox_id: int
) -> tuple[str, dict[str, Any], int] | None:
    with sessions.begin() as session:
        claimed = session.execute(
            update(InboxMessage)
            .where(InboxMessage.id == inbox_id, InboxMessage.status == InboxStatus.PENDING)
            .values(attempts=InboxMessage.attempts + 1, updated_at=utcnow())
            .returning(InboxMessage.service_name, InboxMessage.payload, InboxMessage.attempts)
        ).first()
    if claimed is None:
        return None
    return str(claimed[0]), dict(claimed[1]), int(claimed[2])


def _mark_done(session: Session, inbox_id: int) -> bool:
    now = utcnow()
    result = session.execute(
        update(InboxMessage)
        .where(InboxMessage.id == inbox_id, InboxMessage.status == InboxStatus.PENDING)
        .values(status=InboxStatus.DONE, processed_at=now, updated_at=now, last_error=None)
        .returning(InboxMessage.id)
    )
    return result.first() is not None


def _record_failure(
    sessions: sessionmaker[Session], inbox_id: int, error: str, attempts: int, max_attempts: int
) -> bool:
    parked = attempts >= max_attempts
    with sessions.begin() as session:
        session.execute(
            update(InboxMessage)
            .where(InboxMessage.id == inbox_id, InboxMessage.status == InboxStatus.PENDING)
            .values(
                last_error=error,
                updated_at=utcnow(),
                status=InboxStatus.FAILED if parked else InboxStatus.PENDING,
            )
        )
    return parked


def pending_ids(session: Session, limit: int = 100) -> list[int]:
    """Ids of rows still waiting, oldest first (for tests and the CLI)."""
    return list(
        session.scalars(
            select(InboxMessage.id)
            .where(InboxMessage.status == InboxStatus.PENDING)
            .order_by(InboxMessage.id)
            .limit(limit)
        )
    )
