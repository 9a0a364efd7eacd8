"""product entry fingerprint: products.raw_hash

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 07:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows stored before this revision have none (NULL): the next pass reads them in full.
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("raw_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_column("raw_hash")
