"""The relay: find inbox rows not processed in time, park the hopeless, prune the replay cache.

Run on beat (every minute). A pending row is re-queued once it has been left alone for
``retry_delay_s(attempts)``: ``stale_after_s`` for a row never tried (a lost task, Redis down
at intake), doubling with each attempt made, capped at ``max_delay_s``. Re-queueing stamps
``updated_at``; a row no worker has claimed yet (workers away or backed up) waits as long
again as it has already waited, so its re-queues double too instead of coming every tick. Rows that used up ``max_attempts`` are parked as failed for an operator
(``catalog-sync inbox replay ID``).

With the defaults (``stale_after_s`` 60 s, ``INBOX_MAX_ATTEMPTS`` 5) the attempts come at
about 0, 2, 6, 14 and 30 minutes after the first one (each wait rounded up to the next
relay tick), so a row is parked only after a supplier or database outage of about half an
hour; each further attempt allowed roughly doubles that, up to one hour between attempts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from models.inbox import InboxMessage, InboxSignature, InboxStatus

MAX_DELAY_S = 3600.0


@dataclass(frozen=True)
class RelayPlan:
    requeue: list[int] = field(default_factory=list)
    parked: list[int] = field(default_factory=list)
    pruned_signatures: int = 0


def retry_delay_s(attempts: int, stale_after_s: float, max_delay_s: float = MAX_DELAY_S) -> float:
    """How long a pending row with ``attempts`` made is left alone before it is re-queued."""
    return float(min(stale_after_s * 2 ** max(attempts, 0), max_delay_s))


def plan_relay(
    session: Session,
    *,
    now: datetime,
    stale_after_s: float,
    max_attempts: int,
    signature_ttl_s: float,
    max_delay_s: float = MAX_DELAY_S,
    limit: int = 500,
) -> RelayPlan:
    """In the caller's transaction: park exhausted rows, prune old signatures, stamp and list
    the rows due for another attempt (their ``updated_at`` becomes ``now``)."""
    parked = _park_exhausted(session, now, stale_after_s, max_attempts, limit)
    candidates = session.execute(
        select(
            InboxMessage.id,
            InboxMessage.attempts,
            InboxMessage.received_at,
            InboxMessage.updated_at,
        )
        .where(
            InboxMessage.status == InboxStatus.PENDING,
            InboxMessage.attempts < max_attempts,
            InboxMessage.updated_at <= now - timedelta(seconds=stale_after_s),
        )
        .order_by(InboxMessage.updated_at, InboxMessage.id)
        .limit(limit)
    ).all()
    requeue = sorted(
        row.id
        for row in candidates
        if now - row.updated_at
        >= timedelta(
            seconds=_wait_s(
                row.attempts, row.received_at, row.updated_at, stale_after_s, max_delay_s
            )
        )
    )
    if requeue:
        session.execute(
            update(InboxMessage)
            .where(InboxMessage.id.in_(requeue), InboxMessage.status == InboxStatus.PENDING)
            .values(updated_at=now)
        )
    pruned = session.execute(
        delete(InboxSignature)
        .where(InboxSignature.seen_at < now - timedelta(seconds=signature_ttl_s))
        .returning(InboxSignature.signature)
    ).all()
    return RelayPlan(requeue, parked, len(pruned))


def _wait_s(
    attempts: int,
    received_at: datetime,
    updated_at: datetime,
    stale_after_s: float,
    max_delay_s: float,
) -> float:
    """How long this row must be left alone before the next re-queue."""
    if attempts > 0:
        return retry_delay_s(attempts, stale_after_s, max_delay_s)
    waited_so_far = (updated_at - received_at).total_seconds()
    return min(max(stale_after_s, waited_so_far), max_delay_s)


def _park_exhausted(
    session: Session, now: datetime, stale_after_s: float, max_attempts: int, limit: int
) -> list[int]:
    """Rows whose last attempt was claimed ``stale_after_s`` ago and never finished."""
    cutoff = now - timedelta(seconds=stale_after_s)
    parked = list(
        session.scalars(
            select(InboxMessage.id)
            .where(
                InboxMessage.status == InboxStatus.PENDING,
                InboxMessage.updated_at <= cutoff,
                InboxMessage.attempts >= max_attempts,
            )
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
    return parked


def replay(session: Session, inbox_id: int, now: datetime) -> bool:
    """Make a row pending again with a fresh attempt budget (an operator's retry)."""
    result = session.execute(
        update(InboxMessage)
        .where(InboxMessage.id == inbox_id)
        .values(status=InboxStatus.PENDING, attempts=0, last_error=None, updated_at=now)
        .returning(InboxMessage.id)
    )
    return result.first() is not None
