"""The upsert of product rows: a row never replaces one fetched later than its own.

The rows go to the driver as tuples in multi-row ``INSERT ... ON CONFLICT`` statements, each
column's bind conversion (the dialect's own: UTC dates as text on SQLite, the payload as JSON)
made as ``models.bulk`` makes it, once per distinct value. Given parameter dictionaries,
SQLAlchemy built and converted a parameter set per row in Python, the largest share of a new
product's CPU in a pass; a page's rows share their four dates, which now convert once. The statement is the one SQLAlchemy
rendered for these rows (``tests/sync/test_upsert.py`` compares them).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from models.bulk import converted_rows
from models.catalog import Product

# Never rewritten by an upsert: the first sighting stays the first.
_KEEP_ON_CONFLICT = frozenset({"product_id", "first_seen_at"})
_PRODUCTS = cast(Table, Product.__table__)
# The parameter marker of each DB-API paramstyle SQLite and psycopg use.
_MARKERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def upsert_products(session: Session, rows: Sequence[dict[str, Any]]) -> set[int]:
    """Insert or update product rows; a row never replaces one fetched later than its own.

    Every row carries ``fetched_at`` (when its fetch started, on the database's clock): the
    held row is replaced only when it was fetched no later. Returns the ids actually written,
    so the caller records change rows only for those (a newer fetch or notice stored meanwhile
    wins the race, whatever the Versions say). Every row has the first row's keys.
    """
    if not rows:
        return set()
    connection = session.connection()
    dialect = connection.dialect
    columns = tuple(rows[0])
    _check_columns(columns)
    values = converted_rows(
        dialect, _PRODUCTS, columns, [itemgetter(*columns)(row) for row in rows]
    )
    width = len(columns)
    per_statement = max(
        1, min(dialect.insertmanyvalues_page_size, dialect.insertmanyvalues_max_parameters // width)
    )
    written: set[int] = set()
    for start in range(0, len(values), per_statement):
        batch = values[start : start + per_statement]
        sql = _upsert_sql(dialect, columns, len(batch))
        flat = tuple(itertools.chain.from_iterable(batch))
        written.update(connection.exec_driver_sql(sql, flat).scalars())
    return written


def _check_columns(columns: tuple[str, ...]) -> None:
    """A column left out would get its Python-side default from SQLAlchemy, which these
    statements do not apply: every such column must be given."""
    missing = [c.name for c in _PRODUCTS.columns if c.default is not None and c.name not in columns]
    if missing:
        raise ValueError(f"products: columns with a Python-side default must be given: {missing}")


@functools.lru_cache(maxsize=64)
def _upsert_sql(dialect: Dialect, columns: tuple[str, ...], count: int) -> str:
    """``INSERT ... VALUES`` of ``count`` rows, each replacing only a row fetched no later,
    returning the ids written: the statement SQLAlchemy renders for them, without PostgreSQL's
    casts (in a multi-row ``INSERT`` each value is typed by its column all the same)."""
    marker = _MARKERS.get(dialect.paramstyle)
    if marker is None or dialect.name not in ("postgresql", "sqlite"):  # pragma: no cover
        raise NotImplementedError(f"no product upsert for {dialect.name} ({dialect.paramstyle})")
    quote = dialect.identifier_preparer.quote
    table = dialect.identifier_preparer.format_table(_PRODUCTS)
    names = [quote(name) for name in columns]
    row = "(" + ", ".join([marker] * len(columns)) + ")"
    updated = ", ".join(
        f"{quoted} = excluded.{quoted}"
        for name, quoted in zip(columns, names, strict=True)
        if name not in _KEEP_ON_CONFLICT
    )
    fetched_at = quote("fetched_at")
    return (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES {', '.join([row] * count)} "
        f"ON CONFLICT ({quote('product_id')}) DO UPDATE SET {updated} "
        f"WHERE {table}.{fetched_at} IS NULL OR {table}.{fetched_at} <= excluded.{fetched_at} "
        f"RETURNING {quote('product_id')}"
    )
