"""Price refreshes: one product's window of rules, resolved days and sessions, kept current.

The window is ``window_days`` supplier dates (Asia/Shanghai) starting today. Each refresh
reads what the product holds under its row lock, asks ``worker.sync.price_plan.plan_prices``
what the fetch means (older, unchanged, window moved, replace) and applies that answer in the
same transaction; only a replacement writes a ``prices`` change row.

Every attempt, failed ones included, stamps ``prices_attempted_at``: the rolling refresh
takes the least recently attempted first, so products that always fail cannot hold the head
of the line. A refresh still failing after the client's retries records why in
``prices_error`` (cleared by the next success); ``sync`` reports such products as partial.

Fetch start times come from one clock for every worker, the database's (``worker.clock``),
never a worker's wall clock, so the older-fetch guard holds across hosts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import attrgetter
from typing import Any, cast

from sqlalchemy import BindParameter, Table, bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.bulk import delete_many, insert_many, update_many
from models.catalog import Change, ChangeKind, DailyPrice, Product, TimedSession
from models.catalog import PriceRule as PriceRuleRow
from worker.clock import clock_for
from worker.supplier.contract import supplier_today
from worker.supplier.errors import SupplierError
from worker.supplier.payloads import PriceCalendar, Seat
from worker.supplier.port import Supplier
from worker.sync.calendar import ResolvedDay
from worker.sync.price_plan import (
    HeldPrices,
    PriceAction,
    PriceContent,
    PriceKeys,
    PricePlan,
    needs_held_keys,
    plan_prices,
    price_content,
    price_window,
)
from worker.sync.refresh_history import RefreshOutcome, record_refreshes

log = logging.getLogger(__name__)


def store_prices(
    sessions: sessionmaker[Session],
    product_id: int,
    content: PriceContent,
    *,
    now: datetime | None = None,
) -> bool:
    """Store one product's fetched calendar in one transaction; True when it changed.

    See the module docstring for the four outcomes; only a change writes a change row.
    """
    with sessions.begin() as session:
        return _store(session, product_id, content, now or utcnow())


def _store(session: Session, product_id: int, content: PriceContent, now: datetime) -> bool:
    """Within the caller's transaction, under the product's row lock."""
    row = session.execute(
        select(
            Product.version,
            Product.prices_hash,
            Product.prices_fetched_at,
            Product.prices_attempted_at,
            Product.prices_window_start,
            Product.prices_window_end,
        )
        .where(Product.product_id == product_id)
        .with_for_update()
    ).first()
    if row is None:
        return False
    held = HeldPrices(
        row.prices_hash, (row.prices_window_start, row.prices_window_end), row.prices_fetched_at
    )
    held_keys = _held_keys(session, product_id) if needs_held_keys(held, content) else None
    plan = plan_prices(held, content, held_keys)
    if plan.action is PriceAction.OLDER:
        log.info("prices of product %s: a later fetch is already stored", product_id)
        return False
    _apply(session, product_id, content, plan, held.complete_window)
    record_refreshes(
        session,
        [RefreshOutcome(product_id, content.fetched_at, row.prices_fetched_at, plan.is_change)],
    )
    attempted = max(row.prices_attempted_at or content.fetched_at, content.fetched_at)
    session.execute(
        update(Product)
        .where(Product.product_id == product_id)
        .values(
            prices_refreshed_at=now,
            prices_error=None,
            prices_fetched_at=content.fetched_at,
            prices_attempted_at=attempted,
            prices_hash=content.content_hash,
            prices_window_start=content.start,
            prices_window_end=content.end,
        )
    )
    if plan.is_change:
        session.add(
            Change(
                product_id=product_id, kind=ChangeKind.PRICES, version=row.version, created_at=now
            )
        )
    return plan.is_change


_PRODUCTS = cast(Table, Product.__table__)
_CHANGE_COLUMNS = ("product_id", "kind", "version", "created_at")
# The product row's stamps, set by primary key with ``update_many`` (the ORM's bulk update by
# primary key costs several times its CPU per row for the same SQL).
_STAMPED = (
    "prices_refreshed_at",
    "prices_error",
    "prices_fetched_at",
    "prices_attempted_at",
    "prices_hash",
    "prices_window_start",
    "prices_window_end",
)
_HELD_COLUMNS = (
    "product_id",
    "version",
    "prices_hash",
    "prices_fetched_at",
    "prices_attempted_at",
    "prices_window_start",
    "prices_window_end",
)


def _store_batch(
    session: Session, fetches: Sequence[tuple[int, PriceContent]], now: datetime
) -> int:
    """Store many products' fetches with a few statements per batch; the number that changed.

    The same decisions as ``_store`` one product at a time (every guard is the planner's),
    under the row locks of the whole batch taken in id order; product ids are distinct.
    """
    ids = sorted(product_id for product_id, _ in fetches)
    rows = {row.product_id: row for row in session.execute(_HELD, {"ids": ids})}
    held: dict[int, HeldPrices] = {
        pid: HeldPrices(
            row.prices_hash, (row.prices_window_start, row.prices_window_end), row.prices_fetched_at
        )
        for pid, row in rows.items()
    }
    wanted = [
        pid for pid, content in fetches if pid in held and needs_held_keys(held[pid], content)
    ]
    held_keys = _held_keys_many(session, wanted)
    writes = _BatchWrites()
    stamps: list[tuple[Any, ...]] = []
    changes: list[tuple[Any, ...]] = []
    outcomes: list[RefreshOutcome] = []
    for product_id, content in fetches:
        row = rows.get(product_id)
        if row is None:
            continue
        plan = plan_prices(held[product_id], content, held_keys.get(product_id))
        if plan.action is PriceAction.OLDER:
            log.info("prices of product %s: a later fetch is already stored", product_id)
            continue
        writes.add(product_id, content, plan, held[product_id].complete_window)
        outcomes.append(
            RefreshOutcome(product_id, content.fetched_at, row.prices_fetched_at, plan.is_change)
        )
        stamps.append(
            (
                now,  # in _STAMPED's order, then the key
                None,
                content.fetched_at,
                max(row.prices_attempted_at or content.fetched_at, content.fetched_at),
                content.content_hash,
                content.start,
                content.end,
                product_id,
            )
        )
        if plan.is_change:
            changes.append((product_id, ChangeKind.PRICES.value, row.version, now))
    writes.apply(session)
    update_many(session, _PRODUCTS, "product_id", _STAMPED, stamps)
    insert_many(session, cast(Table, Change.__table__), _CHANGE_COLUMNS, changes)
    record_refreshes(session, outcomes)
    return len(changes)


# Column orders of the batched writes' row tuples (``models.bulk.insert_many``).
_RULE_COLUMNS = (
    "product_id",
    "position",
    "price_type",
    "begin_date",
    "end_date",
    "daily_stock",
    "market_price",
    "price",
    "sale_price",
    "booking_day",
)
_DAY_COLUMNS = ("product_id", *ResolvedDay._fields)  # a resolved day's fields are its columns
_SEAT_COLUMNS = ("product_id", "day", "start_time", "end_time", "seats_code", "seats_num")
# A session's values in _SEAT_COLUMNS order after the product id.
_SEAT_FIELDS = attrgetter("time", "seats_start_time", "seats_end_time", "seats_code", "seats_num")


@dataclass
class _BatchWrites:
    """The deletes and inserts of many products' plans, gathered to run a few statements."""

    replaced: list[int] = field(default_factory=list)
    rules_replaced: list[int] = field(default_factory=list)
    moved: dict[tuple[date, date], list[int]] = field(default_factory=dict)
    rules: list[tuple[Any, ...]] = field(default_factory=list)
    days: list[tuple[Any, ...]] = field(default_factory=list)
    seats: list[tuple[Any, ...]] = field(default_factory=list)

    def add(
        self,
        product_id: int,
        content: PriceContent,
        plan: PricePlan,
        held_window: tuple[date, date] | None,
    ) -> None:
        if plan.action is PriceAction.MOVE_WINDOW and held_window is not None:
            self.moved.setdefault((content.start, content.end), []).append(product_id)
            first, last = held_window
            self._add_days(product_id, [d for d in content.days if not first <= d.day <= last])
            self._add_seats(product_id, [s for s in content.seats if not first <= s.time <= last])
            if plan.replace_rules:
                self.rules_replaced.append(product_id)
                self._add_rules(product_id, content)
        elif plan.action is PriceAction.REPLACE:
            self.replaced.append(product_id)
            self._add_rules(product_id, content)
            self._add_days(product_id, content.days)
            self._add_seats(product_id, content.seats)

    def _add_rules(self, product_id: int, content: PriceContent) -> None:
        self.rules += [
            (
                product_id,
                position,
                rule.price_type,
                rule.begin_time,
                rule.end_time,
                rule.daily_stock,
                rule.market_price,
                rule.price,
                rule.sale_price,
                rule.booking_day,
            )
            for position, rule in enumerate(content.calendar.daily_price_stock)
        ]

    # Rows built by ``map`` over C callables (a tuple's ``+``, an attrgetter), no Python
    # frame per row: a product adds about a hundred.
    def _add_days(self, product_id: int, days: Sequence[ResolvedDay]) -> None:
        self.days += map((product_id,).__add__, days)

    def _add_seats(self, product_id: int, seats: Sequence[Seat]) -> None:
        self.seats += map((product_id,).__add__, map(_SEAT_FIELDS, seats))

    def apply(self, session: Session) -> None:
        """Every delete before any insert: a product is replaced, moved, or neither.

        Statements on the tables themselves (Core), which spares the ORM's bulk-delete
        machinery on every batch; nothing here is in the session's identity map."""
        rules, days, seats = _RULE_TABLE, _DAY_TABLE, _SEAT_TABLE
        if self.replaced:
            for table in (rules, days, seats):
                delete_many(session, table, "product_id", self.replaced)
        if self.rules_replaced:
            delete_many(session, rules, "product_id", self.rules_replaced)
        for (start, end), ids in self.moved.items():
            for moved_table in (days, seats):
                session.execute(
                    delete(moved_table).where(
                        moved_table.c.product_id.in_(ids),
                        or_(moved_table.c.day < start, moved_table.c.day > end),
                    )
                )
        for table, columns, rows in (
            (rules, _RULE_COLUMNS, self.rules),
            (days, _DAY_COLUMNS, self.days),
            (seats, _SEAT_COLUMNS, self.seats),
        ):
            insert_many(session, table, columns, rows)


_RULE_TABLE = cast(Table, PriceRuleRow.__table__)
_DAY_TABLE = cast(Table, DailyPrice.__table__)
_SEAT_TABLE = cast(Table, TimedSession.__table__)
# Built once, the ids bound at execution: a statement built per batch coerces every id.
_IDS: BindParameter[list[int]] = bindparam("ids", expanding=True)
_HELD = (
    select(*(_PRODUCTS.c[name] for name in _HELD_COLUMNS))
    .where(_PRODUCTS.c.product_id.in_(_IDS))
    .order_by(_PRODUCTS.c.product_id)
    .with_for_update()
)


def _held_keys_many(session: Session, product_ids: Sequence[int]) -> dict[int, PriceKeys]:
    """``_held_keys`` for many products, three queries in all."""
    if not product_ids:
        return {}
    rules: dict[int, list[Any]] = {pid: [] for pid in product_ids}
    days: dict[int, list[Any]] = {pid: [] for pid in product_ids}
    seats: dict[int, list[Any]] = {pid: [] for pid in product_ids}
    for rule in session.execute(
        select(
            PriceRuleRow.product_id,
            PriceRuleRow.price_type,
            PriceRuleRow.begin_date,
            PriceRuleRow.end_date,
            PriceRuleRow.daily_stock,
            PriceRuleRow.market_price,
            PriceRuleRow.price,
            PriceRuleRow.sale_price,
            PriceRuleRow.booking_day,
        )
        .where(PriceRuleRow.product_id.in_(product_ids))
        .order_by(PriceRuleRow.product_id, PriceRuleRow.position)
    ):
        rules[rule[0]].append(tuple(rule[1:]))
    for day in session.execute(
        select(
            DailyPrice.product_id,
            DailyPrice.day,
            DailyPrice.price,
            DailyPrice.sale_price,
            DailyPrice.market_price,
            DailyPrice.stock,
            DailyPrice.booking_days,
        )
        .where(DailyPrice.product_id.in_(product_ids))
        .order_by(DailyPrice.product_id, DailyPrice.day)
    ):
        days[day[0]].append(tuple(day[1:]))
    for seat in session.execute(
        select(
            TimedSession.product_id,
            TimedSession.day,
            TimedSession.start_time,
            TimedSession.end_time,
            TimedSession.seats_code,
            TimedSession.seats_num,
        ).where(TimedSession.product_id.in_(product_ids))
    ):
        seats[seat[0]].append(tuple(seat[1:]))
    return {
        pid: PriceKeys(rules=rules[pid], days=days[pid], seats=sorted(seats[pid]))
        for pid in product_ids
    }


def _apply(
    session: Session,
    product_id: int,
    content: PriceContent,
    plan: PricePlan,
    held_window: tuple[date, date] | None,
) -> None:
    """Write the rows ``plan`` calls for (nothing for an unchanged calendar)."""
    if plan.action is PriceAction.MOVE_WINDOW and held_window is not None:
        _move_window(session, product_id, content, held_window)
        if plan.replace_rules:
            _replace_rules(session, product_id, content)
    elif plan.action is PriceAction.REPLACE:
        for table in (PriceRuleRow, DailyPrice, TimedSession):
            session.execute(delete(table).where(table.product_id == product_id))
        _insert_rules(session, product_id, content)
        _insert_days(session, product_id, content.days, content.seats)


def _held_keys(session: Session, product_id: int) -> PriceKeys:
    """What is stored for one product, in the form ``content_keys`` gives a fetch."""
    return _held_keys_many(session, [product_id])[product_id]


def _move_window(
    session: Session, product_id: int, content: PriceContent, held_window: tuple[date, date]
) -> None:
    """Delete days and sessions that left the window, insert those that entered it."""
    for table in (DailyPrice, TimedSession):
        session.execute(
            delete(table).where(
                table.product_id == product_id,
                or_(table.day < content.start, table.day > content.end),
            )
        )
    first, last = held_window
    _insert_days(
        session,
        product_id,
        [d for d in content.days if not first <= d.day <= last],
        [s for s in content.seats if not first <= s.time <= last],
    )


def _replace_rules(session: Session, product_id: int, content: PriceContent) -> None:
    session.execute(delete(PriceRuleRow).where(PriceRuleRow.product_id == product_id))
    _insert_rules(session, product_id, content)


def _insert_rules(session: Session, product_id: int, content: PriceContent) -> None:
    rules = _rule_rows(product_id, content)
    if rules:
        session.execute(insert(PriceRuleRow), rules)


def _rule_rows(product_id: int, content: PriceContent) -> list[dict[str, Any]]:
    return [
        {
            "product_id": product_id,
            "position": position,
            "price_type": rule.price_type,
            "begin_date": rule.begin_time,
            "end_date": rule.end_time,
            "daily_stock": rule.daily_stock,
            "market_price": rule.market_price,
            "price": rule.price,
            "sale_price": rule.sale_price,
            "booking_day": rule.booking_day,
        }
        for position, rule in enumerate(content.calendar.daily_price_stock)
    ]


def _insert_days(
    session: Session, product_id: int, days: Sequence[ResolvedDay], seats: Sequence[Seat]
) -> None:
    day_rows = _day_rows(product_id, days)
    seat_rows = _seat_rows(product_id, seats)
    if day_rows:
        session.execute(insert(DailyPrice), day_rows)
    if seat_rows:
        session.execute(insert(TimedSession), seat_rows)


def _day_rows(product_id: int, days: Sequence[ResolvedDay]) -> list[dict[str, Any]]:
    return [
        {
            "product_id": product_id,
            "day": d.day,
            "price": d.price,
            "sale_price": d.sale_price,
            "market_price": d.market_price,
            "stock": d.stock,
            "booking_days": d.booking_days,
        }
        for d in days
    ]


def _seat_rows(product_id: int, seats: Sequence[Seat]) -> list[dict[str, Any]]:
    return [
        {
            "product_id": product_id,
            "day": s.time,
            "start_time": s.seats_start_time,
            "end_time": s.seats_end_time,
            "seats_code": s.seats_code,
            "seats_num": s.seats_num,
        }
        for s in seats
    ]


def record_attempts(
    session: Session, product_ids: Sequence[int], started_at: datetime, error: str | None = None
) -> None:
    """Stamp failed refreshes as attempted (and why they failed), so the rolling refresh moves
    on to other products and ``status`` can show what is still failing."""
    if not product_ids:
        return
    attempted = Product.prices_attempted_at
    values: dict[str, Any] = {"prices_attempted_at": started_at}
    if error is not None:
        values["prices_error"] = error[:1000]
    session.execute(
        update(Product)
        .where(
            Product.product_id.in_(list(product_ids)),
            or_(attempted.is_(None), attempted < started_at),
        )
        .values(**values)
    )


def _is_authorized(sessions: sessionmaker[Session], product_id: int) -> bool:
    with sessions() as session:
        return bool(
            session.scalar(select(Product.is_authorized).where(Product.product_id == product_id))
        )


def refresh_prices(
    sessions: sessionmaker[Session],
    supplier: Supplier,
    product_id: int,
    *,
    today: date | None = None,
    window_days: int = 60,
) -> bool:
    """Fetch one product's window (1.1.2) and store it; True when the calendar changed.

    Idempotent. Unknown and deauthorized products are skipped without a request. A failed
    fetch is still recorded as an attempt. Raises ``SupplierError`` (``SupplierUnavailable``
    is worth retrying; ``SupplierBadPayload`` means a calendar that cannot be stored).
    """
    if not _is_authorized(sessions, product_id):
        return False
    start, end = price_window(today or supplier_today(), window_days)
    started = clock_for(sessions).now()
    try:
        calendar = supplier.get_price_calendar(product_id, start, end)
    except SupplierError as exc:
        with sessions.begin() as session:
            record_attempts(session, [product_id], started, str(exc))
        raise
    return store_prices(sessions, product_id, price_content(calendar, start, end, started))


@dataclass
class PriceBatch:
    """What a batch of refreshes did."""

    refreshed: int = 0
    changed: int = 0
    errors: int = 0
    failed: list[int] = field(default_factory=list)  # still failing after the retries
    retries: int = 0


def refresh_many(
    sessions: sessionmaker[Session],
    supplier: Supplier,
    product_ids: Iterable[int],
    *,
    today: date | None = None,
    window_days: int = 60,
    on_done: Callable[[int], None] | None = None,
    chunk: int = 50,
    batched: bool = True,
) -> PriceBatch:
    """Refresh many products in-process, fetching with the client's bounded concurrency.

    Stores ``chunk`` products per transaction (each product's replacement is still atomic),
    which spares the embedded SQLite a connection and commit per product; ``batched`` writes
    the chunk with a few statements in all (``False``: a few per product, kept to compare). A product whose
    fetch fails (unreachable, rejected, or a calendar that does not validate) is counted in
    ``errors`` and recorded as attempted; the others are stored all the same.
    """
    start, end = price_window(today or supplier_today(), window_days)
    batch = PriceBatch()
    usage_before = supplier.usage()
    pending: list[tuple[int, PriceContent]] = []
    failed: list[tuple[int, datetime, str]] = []

    def flush() -> None:
        with sessions.begin() as session:
            now = utcnow()
            if batched:
                batch.changed += _store_batch(session, pending, now)
            else:
                for product_id, content in pending:
                    batch.changed += _store(session, product_id, content, now)
            for product_id, started, error in failed:
                record_attempts(session, [product_id], started, error)
        if on_done is not None:
            for product_id in [pid for pid, _ in pending] + [pid for pid, _, _ in failed]:
                on_done(product_id)
        pending.clear()
        failed.clear()

    stamp = clock_for(sessions).now
    for product_id, fetched, started in _fetch_bounded(supplier, product_ids, start, end, stamp):
        if isinstance(fetched, SupplierError):
            batch.errors += 1
            batch.failed.append(product_id)
            log.warning("prices of product %s not refreshed: %s", product_id, fetched)
            failed.append((product_id, started, str(fetched)))
        else:
            batch.refreshed += 1
            if any(product_id == held for held, _ in pending):
                flush()  # a batch holds one fetch per product: the later one sees the first
            pending.append((product_id, price_content(fetched, start, end, started)))
        if len(pending) + len(failed) >= chunk:
            flush()
    if pending or failed:
        flush()
    batch.retries = (supplier.usage() - usage_before).retries
    return batch


def _fetch_bounded(
    supplier: Supplier,
    product_ids: Iterable[int],
    start: date,
    end: date,
    stamp: Callable[[], datetime],
    size: int = 256,
) -> Iterator[tuple[int, PriceCalendar | SupplierError, datetime]]:
    """The client's pool submits everything it is given at once; feed it slices to bound memory.

    Each result carries the time its own request started, the key of the older-fetch guard.
    """
    ids = list(product_ids)
    for offset in range(0, len(ids), size):
        chunk = ids[offset : offset + size]
        for fetch in supplier.fetch_price_calendars(chunk, start, end, stamp=stamp):
            yield fetch.product_id, fetch.result, fetch.started_at
