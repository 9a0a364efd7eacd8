"""insert_many: the same rows as SQLAlchemy's own insert, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

import pytest
from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session, sessionmaker

from models.bulk import insert_many, update_many
from models.catalog import Change, DailyPrice, Product, TimedSession

DAY_COLUMNS = ("product_id", "day", "price", "sale_price", "market_price", "stock", "booking_days")


def _products(session: Session, *ids: int) -> None:
    now = datetime(2026, 7, 1, tzinfo=UTC)
    session.execute(
        insert(Product),
        [
            {
                "product_id": pid,
                "version": 1,
                "product_name": f"p{pid}",
                "product_status": 1,
                "raw": {},
                "content_hash": "h",
                "first_seen_at": now,
                "last_seen_at": now,
                "updated_at": now,
            }
            for pid in ids
        ],
    )


def _days(product_id: int) -> list[tuple[Any, ...]]:
    return [
        (product_id, date(2026, 7, 1), Decimal("98.60"), Decimal("116.00"), Decimal("145"), 5, 0),
        (product_id, date(2026, 7, 2), Decimal("98.60"), Decimal("116.00"), Decimal("145"), None, 2),
        (product_id, date(2026, 12, 31), Decimal("0.01"), Decimal("9999999999.99"), Decimal("0"), 0, 1),
    ]  # fmt: skip


def _read_days(session: Session, product_id: int) -> list[tuple[Any, ...]]:
    rows = session.execute(
        select(*(DailyPrice.__table__.c[name] for name in DAY_COLUMNS[1:]))
        .where(DailyPrice.product_id == product_id)
        .order_by(DailyPrice.day)
    )
    return [tuple(row) for row in rows]


def test_rows_read_back_as_the_core_insert_stores_them(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        _products(session, 1, 2)
        insert_many(session, cast(Table, DailyPrice.__table__), DAY_COLUMNS, _days(1))
        session.execute(
            insert(DailyPrice), [dict(zip(DAY_COLUMNS, row, strict=True)) for row in _days(2)]
        )
    with session_factory() as session:
        ours, theirs = _read_days(session, 1), _read_days(session, 2)
    assert ours == theirs
    assert ours == [row[1:] for row in _days(1)]
    assert ours[0][1] == Decimal("98.60") and isinstance(ours[0][1], Decimal)


def test_the_database_fills_an_autoincrement_key(session_factory: sessionmaker[Session]) -> None:
    columns = ("product_id", "day", "start_time", "end_time", "seats_code", "seats_num")
    rows = [(1, date(2026, 7, 1), "10:00", "12:00", f"S-{n}", n) for n in range(3)]
    with session_factory.begin() as session:
        _products(session, 1)
        insert_many(session, cast(Table, TimedSession.__table__), columns, rows)
    with session_factory() as session:
        stored = session.execute(
            select(TimedSession.id, TimedSession.seats_code).order_by(TimedSession.id)
        ).all()
    assert [code for _, code in stored] == ["S-0", "S-1", "S-2"]
    assert len({row_id for row_id, _ in stored}) == 3


def test_nothing_to_insert_sends_nothing(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        insert_many(session, cast(Table, DailyPrice.__table__), DAY_COLUMNS, [])
        assert session.scalar(select(DailyPrice.product_id).limit(1)) is None


def test_a_column_with_a_python_default_must_be_given(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session, pytest.raises(ValueError, match="default"):
        insert_many(
            session, cast(Table, Change.__table__), ("product_id", "kind", "version"), [(1, "x", 1)]
        )


@pytest.mark.parametrize("count", [1, 15, 16, 150, 300])
def test_many_rows_span_several_statements_and_all_land(
    session_factory: sessionmaker[Session], count: int
) -> None:
    days = [date.fromordinal(date(2026, 1, 1).toordinal() + n) for n in range(count)]
    rows = [
        (1, day, Decimal("1.50"), Decimal(n), Decimal("2"), n or None, 0)
        for n, day in enumerate(days)
    ]
    with session_factory.begin() as session:
        _products(session, 1)
        insert_many(session, cast(Table, DailyPrice.__table__), DAY_COLUMNS, rows)
    with session_factory() as session:
        assert _read_days(session, 1) == [row[1:] for row in rows]


def test_update_many_sets_columns_by_key_as_the_core_update_would(
    session_factory: sessionmaker[Session],
) -> None:
    at = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)
    with session_factory.begin() as session:
        _products(session, 1, 2, 3)
        update_many(
            session,
            cast(Table, Product.__table__),
            "product_id",
            ("prices_fetched_at", "prices_hash", "prices_window_start"),
            [(at, "a" * 64, date(2026, 7, 1), 1), (None, None, None, 3)],
        )
    with session_factory() as session:
        stored = session.execute(
            select(
                Product.product_id,
                Product.prices_fetched_at,
                Product.prices_hash,
                Product.prices_window_start,
            ).order_by(Product.product_id)
        ).all()
    assert [tuple(row) for row in stored] == [
        (1, at, "a" * 64, date(2026, 7, 1)),
        (2, None, None, None),
        (3, None, None, None),
    ]
