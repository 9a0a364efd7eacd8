"""The two dialect-specific statements, in one place: insert-or-update and insert-unless-present.

PostgreSQL and SQLite agree on the ``ON CONFLICT`` syntax; only the two tested dialects are
supported.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_for(session: Session, table: Any) -> Any:
    """The dialect's ``INSERT`` for ``table`` (a model or a Table), which knows ``ON CONFLICT``."""
    return insert_for_dialect(session.get_bind().dialect.name, table)


def insert_for_dialect(dialect: str, table: Any) -> Any:
    """``insert_for`` by the dialect's name, for a statement built once per dialect."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no ON CONFLICT insert for {dialect}")  # pragma: no cover


def insert_ignore(
    session: Session, model: Any, values: dict[str, Any], *, returning: Any = None
) -> Any:
    """Insert a row unless a unique key clashes; return ``returning`` (default: the primary key).

    ``None`` means the row already existed. On PostgreSQL a clash with an uncommitted row waits
    for that transaction, so concurrent callers agree. (RETURNING, not rowcount: the driver
    reports -1 for these inserts.)
    """
    table = getattr(model, "__table__", model)
    column = returning if returning is not None else next(iter(table.primary_key.columns))
    statement = _insert_ignore_statement(session.get_bind().dialect.name, table, column)
    return session.execute(statement, values).scalar()


@cache
def _insert_ignore_statement(dialect: str, table: Any, returning: Any) -> Insert:
    """Built once per table: the values go in as parameters, so each call skips building the
    statement and its cache key (most of a small insert's Python time)."""
    statement: Insert = (
        insert_for_dialect(dialect, table).on_conflict_do_nothing().returning(returning)
    )
    return statement
