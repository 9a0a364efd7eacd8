"""Alembic environment: runs against the engine the caller passes in (see models.db.upgrade)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine

import models.catalog
from models.base import Base

try:
    import models.freshness
    import models.inbox
    import models.orders  # noqa: F401
except ImportError:  # pragma: no cover - tables added by a later migration
    pass

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if not isinstance(engine, Engine):
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        is_sqlite = connection.dialect.name == "sqlite"
        if is_sqlite:
            # Batch operations rebuild tables on SQLite; with foreign keys on, dropping the old
            # table would cascade-delete every child row. Must be set outside a transaction.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=is_sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
        if is_sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
