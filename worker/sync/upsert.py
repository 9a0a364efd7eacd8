"""The upsert of product rows: a row never replaces one fetched later than its own."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Insert, or_
from sqlalchemy.orm import Session

from models.catalog import Product
from models.dialect import insert_for_dialect

# Never rewritten by an upsert: the first sighting stays the first.
_KEEP_ON_CONFLICT = frozenset({"product_id", "first_seen_at"})


def upsert_products(session: Session, rows: Sequence[dict[str, Any]]) -> set[int]:
    """Insert or update product rows; a row never replaces one fetched later than its own.

    Every row carries ``fetched_at`` (when its fetch started, on the database's clock): the
    held row is replaced only when it was fetched no later. Returns the ids actually written,
    so the caller records change rows only for those (a newer fetch or notice stored meanwhile
    wins the race, whatever the Versions say).
    """
    if not rows:
        return set()
    columns = tuple(name for name in rows[0] if name not in _KEEP_ON_CONFLICT)
    statement = _upsert_statement(session.get_bind().dialect.name, columns)
    written = session.scalars(statement, list(rows))
    return set(written)


@functools.cache
def _upsert_statement(dialect: str, columns: tuple[str, ...]) -> Insert:
    """Built once per dialect and set of columns (building it cost more than a one-row page).

    The Core table and the rows as parameters, not ``.values(rows)``: the statement compiles
    once (cached) and SQLAlchemy batches the rows into multi-row INSERTs ("insertmanyvalues"),
    where a page compiled with a bind parameter per cell cost most of the product pass's CPU.
    """
    table = Product.__table__
    insert = insert_for_dialect(dialect, table)
    statement: Insert = insert.on_conflict_do_update(
        index_elements=[table.c.product_id],
        set_={name: insert.excluded[name] for name in columns},
        where=or_(table.c.fetched_at.is_(None), table.c.fetched_at <= insert.excluded.fetched_at),
    )
    return statement.returning(table.c.product_id)
