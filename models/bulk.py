"""Many rows in one ``executemany``, without a parameter dictionary per row.

A full sync writes about a hundred price rows per product (days, sessions, rules). Given
``session.execute(table.insert(), dicts)``, SQLAlchemy builds and converts a parameter set per
row in Python, which cost more CPU than the database's own work. Here rows come as tuples in
column order, each column's bind conversion (the dialect's own: dates as text and money as a
number on SQLite, none on PostgreSQL) runs once per distinct value of a column over the batch,
and the driver gets the tuples. The database receives the same values the Core insert would
send (values equal in Python convert alike, as dates and money do).

A column type's conversions are also remembered from one call to the next (per dialect and
type object, a few thousand values at most): a sync stores the same few dozen dates and
prices batch after batch, and the stamps of a batch share one fetch time across columns.
Types whose equal values may convert differently (JSON documents, date-times not kept in
UTC) are converted value by value, as Core does.

On SQLite the rows go as multi-row ``INSERT ... VALUES (...), (...)`` statements of as many
rows as 999 parameters allow (the limit of older SQLite builds): SQLite runs an
``executemany`` as one statement per row, opening the table, its indexes and the foreign key's
parent afresh each time, which cost more than the inserting itself (multi-row statements
insert a day's row in about 60% of the CPU).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Boolean, Date, Integer, Numeric, String, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from models.base import UTCDateTime

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
    if connection.dialect.name != "sqlite":
        connection.exec_driver_sql(sql, _converted(rows, converters))
        return
    width = len(columns)
    flat = _flat(rows, width, converters)
    for first, count in _statements(len(rows), max(_SQLITE_PARAMETERS // width, 1)):
        values = flat[first * width : (first + count) * width]
        connection.exec_driver_sql(_multi_row(sql, width, count), values)


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
    connection.exec_driver_sql(sql, _converted(rows, converters))


def delete_many(session: Session, table: Table, key: str, values: Sequence[Any]) -> None:
    """Delete the rows of ``table`` whose ``key`` is one of ``values``, in one statement.

    The statement Core would send for an expanding ``IN`` parameter, without compiling it
    again on every call (about four times the CPU of sending it, for a statement that often
    deletes nothing)."""
    if not values:
        return
    connection = session.connection()
    sql, marker, converters = _prepared_delete(connection.dialect, table, key)
    parameters = tuple(converters[0][1].column(values) if converters else values)
    connection.exec_driver_sql(f"{sql}({', '.join([marker] * len(parameters))})", parameters)


def converted_rows(
    dialect: Dialect, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[Sequence[Any]]:
    """``rows`` (values in ``columns`` order) with each column's bind conversion applied, as
    ``insert_many`` sends them: for statements of the caller's own (an upsert)."""
    return _converted(rows, _converters(dialect, table, tuple(columns)))


class _Converter:
    """A column type's bind conversion, and what it gave for values already seen."""

    __slots__ = ("convert", "memo")

    def __init__(self, convert: Callable[[Any], Any], memoize: bool) -> None:
        self.convert = convert
        self.memo: dict[Any, Any] | None = {} if memoize else None

    def column(self, values: Sequence[Any]) -> list[Any]:
        """``values`` converted, each distinct value once while it stays remembered."""
        memo = self.memo
        if memo is None:
            return list(map(self.convert, values))
        try:
            return list(map(memo.__getitem__, values))  # the usual case: every value seen
        except KeyError:
            pass
        except TypeError:  # an unhashable value
            return list(map(self.convert, values))
        try:
            distinct = set(values)
        except TypeError:
            return list(map(self.convert, values))
        missing = distinct.difference(memo)
        if len(memo) + len(missing) > _MEMO_LIMIT:
            # A fresh memo, not a cleared one: a thread reading the old one keeps it whole.
            memo = self.memo = {}
            missing = distinct
        convert = self.convert
        for value in missing:
            memo[value] = convert(value)
        # Found through this call's own values: a column repeats a few objects, matched by
        # identity, where the memo's equal ones would be compared value by value.
        converted = dict(zip(distinct, map(memo.__getitem__, distinct), strict=True))
        return list(map(converted.__getitem__, values))


# Values a converter remembers: a sync's dates and prices fit many times over; the stamps,
# new every batch, start a fresh memo now and then.
_MEMO_LIMIT = 4096


def _converted(
    rows: Sequence[Sequence[Any]], converters: list[tuple[int, _Converter]]
) -> list[Sequence[Any]]:
    """The rows with each column's bind conversion applied (a list, as executemany takes)."""
    if not converters:
        return list(rows)
    by_column: list[Any] = list(zip(*rows, strict=True))
    for index, converter in converters:
        by_column[index] = converter.column(by_column[index])
    return list(zip(*by_column, strict=True))


def _flat(
    rows: Sequence[Sequence[Any]], width: int, converters: list[tuple[int, _Converter]]
) -> tuple[Any, ...]:
    """The rows' values one after the other, converted: a column is every ``width``-th value,
    so each is converted and put back with one slice, without transposing the rows."""
    flat = list(itertools.chain.from_iterable(rows))
    if len(flat) != len(rows) * width:
        raise ValueError(f"rows must have {width} values each")
    for index, converter in converters:
        flat[index::width] = converter.column(flat[index::width])
    return tuple(flat)


# Parameters per SQLite statement: what older builds allow (3.32 raised it to 32766), and past
# a hundred rows or so the gain flattens while a statement's compiling grows with its rows.
_SQLITE_PARAMETERS = 999


# What is left after the full statements goes as a multiple of this many rows and the rest,
# so a table's statements come in a few dozen sizes: SQLite's statement cache (128 per
# connection) keeps them compiled, where a remainder of any size was compiled afresh in most
# batches (compiling costs more than inserting the rows).
_ROUNDING = 16


def _statements(total: int, most: int) -> list[tuple[int, int]]:
    """The first row and row count of each statement for ``total`` rows, ``most`` at most."""
    full, left = divmod(total, most)
    sizes = [most] * full + [n for n in (left - left % _ROUNDING, left % _ROUNDING) if n]
    firsts = itertools.accumulate(sizes, initial=0)
    return list(zip(firsts, sizes, strict=False))


@functools.lru_cache(maxsize=256)
def _multi_row(sql: str, width: int, count: int) -> str:
    """``sql`` (one row of ``width`` markers) for ``count`` rows."""
    row = "(" + ", ".join(["?"] * width) + ")"
    return sql[: sql.rindex("VALUES") + len("VALUES")] + " " + ", ".join([row] * count)


@functools.lru_cache(maxsize=64)
def _prepared(
    dialect: Dialect, table: Table, columns: tuple[str, ...]
) -> tuple[str, list[tuple[int, _Converter]]]:
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
) -> tuple[str, list[tuple[int, _Converter]]]:
    """The UPDATE's text for this dialect (columns, then the key), and the conversions."""
    marker = _MARKERS.get(dialect.paramstyle)
    if marker is None:  # pragma: no cover - only the two tested drivers
        raise NotImplementedError(f"no bulk update for paramstyle {dialect.paramstyle}")
    preparer = dialect.identifier_preparer
    sets = ", ".join(f"{preparer.quote(name)} = {marker}" for name in columns)
    sql = f"UPDATE {preparer.format_table(table)} SET {sets} WHERE {preparer.quote(key)} = {marker}"
    return sql, _converters(dialect, table, (*columns, key))


@functools.lru_cache(maxsize=16)
def _prepared_delete(
    dialect: Dialect, table: Table, key: str
) -> tuple[str, str, list[tuple[int, _Converter]]]:
    """The DELETE's text up to its ``IN`` list, the parameter marker, and the key's conversion."""
    marker = _MARKERS.get(dialect.paramstyle)
    if marker is None:  # pragma: no cover - only the two tested drivers
        raise NotImplementedError(f"no bulk delete for paramstyle {dialect.paramstyle}")
    preparer = dialect.identifier_preparer
    sql = f"DELETE FROM {preparer.format_table(table)} WHERE {preparer.quote(key)} IN "
    return sql, marker, _converters(dialect, table, (key,))


def _converters(
    dialect: Dialect, table: Table, columns: tuple[str, ...]
) -> list[tuple[int, _Converter]]:
    """The dialect's bind conversion of each column that has one, by position."""
    converters: list[tuple[int, _Converter]] = []
    for index, name in enumerate(columns):
        converter = _converter(dialect, table.c[name].type)
        if converter is not None:
            converters.append((index, converter))
    return converters


@functools.lru_cache(maxsize=64)
def _converter(dialect: Dialect, type_: TypeEngine[Any]) -> _Converter | None:
    """One per dialect and type object, so columns sharing a type share what it converted
    (the money and timestamp columns of every table share theirs)."""
    convert = type_.dialect_impl(dialect).bind_processor(dialect)
    if convert is None:
        return None
    return _Converter(convert, memoize=_converts_by_value(type_))


def _converts_by_value(type_: TypeEngine[Any]) -> bool:
    """Whether values equal in Python convert alike, so a memo may stand for them.

    Not so for JSON (``1`` and ``True``) nor for plain date-times and times: an instant
    written in two time zones compares equal but is sent as two different texts. UTC
    timestamps are converted to UTC first, so equal ones convert alike."""
    if isinstance(type_, UTCDateTime):
        return True
    affinity = type_._type_affinity
    return affinity is not None and issubclass(affinity, (Boolean, Date, Integer, Numeric, String))
