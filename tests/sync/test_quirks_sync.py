"""Against a sandbox behaving like the real supplier: every quirk on, a share of requests failing.

The sandbox's truth (its catalog and its own oracle) is what the local copy must equal, and
the requests it counted must be the minimum a pass needs plus the ones the client retried.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.catalog import Change
from supplier_sandbox.quirks import QUIRKS
from supplier_sandbox.server import SandboxConfig, start_sandbox
from tests.support.sync import (
    WINDOW,
    assert_matches_truth,
    changes_after,
    env_for,
    last_seq,
    make_client,
    stored,
)
from worker.cli import main
from worker.clock import clock_for
from worker.supplier.payloads import Product
from worker.sync.prices import refresh_many
from worker.sync.product_rows import apply_products
from worker.sync.products import set_shelf_status, sync_one_product, sync_products

PRODUCTS = 60


@pytest.fixture
def sandbox_config() -> Any:
    return SandboxConfig(products=PRODUCTS, seed=11, quirks=frozenset(QUIRKS), fail_rate=0.1)


@pytest.fixture
def calm_sandbox() -> Iterator[Any]:
    """Every shape quirk, no faults: for tests about ordering, not about retries."""
    running = start_sandbox(SandboxConfig(products=20, seed=5, quirks=frozenset(QUIRKS)))
    yield running
    running.stop()


def test_full_sync_with_every_quirk_and_faults_ends_exact_and_exits_zero(
    sandbox: Any, database_url: str, session_factory: sessionmaker[Session]
) -> None:
    env = {**env_for(sandbox, database_url), "READ_RETRIES": "8"}
    result = CliRunner().invoke(main, ["sync", "--prices", "all"], env=env)

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["pass"]["outcome"] == "ok" and summary["pass"]["new"] == PRODUCTS
    assert summary["prices"] == {
        "refreshed": PRODUCTS,
        "changed": PRODUCTS,
        "errors": 0,
        "retries": summary["prices"]["retries"],
    }
    retried = summary["pass"]["retries"] + summary["prices"]["retries"]
    # The faults happened and were absorbed: every request counted by the sandbox was either
    # one of the minimum (one page, one calendar per product) or a retry.
    assert retried > 0
    assert sandbox.state.traffic.stats()["total"] == 1 + PRODUCTS + retried
    assert_matches_truth(session_factory, sandbox, raw_as_truth=False)


def test_incremental_pass_counts_what_changed_with_minimum_requests_plus_retries(
    sandbox: Any, session_factory: sessionmaker[Session]
) -> None:
    supplier = make_client(sandbox.url, retries=8)
    today = sandbox.state.today
    first = sync_products(session_factory, supplier)
    assert first.outcome == "ok"
    refresh_many(session_factory, supplier, first.price_due, today=today, window_days=WINDOW)
    catalog = sandbox.state.catalog
    ids = catalog.authorized_ids()
    edited, shelved, removed, returning = ids[1], ids[2], ids[3:5], ids[6]
    catalog.deauthorize(returning)
    assert sync_products(session_factory, supplier).deauthorized == 1
    catalog.bump_version(edited, {"ProductName": "新名字"})
    catalog.set_shelf(shelved, on_shelf=catalog.product(shelved)["ProductStatus"] != 1)
    for pid in removed:
        catalog.deauthorize(pid)
    catalog.bump_version(returning, {"ProductName": "回来了"})
    catalog.reauthorize(returning)  # version-reset: back as new, at Version 0
    (added,) = catalog.add_products(1)
    sandbox.state.traffic.reset_stats()
    sent, retried = supplier.requests_sent, supplier.retries_sent

    result = sync_products(session_factory, supplier)
    batch = refresh_many(
        session_factory, supplier, result.price_due, today=today, window_days=WINDOW
    )

    assert result.outcome == "ok" and batch.errors == 0
    assert (result.new, result.changed, result.reauthorized, result.deauthorized) == (1, 2, 1, 2)
    assert result.version_regressions == 1
    assert sorted(result.price_due) == sorted([edited, returning, added])
    assert stored(session_factory, returning).product_name == "回来了"
    assert stored(session_factory, returning).version == 0
    pages, confirmations = 1, len(removed)  # each missing product confirmed gone, one by one
    minimum = pages + confirmations + len(result.price_due)
    made = supplier.requests_sent - sent
    assert made - (supplier.retries_sent - retried) == minimum
    assert sandbox.state.traffic.stats()["total"] == made
    assert result.retries + batch.retries == supplier.retries_sent - retried
    assert_matches_truth(session_factory, sandbox, raw_as_truth=False)


def test_product_back_at_version_zero_is_reauthorized_with_its_new_content(
    calm_sandbox: Any, session_factory: sessionmaker[Session]
) -> None:
    supplier = make_client(calm_sandbox.url)
    catalog = calm_sandbox.state.catalog
    pid = catalog.authorized_ids()[0]
    catalog.bump_version(pid, {"ProductName": "改版"})
    sync_products(session_factory, supplier)
    held = stored(session_factory, pid).version
    assert held >= 1
    catalog.deauthorize(pid)
    assert sync_one_product(session_factory, supplier, pid) == "deauthorized"
    catalog.bump_version(pid, {"ProductName": "重新上架"})
    catalog.reauthorize(pid)
    assert catalog.product(pid)["Version"] == 0

    result = sync_products(session_factory, supplier)

    row = stored(session_factory, pid)
    assert (row.is_authorized, row.version, row.product_name) == (True, 0, "重新上架")
    assert (result.reauthorized, result.version_regressions) == (1, 1)


def test_page_fetched_before_a_notice_or_deauthorization_cannot_undo_it(
    calm_sandbox: Any, session_factory: sessionmaker[Session]
) -> None:
    supplier = make_client(calm_sandbox.url)
    catalog = calm_sandbox.state.catalog
    sync_products(session_factory, supplier)
    on_shelf = [p for p in catalog.true_products() if p["ProductStatus"] == 1]
    shelved, gone = on_shelf[0], on_shelf[1]
    clock = clock_for(session_factory)

    # A pass reads its page, then a Status 0 notice lands, then the pass writes its page.
    page_fetched_at = clock.now()
    stale_page = [(Product.model_validate(p), p) for p in (shelved, gone)]
    catalog.set_shelf(shelved["ProductId"], on_shelf=False, bump=False)
    assert set_shelf_status(session_factory, shelved["ProductId"], 0) is True
    catalog.deauthorize(gone["ProductId"])
    assert sync_one_product(session_factory, supplier, gone["ProductId"]) == "deauthorized"
    before = last_seq(session_factory)

    outcomes = apply_products(session_factory, stale_page, fetched_at=page_fetched_at)

    assert outcomes == {shelved["ProductId"]: "stale", gone["ProductId"]: "stale"}
    assert stored(session_factory, shelved["ProductId"]).product_status == 0
    assert stored(session_factory, gone["ProductId"]).is_authorized is False
    assert changes_after(session_factory, before) == []
    # A page fetched after both is news again.
    catalog.reauthorize(gone["ProductId"])
    assert sync_products(session_factory, supplier).reauthorized == 1
    with session_factory() as session:
        kinds = session.scalars(select(Change.kind).where(Change.seq > before)).all()
    assert kinds == ["reauthorized"]


def test_a_client_without_faults_needs_no_retry(calm_sandbox: Any) -> None:
    with make_client(calm_sandbox.url) as supplier:
        assert len(supplier.list_products()) == 20 and supplier.retries_sent == 0
