"""The one dialect-specific statement the callbacks need: insert unless the key exists."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


def insert_ignore(
    session: Session, model: Any, values: dict[str, Any], *, returning: Any = None
) -> Any:
    """Insert a row unless a unique key clashes; return ``returning`` (default: the primary key).

    ``None`` means the row already existed. On PostgreSQL a clash with an uncommitted row waits
    for that transaction, so concurrent callers agree. (RETURNING, not rowcount: the driver
    reports -1 for these inserts.)
    """
    dialect = session.get_bind().dialect.name
    table = getattr(model, "__table__", model)
    statement: Insert
    if dialect == "postgresql":
        statement = pg_insert(table).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite_insert(table).values(**values).on_conflict_do_nothing()
    else:  # pragma: no cover - only the two tested dialects are supported
        statement = insert(table).values(**values)
    column = returning if returning is not None else next(iter(table.primary_key.columns))
    return session.execute(statement.returning(column)).scalar()
