"""The product upsert stores exactly what SQLAlchemy's own ``INSERT ... ON CONFLICT`` of the
same rows stores, and never replaces a row fetched later than its own."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Insert, delete, or_, select
from sqlalchemy.orm import Session, sessionmaker

from models.catalog import Product as ProductRow
from models.dialect import insert_for_dialect
from tests.sync.test_canonical_products import PRODUCT
from worker.supplier.payloads import Product
from worker.sync.product_rows import content_hash, product_row
from worker.sync.upsert import upsert_products

NOW = datetime(2026, 7, 1, 8, 30, 15, 123456, tzinfo=UTC)


def payloads(count: int) -> list[dict[str, Any]]:
    """Entries that differ in ids, text, nulls, dates and the JSON they keep."""
    entries = []
    for index in range(count):
        entry = {**PRODUCT, "ProductId": 500 + index, "Version": index % 3}
        if index % 2:
            entry.update(BeginEffectiveTime=None, BookingTime="", ProductDesc='it\'s "quoted" %s')
        if index % 5 == 0:
            entry.update(OutId=None, MinAge=3, Note={"nested": [1, None, "é"]})
        entries.append(entry)
    return entries


def rows_for(entries: list[dict[str, Any]], now: datetime, fetched_at: datetime) -> list[Any]:
    return [product_row(Product.model_validate(e), e, now, fetched_at) for e in entries]


def sqlalchemy_upsert(session: Session, rows: list[dict[str, Any]]) -> set[int]:
    """The Core statement the product pass ran before, for reference."""
    table = ProductRow.__table__
    insert = insert_for_dialect(session.get_bind().dialect.name, table)
    columns = [name for name in rows[0] if name not in ("product_id", "first_seen_at")]
    statement: Insert = insert.on_conflict_do_update(
        index_elements=[table.c.product_id],
        set_={name: insert.excluded[name] for name in columns},
        where=or_(table.c.fetched_at.is_(None), table.c.fetched_at <= insert.excluded.fetched_at),
    ).returning(table.c.product_id)
    return set(session.scalars(statement, rows))


def everything(sessions: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    with sessions() as session:
        table = ProductRow.__table__
        return [tuple(row) for row in session.execute(select(table).order_by(table.c.product_id))]


def test_rows_are_stored_as_sqlalchemy_stores_them(
    session_factory: sessionmaker[Session],
) -> None:
    entries = payloads(12)
    with session_factory.begin() as session:
        assert sqlalchemy_upsert(session, rows_for(entries, NOW, NOW)) == {
            e["ProductId"] for e in entries
        }
    reference = everything(session_factory)
    with session_factory.begin() as session:
        session.execute(delete(ProductRow))
    with session_factory.begin() as session:
        assert upsert_products(session, rows_for(entries, NOW, NOW)) == {
            e["ProductId"] for e in entries
        }
    assert everything(session_factory) == reference

    # And the updates of held rows alike: first_seen_at stays, the rest is replaced.
    later = NOW + timedelta(minutes=5)
    changed = [{**e, "ProductName": "新", "Version": 9} for e in entries]
    with session_factory.begin() as session:
        upsert_products(session, rows_for(changed, later, later))
    updated = everything(session_factory)
    with session_factory.begin() as session:
        session.execute(delete(ProductRow))
    with session_factory.begin() as session:
        sqlalchemy_upsert(session, rows_for(entries, NOW, NOW))
        sqlalchemy_upsert(session, rows_for(changed, later, later))
    assert everything(session_factory) == updated
    assert {row.first_seen_at for row in _stored(session_factory)} == {NOW}


def test_a_row_fetched_later_is_kept_row_by_row(session_factory: sessionmaker[Session]) -> None:
    entries = payloads(4)
    later = NOW + timedelta(minutes=5)
    with session_factory.begin() as session:
        upsert_products(session, rows_for(entries[:2], later, later))
    with session_factory.begin() as session:
        written = upsert_products(session, rows_for(entries, NOW, NOW))
    assert written == {e["ProductId"] for e in entries[2:]}
    assert {row.fetched_at for row in _stored(session_factory)} == {NOW, later}


def test_nothing_to_write_is_no_statement(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        assert upsert_products(session, []) == set()


def test_a_page_larger_than_one_statement_is_split(
    session_factory: sessionmaker[Session], monkeypatch: Any
) -> None:
    entries = payloads(7)
    with session_factory.begin() as session:
        monkeypatch.setattr(session.connection().dialect, "insertmanyvalues_page_size", 3)
        assert upsert_products(session, rows_for(entries, NOW, NOW)) == {
            e["ProductId"] for e in entries
        }
    assert len(_stored(session_factory)) == 7


def _stored(sessions: sessionmaker[Session]) -> list[ProductRow]:
    with sessions() as session:
        return list(session.scalars(select(ProductRow)))


def test_a_row_holds_its_dates_as_text_and_the_hash_reads_the_fields_as_json() -> None:
    entry = {
        **PRODUCT,
        "BeginEffectiveTime": "2026-07-04T10:00:00Z",
        "EndEffectiveTime": "not a date",
        "BookingTime": "16:30:45",
    }
    product = Product.model_validate(entry)
    row = product_row(product, entry, NOW)
    assert (row["begin_effective_time"], row["end_effective_time"], row["booking_time"]) == (
        "2026-07-04T10:00:00+00:00",
        "not a date",
        "16:30",
    )
    assert row["content_hash"] == content_hash(product)
    # The hash every held row was stored with: changing it would read every row as changed.
    fields = product.model_dump(mode="json", exclude={"version", "product_status"})
    expected = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    assert content_hash(product) == expected
