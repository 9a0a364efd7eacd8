"""One clock for every worker: stamps of fetches and notices come from the database's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.support.sync import stored
from worker.clock import DatabaseClock, clock_for, read_database_clock, use_clock
from worker.supplier.client import SupplierClient
from worker.sync.prices import refresh_prices
from worker.sync.products import sync_products

SKEWED = datetime(2031, 1, 1, tzinfo=UTC)  # far from any worker's wall clock


def test_the_database_clock_is_read_on_either_dialect(engine: Engine) -> None:
    read = read_database_clock(engine)
    assert read.tzinfo is not None
    assert abs(read - datetime.now(UTC)) < timedelta(minutes=5)


def test_the_clock_is_read_once_then_carried_on_the_monotonic_clock() -> None:
    reads: list[int] = []
    ticks = iter([0.0, 0.0, 5.0, 61.0, 61.0])

    def read() -> datetime:
        reads.append(1)
        return SKEWED + timedelta(hours=len(reads))

    clock = DatabaseClock(read, resync_s=60, monotonic=lambda: next(ticks))
    first = clock.now()  # reads the database (monotonic 0)
    later = clock.now()  # 5 s on: carried, no read
    assert (later - first, len(reads)) == (timedelta(seconds=5), 1)
    assert clock.now() == SKEWED + timedelta(hours=2)  # 61 s on: read again
    assert len(reads) == 2


def test_fetch_stamps_of_products_and_prices_come_from_the_shared_clock(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    use_clock(session_factory, DatabaseClock(lambda: SKEWED, resync_s=3600))
    assert clock_for(session_factory).now() >= SKEWED
    sync_products(session_factory, supplier)
    pid = sandbox.state.catalog.authorized_ids()[0]
    assert refresh_prices(session_factory, supplier, pid, today=sandbox.state.today)

    row = stored(session_factory, pid)
    assert row.fetched_at is not None and SKEWED <= row.fetched_at < SKEWED + timedelta(minutes=5)
    assert row.prices_fetched_at is not None
    assert SKEWED <= row.prices_fetched_at < SKEWED + timedelta(minutes=5)
