"""catalog tables

Revision ID: 0001
Revises:
Create Date: 2026-11-26 01:47:50.309181
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import models.base

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_changes")),
    )
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_changes_product_id"), ["product_id"], unique=False)

    op.create_table(
        "products",
        sa.Column("product_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("product_code", sa.String(length=255), nullable=True),
        sa.Column("is_ticket", sa.Integer(), nullable=True),
        sa.Column("ticket_get_address", sa.Text(), nullable=True),
        sa.Column("product_name", sa.String(length=500), nullable=False),
        sa.Column("product_desc", sa.Text(), nullable=True),
        sa.Column("entrance_mode", sa.Integer(), nullable=True),
        sa.Column("product_kind", sa.String(length=255), nullable=True),
        sa.Column("adult_number", sa.Integer(), nullable=True),
        sa.Column("child_number", sa.Integer(), nullable=True),
        sa.Column("max_number_by_order", sa.Integer(), nullable=True),
        sa.Column("max_number_by_mobile", sa.Integer(), nullable=True),
        sa.Column("limit_day_by_mobile", sa.Integer(), nullable=True),
        sa.Column("max_number_by_card_id", sa.Integer(), nullable=True),
        sa.Column("limit_day_by_card_id", sa.Integer(), nullable=True),
        sa.Column("customer_set", sa.Integer(), nullable=True),
        sa.Column("total_stock", sa.Integer(), nullable=True),
        sa.Column("product_status", sa.Integer(), nullable=False),
        sa.Column("refund_set", sa.Integer(), nullable=True),
        sa.Column("scenic_spots", sa.String(length=500), nullable=True),
        sa.Column("scenic_id", sa.BigInteger(), nullable=True),
        sa.Column("out_id", sa.String(length=255), nullable=True),
        sa.Column("min_age", sa.Integer(), nullable=True),
        sa.Column("max_age", sa.Integer(), nullable=True),
        sa.Column("effective_time_mode", sa.Integer(), nullable=True),
        sa.Column("effective_time", sa.Integer(), nullable=True),
        sa.Column("become_effective_time", sa.Integer(), nullable=True),
        sa.Column("begin_effective_time", sa.String(length=32), nullable=True),
        sa.Column("end_effective_time", sa.String(length=32), nullable=True),
        sa.Column("booking_time", sa.String(length=5), nullable=True),
        sa.Column(
            "raw",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("is_authorized", sa.Boolean(), nullable=False),
        sa.Column("first_seen_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deauthorized_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("prices_refreshed_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("prices_hash", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_products")),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_products_is_authorized"), ["is_authorized"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_products_prices_refreshed_at"), ["prices_refreshed_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_products_product_status"), ["product_status"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_products_scenic_id"), ["scenic_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_products_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "quarantined_products",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("product_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "raw",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("first_seen_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantined_products")),
        sa.UniqueConstraint("product_id", name=op.f("uq_quarantined_products_product_id")),
    )
    op.create_table(
        "sync_runs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("started_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("is_complete", sa.Boolean(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("seen", sa.Integer(), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("deauthorized", sa.Integer(), nullable=False),
        sa.Column("reauthorized", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("prices_refreshed", sa.Integer(), nullable=False),
        sa.Column("prices_changed", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
    )
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_runs_kind"), ["kind"], unique=False)

    op.create_table(
        "daily_prices",
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("sale_price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("market_price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("booking_days", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.product_id"],
            name=op.f("fk_daily_prices_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_id", "day", name=op.f("pk_daily_prices")),
    )
    op.create_table(
        "price_rules",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("price_type", sa.Integer(), nullable=False),
        sa.Column("begin_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("daily_stock", sa.Integer(), nullable=False),
        sa.Column("market_price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("sale_price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("booking_day", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.product_id"],
            name=op.f("fk_price_rules_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_rules")),
    )
    with op.batch_alter_table("price_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_price_rules_product_id"), ["product_id"], unique=False)

    op.create_table(
        "sessions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("start_time", sa.String(length=8), nullable=False),
        sa.Column("end_time", sa.String(length=8), nullable=False),
        sa.Column("seats_code", sa.String(length=255), nullable=False),
        sa.Column("seats_num", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.product_id"],
            name=op.f("fk_sessions_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index("ix_sessions_product_day", ["product_id", "day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_product_day")

    op.drop_table("sessions")
    with op.batch_alter_table("price_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_price_rules_product_id"))

    op.drop_table("price_rules")
    op.drop_table("daily_prices")
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_runs_kind"))

    op.drop_table("sync_runs")
    op.drop_table("quarantined_products")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_products_updated_at"))
        batch_op.drop_index(batch_op.f("ix_products_scenic_id"))
        batch_op.drop_index(batch_op.f("ix_products_product_status"))
        batch_op.drop_index(batch_op.f("ix_products_prices_refreshed_at"))
        batch_op.drop_index(batch_op.f("ix_products_is_authorized"))

    op.drop_table("products")
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_changes_product_id"))

    op.drop_table("changes")
