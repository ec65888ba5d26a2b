"""pay: merchant applications reviewed by a platform operator

Revision ID: 0019_pay_merchant_review
Revises: 0012_baskets_awards
Create Date: 2026-12-03 13:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.core.db

revision: str = "0019_pay_merchant_review"
down_revision: str | None = "0012_baskets_awards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Merchants that exist already were taking payments: they stay approved.
    with op.batch_alter_table("pay_merchants") as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="approved")
        )
        batch_op.add_column(sa.Column("reviewed_by", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column("reviewed_at", omo.core.db.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("review_reason", sa.String(length=500), nullable=True))
        batch_op.create_index("ix_pay_merchants_status", ["status"])


def downgrade() -> None:
    with op.batch_alter_table("pay_merchants") as batch_op:
        batch_op.drop_index("ix_pay_merchants_status")
        batch_op.drop_column("review_reason")
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("reviewed_by")
        batch_op.drop_column("status")
