"""The product pass and price refresh against the sandbox over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.catalog import Change, ChangeKind, DailyPrice, QuarantinedProduct
from models.catalog import Product as ProductRow
from supplier_sandbox.server import SandboxConfig
from tests.support.sync import (
    WINDOW,
    WriteProbe,
    assert_matches_truth,
    changes_after,
    full_sync,
    last_seq,
    make_client,
    stored,
)
from worker.clock import clock_for
from worker.supplier.client import PRICES_PATH, PRODUCTS_PATH, SupplierClient
from worker.supplier.errors import SupplierBadPayload
from worker.supplier.payloads import Product
from worker.sync.prices import refresh_prices
from worker.sync.product_rows import apply_products, product_row
from worker.sync.products import sync_one_product, sync_products
from worker.sync.upsert import upsert_products


def test_full_sync_equals_sandbox_truth(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    full_sync(session_factory, supplier, sandbox)
    assert_matches_truth(session_factory, sandbox)
    with session_factory() as session:
        kinds = session.execute(select(Change.kind, func.count()).group_by(Change.kind)).all()
    assert dict(kinds) == {"created": 30, "prices": 30}


def test_unchanged_pass_makes_only_page_requests_and_rewrites_no_row(
    engine: Engine, session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    full_sync(session_factory, supplier, sandbox)
    probe = WriteProbe(engine)
    probe.start()
    sandbox.state.traffic.reset_stats()

    result = sync_products(session_factory, supplier)

    assert (result.outcome, result.unchanged, result.price_due) == ("ok", 30, [])
    assert sandbox.state.traffic.stats()["by_path"] == {PRODUCTS_PATH: 1}
    assert probe.writes() == {}
    # A price refresh that finds nothing new writes no rule, day, session or change row either.
    probe = WriteProbe(engine, ("price_rules", "daily_prices", "sessions", "changes"))
    probe.start()
    assert (
        refresh_prices(
            session_factory, supplier, 10001, today=sandbox.state.today, window_days=WINDOW
        )
        is False
    )
    assert probe.writes() == {}


def test_write_probe_notices_a_rewrite_that_changes_nothing(
    engine: Engine, session_factory: sessionmaker[Session], supplier: SupplierClient
) -> None:
    sync_products(session_factory, supplier)
    probe = WriteProbe(engine)
    probe.start()
    with session_factory.begin() as session:
        session.execute(
            update(ProductRow)
            .where(ProductRow.product_id == 10001)
            .values(version=ProductRow.version)
        )
    assert probe.writes() == {"products": 1 if engine.dialect.name == "sqlite" else 2}


def test_each_kind_of_change_is_reflected_exactly_with_one_change_row(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    full_sync(session_factory, supplier, sandbox)
    catalog = sandbox.state.catalog
    bumped, repriced, shelved, withdrawn = catalog.authorized_ids()[:4]
    catalog.bump_version(bumped, {"ProductName": "改过的名字"})
    catalog.reprice(repriced, delta="1.50")
    catalog.set_shelf(shelved, on_shelf=False)
    catalog.deauthorize(withdrawn)
    (added,) = catalog.add_products(1)
    before = last_seq(session_factory)

    result = sync_products(session_factory, supplier)
    assert result.outcome == "ok"
    assert sorted(result.price_due) == sorted([bumped, added])
    assert sorted(changes_after(session_factory, before)) == sorted(
        [(bumped, "updated"), (shelved, "status"), (withdrawn, "deauthorized"), (added, "created")]
    )
    # The reprice bumped nothing: the price refresh (rolling or notified) is what catches it.
    before = last_seq(session_factory)
    today = sandbox.state.today
    changed = {
        pid: refresh_prices(session_factory, supplier, pid, today=today, window_days=WINDOW)
        for pid in catalog.authorized_ids()
    }
    assert {pid for pid, was in changed.items() if was} == {repriced, added}
    assert sorted(changes_after(session_factory, before)) == sorted(
        [(repriced, "prices"), (added, "prices")]
    )
    assert stored(session_factory, withdrawn).is_authorized is False
    assert_matches_truth(session_factory, sandbox)


def test_reappearing_product_is_reauthorized_once(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    full_sync(session_factory, supplier, sandbox)
    pid = sandbox.state.catalog.authorized_ids()[5]
    sandbox.state.catalog.deauthorize(pid)
    sync_products(session_factory, supplier)
    sandbox.state.catalog.reauthorize(pid)
    before = last_seq(session_factory)
    result = sync_products(session_factory, supplier)
    assert (result.reauthorized, result.price_due) == (1, [pid])
    assert changes_after(session_factory, before) == [(pid, "reauthorized")]
    assert stored(session_factory, pid).is_authorized is True


def test_pass_dying_midway_deauthorizes_nothing_and_next_pass_completes(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    full_sync(session_factory, supplier, sandbox)
    gone = sandbox.state.catalog.authorized_ids()[-1]
    sandbox.state.catalog.deauthorize(gone)
    sandbox.state.update_settings({"max_page_size": 10})
    # Page 2 onwards fails beyond the client's retries.
    fault = sandbox.state.traffic.add_fault(
        {"kind": "http500", "path": PRODUCTS_PATH, "after": 1, "count": -1}
    )

    failed = sync_products(session_factory, supplier)

    assert (failed.outcome, failed.is_complete, failed.deauthorized) == ("failed", False, 0)
    assert stored(session_factory, gone).is_authorized is True
    sandbox.state.traffic.clear_faults(fault.id)
    result = sync_products(session_factory, supplier)
    assert (result.outcome, result.is_complete, result.deauthorized) == ("ok", True, 1)
    assert stored(session_factory, gone).is_authorized is False


def test_mass_disappearance_records_an_anomaly_and_deauthorizes_nothing(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    full_sync(session_factory, supplier, sandbox)
    for pid in sandbox.state.catalog.authorized_ids()[:10]:
        sandbox.state.catalog.deauthorize(pid)
    sandbox.state.traffic.reset_stats()

    result = sync_products(session_factory, supplier)

    assert result.outcome == "anomaly" and "10 of 30" in (result.error or "")
    assert sandbox.state.traffic.stats()["by_path"] == {PRODUCTS_PATH: 1}  # no confirmations sent
    with session_factory() as session:
        assert session.scalar(select(func.count()).where(ProductRow.is_authorized)) == 30
    relaxed = sync_products(session_factory, supplier, max_deauthorize_share=0.5)
    assert (relaxed.outcome, relaxed.deauthorized) == ("ok", 10)


class TestCappedPageSize:
    @pytest.fixture
    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(products=30, seed=7, max_page_size=7)

    def test_sandbox_capping_page_size_still_yields_everything(
        self, session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
    ) -> None:
        result = full_sync(session_factory, supplier, sandbox)
        assert (result.outcome, result.seen, result.pages, result.drift) == ("ok", 30, 5, [])
        assert_matches_truth(session_factory, sandbox)


@pytest.mark.parametrize("kind", ["drift_insert", "drift_remove", "empty_page"])
def test_pagination_drift_is_healed_so_no_product_is_missed(
    kind: str, session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    sandbox.state.update_settings({"max_page_size": 10})
    full_sync(session_factory, supplier, sandbox)
    sandbox.state.traffic.add_fault({"kind": kind, "path": PRODUCTS_PATH, "after": 1, "count": 1})

    result = sync_products(session_factory, supplier)

    assert result.outcome == "ok" and result.is_complete, result.error
    assert result.drift, "the drift went unnoticed"
    with session_factory() as session:
        held = set(session.scalars(select(ProductRow.product_id).where(ProductRow.is_authorized)))
    assert held == set(sandbox.state.catalog.authorized_ids())


def test_invalid_product_is_quarantined_and_its_last_good_row_stays(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    full_sync(session_factory, supplier, sandbox)
    pid = sandbox.state.catalog.authorized_ids()[3]
    good = stored(session_factory, pid)
    sandbox.state.catalog.corrupt(pid, "version")

    result = sync_products(session_factory, supplier)

    assert (result.outcome, result.quarantined, result.deauthorized) == ("ok", 1, 0)
    with session_factory() as session:
        quarantined = session.scalar(
            select(QuarantinedProduct).where(QuarantinedProduct.product_id == pid)
        )
        assert (
            quarantined is not None
            and quarantined.raw["Version"] == "abc"
            and "Version" in quarantined.error
        )
    after = stored(session_factory, pid)
    assert (after.version, after.content_hash, after.is_authorized) == (
        good.version,
        good.content_hash,
        True,
    )
    sandbox.state.catalog.uncorrupt(pid)
    sync_products(session_factory, supplier)
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(QuarantinedProduct)) == 0


def test_one_upsert_writes_its_fresh_rows_and_skips_only_the_stale_ones(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    """The rows of a page go to the database together: the guard is per row, not per statement."""
    sync_products(session_factory, supplier)
    ids = sandbox.state.catalog.authorized_ids()[:6]
    payloads = {pid: sandbox.state.catalog.product(pid) for pid in ids}
    fetched_before = clock_for(session_factory).now()
    newer = ids[1::2]
    for pid in newer:
        sandbox.state.catalog.bump_version(pid, {"ProductName": "新"})
        assert sync_one_product(session_factory, supplier, pid) == "updated"
    now = stored(session_factory, ids[0]).updated_at

    with session_factory.begin() as session:
        rows = [
            product_row(Product.model_validate(payloads[pid]), payloads[pid], now, fetched_before)
            for pid in ids
        ]
        written = upsert_products(session, rows)

    assert written == set(ids) - set(newer)
    assert {pid for pid in ids if stored(session_factory, pid).product_name == "新"} == set(newer)


def test_older_fetch_never_overwrites_newer_whatever_the_version(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    sync_products(session_factory, supplier)
    pid = sandbox.state.catalog.authorized_ids()[0]
    old_payload = sandbox.state.catalog.product(pid)
    fetched_before = clock_for(session_factory).now()
    sandbox.state.catalog.bump_version(pid, {"ProductName": "新"})
    assert sync_one_product(session_factory, supplier, pid) == "updated"
    newer = stored(session_factory, pid)
    before = last_seq(session_factory)

    # A pass that read its page before the edit writes after the refresh: it must lose.
    old = Product.model_validate(old_payload)
    outcome = apply_products(session_factory, [(old, old_payload)], fetched_at=fetched_before)
    with session_factory.begin() as session:
        row = product_row(old, old_payload, newer.updated_at, fetched_before)
        assert upsert_products(session, [row]) == set()

    assert outcome == {pid: "stale"}
    assert (stored(session_factory, pid).version, stored(session_factory, pid).product_name) == (
        newer.version,
        "新",
    )
    assert changes_after(session_factory, before) == []

    # The same older Version fetched later is news (Version marks a change, it does not order).
    later = apply_products(session_factory, [(old, old_payload)])
    assert later == {pid: "updated"}
    assert stored(session_factory, pid).version == old.version


def test_sync_one_product_follows_the_supplier(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    sync_products(session_factory, supplier)
    pid = sandbox.state.catalog.authorized_ids()[2]
    assert sync_one_product(session_factory, supplier, pid) == "unchanged"
    sandbox.state.catalog.deauthorize(pid)
    assert sync_one_product(session_factory, supplier, pid) == "deauthorized"
    assert sync_one_product(session_factory, supplier, pid) == "unchanged"
    sandbox.state.catalog.reauthorize(pid)
    assert sync_one_product(session_factory, supplier, pid) == "reauthorized"


def test_set_shelf_status_writes_once_and_the_next_pass_agrees(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    from worker.sync.products import set_shelf_status

    sync_products(session_factory, supplier)
    pid = _on_shelf(sandbox)
    before = last_seq(session_factory)
    assert set_shelf_status(session_factory, pid, 0) is True
    assert set_shelf_status(session_factory, pid, 0) is False
    assert set_shelf_status(session_factory, 999_999, 0) is False
    assert changes_after(session_factory, before) == [(pid, "status")]
    sandbox.state.catalog.set_shelf(pid, on_shelf=False, bump=False)
    sync_products(session_factory, supplier)
    assert changes_after(session_factory, before) == [(pid, "status")]
    assert stored(session_factory, pid).product_status == 0


def test_days_leaving_the_window_are_dropped(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    from worker.sync.rolling import drop_expired_days

    full_sync(session_factory, supplier, sandbox)
    today = sandbox.state.today
    deleted = drop_expired_days(session_factory, today + timedelta(days=3))
    with session_factory() as session:
        earliest = session.scalar(select(func.min(DailyPrice.day)))
    assert deleted > 0 and earliest is not None and earliest >= today + timedelta(days=3)


def test_price_requests_are_one_per_product(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    sandbox.state.traffic.reset_stats()
    full_sync(session_factory, supplier, sandbox)
    assert sandbox.state.traffic.stats()["by_path"] == {PRODUCTS_PATH: 1, PRICES_PATH: 30}


def test_unavailable_supplier_fails_the_pass_cleanly(
    session_factory: sessionmaker[Session], sandbox: Any
) -> None:
    client = make_client(sandbox.url, retries=0)
    sandbox.state.traffic.add_fault({"kind": "not_json", "path": PRODUCTS_PATH, "count": -1})
    result = sync_products(session_factory, client)
    assert (result.outcome, result.seen) == ("failed", 0)
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(ProductRow)) == 0
    client.close()


_ = ChangeKind


def test_entry_without_product_id_postpones_deauthorization(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    full_sync(session_factory, supplier, sandbox)
    broken = sandbox.state.catalog.authorized_ids()[7]
    sandbox.state.catalog.corrupt(broken, "missing_id")

    result = sync_products(session_factory, supplier)

    assert result.outcome == "anomaly" and result.deauthorized == 0
    assert stored(session_factory, broken).is_authorized is True
    sandbox.state.catalog.uncorrupt(broken)
    assert sync_products(session_factory, supplier).outcome == "ok"


def _count_entry_reads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every product entry the pass validates, from now on."""
    from worker.supplier import envelope

    read = envelope.read_product_entry
    entries: list[Any] = []

    def counting(item: Any) -> Any:
        entries.append(item)
        return read(item)

    monkeypatch.setattr(envelope, "read_product_entry", counting)
    return entries


def test_entries_held_byte_for_byte_are_not_read_again(
    session_factory: sessionmaker[Session],
    supplier: SupplierClient,
    sandbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sync_products(session_factory, supplier)
    reads = _count_entry_reads(monkeypatch)

    result = sync_products(session_factory, supplier)

    assert (result.outcome, result.unchanged, len(reads)) == ("ok", 30, 0)
    edited = sandbox.state.catalog.authorized_ids()[4]
    sandbox.state.catalog.bump_version(edited, {"ProductDesc": "新的说明"})
    before = last_seq(session_factory)
    result = sync_products(session_factory, supplier)
    assert [entry["ProductId"] for entry in reads] == [edited]
    assert (result.changed, result.unchanged) == (1, 29)
    assert changes_after(session_factory, before) == [(edited, "updated")]
    assert stored(session_factory, edited).product_desc == "新的说明"


def test_rows_without_a_fingerprint_are_read_once_and_stamped_without_a_change(
    engine: Engine,
    session_factory: sessionmaker[Session],
    supplier: SupplierClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows stored before fingerprints existed: one full read, then held like any other."""
    sync_products(session_factory, supplier)
    with session_factory.begin() as session:
        session.execute(update(ProductRow).values(raw_hash=None))
    before = last_seq(session_factory)
    reads = _count_entry_reads(monkeypatch)

    result = sync_products(session_factory, supplier)

    assert (result.unchanged, len(reads)) == (30, 30)
    assert changes_after(session_factory, before) == []
    with session_factory() as session:
        assert session.scalar(select(func.count()).where(ProductRow.raw_hash.is_(None))) == 0
    probe = WriteProbe(engine)
    probe.start()
    reads.clear()
    assert sync_products(session_factory, supplier).unchanged == 30
    assert (len(reads), probe.writes()) == (0, {})


def test_page_fetched_after_a_shelf_notice_it_contradicts_is_applied(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    """The notice rewrote the row's payload: the entry held before it is no longer what is held."""
    from worker.sync.products import set_shelf_status

    sync_products(session_factory, supplier)
    pid = _on_shelf(sandbox)
    before = last_seq(session_factory)
    assert set_shelf_status(session_factory, pid, 0) is True

    result = sync_products(session_factory, supplier)

    assert (result.changed, result.price_due) == (1, [])
    assert changes_after(session_factory, before) == [(pid, "status"), (pid, "status")]
    assert stored(session_factory, pid).product_status == 1


class _ConfirmingSupplier:
    """The sandbox's client, but confirming two products missing from the pages its own way:
    one answers with a payload that does not validate, the other is there after all."""

    def __init__(self, client: SupplierClient, broken: int, present: Product) -> None:
        self._client, self._broken, self._present = client, broken, present

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_product(self, product_id: int) -> Product | None:
        if product_id == self._broken:
            raise SupplierBadPayload(f"product {product_id} is invalid: Version")
        if product_id == self._present.product_id:
            return self._present
        return self._client.get_product(product_id)


def test_confirming_missing_products_counts_each_outcome_once(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    """A product quarantined while confirming is still counted after another is confirmed."""
    full_sync(session_factory, supplier, sandbox)
    broken, present = sandbox.state.catalog.authorized_ids()[1:3]
    kept = supplier.get_product(present)
    assert kept is not None
    for product_id in (broken, present):
        sandbox.state.catalog.deauthorize(product_id)

    result = sync_products(session_factory, _ConfirmingSupplier(supplier, broken, kept))  # type: ignore[arg-type]

    assert (result.outcome, result.quarantined, result.deauthorized) == ("ok", 1, 0)
    assert stored(session_factory, present).is_authorized is True
    with session_factory() as session:
        held = session.scalar(
            select(QuarantinedProduct).where(QuarantinedProduct.product_id == broken)
        )
    assert held is not None and "Version" in held.error


def _on_shelf(sandbox: Any) -> int:
    """A product the sandbox has on shelf."""
    return next(
        p["ProductId"] for p in sandbox.state.catalog.true_products() if p["ProductStatus"] == 1
    )
