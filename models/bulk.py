"""Many rows in one ``executemany``, without a parameter dictionary per row.

A full sync writes about a hundred price rows per product (days, sessions, rules). Given
``session.execute(table.insert(), dicts)``, SQLAlchemy builds and converts a parameter set per
row in Python, which cost more CPU than the database's own work. Here rows come as tuples in
column order, each column's bind conversion (the dialect's own: dates as text and money as a
number on SQLite, none on PostgreSQL) runs once per distinct value of a column over the batch,
and the driver gets the tuples. The database receives the same values the Core insert would
send (values equal in Python convert alike, as dates and money do).

On SQLite the rows go as multi-row ``INSERT ... VALUES (...), (...)`` statements of as many
rows as 999 parameters allow (the limit of older SQLite builds): SQLite runs an
``executemany`` as one statement per row, opening the table, its indexes and the foreign key's
parent afresh each time, which cost more than the inserting itself (multi-row statements
insert a day's row in about 60% of the CPU).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

# The parameter marker of each DB-API paramstyle SQLite and psycopg use.
_MARKERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def insert_many(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` (values in ``columns`` order) into ``table`` with one ``executemany``.

    The columns left out are the database's to fill (autoincrement keys, server defaults):
    no Python-side default is applied, so a column that has one must be given.
    """
    if not rows:
        return
    connection = session.connection()
    sql, converters = _prepared(connection.dialect, table, tuple(columns))
    parameters = _converted(rows, converters)
    if connection.dialect.name != "sqlite":
        connection.exec_driver_sql(sql, list(parameters))
        return
    width = len(columns)
    flat = tuple(itertools.chain.from_iterable(parameters))
    step = max(_SQLITE_PARAMETERS // width, 1) * width
    for offset in range(0, len(flat), step):
        values = flat[offset : offset + step]
        connection.exec_driver_sql(_multi_row(sql, width, len(values) // width), values)


def update_many(
    session: Session,
    table: Table,
    key: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Set ``columns`` of the row whose ``key`` is each row's last value, one ``executemany``
    (values in ``columns`` order, then the key), with the conversions ``insert_many`` makes."""
    if not rows:
        return
    connection = session.connection()
    sql, converters = _prepared_update(connection.dialect, table, key, tuple(columns))
    connection.exec_driver_sql(sql, list(_converted(rows, converters)))


def _converted(
    rows: Sequence[Sequence[Any]], converters: list[tuple[int, Callable[[Any], Any]]]
) -> Iterable[Sequence[Any]]:
    """The rows with each column's bind conversion applied, once per distinct value."""
    if not converters:
        return rows
    by_column: list[Any] = list(zip(*rows, strict=True))
    for index, convert in converters:
        values = by_column[index]
        try:
            # Once per distinct value: a batch holds a few dozen dates and prices.
            converted = {value: convert(value) for value in set(values)}
        except TypeError:  # unhashable values (JSON documents)
            by_column[index] = map(convert, values)
        else:
            by_column[index] = map(converted.__getitem__, values)
    return zip(*by_column, strict=True)


# Parameters per SQLite statement: what older builds allow (3.32 raised it to 32766), and past
# a hundred rows or so the gain flattens while a statement's compiling grows with its rows.
_SQLITE_PARAMETERS = 999


@functools.lru_cache(maxsize=256)
def _multi_row(sql: str, width: int, count: int) -> str:
    """``sql`` (one row of ``width`` markers) for ``count`` rows."""
    row = "(" + ", ".join(["?"] * width) + ")"
    return sql[: sql.rindex("VALUES") + len("VALUES")] + " " + ", ".join([row] * count)


@functools.lru_cache(maxsize=64)
def _prepared(
    dialect: Dialect, table: Table, columns: tuple[str, ...]
) -> tuple[str, list[tuple[int, Callable[[Any], Any]]]]:
    """The statement's text for this dialect, and the conversion of each column that has one."""
    marker = _MARKERS.get(dialect.paramstyle)
    if marker is None:  # pragma: no cover - only the two tested drivers
        raise NotImplementedError(f"no bulk insert for paramstyle {dialect.paramstyle}")
    if any(c.default is not None for c in table.columns if c.name not in columns):
        raise ValueError(f"{table.name}: a column with a Python-side default must be given")
    preparer = dialect.identifier_preparer
    names = ", ".join(preparer.quote(name) for name in columns)
    markers = ", ".join([marker] * len(columns))
    sql = f"INSERT INTO {preparer.format_table(table)} ({names}) VALUES ({markers})"
    return sql, _converters(dialect, table, columns)


@functools.lru_cache(maxsize=16)
def _prepared_update(
    dialect: Dialect, table: Table, key: str, columns: tuple[str, ...]
) -> tuple[str, list[tuple[int, Callable[[Any], Any]]]]:
    """The UPDATE's text for this dialect (columns, then the key), and the conversions."""
    marker = _MARKERS.get(dialect.paramstyle)
    if marker is None:  # pragma: no cover - only the two tested drivers
        raise NotImplementedError(f"no bulk update for paramstyle {dialect.paramstyle}")
    preparer = dialect.identifier_preparer
    sets = ", ".join(f"{preparer.quote(name)} = {marker}" for name in columns)
    sql = f"UPDATE {preparer.format_table(table)} SET {sets} WHERE {preparer.quote(key)} = {marker}"
    return sql, _converters(dialect, table, (*columns, key))


def _converters(
    dialect: Dialect, table: Table, columns: tuple[str, ...]
) -> list[tuple[int, Callable[[Any], Any]]]:
    """The dialect's bind conversion of each column that has one, by position."""
    converters: list[tuple[int, Callable[[Any], Any]]] = []
    for index, name in enumerate(columns):
        convert = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if convert is not None:
            converters.append((index, convert))
    return converters
