"""fetch order and retries: products.fetched_at and prices_error, sync_runs.retries and
version_regressions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 01:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows stored before this revision have no fetch time (NULL): any fetch lands on them.
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fetched_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("prices_error", sa.Text(), nullable=True))
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retries", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("version_regressions", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_column("version_regressions")
        batch_op.drop_column("retries")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_column("prices_error")
        batch_op.drop_column("fetched_at")
