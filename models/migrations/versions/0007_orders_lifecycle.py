"""orders placed through the supplier: lifecycle status, snapshot, refund batches, history

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 02:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import models.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.drop_index(op.f("ix_orders_origin_order_id"), table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.alter_column("supplier_order_id", existing_type=sa.BigInteger(), nullable=True)
        batch.create_unique_constraint(op.f("uq_orders_origin_order_id"), ["origin_order_id"])
        batch.add_column(sa.Column("status", sa.String(length=24), nullable=True))
        batch.add_column(sa.Column("unknown_step", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("product_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("visit_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("session_code", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("quantity", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("unit_price", sa.Numeric(12, 2), nullable=True))
        batch.add_column(sa.Column("pay_money", sa.Numeric(12, 2), nullable=True))
        batch.add_column(
            sa.Column("redeemed_quantity", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("refunded_quantity", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("holders", JSON, nullable=True))
        batch.add_column(sa.Column("holder_keys", JSON, nullable=True))
        batch.add_column(sa.Column("snapshot", JSON, nullable=True))
        batch.add_column(sa.Column("remark", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("reconcile_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("next_reconcile_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_index(op.f("ix_orders_status"), "orders", ["status"])
    op.create_index(op.f("ix_orders_next_reconcile_at"), "orders", ["next_reconcile_at"])

    op.create_table(
        "order_refund_batches",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("order_ref", sa.BigInteger(), nullable=False),
        sa.Column("refund_id", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("voucher_codes", JSON, nullable=False),
        sa.Column("apply_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_ref"],
            ["orders.id"],
            name=op.f("fk_order_refund_batches_order_ref_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_refund_batches")),
        sa.UniqueConstraint("refund_id", name=op.f("uq_order_refund_batches_refund_id")),
    )
    op.create_index(
        op.f("ix_order_refund_batches_order_ref"), "order_refund_batches", ["order_ref"]
    )
    op.create_table(
        "order_history",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("order_ref", sa.BigInteger(), nullable=False),
        sa.Column("at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=24), nullable=True),
        sa.Column("to_status", sa.String(length=24), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", JSON, nullable=True),
        sa.ForeignKeyConstraint(
            ["order_ref"],
            ["orders.id"],
            name=op.f("fk_order_history_order_ref_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_history")),
    )
    op.create_index(op.f("ix_order_history_order_ref"), "order_history", ["order_ref"])


def downgrade() -> None:
    op.drop_table("order_history")
    op.drop_table("order_refund_batches")
    op.drop_index(op.f("ix_orders_next_reconcile_at"), table_name="orders")
    op.drop_index(op.f("ix_orders_status"), table_name="orders")
    with op.batch_alter_table("orders") as batch:
        for column in (
            "next_reconcile_at",
            "reconcile_attempts",
            "remark",
            "snapshot",
            "holder_keys",
            "holders",
            "refunded_quantity",
            "redeemed_quantity",
            "pay_money",
            "unit_price",
            "quantity",
            "session_code",
            "visit_date",
            "product_id",
            "unknown_step",
            "status",
        ):
            batch.drop_column(column)
        batch.drop_constraint(op.f("uq_orders_origin_order_id"), type_="unique")
        batch.alter_column("supplier_order_id", existing_type=sa.BigInteger(), nullable=False)
    op.create_index(op.f("ix_orders_origin_order_id"), "orders", ["origin_order_id"])
