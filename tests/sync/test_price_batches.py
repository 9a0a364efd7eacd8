"""The batched price store keeps every guard of the one-product store, on SQLite and PostgreSQL.

``refresh_many`` writes a chunk of products with a few statements in all; each test mixes
products whose fetches mean different things in one chunk, so a guard applied to the wrong
product, or to none, shows.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.catalog import PriceRule
from models.catalog import Product as ProductRow
from tests.support.sync import (
    WINDOW,
    WriteProbe,
    assert_matches_truth,
    changes_after,
    full_sync,
    last_seq,
    stored,
)
from worker.clock import clock_for
from worker.supplier.client import PRICES_PATH, SupplierClient
from worker.sync.price_plan import price_content, price_window
from worker.sync.prices import refresh_many, store_prices

PRICE_TABLES = ("price_rules", "daily_prices", "sessions", "changes")


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "per_product"])
def test_an_older_fetch_in_a_batch_never_overwrites_a_newer_one(
    session_factory: sessionmaker[Session],
    supplier: SupplierClient,
    sandbox: Any,
    batched: bool,
) -> None:
    full_sync(session_factory, supplier, sandbox)
    catalog = sandbox.state.catalog
    guarded, repriced = catalog.authorized_ids()[:2]
    start, end = price_window(sandbox.state.today, WINDOW)
    later = clock_for(session_factory).now() + timedelta(hours=1)  # a refresh started after ours
    held = price_content(supplier.get_price_calendar(guarded, start, end), start, end, later)
    store_prices(session_factory, guarded, held)
    catalog.reprice(guarded, delta="2.00")
    catalog.reprice(repriced, delta="1.00")
    before = last_seq(session_factory)

    batch = refresh_many(
        session_factory,
        supplier,
        catalog.authorized_ids(),
        today=sandbox.state.today,
        window_days=WINDOW,
        batched=batched,
    )

    assert batch.changed == 1
    assert changes_after(session_factory, before) == [(repriced, "prices")]
    row = stored(session_factory, guarded)
    assert (row.prices_fetched_at, row.prices_hash) == (later, held.content_hash)
    assert row.prices_attempted_at == later  # never moved back by the older fetch


def test_an_unchanged_batch_writes_no_calendar_row_and_no_change(
    engine: Engine, session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    full_sync(session_factory, supplier, sandbox)
    ids = sandbox.state.catalog.authorized_ids()
    probe = WriteProbe(engine, PRICE_TABLES)
    probe.start()

    batch = refresh_many(
        session_factory, supplier, ids, today=sandbox.state.today, window_days=WINDOW, chunk=7
    )

    assert (batch.refreshed, batch.changed) == (len(ids), 0)
    assert probe.writes() == {}
    assert all(stored(session_factory, pid).prices_refreshed_at is not None for pid in ids)


def test_only_the_changed_products_of_a_batch_are_rewritten_with_a_change_row(
    engine: Engine, session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    full_sync(session_factory, supplier, sandbox)
    catalog = sandbox.state.catalog
    ids = catalog.authorized_ids()
    repriced = ids[3]
    catalog.reprice(repriced, delta="0.50")
    version = stored(session_factory, repriced).version
    before = last_seq(session_factory)
    probe = WriteProbe(engine, ("price_rules",))  # a reprice keeps the number of rules
    probe.start()

    batch = refresh_many(
        session_factory, supplier, ids, today=sandbox.state.today, window_days=WINDOW, chunk=10
    )

    assert batch.changed == 1
    assert changes_after(session_factory, before) == [(repriced, "prices")]
    with session_factory() as session:
        rules = session.scalar(
            select(func.count()).where(PriceRule.product_id == repriced).select_from(PriceRule)
        )
    assert rules
    assert probe.writes() == {"price_rules": 2 * rules}  # its rules deleted and inserted, no other
    assert stored(session_factory, repriced).version == version
    assert_matches_truth(session_factory, sandbox)


def test_a_batch_records_each_failure_on_its_product_and_clears_the_others(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    full_sync(session_factory, supplier, sandbox)
    ids = sandbox.state.catalog.authorized_ids()
    failing, recovered = ids[2], ids[5]
    sandbox.state.traffic.add_fault(
        {
            "kind": "rejected",
            "path": PRICES_PATH,
            "match": {"productId": str(failing)},
            "count": -1,
        }
    )
    with session_factory.begin() as session:
        session.execute(
            update(ProductRow)
            .where(ProductRow.product_id == recovered)
            .values(prices_error="an earlier failure")
        )

    batch = refresh_many(
        session_factory, supplier, ids, today=sandbox.state.today, window_days=WINDOW
    )

    assert batch.failed == [failing]
    errors = {pid: stored(session_factory, pid).prices_error for pid in ids}
    assert errors.pop(failing)
    assert set(errors.values()) == {None}


def test_a_product_listed_twice_is_stored_once_per_fetch(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    full_sync(session_factory, supplier, sandbox)
    catalog = sandbox.state.catalog
    ids = catalog.authorized_ids()
    catalog.reprice(ids[0], delta="3.00")
    before = last_seq(session_factory)

    batch = refresh_many(
        session_factory,
        supplier,
        [ids[0], *ids, ids[0]],
        today=sandbox.state.today,
        window_days=WINDOW,
    )

    assert batch.changed == 1
    assert changes_after(session_factory, before) == [(ids[0], "prices")]
    assert_matches_truth(session_factory, sandbox)
