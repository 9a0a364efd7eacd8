"""The record the adaptive refresh learns from: each stored refresh's outcome and interval,
resets that make a product due now, and reads counted by the read API.

``record_refreshes`` runs inside the price store's transaction, so a refresh and its record
land together; the interval is between the fetch just stored and the one it was compared with
(``prices_fetched_at`` held before), the span over which "changed" was observed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.bulk import insert_many
from models.catalog import Product
from models.dialect import insert_for
from models.freshness import HISTORY_PER_PRODUCT, PriceRefresh, PriceSchedule, ProductReads
from worker.clock import clock_for
from worker.sync.freshness import Observation


@dataclass(frozen=True)
class RefreshOutcome:
    """One stored fetch: when it started, when the one it replaced started, and whether the
    calendar differed."""

    product_id: int
    fetched_at: datetime
    previous_fetched_at: datetime | None
    changed: bool


def record_refreshes(session: Session, outcomes: Sequence[RefreshOutcome]) -> None:
    """Append the outcomes to ``price_refreshes`` (in the caller's transaction)."""
    rows = []
    for outcome in outcomes:
        previous = outcome.previous_fetched_at
        interval = (outcome.fetched_at - previous).total_seconds() if previous is not None else None
        rows.append(
            (
                outcome.product_id,
                outcome.fetched_at,
                interval if interval is None or interval > 0 else None,
                outcome.changed,
            )
        )
    # A row per stored refresh, a refresh batch at a time: the bulk insert, not the ORM's.
    insert_many(session, cast(Table, PriceRefresh.__table__), _REFRESH_COLUMNS, rows)


_REFRESH_COLUMNS = ("product_id", "refreshed_at", "interval_s", "changed")


def prune_history(session: Session, keep: int = HISTORY_PER_PRODUCT) -> int:
    """Keep the last ``keep`` refreshes of each product; returns rows deleted."""
    ranked = select(
        PriceRefresh.id,
        func.row_number()
        .over(partition_by=PriceRefresh.product_id, order_by=PriceRefresh.id.desc())
        .label("rank"),
    ).subquery()
    old = select(ranked.c.id).where(ranked.c.rank > keep)
    result = session.execute(delete(PriceRefresh).where(PriceRefresh.id.in_(old)))
    return int(getattr(result, "rowcount", 0) or 0)


def histories(session: Session) -> dict[int, list[Observation]]:
    """Every product's recorded (interval, changed) pairs, oldest first."""
    found: dict[int, list[Observation]] = {}
    for product_id, interval, changed in session.execute(
        select(PriceRefresh.product_id, PriceRefresh.interval_s, PriceRefresh.changed)
        .where(PriceRefresh.interval_s.is_not(None))
        .order_by(PriceRefresh.product_id, PriceRefresh.id)
    ):
        if interval is not None:
            found.setdefault(product_id, []).append(Observation(float(interval), bool(changed)))
    return found


def reset_clocks(session: Session, product_ids: Iterable[int], at: datetime) -> None:
    """Make each product due now: a price notice, an order refused for price or stock, or a
    Version change says its stored prices may be wrong (in the caller's transaction)."""
    # A notice can name a product the catalog has not stored yet: nothing to reset there.
    ids = list(
        session.scalars(
            select(Product.product_id)
            .where(Product.product_id.in_(set(product_ids)))
            .order_by(Product.product_id)
        )
    )
    if not ids:
        return
    statement = insert_for(session, PriceSchedule)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[PriceSchedule.product_id], set_={"reset_at": at}
        ),
        [{"product_id": pid, "reset_at": at} for pid in ids],
    )


def reset_clock(sessions: sessionmaker[Session], product_id: int) -> int:
    """``reset_clocks`` for one product in its own transaction, on the database's clock (the
    clock refreshes are stamped with); returns the id, to chain into the refresh it precedes.
    A price notice resets first, so a refresh that then fails leaves the product due."""
    at = clock_for(sessions).now()
    with sessions.begin() as session:
        reset_clocks(session, [product_id], at)
    return product_id


def count_reads(session: Session, counts: dict[int, int]) -> None:
    """Add read counts (product id → reads) with atomic increments; the read API batches them."""
    if not counts:
        return
    statement = insert_for(session, ProductReads)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[ProductReads.product_id],
            set_={"pending": ProductReads.pending + statement.excluded.pending},
        ),
        [
            {"product_id": pid, "pending": n, "per_day": 0.0}
            for pid, n in sorted(counts.items())
            if n > 0
        ],
    )


# Reads per day are a moving average over about this many seconds.
READS_HALF_LIFE_S = 86_400.0


def fold_reads(session: Session, now: datetime) -> dict[int, float]:
    """Fold pending read counts into each product's reads per day (exponentially decayed, half
    life ``READS_HALF_LIFE_S``); returns product id → reads per day.

    Subtracts exactly what it folded, so increments that land meanwhile are kept for next time.
    """
    folded: dict[int, float] = {}
    rows = session.execute(
        select(
            ProductReads.product_id,
            ProductReads.pending,
            ProductReads.per_day,
            ProductReads.folded_at,
        )
    ).all()
    updates = []
    for product_id, pending, per_day, folded_at in rows:
        if folded_at is None:  # first fold: take what was counted as one day's reads
            folded[product_id] = float(pending)
        else:
            elapsed = max((now - folded_at).total_seconds(), 1.0)
            keep = 0.5 ** (elapsed / READS_HALF_LIFE_S)
            observed = pending * 86_400.0 / elapsed
            folded[product_id] = keep * float(per_day) + (1 - keep) * observed
        updates.append(
            {
                "key": product_id,
                "seen": int(pending),
                "per_day": folded[product_id],
                "at": now,
            }
        )
    if updates:
        session.execute(
            update(ProductReads)
            .where(ProductReads.product_id == bindparam("key"))
            .values(
                pending=ProductReads.pending - bindparam("seen"),
                per_day=bindparam("per_day"),
                folded_at=bindparam("at"),
            )
            .execution_options(synchronize_session=False),
            updates,
        )
    return folded
