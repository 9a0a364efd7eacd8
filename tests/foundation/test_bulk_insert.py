"""insert_many: the same rows as SQLAlchemy's own insert, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, cast

import pytest
from sqlalchemy import DateTime, Numeric, Table, insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from models import bulk
from models.base import UTCDateTime
from models.bulk import _Converter, delete_many, insert_many, update_many
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


def test_json_values_equal_in_python_go_as_the_core_insert_sends_them(
    session_factory: sessionmaker[Session],
) -> None:
    at = datetime(2026, 7, 1, tzinfo=UTC)
    columns = ("product_id", "kind", "version", "created_at", "detail")
    with session_factory.begin() as session:
        insert_many(
            session,
            cast(Table, Change.__table__),
            columns,
            [(1, "a", 1, at, {"n": 1}), (2, "b", 1, at, True), (3, "c", 1, at, 1)],
        )
    with session_factory() as session:
        stored = session.execute(select(Change.detail).order_by(Change.product_id)).scalars()
        details = list(stored)
    assert details == [{"n": 1}, True, 1]
    assert [type(detail) for detail in details] == [dict, bool, int]


def test_rows_of_another_width_are_refused(session_factory: sessionmaker[Session]) -> None:
    rows = [(1, date(2026, 7, 1), Decimal("1"), Decimal("1"), Decimal("1"), 1)]
    # Flattened for SQLite's multi-row statements, checked there; psycopg refuses them itself.
    with session_factory.begin() as session, pytest.raises((ValueError, DBAPIError)):
        _products(session, 1)
        insert_many(session, cast(Table, DailyPrice.__table__), DAY_COLUMNS, rows)


def test_a_converter_converts_each_value_once_across_calls() -> None:
    seen: list[Any] = []

    def convert(value: Any) -> Any:
        seen.append(value)
        return str(value)

    converter = _Converter(convert, memoize=True)
    assert converter.column([Decimal("1.50"), Decimal("2"), Decimal("1.50")]) == [
        "1.50",
        "2",
        "1.50",
    ]
    assert converter.column([Decimal("2"), Decimal("3")]) == ["2", "3"]
    assert converter.column([Decimal("3"), Decimal("1.50")]) == ["3", "1.50"]
    assert sorted(seen) == [Decimal("1.50"), Decimal("2"), Decimal("3")]


def test_a_full_memo_is_replaced_and_values_still_convert(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bulk, "_MEMO_LIMIT", 4)
    converter = _Converter(lambda value: value * 10, memoize=True)
    first = converter.memo
    assert converter.column([1, 2, 3]) == [10, 20, 30]
    assert converter.column([3, 4, 5, 6]) == [30, 40, 50, 60]
    assert converter.memo is not first
    assert first == {1: 10, 2: 20, 3: 30}  # left whole for whoever still reads it
    assert converter.column([6, 1]) == [60, 10]


def test_unhashable_or_unremembered_values_convert_one_by_one() -> None:
    calls: list[Any] = []

    def convert(value: Any) -> Any:
        calls.append(value)
        return repr(value)

    remembering = _Converter(convert, memoize=True)
    assert remembering.column([1, [1], 1]) == ["1", "[1]", "1"]
    assert calls == [1, [1], 1]
    calls.clear()
    assert _Converter(convert, memoize=False).column([True, 1]) == ["True", "1"]
    assert calls == [True, 1]


def test_delete_many_deletes_the_rows_of_the_given_keys_only(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        _products(session, 1, 2, 3)
        for product_id in (1, 2, 3):
            insert_many(session, cast(Table, DailyPrice.__table__), DAY_COLUMNS, _days(product_id))
    with session_factory.begin() as session:
        delete_many(session, cast(Table, DailyPrice.__table__), "product_id", [3, 1])
        delete_many(session, cast(Table, DailyPrice.__table__), "product_id", [])
    with session_factory() as session:
        assert [_read_days(session, pid) for pid in (1, 2, 3)] == [[], _read_days(session, 2), []]
        assert len(_read_days(session, 2)) == 3


def test_only_types_whose_equal_values_convert_alike_are_remembered() -> None:
    dialect = sqlite.dialect()
    noon = datetime(2026, 7, 1, 12, tzinfo=UTC)
    same_instant = datetime(2026, 7, 1, 14, tzinfo=timezone(timedelta(hours=2)))
    plain = bulk._converter(dialect, DateTime())
    assert plain is not None and plain.memo is None
    assert plain.column([noon, same_instant]) == [
        "2026-07-01 12:00:00.000000",
        "2026-07-01 14:00:00.000000",
    ]
    stamped = bulk._converter(dialect, UTCDateTime())
    assert stamped is not None and stamped.memo is not None
    assert stamped.column([noon, same_instant]) == ["2026-07-01 12:00:00.000000"] * 2
    money = bulk._converter(dialect, Numeric(12, 2))
    assert money is not None and money.memo is not None
    assert money.column([Decimal("1.50"), Decimal("1.5"), 1]) == [1.5, 1.5, 1.0]


@pytest.mark.parametrize("total", [0, 1, 15, 16, 17, 141, 142, 143, 300, 2508])
def test_statements_cover_every_row_once_in_few_sizes(total: int) -> None:
    most = 142
    statements = bulk._statements(total, most)
    assert [first for first, _ in statements] == [
        sum(count for _, count in statements[:n]) for n in range(len(statements))
    ]
    assert sum(count for _, count in statements) == total
    assert all(0 < count <= most for _, count in statements)
    # Full statements, then at most one multiple of 16 rows and one of fewer than 16.
    rest = [count for _, count in statements if count != most]
    assert len(rest) <= 2
    assert all(count % 16 == 0 for count in rest[:-1])
