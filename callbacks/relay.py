"""The relay: find inbox rows not processed in time, park the hopeless, prune the replay cache
(gather the due rows, a pure ``plan_relay`` decides, ``run_relay`` applies).

Run on beat (every minute). Each pending row carries ``next_attempt_at``: set at intake
(``stale_after_s`` after receipt: a lost task, Redis down), by a claim (the attempt's lease),
by a failure (``retry_delay_s(attempts)``: ``stale_after_s`` doubling with each attempt,
capped at ``max_delay_s``) and by the relay itself when it re-queues. The relay selects the
rows that are due, oldest due first, *then* applies its limit, so a backlog of rows not yet due
never hides one that is. A re-queued row no worker has claimed yet (workers away or backed
up) waits as long again as it has already waited, so its re-queues double too instead of
coming every tick. Rows that used up ``max_attempts`` are parked as failed once their last
attempt's lease has run out (never under an attempt still running), for an operator
(``catalog-sync inbox replay ID``).

With the defaults (``stale_after_s`` 60 s, ``INBOX_MAX_ATTEMPTS`` 5) the attempts come at
about 0, 2, 6, 14 and 30 minutes after the first one (each wait rounded up to the next
relay tick), so a row is parked only after a supplier or database outage of about half an
hour; each further attempt allowed roughly doubles that, up to one hour between attempts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.orm import Session

from models.inbox import InboxMessage, InboxSignature, InboxStatus

MAX_DELAY_S = 3600.0
# A replayed row is queued at once; the relay re-queues it only if that message is lost.
REPLAY_GRACE_S = 60.0


@dataclass(frozen=True)
class DueRow:
    """A pending row whose ``next_attempt_at`` has come: what the planner needs of it."""

    id: int
    attempts: int
    received_at: datetime


@dataclass(frozen=True)
class RelayPlan:
    requeue: list[int] = field(default_factory=list)
    parked: list[int] = field(default_factory=list)
    pruned_signatures: int = 0
    # When each re-queued row is next due, should this re-queue be lost too.
    next_attempts: dict[int, datetime] = field(default_factory=dict)


def retry_delay_s(attempts: int, stale_after_s: float, max_delay_s: float = MAX_DELAY_S) -> float:
    """How long a pending row with ``attempts`` made is left alone before it is re-queued."""
    return float(min(stale_after_s * 2 ** max(attempts, 0), max_delay_s))


def plan_relay(
    due: Sequence[DueRow],
    *,
    now: datetime,
    stale_after_s: float,
    max_attempts: int,
    max_delay_s: float = MAX_DELAY_S,
) -> RelayPlan:
    """Pure: of the rows that are due, park those out of attempts (their last lease has run
    out) and re-queue the others, each with the time it is next due."""
    parked = sorted(row.id for row in due if row.attempts >= max_attempts)
    next_attempts = {
        row.id: now
        + timedelta(seconds=_wait_s(row.attempts, row.received_at, now, stale_after_s, max_delay_s))
        for row in due
        if row.attempts < max_attempts
    }
    return RelayPlan(sorted(next_attempts), parked, 0, next_attempts)


def run_relay(
    session: Session,
    *,
    now: datetime,
    stale_after_s: float,
    max_attempts: int,
    signature_ttl_s: float,
    max_delay_s: float = MAX_DELAY_S,
    limit: int = 500,
) -> RelayPlan:
    """In the caller's transaction: gather the due rows, ask ``plan_relay``, park and re-queue
    as it says, and prune old signatures."""
    plan = plan_relay(
        _due_rows(session, now, max_attempts, limit),
        now=now,
        stale_after_s=stale_after_s,
        max_attempts=max_attempts,
        max_delay_s=max_delay_s,
    )
    _park(session, plan.parked, now)
    for inbox_id, next_attempt_at in plan.next_attempts.items():
        session.execute(
            update(InboxMessage)
            .where(InboxMessage.id == inbox_id, InboxMessage.status == InboxStatus.PENDING)
            .values(updated_at=now, next_attempt_at=next_attempt_at)
        )
    pruned = session.execute(
        delete(InboxSignature)
        .where(InboxSignature.seen_at < now - timedelta(seconds=signature_ttl_s))
        .returning(InboxSignature.signature)
    ).all()
    return RelayPlan(plan.requeue, plan.parked, len(pruned), plan.next_attempts)


def _is_due(now: datetime) -> ColumnElement[bool]:
    return or_(InboxMessage.next_attempt_at.is_(None), InboxMessage.next_attempt_at <= now)


def _due_rows(session: Session, now: datetime, max_attempts: int, limit: int) -> list[DueRow]:
    """Pending rows that are due, selected before the limit applies (so rows not yet due never
    hide one that is): up to ``limit`` out of attempts, and up to ``limit`` others, oldest due
    first."""
    columns = (InboxMessage.id, InboxMessage.attempts, InboxMessage.received_at)
    pending = (InboxMessage.status == InboxStatus.PENDING, _is_due(now))
    exhausted = session.execute(
        select(*columns)
        .where(*pending, InboxMessage.attempts >= max_attempts)
        .order_by(InboxMessage.id)
        .limit(limit)
    ).all()
    retryable = session.execute(
        select(*columns)
        .where(*pending, InboxMessage.attempts < max_attempts)
        .order_by(InboxMessage.next_attempt_at.nulls_first(), InboxMessage.id)
        .limit(limit)
    ).all()
    return [DueRow(row.id, row.attempts, row.received_at) for row in [*exhausted, *retryable]]


def _wait_s(
    attempts: int,
    received_at: datetime,
    now: datetime,
    stale_after_s: float,
    max_delay_s: float,
) -> float:
    """How long a row re-queued now is left alone before the next re-queue."""
    if attempts > 0:
        return retry_delay_s(attempts, stale_after_s, max_delay_s)
    waited_so_far = (now - received_at).total_seconds()
    return min(max(stale_after_s, waited_so_far), max_delay_s)


def _park(session: Session, parked: list[int], now: datetime) -> None:
    """Park rows out of attempts whose last attempt's lease has run out (it never finished)."""
    if parked:
        session.execute(
            update(InboxMessage)
            .where(InboxMessage.id.in_(parked), InboxMessage.status == InboxStatus.PENDING)
            .values(
                status=InboxStatus.FAILED,
                updated_at=now,
                next_attempt_at=None,
                last_error=func.coalesce(
                    InboxMessage.last_error, "gave up: the last attempt never finished"
                ),
            )
        )


def replay(session: Session, inbox_id: int, now: datetime) -> bool:
    """Make a row pending again with a fresh attempt budget (an operator's retry)."""
    result = session.execute(
        update(InboxMessage)
        .where(InboxMessage.id == inbox_id)
        .values(
            status=InboxStatus.PENDING,
            attempts=0,
            last_error=None,
            reason=None,
            updated_at=now,
            next_attempt_at=now + timedelta(seconds=REPLAY_GRACE_S),
        )
        .returning(InboxMessage.id)
    )
    return result.first() is not None


def revalidate_invalid(
    session: Session, inbox_id: int, partner_id: int, now: datetime
) -> tuple[str, str | None]:
    """Validate an invalid row again with today's code: pending when it now passes (the caller
    queues it), else still invalid with the current reason. Returns (status, reason)."""
    from callbacks.intake import Notice, revalidate

    row = session.get(InboxMessage, inbox_id, with_for_update=True)
    if row is None or row.status != InboxStatus.INVALID:
        return (row.status if row is not None else "missing"), None
    verdict = revalidate(row.service_name, dict(row.payload), row.raw_body, partner_id)
    if isinstance(verdict, Notice):
        row.service_name, row.subject, row.payload = (
            verdict.service_name,
            verdict.subject,
            verdict.payload,
        )
        row.status, row.reason, row.raw_body = InboxStatus.PENDING, None, None
        row.attempts, row.last_error = 0, None
        row.updated_at, row.next_attempt_at = now, now + timedelta(seconds=REPLAY_GRACE_S)
        return InboxStatus.PENDING, None
    row.reason, row.updated_at = verdict.reason, now
    return InboxStatus.INVALID, verdict.reason


def release(session: Session, inbox_id: int, now: datetime) -> bool:
    """Apply a held row after all (an operator judged its body genuine): it becomes pending."""
    result = session.execute(
        update(InboxMessage)
        .where(InboxMessage.id == inbox_id, InboxMessage.status == InboxStatus.HELD)
        .values(
            status=InboxStatus.PENDING,
            attempts=0,
            reason=None,
            updated_at=now,
            next_attempt_at=now + timedelta(seconds=REPLAY_GRACE_S),
        )
        .returning(InboxMessage.id)
    )
    return result.first() is not None
