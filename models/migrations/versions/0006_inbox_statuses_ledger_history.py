"""inbox: invalid and held rows, their reason, masked raw body, next attempt; ledger history

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 01:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import models.base

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("raw_body", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("next_attempt_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_index("ix_inbox_status_next_attempt", "inbox", ["status", "next_attempt_at"])

    op.create_table(
        "order_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("supplier_order_id", sa.BigInteger(), nullable=False),
        sa.Column("inbox_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "effect",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("applied_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
    )
    op.create_index(
        op.f("ix_order_events_supplier_order_id"), "order_events", ["supplier_order_id"]
    )
    op.create_index(op.f("ix_order_events_inbox_id"), "order_events", ["inbox_id"])


def downgrade() -> None:
    op.drop_table("order_events")
    op.drop_index("ix_inbox_status_next_attempt", table_name="inbox")
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("next_attempt_at")
        batch.drop_column("raw_body")
        batch.drop_column("reason")
