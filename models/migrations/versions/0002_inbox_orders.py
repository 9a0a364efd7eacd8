"""callback inbox, replay cache and order ledger

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 01:51:45.092879
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import models.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("service_name", sa.String(length=64), nullable=False),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("received_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("processed_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_inbox_dedupe_key")),
    )
    op.create_index("ix_inbox_status_updated", "inbox", ["status", "updated_at"], unique=False)
    op.create_index(op.f("ix_inbox_subject"), "inbox", ["subject"], unique=False)

    op.create_table(
        "inbox_signatures",
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("seen_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signature", name=op.f("pk_inbox_signatures")),
    )
    op.create_index(
        op.f("ix_inbox_signatures_seen_at"), "inbox_signatures", ["seen_at"], unique=False
    )

    op.create_table(
        "orders",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("supplier_order_id", sa.BigInteger(), nullable=False),
        sa.Column("origin_order_id", sa.String(length=64), nullable=True),
        sa.Column("ticket_status", sa.Integer(), nullable=True),
        sa.Column("order_voucher_code", sa.String(length=255), nullable=True),
        sa.Column(
            "visitor_vouchers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("order_total", sa.Integer(), nullable=True),
        sa.Column("checked_number", sa.Integer(), nullable=False),
        sa.Column(
            "redeemed_vouchers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("voucher_type", sa.Integer(), nullable=True),
        sa.Column("refund_status", sa.Integer(), nullable=True),
        sa.Column(
            "refunded_vouchers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("supplier_order_id", name=op.f("uq_orders_supplier_order_id")),
    )
    op.create_index(op.f("ix_orders_origin_order_id"), "orders", ["origin_order_id"], unique=False)

    op.create_table(
        "order_refunds",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("supplier_order_id", sa.BigInteger(), nullable=False),
        sa.Column("inbox_id", sa.BigInteger(), nullable=False),
        sa.Column("refund_apply_no", sa.String(length=64), nullable=True),
        sa.Column("refund_status", sa.Integer(), nullable=False),
        sa.Column("refund_reason", sa.Text(), nullable=True),
        sa.Column(
            "voucher_codes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("is_supplier_forced", sa.Boolean(), nullable=False),
        sa.Column("received_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inbox.id"],
            name=op.f("fk_order_refunds_inbox_id_inbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_refunds")),
        sa.UniqueConstraint("inbox_id", name=op.f("uq_order_refunds_inbox_id")),
    )
    op.create_index(
        op.f("ix_order_refunds_supplier_order_id"),
        "order_refunds",
        ["supplier_order_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("order_refunds")
    op.drop_table("orders")
    op.drop_table("inbox_signatures")
    op.drop_table("inbox")
