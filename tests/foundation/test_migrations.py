"""Migrations go down and up again without losing the rows they do not touch."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from models.base import utcnow
from models.catalog import DailyPrice, PriceRule, Product
from models.db import is_current, make_engine, make_session_factory, upgrade
from models.orders import Order


def test_downgrade_and_upgrade_keep_child_rows(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            session.add(
                Product(
                    product_id=1,
                    version=1,
                    product_name="西湖",
                    product_status=1,
                    raw={"ProductId": 1},
                    content_hash="h",
                    is_authorized=True,
                )
            )
            session.flush()
            session.add(
                PriceRule(
                    product_id=1,
                    position=0,
                    price_type=1,
                    begin_date=date(2026, 12, 1),
                    end_date=date(2026, 12, 31),
                    daily_stock=0,
                    market_price=Decimal("10.00"),
                    price=Decimal("8.00"),
                    sale_price=Decimal("9.00"),
                    booking_day=0,
                )
            )
            session.add(
                DailyPrice(
                    product_id=1,
                    day=date(2026, 12, 1),
                    price=Decimal("8.00"),
                    sale_price=Decimal("9.00"),
                    market_price=Decimal("10.00"),
                    stock=None,
                    booking_days=0,
                )
            )
            session.add(
                Order(
                    supplier_order_id=7,
                    origin_order_id="o7",
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
            )

        upgrade_to(engine, "0002")
        with engine.connect() as connection:
            counts = [
                connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ("products", "price_rules", "daily_prices", "orders")
            ]
        assert counts == [1, 1, 1, 1]

        upgrade(engine)
        assert is_current(engine)
        with sessions() as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(DailyPrice)) == 1
    finally:
        upgrade(engine)
        engine.dispose()


def upgrade_to(engine: sa.Engine, revision: str) -> None:
    from alembic import command

    from models.db import alembic_config

    command.downgrade(alembic_config(engine), revision)
