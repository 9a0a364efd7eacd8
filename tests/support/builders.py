"""Small builders for catalog rows, so the API tests need none of the sync code."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from models.catalog import Change, DailyPrice, Product, SyncRun, TimedSession
from worker.settings import Settings

T0 = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai, 2026-03-01
TODAY = date(2026, 3, 1)


def api_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "zzy_base_url": "http://127.0.0.1:9",
        "zzy_partner_id": 9258,
        "zzy_sign_key": "zzy-sandbox-signkey",
        "database_url": database_url,
        "redis_url": None,
        "price_window_days": 30,
        "catalog_api_anonymous": True,  # the token rule has its own tests
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def product(session: Session, product_id: int, **fields: Any) -> Product:
    values: dict[str, Any] = {
        "product_id": product_id,
        "version": 1,
        "product_code": f"P{product_id}",
        "is_ticket": 0,
        "ticket_get_address": None,
        "product_name": f"Product {product_id}",
        "product_desc": "A day ticket",
        "entrance_mode": 0,
        "product_kind": "ticket",
        "adult_number": 1,
        "child_number": 0,
        "max_number_by_order": 10,
        "max_number_by_mobile": 5,
        "limit_day_by_mobile": 1,
        "max_number_by_card_id": 2,
        "limit_day_by_card_id": 1,
        "customer_set": 1,
        "total_stock": 0,
        "product_status": 1,
        "refund_set": 1,
        "scenic_spots": "West Lake",
        "scenic_id": 77,
        "out_id": None,
        "min_age": None,
        "max_age": None,
        "effective_time_mode": 1,
        "effective_time": None,
        "become_effective_time": None,
        "begin_effective_time": None,
        "end_effective_time": None,
        "booking_time": "17:30",
        "raw": {"ProductId": product_id},
        "content_hash": f"h{product_id}",
        "is_authorized": True,
        "updated_at": T0,
        "prices_refreshed_at": T0,
    }
    values.update(fields)
    row = Product(**values)
    session.add(row)
    session.flush()
    return row


def day_price(
    session: Session,
    product_id: int,
    day: date,
    sale: str = "90.00",
    *,
    price: str = "80.00",
    market: str = "120.00",
    stock: int | None = 50,
    booking_days: int = 0,
) -> DailyPrice:
    row = DailyPrice(
        product_id=product_id,
        day=day,
        price=Decimal(price),
        sale_price=Decimal(sale),
        market_price=Decimal(market),
        stock=stock,
        booking_days=booking_days,
    )
    session.add(row)
    session.flush()
    return row


def prices(session: Session, product_id: int, first: date, days: int, sale: str = "90.00") -> None:
    for offset in range(days):
        day_price(session, product_id, first + timedelta(days=offset), sale)


def timed_session(
    session: Session, product_id: int, day: date, start: str, end: str, code: str, seats: int
) -> TimedSession:
    row = TimedSession(
        product_id=product_id,
        day=day,
        start_time=start,
        end_time=end,
        seats_code=code,
        seats_num=seats,
    )
    session.add(row)
    session.flush()
    return row


def change(
    session: Session,
    product_id: int,
    kind: str = "updated",
    *,
    version: int | None = 1,
    **extra: Any,
) -> Change:
    row = Change(product_id=product_id, kind=kind, version=version, **extra)
    session.add(row)
    session.flush()
    return row


def sync_run(
    session: Session, kind: str, outcome: str, started: datetime, finished: datetime | None
) -> SyncRun:
    row = SyncRun(
        kind=kind, outcome=outcome, started_at=started, finished_at=finished, is_complete=True
    )
    session.add(row)
    session.flush()
    return row


def inbox_rows(engine: Engine, statuses: list[str]) -> None:
    """Rows in the callback inbox with these statuses; creates a minimal ``inbox`` table when
    the real model does not exist yet, and fills the real one's required columns otherwise."""
    if not sa.inspect(engine).has_table("inbox"):
        with engine.begin() as connection:
            connection.execute(
                sa.text("CREATE TABLE inbox (id INTEGER PRIMARY KEY, status VARCHAR(16) NOT NULL)")
            )
    table = sa.Table("inbox", sa.MetaData(), autoload_with=engine)
    with engine.begin() as connection:
        for number, status in enumerate(statuses):
            connection.execute(table.insert().values(_required_values(table, number, status)))


def _required_values(table: sa.Table, number: int, status: str) -> dict[str, Any]:
    values: dict[str, Any] = {"status": status}
    for column in table.columns:
        if column.name in values or column.nullable or column.server_default is not None:
            continue
        if column.primary_key and isinstance(column.type, sa.Integer):
            continue
        python_type: Any
        try:
            python_type = column.type.python_type
        except NotImplementedError:
            python_type = str
        if python_type is int:
            values[column.name] = number
        elif python_type is bool:
            values[column.name] = False
        elif python_type is datetime:
            values[column.name] = T0.replace(tzinfo=None)
        elif python_type in (dict, list):
            values[column.name] = {}
        else:
            values[column.name] = f"test-{number}"
    return values
