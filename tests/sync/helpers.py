"""Helpers for the sync tests: a supplier client with fast retries, a probe of rewritten rows."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy import Engine

from worker.supplier.client import SupplierClient

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
