"""Helpers for the sync tests: a supplier client with fast retries, a probe of rewritten rows."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from models.catalog import Change, DailyPrice, TimedSession
from models.catalog import Product as ProductRow
from worker.supplier.client import SupplierClient
from worker.supplier.payloads import Product
from worker.sync.price_plan import price_window
from worker.sync.prices import refresh_many
from worker.sync.product_rows import product_row
from worker.sync.products import PassResult, sync_products

SANDBOX_PARTNER_ID = 9258
SANDBOX_SIGN_KEY = "zzy-sandbox-signkey"
CATALOG_TABLES = ("products", "price_rules", "daily_prices", "sessions", "changes")


def make_client(url: str, *, retries: int = 2, **options: Any) -> SupplierClient:
    """A client on the sandbox with quick backoff, so failure tests stay fast."""
    return SupplierClient(
        httpx.Client(base_url=url, timeout=httpx.Timeout(5.0, connect=2.0)),
        partner_id=SANDBOX_PARTNER_ID,
        sign_key=SANDBOX_SIGN_KEY,
        read_retries=retries,
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
        **options,
    )


class WriteProbe:
    """Proves rows were not rewritten: PostgreSQL row versions (xmin), SQLite audit triggers."""

    def __init__(self, engine: Engine, tables: tuple[str, ...] = CATALOG_TABLES) -> None:
        self.engine = engine
        self.tables = tables
        self.dialect = engine.dialect.name
        self._before: dict[str, set[tuple[Any, ...]]] = {}
        if self.dialect == "sqlite":
            with engine.begin() as connection:
                connection.exec_driver_sql(
                    "CREATE TABLE IF NOT EXISTS test_writes (tbl TEXT, op TEXT)"
                )
                for table in tables:
                    for op in ("INSERT", "UPDATE", "DELETE"):
                        connection.exec_driver_sql(
                            f"CREATE TRIGGER IF NOT EXISTS tw_{table}_{op} AFTER {op} ON {table} "
                            f"BEGIN INSERT INTO test_writes VALUES ('{table}', '{op}'); END"
                        )

    def start(self) -> None:
        """Remember the current state of every row."""
        with self.engine.begin() as connection:
            if self.dialect == "sqlite":
                connection.exec_driver_sql("DELETE FROM test_writes")
            else:
                for table in self.tables:
                    rows = connection.execute(
                        sa.text(f"SELECT ctid::text, xmin::text FROM {table}")
                    )
                    self._before[table] = {tuple(row) for row in rows}

    def writes(self) -> dict[str, int]:
        """Rows inserted, updated or deleted per table since ``start``."""
        with self.engine.connect() as connection:
            if self.dialect == "sqlite":
                rows = connection.exec_driver_sql(
                    "SELECT tbl, count(*) FROM test_writes GROUP BY tbl"
                )
                return {str(t): int(n) for t, n in rows if t in self.tables}
            counts: dict[str, int] = {}
            for table in self.tables:
                now = {
                    tuple(r)
                    for r in connection.execute(
                        sa.text(f"SELECT ctid::text, xmin::text FROM {table}")
                    )
                }
                changed = len(now ^ self._before[table])
                if changed:
                    counts[table] = changed
            return counts


WINDOW = 60


def full_sync(
    sessions: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> PassResult:
    result = sync_products(sessions, supplier)
    assert result.outcome == "ok", result.error
    refresh_many(
        sessions, supplier, result.price_due, today=sandbox.state.today, window_days=WINDOW
    )
    return result


def changes_after(sessions: sessionmaker[Session], seq: int) -> list[tuple[int, str]]:
    with sessions() as session:
        rows = session.execute(
            select(Change.product_id, Change.kind).where(Change.seq > seq).order_by(Change.seq)
        )
        return [(pid, kind) for pid, kind in rows]


def last_seq(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.max(Change.seq))) or 0


def stored(sessions: sessionmaker[Session], product_id: int) -> ProductRow:
    with sessions() as session:
        row = session.get(ProductRow, product_id)
        assert row is not None
        return row


def assert_matches_truth(
    sessions: sessionmaker[Session], sandbox: Any, *, raw_as_truth: bool = True
) -> None:
    """Every authorized product, calendar day and session equals the sandbox's own truth
    (``raw_as_truth`` False: the raw payload is as served, in whatever shape the quirks gave)."""
    catalog = sandbox.state.catalog
    start, end = price_window(sandbox.state.today, WINDOW)
    with sessions() as session:
        rows = {
            r.product_id: r
            for r in session.scalars(select(ProductRow).where(ProductRow.is_authorized))
        }
        truth = catalog.true_products()
        assert sorted(rows) == [p["ProductId"] for p in truth]
        for payload in truth:
            expected = product_row(
                Product.model_validate(payload), payload, rows[payload["ProductId"]].updated_at
            )
            row = rows[payload["ProductId"]]
            for column, value in expected.items():
                if column not in {
                    "raw",
                    "raw_hash",
                    "first_seen_at",
                    "last_seen_at",
                    "updated_at",
                    "fetched_at",
                }:
                    assert getattr(row, column) == value, (payload["ProductId"], column)
            if raw_as_truth:
                assert row.raw == payload
            days = session.execute(
                select(
                    DailyPrice.day,
                    DailyPrice.price,
                    DailyPrice.sale_price,
                    DailyPrice.market_price,
                    DailyPrice.stock,
                    DailyPrice.booking_days,
                )
                .where(DailyPrice.product_id == row.product_id)
                .order_by(DailyPrice.day)
            ).all()
            oracle = catalog.calendar(row.product_id, start, end)
            assert [tuple(d) for d in days] == [
                (o.date, o.price, o.sale_price, o.market_price, o.stock, o.booking_days)
                for o in oracle
            ], row.product_id
            seats = session.execute(
                select(
                    TimedSession.day,
                    TimedSession.start_time,
                    TimedSession.end_time,
                    TimedSession.seats_code,
                    TimedSession.seats_num,
                )
                .where(TimedSession.product_id == row.product_id)
                .order_by(TimedSession.day, TimedSession.start_time)
            ).all()
            assert [tuple(s) for s in seats] == [
                (s.day, s.start, s.end, s.code, s.capacity)
                for s in catalog.seats(row.product_id, start, end)
            ], row.product_id


def env_for(sandbox: Any, database_url: str) -> dict[str, str]:
    return {
        "ZZY_BASE_URL": sandbox.url,
        "ZZY_PARTNER_ID": str(SANDBOX_PARTNER_ID),
        "ZZY_SIGN_KEY": SANDBOX_SIGN_KEY,
        "DATABASE_URL": database_url,
        "REDIS_URL": "",
        "SUPPLIER_RATE_LIMIT": "1000",
        "SUPPLIER_BURST": "100",
        "READ_RETRIES": "1",
    }
