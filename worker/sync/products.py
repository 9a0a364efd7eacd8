"""The product pass and single-product refreshes: gather, plan (``worker.sync.plan``), apply.

Writes are per page, each in its own transaction, so a pass that dies midway keeps what it
stored and deauthorizes nothing: deauthorization happens only after a complete pass, product
by product, each confirmed with 1.1.1 ``productId=``.

Every write carries the time its fetch started, on the database's clock (``worker.clock``):
an upsert, a shelf-status notice, a deauthorization or a re-authorization lands only when its
fetch started later than the one the row holds. A page fetched before a notice cannot undo it.
A busy page is retried by the client; a pass fails only when a page still fails after that.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.catalog import Change, ChangeKind, SyncRun
from models.catalog import Product as ProductRow
from worker.clock import clock_for
from worker.supplier.contract import casefold_key
from worker.supplier.errors import SupplierBadPayload, SupplierError
from worker.supplier.payloads import ProductPage
from worker.supplier.port import Supplier
from worker.sync.plan import (
    PRICE_DUE_KINDS,
    PageShape,
    find_drift,
    plan_missing,
)
from worker.sync.product_rows import (
    UNCHANGED,
    ItemOutcome,
    apply_page,
    apply_products,
    deauthorize,
    quarantine,
    raw_of,
)

log = logging.getLogger(__name__)


class PassOutcome(StrEnum):
    """How a product pass ended (``sync_runs.outcome``)."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"  # a page still failing after the retries, or paging that kept drifting
    ANOMALY = "anomaly"  # the catalog shrank implausibly: nothing deauthorized


@dataclass
class PassResult:
    """What a product pass did; ``price_due`` lists products whose prices should be refreshed."""

    run_id: int
    outcome: PassOutcome = PassOutcome.RUNNING
    is_complete: bool = False
    pages: int = 0
    seen: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    deauthorized: int = 0
    reauthorized: int = 0
    quarantined: int = 0
    stale: int = 0
    version_regressions: int = 0
    errors: int = 0
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    error: str | None = None
    drift: list[str] = field(default_factory=list)
    price_due: list[int] = field(default_factory=list)


def _prefetched(pages: Iterator[ProductPage], depth: int = 2) -> Iterator[ProductPage]:
    """Fetch the next pages while this one is written: a pass costs max(fetch, write), not the sum."""
    box: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def pump() -> None:
        try:
            for page in pages:
                if stop.is_set():
                    return
                box.put(("page", page))
            box.put(("end", None))
        except BaseException as exc:  # handed to the consuming thread, which re-raises it
            box.put(("error", exc))

    thread = threading.Thread(target=pump, name="product-pages", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = box.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a pump waiting to put, then let it finish
            with contextlib.suppress(queue.Empty):
                box.get(timeout=0.05)
        thread.join()


def _start_run(sessions: sessionmaker[Session], kind: str) -> int:
    with sessions.begin() as session:
        run = SyncRun(kind=kind, started_at=utcnow(), outcome=PassOutcome.RUNNING)
        session.add(run)
        session.flush()
        return run.id


def _finish_run(sessions: sessionmaker[Session], result: PassResult) -> None:
    detail: dict[str, Any] = {"stale": result.stale}
    if result.version_regressions:
        detail["version_regressions"] = result.version_regressions
    if result.drift:
        detail["drift"] = result.drift[:20]
    with sessions.begin() as session:
        session.execute(
            update(SyncRun)
            .where(SyncRun.id == result.run_id)
            .values(
                finished_at=utcnow(),
                outcome=result.outcome,
                is_complete=result.is_complete,
                pages=result.pages,
                seen=result.seen,
                new=result.new,
                changed=result.changed,
                unchanged=result.unchanged,
                deauthorized=result.deauthorized,
                reauthorized=result.reauthorized,
                quarantined=result.quarantined,
                requests=result.requests,
                retries=result.retries,
                version_regressions=result.version_regressions,
                errors=result.errors,
                error=result.error,
                detail=detail,
            )
        )


_COUNTED = ("created", "updated", "status", "reauthorized", "quarantined", "stale")


@dataclass
class _FirstOutcomes:
    """Each product's first outcome in a pass ("unchanged" yields to a later one), and how many
    of each, kept as they change: a tally per page costs the page, not the pass so far."""

    by_id: dict[int, str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)

    def record(self, outcomes: dict[int, str]) -> None:
        for pid, outcome in outcomes.items():
            held = self.by_id.get(pid)
            if held is None or held == UNCHANGED:
                if held is not None:
                    self.counts[held] -= 1
                self.by_id[pid] = outcome
                self.counts[outcome] += 1


def _tally(result: PassResult, outcomes: dict[int, str], first: _FirstOutcomes) -> None:
    """Count each product once per pass, by the first thing that happened to it."""
    first.record(outcomes)
    counts = {kind: first.counts[kind] for kind in _COUNTED}
    result.seen = len(first.by_id)
    result.new = counts["created"]
    result.changed = counts["updated"] + counts["status"]
    result.reauthorized = counts["reauthorized"]
    result.quarantined = counts["quarantined"]
    result.stale = counts["stale"]
    result.unchanged = result.seen - sum(counts.values())


def sync_products(
    sessions: sessionmaker[Session],
    supplier: Supplier,
    *,
    max_deauthorize_share: float = 0.2,
    max_attempts: int = 3,
    on_page: Callable[[int, int], None] | None = None,
) -> PassResult:
    """One product pass: page everything, upsert what moved, then deauthorize what is confirmed gone.

    Never raises a ``SupplierError``: a failed pass is recorded with outcome ``failed``.
    Drifted paging (TotalCount moving, an id on two pages, a short page) is healed by paging
    again, up to ``max_attempts`` times; a pass that never pages cleanly is incomplete.
    """
    started = time.perf_counter()
    usage_before = supplier.usage()
    result = PassResult(run_id=_start_run(sessions, "products"))
    clock = clock_for(sessions)
    regressed: set[int] = set()
    first = _FirstOutcomes()
    clean_seen: set[int] = set()
    unnamed = 0
    try:
        for attempt in range(1, max_attempts + 1):
            shapes: list[PageShape] = []
            for page in _prefetched(supplier.iter_product_pages(stamp=clock.now)):
                result.pages += 1
                applied = apply_page(sessions, page, regressed=regressed)
                shapes.append(
                    PageShape(
                        page.page_index,
                        page.page_size,
                        page.total_count,
                        tuple(applied.ids),
                        applied.unnamed,
                    )
                )
                _tally(result, applied.outcomes, first)
                if on_page is not None:
                    on_page(len(first.by_id), page.total_count)
            problems = find_drift(shapes)
            if not problems:
                result.is_complete = True
                # What this clean attempt saw, not the union: a product seen only by a drifted
                # attempt may be gone, so it is confirmed like any other missing one.
                clean_seen = {pid for shape in shapes for pid in shape.ids}
                unnamed = sum(shape.unnamed for shape in shapes)
                break
            log.warning("product pass attempt %s drifted: %s", attempt, "; ".join(problems[:5]))
            result.drift.extend(f"attempt {attempt}: {p}" for p in problems)
        if result.is_complete:
            _confirm_missing(
                sessions,
                supplier,
                result,
                first,
                clean_seen,
                max_deauthorize_share,
                unnamed,
                regressed,
            )
        else:
            result.outcome, result.error = (
                PassOutcome.FAILED,
                "paging kept drifting; nothing deauthorized",
            )
    except SupplierError as exc:
        result.outcome, result.error = PassOutcome.FAILED, str(exc)[:1000]
        result.errors += 1
        log.warning("product pass %s failed: %s", result.run_id, exc)
    except BaseException as exc:
        result.outcome, result.error = PassOutcome.FAILED, f"{type(exc).__name__}: {exc}"[:1000]
        raise
    finally:
        if result.outcome is PassOutcome.RUNNING:
            result.outcome = PassOutcome.OK
        result.price_due = sorted(
            pid for pid, kind in first.by_id.items() if kind in PRICE_DUE_KINDS
        )
        spent = supplier.usage() - usage_before
        result.requests, result.retries = spent.requests, spent.retries
        result.version_regressions = len(regressed)
        result.seconds = time.perf_counter() - started
        _finish_run(sessions, result)
    return result


def _confirm_missing(
    sessions: sessionmaker[Session],
    supplier: Supplier,
    result: PassResult,
    first: _FirstOutcomes,
    seen: set[int],
    max_share: float,
    unnamed: int = 0,
    regressed: set[int] | None = None,
) -> None:
    with sessions() as session:
        authorized = session.scalars(
            select(ProductRow.product_id).where(ProductRow.is_authorized.is_(True))
        ).all()
    plan = plan_missing(authorized, seen, is_complete=True, max_share=max_share)
    if plan.anomaly is not None:
        result.outcome, result.error = PassOutcome.ANOMALY, plan.anomaly
        log.error("product pass %s: %s", result.run_id, plan.anomaly)
        return
    if unnamed and plan.to_confirm:
        # An entry without ProductId may be any of the missing ones: deleting on a guess is worse
        # than waiting for the supplier to send it whole again.
        result.outcome = PassOutcome.ANOMALY
        result.error = (
            f"{unnamed} product entries without ProductId; "
            f"{len(plan.to_confirm)} deauthorizations postponed"
        )
        log.error("product pass %s: %s", result.run_id, result.error)
        return
    clock = clock_for(sessions)
    for product_id in plan.to_confirm:
        fetched_at = clock.now()
        try:
            product = supplier.get_product(product_id)
        except SupplierBadPayload as exc:
            with sessions.begin() as session:
                quarantine(session, product_id, {"ProductId": product_id}, exc.message, utcnow())
            # Tallied like a page's outcome: a later tally recounts from these, not the field.
            _tally(result, {product_id: ItemOutcome.QUARANTINED}, first)
            continue
        except SupplierError as exc:
            result.errors += 1
            log.warning("could not confirm product %s is gone: %s", product_id, exc)
            continue
        if product is None:
            result.deauthorized += deauthorize(sessions, product_id, utcnow(), fetched_at)
            continue
        # Paging missed it but it is there: store it like any page item.
        outcomes = apply_products(
            sessions, [(product, raw_of(product))], fetched_at=fetched_at, regressed=regressed
        )
        _tally(result, outcomes, first)


def sync_one_product(sessions: sessionmaker[Session], supplier: Supplier, product_id: int) -> str:
    """Re-fetch one product (1.1.1 ``productId=``) and apply it; returns the change kind or "unchanged".

    Idempotent. Deauthorizes (with a change row) when the supplier no longer returns it.
    Either lands only when no later fetch or notice is stored for the product.
    """
    fetched_at = clock_for(sessions).now()
    try:
        product = supplier.get_product(product_id)
    except SupplierBadPayload as exc:
        with sessions.begin() as session:
            quarantine(session, product_id, {"ProductId": product_id}, exc.message, utcnow())
        return ItemOutcome.QUARANTINED
    if product is None:
        return (
            ChangeKind.DEAUTHORIZED.value
            if deauthorize(sessions, product_id, utcnow(), fetched_at)
            else UNCHANGED
        )
    outcome = apply_products(sessions, [(product, raw_of(product))], fetched_at=fetched_at)[
        product_id
    ]
    return UNCHANGED if outcome == ItemOutcome.STALE else outcome


def set_shelf_status(sessions: sessionmaker[Session], product_id: int, status: int) -> bool:
    """Apply an off/on-shelf notice at once, with one "status" change row; False when nothing to do.

    The notice is the newest word: the row's ``fetched_at`` becomes now (the database's clock),
    so a page fetched before it cannot undo it.
    """
    now = utcnow()
    noticed_at = clock_for(sessions).now()
    with sessions.begin() as session:
        row = session.scalar(
            select(ProductRow).where(ProductRow.product_id == product_id).with_for_update()
        )
        if row is None:
            return False
        if row.product_status == status:
            # Nothing to change, but the notice is still newer than any page fetched before it.
            if row.fetched_at is None or row.fetched_at < noticed_at:
                row.fetched_at = noticed_at
            return False
        raw = dict(row.raw)
        key = casefold_key(raw, "ProductStatus") or "ProductStatus"
        raw[key] = status
        row.raw, row.product_status, row.updated_at = raw, status, now
        row.raw_hash = None  # no longer the entry as received: the next one is read in full
        row.fetched_at = noticed_at
        session.add(
            Change(
                product_id=product_id, kind=ChangeKind.STATUS, version=row.version, created_at=now
            )
        )
    return True
