"""The relay: find inbox rows not processed in time, park the hopeless, prune the replay cache.

Run on beat (every minute). Rows still pending ``stale_after_s`` after their last touch are
re-queued (a lost task, a failed attempt, Redis down at intake); rows that used up
``max_attempts`` are parked as failed for an operator (``catalog-sync inbox replay ID``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from models.inbox import InboxMessage, InboxSignature, InboxStatus


@dataclass(frozen=True)
class RelayPlan:
    requeue: list[int] = field(default_factory=list)
    parked: list[int] = field(default_factory=list)
    pruned_signatures: int = 0


def plan_relay(
    session: Session,
    *,
    now: datetime,
    stale_after_s: float,
    max_attempts: int,
    signature_ttl_s: float,
    limit: int = 500,
) -> RelayPlan:
    """In the caller's transaction: park exhausted rows, prune old signatures, list the rest."""
    cutoff = now - timedelta(seconds=stale_after_s)
    stale = InboxMessage.status == InboxStatus.PENDING, InboxMessage.updated_at <= cutoff
    parked = list(
        session.scalars(
            select(InboxMessage.id)
            .where(*stale, InboxMessage.attempts >= max_attempts)
            .order_by(InboxMessage.id)
            .limit(limit)
        )
    )
    if parked:
        session.execute(
            update(InboxMessage)
            .where(InboxMessage.id.in_(parked), InboxMessage.status == InboxStatus.PENDING)
            .values(status=InboxStatus.FAILED, updated_at=now)
        )
    requeue = list(
        session.scalars(
            select(InboxMessage.id)
            .where(*stale, InboxMessage.attempts < max_attempts)
            .order_by(InboxMessage.id)
            .limit(limit)
        )
    )
    pruned = session.execute(
        delete(InboxSignature)
        .where(InboxSignature.seen_at < now - timedelta(seconds=signature_ttl_s))
        .returning(InboxSignature.signature)
    ).all()
    return RelayPlan(requeue, parked, len(pruned))


def replay(session: Session, inbox_id: int, now: datetime) -> bool:
    """Make a row pending again with a fresh attempt budget (an operator's retry)."""
    result = session.execute(
        update(InboxMessage)
        .where(InboxMessage.id == inbox_id)
        .values(status=InboxStatus.PENDING, attempts=0, last_error=None, updated_at=now)
        .returning(InboxMessage.id)
    )
    return result.first() is not None
