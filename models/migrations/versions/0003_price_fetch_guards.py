"""price fetch guards: fetch start, last attempt, stored window

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 02:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("prices_fetched_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("prices_attempted_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("prices_window_start", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("prices_window_end", sa.Date(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_products_prices_attempted_at"), ["prices_attempted_at"], unique=False
        )
    # Refreshed products count as attempted then; their fetch start and window stay unknown
    # (NULL), so each product's first refresh after the upgrade replaces its calendar once.
    op.execute("UPDATE products SET prices_attempted_at = prices_refreshed_at")


def downgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_products_prices_attempted_at"))
        batch_op.drop_column("prices_window_end")
        batch_op.drop_column("prices_window_start")
        batch_op.drop_column("prices_attempted_at")
        batch_op.drop_column("prices_fetched_at")
