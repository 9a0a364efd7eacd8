"""Applying inbox rows: plain functions taking their collaborators as arguments.

A row is claimed (attempts + 1, committed, so a worker killed mid-way still counts, and a
lease: ``next_attempt_at`` = now + ``lease_s``, the task's hard time limit and a margin),
then applied. The claim itself is bounded: a row that has used ``max_attempts`` is not run
again; once the last attempt's lease has run out (it died or was killed) the claim parks it
as ``failed``, so a notice that crashes its worker cannot be redelivered forever, and a last
attempt still running is never parked under it. A stored payload that no longer validates,
and an order notice that contradicts the ledger (``ledger.implausibility``), become
``invalid`` without touching the ledger. Order notices change the ledger in the same transaction that marks the row done, and
that ``UPDATE ... WHERE status = 'pending'`` comes first, so two workers racing on one row
apply it once. Product notices call the catalog sync (its own transactions; idempotent) and
publish their trailing refresh (idempotent too) before the row is marked done: a publish
that fails frees the trailing slot and leaves the row pending, and a retried product notice
refreshes at once (an earlier attempt may have died holding the slot). A product notice whose
refresh was coalesced into a trailing one stays pending (under a lease covering the delay)
until that trailing refresh succeeds; if it fails the row is retried like any failure, so a
failed trailing refresh is retried and tracked to success. A failure is recorded on the row
(masked); the relay re-queues it when ``next_attempt_at`` comes, and after ``max_attempts``
it is parked as failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, update
from sqlalchemy.orm import Session, sessionmaker

from callbacks.intake import describe
from callbacks.ledger import implausibility, record_redemption, record_refund, record_ticket
from callbacks.relay import retry_delay_s
from models.base import utcnow
from models.inbox import InboxMessage, InboxStatus
from worker.coalesce import NOW, Coalescer
from worker.logs import mask
from worker.supplier.contract import NoticeStatus
from worker.supplier.notices import (
    NOTICE_MODELS,
    ProductNotice,
    RedemptionNotice,
    RefundNotice,
    TicketNotice,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]  # the processing clock; tests pass their own


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


# How long a claimed attempt may run before the row counts as abandoned: the callback tasks'
# hard time limit (callbacks.tasks) and a margin. A claim or the relay parks an exhausted row
# only after this, so a slow last attempt is never parked under it.
LEASE_S = 180.0
# The first retry's wait; each further attempt doubles it (callbacks.relay.retry_delay_s).
RETRY_BASE_S = 60.0
GAVE_UP = "gave up: attempts used up and the last one never finished (worker lost or killed)"


@dataclass(frozen=True)
class Outcome:
    inbox_id: int
    state: str  # done | scheduled | skipped | retry | failed | invalid
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
    lease_s: float = LEASE_S,
    retry_base_s: float = RETRY_BASE_S,
    now: Clock = utcnow,
) -> Outcome:
    """Apply one inbox row once. Never raises for a bad row; the outcome says what happened.

    ``now`` is the clock every stamp and lease is taken from (tests pass their own)."""
    claimed = _claim(sessions, inbox_id, max_attempts, lease_s, now=now)
    if isinstance(claimed, Outcome):
        return claimed
    service, payload, attempts = claimed
    try:
        notice = NOTICE_MODELS[service].model_validate(payload)
    except (KeyError, ValidationError) as exc:
        reason = "no longer valid: " + (
            describe(exc) if isinstance(exc, ValidationError) else "unknown service"
        )
        with sessions.begin() as session:
            _mark(session, inbox_id, InboxStatus.INVALID, reason=reason, now=now)
        return Outcome(inbox_id, "invalid", reason)
    try:
        if isinstance(notice, ProductNotice):
            detail, delay_s = apply_product_notice(
                notice, catalog, coalescer, window_s, is_retry=attempts > 1
            )
            if delay_s is not None:
                _publish_follow_up(follow_up, inbox_id, delay_s, coalescer, notice)
                _extend_lease(sessions, inbox_id, delay_s + lease_s, now=now)
                return Outcome(inbox_id, "scheduled", detail, delay_s)
            with sessions.begin() as session:
                _mark_done(session, inbox_id, now=now)
            return Outcome(inbox_id, "done", detail)
        with sessions.begin() as session:
            if not _mark_done(session, inbox_id, now=now):
                return Outcome(inbox_id, "skipped", "applied by another worker")
            problem = implausibility(session, notice)
            if problem:
                _mark(session, inbox_id, InboxStatus.INVALID, reason=problem, now=now)
                return Outcome(inbox_id, "invalid", problem)
            apply_order_notice(session, notice, inbox_id)
        return Outcome(inbox_id, "done", service)
    except Exception as exc:
        error = mask(f"{type(exc).__name__}: {exc}", secrets)[:500]
        parked = _record_failure(
            sessions, inbox_id, error, attempts, max_attempts, retry_base_s=retry_base_s, now=now
        )
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
    if NoticeStatus(notice.status).is_shelf_change:
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
    max_attempts: int = 5,
    secrets: Iterable[str] = (),
    lease_s: float = LEASE_S,
    retry_base_s: float = RETRY_BASE_S,
) -> str:
    """The trailing refresh of a coalesced product notice (never re-applies a shelf status).

    Takes an attempt on the scheduling row like any claim (so a trailing refresh that kills its
    worker is bounded too), marks the row done when the refresh succeeds, and records the
    failure otherwise (the row stays pending), so the relay retries it until it succeeds.
    """
    with sessions.begin() as session:
        row = session.get(InboxMessage, inbox_id)
        service = None if row is None else row.service_name
    if service != "order_product_notify":
        return "nothing to refresh"
    claimed = _claim(sessions, inbox_id, max_attempts, lease_s)
    if isinstance(claimed, Outcome):
        return f"nothing to do: {claimed.detail}"
    _, payload, attempts = claimed
    notice = ProductNotice.model_validate(payload)
    coalescer.restart(_coalesce_key(notice), window_s)
    try:
        _refresh(notice, catalog)
    except Exception as exc:
        error = mask(f"trailing refresh: {type(exc).__name__}: {exc}", secrets)[:500]
        _record_failure(
            sessions, inbox_id, error, attempts, max_attempts, retry_base_s=retry_base_s
        )
        log.warning("inbox %s: %s", inbox_id, error)
        return "trailing refresh failed; the relay retries it"
    with sessions.begin() as session:
        _mark_done(session, inbox_id)
    return f"trailing refresh of product {notice.product_id}"


def _coalesce_key(notice: ProductNotice) -> str:
    kind = "prices" if NoticeStatus(notice.status) is NoticeStatus.PRICES else "product"
    return f"{kind}:{notice.product_id}"


def _refresh(notice: ProductNotice, catalog: Catalog) -> None:
    if NoticeStatus(notice.status).is_shelf_change:
        catalog.queue_product_refresh(notice.product_id)
    elif NoticeStatus(notice.status) is NoticeStatus.DETAILS:
        catalog.refresh_product(notice.product_id)
    else:
        catalog.refresh_prices(notice.product_id)


def apply_order_notice(session: Session, notice: Any, inbox_id: int) -> None:
    """Route an order notice to the ledger, inside the caller's transaction."""
    from worker.orders.service import on_notice

    if isinstance(notice, TicketNotice):
        on_notice(session, record_ticket(session, notice, inbox_id), "ticket", inbox_id)
    elif isinstance(notice, RedemptionNotice):
        on_notice(session, record_redemption(session, notice, inbox_id), "redemption", inbox_id)
    elif isinstance(notice, RefundNotice):
        on_notice(session, record_refund(session, notice, inbox_id), "refund", inbox_id)
    else:  # pragma: no cover - NOTICE_MODELS and this function move together
        raise TypeError(f"no ledger rule for {type(notice).__name__}")


def _claim(
    sessions: sessionmaker[Session],
    inbox_id: int,
    max_attempts: int,
    lease_s: float,
    *,
    now: Clock = utcnow,
) -> tuple[str, dict[str, Any], int] | Outcome:
    """Take an attempt (committed before any work), or say why not; parks an exhausted row
    whose last attempt's lease has run out."""
    stamp = now()
    with sessions.begin() as session:
        claimed = session.execute(
            update(InboxMessage)
            .where(
                InboxMessage.id == inbox_id,
                InboxMessage.status == InboxStatus.PENDING,
                InboxMessage.attempts < max_attempts,
            )
            .values(
                attempts=InboxMessage.attempts + 1,
                updated_at=stamp,
                next_attempt_at=stamp + timedelta(seconds=lease_s),
            )
            .returning(InboxMessage.service_name, InboxMessage.payload, InboxMessage.attempts)
        ).first()
        if claimed is not None:
            return str(claimed[0]), dict(claimed[1]), int(claimed[2])
        parked = session.execute(
            update(InboxMessage)
            .where(
                InboxMessage.id == inbox_id,
                InboxMessage.status == InboxStatus.PENDING,
                InboxMessage.attempts >= max_attempts,
                (InboxMessage.next_attempt_at.is_(None)) | (InboxMessage.next_attempt_at <= stamp),
            )
            .values(
                status=InboxStatus.FAILED,
                updated_at=stamp,
                next_attempt_at=None,
                last_error=func.coalesce(InboxMessage.last_error, GAVE_UP),
            )
            .returning(InboxMessage.id)
        ).first()
    if parked is not None:
        log.warning("inbox %s parked as failed: %s", inbox_id, GAVE_UP)
        return Outcome(inbox_id, "failed", GAVE_UP)
    return Outcome(inbox_id, "skipped", "not pending, or its last attempt may still be running")


def _extend_lease(
    sessions: sessionmaker[Session], inbox_id: int, seconds: float, *, now: Clock = utcnow
) -> None:
    """Keep the relay off a row whose trailing refresh is scheduled (it reports back)."""
    with sessions.begin() as session:
        session.execute(
            update(InboxMessage)
            .where(InboxMessage.id == inbox_id, InboxMessage.status == InboxStatus.PENDING)
            .values(next_attempt_at=now() + timedelta(seconds=seconds))
        )


def _mark(
    session: Session, inbox_id: int, status: str, *, reason: str, now: Clock = utcnow
) -> None:
    session.execute(
        update(InboxMessage)
        .where(InboxMessage.id == inbox_id)
        .values(status=status, reason=reason, updated_at=now(), next_attempt_at=None)
    )


def _mark_done(session: Session, inbox_id: int, *, now: Clock = utcnow) -> bool:
    stamp = now()
    result = session.execute(
        update(InboxMessage)
        .where(InboxMessage.id == inbox_id, InboxMessage.status == InboxStatus.PENDING)
        .values(
            status=InboxStatus.DONE,
            processed_at=stamp,
            updated_at=stamp,
            last_error=None,
            next_attempt_at=None,
        )
        .returning(InboxMessage.id)
    )
    return result.first() is not None


def _record_failure(
    sessions: sessionmaker[Session],
    inbox_id: int,
    error: str,
    attempts: int,
    max_attempts: int,
    *,
    retry_base_s: float = RETRY_BASE_S,
    now: Clock = utcnow,
) -> bool:
    parked = attempts >= max_attempts
    stamp = now()
    with sessions.begin() as session:
        session.execute(
            update(InboxMessage)
            .where(InboxMessage.id == inbox_id, InboxMessage.status == InboxStatus.PENDING)
            .values(
                last_error=error,
                updated_at=stamp,
                status=InboxStatus.FAILED if parked else InboxStatus.PENDING,
                next_attempt_at=None
                if parked
                else stamp + timedelta(seconds=retry_delay_s(attempts, retry_base_s)),
            )
        )
    return parked
