"""Product rows: what a fetched product stores, and the writes of the product pass.

``apply_page`` and ``apply_products`` upsert valid products (each only over an older fetch)
and quarantine invalid ones; ``deauthorize`` and ``quarantine`` are the other row writes. Each
write that changes what consumers see appends a change row.

A page entry whose fingerprint (``entry_fingerprint``) is the one its authorized row holds is
the payload that row was stored from, byte for byte: it is unchanged without being validated
or hashed, which is most of what a pass over an unchanged catalog would otherwise cost.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import marshal
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple, TypeGuard, cast

from sqlalchemy import Select, Table, Update, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.bulk import insert_many
from models.catalog import Change, ChangeKind, QuarantinedProduct
from models.catalog import Product as ProductRow
from models.limits import INT64_MAX, INT64_MIN
from worker.clock import clock_for
from worker.supplier.contract import casefold_get
from worker.supplier.envelope import as_int
from worker.supplier.payloads import InvalidProduct, Product, ProductPage
from worker.sync.plan import (
    LocalProduct,
    RemoteProduct,
    plan_products,
)
from worker.sync.upsert import upsert_products

log = logging.getLogger(__name__)

# Payload fields whose column holds text rather than the parsed value.
_TEXT_COLUMNS = ("begin_effective_time", "end_effective_time", "booking_time")
_HASH_EXCLUDES = ("product_status", "version")
# Bump when reading a product entry changes (a field added or parsed differently), with a
# migration that clears ``products.raw_hash``: no held fingerprint then matches, so the next
# pass reads each entry in full once, stores what the new reading makes of it, and stamps
# the rows it finds unchanged again.
_ENTRY_READING = b"product-entry/1\n"
# One encoder for every hash: ``json.dumps`` with any option builds a new one per call.
_HASH_JSON = json.JSONEncoder(sort_keys=True)
_CHANGES = cast(Table, Change.__table__)
_CHANGE_COLUMNS = ("product_id", "kind", "version", "created_at")
_QUARANTINED = cast(Table, QuarantinedProduct.__table__)


class ItemOutcome(StrEnum):
    """What storing one fetched product did, besides the change kinds (created, updated, ...)."""

    UNCHANGED = "unchanged"
    STALE = "stale"  # a later fetch or notice is already stored
    QUARANTINED = "quarantined"


UNCHANGED = ItemOutcome.UNCHANGED


def content_hash(product: Product) -> str:
    """A hash of every contract field but Version and ProductStatus (each compared on its own)."""
    return _digest(_values(product))


def _values(product: Product) -> dict[str, Any]:
    """Every field as a JSON value: what ``content_hash`` reads, and the row but for its dates
    (one dump serves both)."""
    return product.model_dump(mode="json")


def _digest(values: Mapping[str, Any]) -> str:
    data = dict(values)
    for name in _HASH_EXCLUDES:
        del data[name]
    return hashlib.sha256(_HASH_JSON.encode(data).encode()).hexdigest()


def entry_fingerprint(raw: Any) -> str:
    """A fingerprint of a product entry exactly as received: keys, their order, values, types.

    ``marshal`` (format 0: no back-references, no interning marks, so equal entries write equal
    bytes) tells 1 from True, from 1.0 and from "1", in C and at about a third of what ``repr``
    costs; an entry holding what it cannot write (a Decimal, from a number with a fraction) is
    fingerprinted by its ``repr``, which tells a Decimal from its text. Two equal fingerprints
    are the same entry; a fingerprint that differs for the same entry (another Python, or the
    reading before this one) only costs a full read.
    """
    try:
        written = _ENTRY_READING + b"marshal\n" + marshal.dumps(raw, 0)
    except ValueError:
        written = _ENTRY_READING + b"repr\n" + repr(raw).encode()
    return hashlib.sha256(written).hexdigest()


def product_row(
    product: Product,
    raw: dict[str, Any],
    now: datetime,
    fetched_at: datetime | None = None,
    *,
    digest: str | None = None,
    fingerprint: str | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The full products row for an upsert (every column but first_seen_at's default);
    ``digest``, ``fingerprint`` and ``values`` when already computed (``content_hash``,
    ``entry_fingerprint``, ``_values``: the row takes that dictionary over)."""
    row = values if values is not None else _values(product)
    for name in _TEXT_COLUMNS:
        value = getattr(product, name)
        if isinstance(value, str):
            continue  # an informational date that did not parse, kept as sent
        if value is not None:
            row[name] = value.strftime("%H:%M") if name == "booking_time" else value.isoformat()
    row.update(
        fetched_at=fetched_at or now,
        raw=raw,
        content_hash=digest or content_hash(product),
        raw_hash=fingerprint or entry_fingerprint(raw),
        is_authorized=True,
        first_seen_at=now,
        last_seen_at=now,
        updated_at=now,
        deauthorized_at=None,
    )
    return row


class _Held(NamedTuple):
    """What the database holds about some ids: rows, their fingerprints, quarantined ids."""

    local: dict[int, LocalProduct]
    fingerprints: dict[int, str | None]
    quarantined: set[int]


@functools.cache
def _held_query() -> Select[Any]:
    """Built once: a page's read is the pass's one statement per page over an unchanged catalog."""
    products, quarantined = ProductRow.__table__, QuarantinedProduct.__table__
    return (
        select(
            products.c.product_id,
            products.c.version,
            products.c.content_hash,
            products.c.product_status,
            products.c.is_authorized,
            products.c.raw_hash,
            quarantined.c.id,
        )
        .outerjoin(quarantined, quarantined.c.product_id == products.c.product_id)
        .where(products.c.product_id.in_(bindparam("ids", expanding=True)))
    )


def _load_local(session: Session, ids: Iterable[int]) -> _Held:
    rows = session.connection().execute(_held_query(), {"ids": list(ids)})
    held = _Held({}, {}, set())
    for pid, version, digest, status, is_authorized, fingerprint, quarantine_id in rows:
        held.local[pid] = LocalProduct(pid, version, digest, status, is_authorized)
        held.fingerprints[pid] = fingerprint
        if quarantine_id is not None:
            held.quarantined.add(pid)
    return held


def raw_of(product: Product) -> dict[str, Any]:
    """A payload rebuilt from the model, for calls that return no raw item."""
    return product.model_dump(mode="json", by_alias=True)


class _Fetched(NamedTuple):
    """A validated product, the entry it came from and that entry's fingerprint."""

    product: Product
    raw: dict[str, Any]
    fingerprint: str


class PageApplied(NamedTuple):
    """What storing one page did: each id's outcome, and the ids the page named (its shape)."""

    outcomes: dict[int, str]
    ids: list[int]
    unnamed: int  # entries so broken they carry no ProductId


def _entry_id(item: Any) -> int | None:
    """The ProductId an entry seems to carry, to find its row (validation decides the real one)."""
    if not isinstance(item, dict):
        return None
    product_id = as_int(casefold_get(item, "ProductId"))
    return product_id if _is_storable_id(product_id) else None


def apply_page(
    sessions: sessionmaker[Session],
    page: ProductPage,
    *,
    now: datetime | None = None,
    regressed: set[int] | None = None,
) -> PageApplied:
    """Plan and write one page in one transaction, like ``apply_products``; an entry held byte
    for byte by its authorized row is unchanged and is neither validated nor hashed.

    Returns each id's outcome and the ids the entries carry (the page's shape).
    """
    now = now or utcnow()
    fetched_at = page.fetched_at or clock_for(sessions).now()
    entries = [(item, _entry_id(item), entry_fingerprint(item)) for item in page.entries]
    ids: list[int] = []
    unnamed = 0
    with sessions.begin() as session:
        queried = {key for _, key, _ in entries if key is not None}
        held = _load_local(session, queried)
        latest: dict[int, _Fetched | None] = {}  # None: held as is, nothing to read or write
        invalid: list[InvalidProduct] = []
        for item, key, fingerprint in entries:
            if (
                key is not None
                and held.fingerprints.get(key) == fingerprint
                and held.local[key].is_authorized
            ):
                latest[key] = None
                ids.append(key)
                continue
            entry = page.read_entry(item)
            if isinstance(entry, Product):
                latest[entry.product_id] = _Fetched(entry, item, fingerprint)
                ids.append(entry.product_id)
            elif entry.product_id is None:
                invalid.append(entry)
                unnamed += 1
            else:
                invalid.append(entry)
                ids.append(entry.product_id)
        unqueried = [pid for pid in latest if pid not in queried]
        if unqueried:  # validation read another ProductId than the entry seemed to carry
            more = _load_local(session, unqueried)
            held.local.update(more.local)
            held.fingerprints.update(more.fingerprints)
            held.quarantined.update(more.quarantined)
        fetched = {pid: item for pid, item in latest.items() if item is not None}
        unchanged = [pid for pid, item in latest.items() if item is None]
        outcomes = _store(session, fetched, unchanged, invalid, held, now, fetched_at, regressed)
        _stamp_fingerprints(session, fetched, held, outcomes)
    return PageApplied(outcomes, ids, unnamed)


@functools.cache
def _stamp_statement() -> Update:
    return (
        update(ProductRow)
        .where(
            ProductRow.product_id == bindparam("b_product_id"),
            ProductRow.version == bindparam("b_version"),
            ProductRow.content_hash == bindparam("b_content_hash"),
            ProductRow.product_status == bindparam("b_product_status"),
            ProductRow.is_authorized.is_(True),
            ProductRow.raw_hash.is_(None),
        )
        .values(raw_hash=bindparam("b_raw_hash"))
    )


def _stamp_fingerprints(
    session: Session, fetched: Mapping[int, _Fetched], held: _Held, outcomes: Mapping[int, str]
) -> None:
    """Give an unchanged row without a fingerprint (stored before fingerprints, or changed by a
    notice) the one of the entry just read as it, so the next pass need not read it again.

    Only while the row still holds exactly what the entry reads as: a notice stored meanwhile
    keeps it unknown. A row holding another fingerprint keeps it: a supplier that writes the
    same product another way on each page costs a read, never a write.
    """
    stamps = [
        {
            "b_product_id": pid,
            "b_version": item.product.version,
            "b_content_hash": held.local[pid].content_hash,
            "b_product_status": item.product.product_status,
            "b_raw_hash": item.fingerprint,
        }
        for pid, item in fetched.items()
        if outcomes.get(pid) == UNCHANGED and held.fingerprints.get(pid) is None
    ]
    if stamps:
        session.connection().execute(_stamp_statement(), stamps)


def apply_products(
    sessions: sessionmaker[Session],
    products: Sequence[tuple[Product, dict[str, Any]]],
    invalid: Sequence[InvalidProduct] = (),
    *,
    now: datetime | None = None,
    fetched_at: datetime | None = None,
    regressed: set[int] | None = None,
) -> dict[int, str]:
    """Plan and write one batch in one transaction; returns each id's outcome (a kind,
    "unchanged", or "stale" when a later fetch or notice is already stored).

    ``fetched_at`` is when the batch's fetch started (default: now on the database's clock).
    Ids written at a lower Version than held are added to ``regressed``.
    """
    now = now or utcnow()
    fetched_at = fetched_at or clock_for(sessions).now()
    fetched = {
        product.product_id: _Fetched(product, raw, entry_fingerprint(raw))
        for product, raw in products
    }
    with sessions.begin() as session:
        held = _load_local(session, fetched)
        return _store(session, fetched, [], invalid, held, now, fetched_at, regressed)


def _store(
    session: Session,
    fetched: Mapping[int, _Fetched],
    unchanged: Sequence[int],
    invalid: Sequence[InvalidProduct],
    held: _Held,
    now: datetime,
    fetched_at: datetime,
    regressed: set[int] | None,
) -> dict[int, str]:
    """Write what moved among ``fetched`` (``unchanged`` are valid and held as they are)."""
    local = held.local
    values = {pid: _values(item.product) for pid, item in fetched.items()}
    digests = {pid: _digest(values[pid]) for pid in fetched}
    plan = plan_products(
        (
            RemoteProduct(pid, item.product.version, digests[pid], item.product.product_status)
            for pid, item in fetched.items()
        ),
        local,
    )
    rows = [
        product_row(
            fetched[pid].product,
            fetched[pid].raw,
            now,
            fetched_at,
            digest=digests[pid],
            fingerprint=fetched[pid].fingerprint,
            values=values[pid],
        )
        for pid in plan.writes
    ]
    written = upsert_products(session, rows)
    for pid in plan.regressions:
        if pid in written:
            log.warning(
                "drift: product %s applied at Version %s, below the %s held",
                pid,
                fetched[pid].product.version,
                local[pid].version,
            )
            if regressed is not None:
                regressed.add(pid)
    outcomes: dict[int, str] = {}
    changes: list[tuple[int, str, int, datetime]] = []
    for pid, kind in plan.writes.items():
        if pid in written:
            changes.append((pid, kind.value, fetched[pid].product.version, now))
            outcomes[pid] = kind.value
        else:
            outcomes[pid] = ItemOutcome.STALE
    # One executemany, in order, without the unit of work or a parameter dictionary per row.
    insert_many(session, _CHANGES, _CHANGE_COLUMNS, changes)
    outcomes.update({pid: UNCHANGED for pid in plan.unchanged})
    outcomes.update({pid: UNCHANGED for pid in unchanged})
    # A valid entry ends its quarantine; only ids with a row in quarantine (or no product row,
    # so none read) cost a statement.
    valid = {*fetched, *unchanged}
    cleared = [pid for pid in valid if pid not in local or pid in held.quarantined]
    if cleared:  # Core: no quarantined row is loaded in this session for the ORM to update
        session.connection().execute(
            delete(_QUARANTINED).where(_QUARANTINED.c.product_id.in_(cleared))
        )
    for item in invalid:
        if _is_storable_id(item.product_id) and item.product_id not in valid:
            quarantine(session, item.product_id, item.raw, item.error, now)
            outcomes[item.product_id] = ItemOutcome.QUARANTINED
    return outcomes


def _is_storable_id(product_id: int | None) -> TypeGuard[int]:
    """Whether a ProductId fits the BigInteger key (an invalid entry's id is not validated)."""
    return product_id is not None and INT64_MIN <= product_id <= INT64_MAX


def quarantine(session: Session, product_id: int, raw: Any, error: str, now: datetime) -> None:
    """Keep a bad payload and why; rewritten only when it differs from what is held."""
    held = session.scalar(
        select(QuarantinedProduct).where(QuarantinedProduct.product_id == product_id)
    )
    if held is None:
        session.add(
            QuarantinedProduct(
                product_id=product_id, raw=raw, error=error, first_seen_at=now, last_seen_at=now
            )
        )
    elif held.raw != raw or held.error != error:
        held.raw, held.error, held.last_seen_at = raw, error, now
    log.warning("product %s quarantined: %s", product_id, error)


def deauthorize(
    sessions: sessionmaker[Session], product_id: int, now: datetime, fetched_at: datetime
) -> bool:
    """Soft-delete one confirmed-missing product with a change row; False when already so, or
    when the row holds a fetch that started after the confirming one (``fetched_at``)."""
    with sessions.begin() as session:
        version = session.scalar(
            update(ProductRow)
            .where(
                ProductRow.product_id == product_id,
                ProductRow.is_authorized.is_(True),
                or_(ProductRow.fetched_at.is_(None), ProductRow.fetched_at <= fetched_at),
            )
            .values(is_authorized=False, deauthorized_at=now, updated_at=now, fetched_at=fetched_at)
            .returning(ProductRow.version)
        )
        if version is None:
            return False
        session.add(
            Change(
                product_id=product_id, kind=ChangeKind.DEAUTHORIZED, version=version, created_at=now
            )
        )
    return True
