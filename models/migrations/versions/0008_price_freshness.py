"""price freshness: refresh history, the scheduler's per-product state, read counts

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 04:05:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "price_refreshes",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("refreshed_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("interval_s", sa.Float(), nullable=True),
        sa.Column("changed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.product_id"],
            name=op.f("fk_price_refreshes_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_refreshes")),
    )
    op.create_index("ix_price_refreshes_product_id", "price_refreshes", ["product_id", "id"])
    op.create_index(op.f("ix_price_refreshes_refreshed_at"), "price_refreshes", ["refreshed_at"])
    op.create_table(
        "price_schedule",
        sa.Column("product_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("rate", sa.Float(), nullable=True),
        sa.Column("weight", sa.Float(), nullable=True),
        sa.Column("interval_s", sa.Float(), nullable=True),
        sa.Column("planned_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reset_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.product_id"],
            name=op.f("fk_price_schedule_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_price_schedule")),
    )
    op.create_index(op.f("ix_price_schedule_planned_at"), "price_schedule", ["planned_at"])
    op.create_table(
        "product_reads",
        sa.Column("product_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("pending", sa.BigInteger(), nullable=False),
        sa.Column("per_day", sa.Float(), nullable=False),
        sa.Column("folded_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_product_reads")),
    )


def downgrade() -> None:
    op.drop_table("product_reads")
    op.drop_index(op.f("ix_price_schedule_planned_at"), table_name="price_schedule")
    op.drop_table("price_schedule")
    op.drop_index(op.f("ix_price_refreshes_refreshed_at"), table_name="price_refreshes")
    op.drop_index("ix_price_refreshes_product_id", table_name="price_refreshes")
    op.drop_table("price_refreshes")
