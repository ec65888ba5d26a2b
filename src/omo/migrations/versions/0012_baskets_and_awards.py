"""pay + coupons: product-scoped coupons, the basket of a payment, coupons awarded on payment

Revision ID: 0012_baskets_awards
Revises: 0004_coupons
Create Date: 2026-11-25 08:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.core.db

revision: str = "0012_baskets_awards"
down_revision: str | None = "0004_coupons"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("coupons_campaigns") as batch_op:
        batch_op.add_column(
            sa.Column("products", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    with op.batch_alter_table("pay_payments") as batch_op:
        batch_op.add_column(sa.Column("items", sa.JSON(), nullable=True))
    op.create_table(
        "coupons_payment_awards",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("merchant", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("min_spend_minor", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["coupons_campaigns.id"],
            name=op.f("fk_coupons_payment_awards_campaign_id_coupons_campaigns"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons_payment_awards")),
    )
    op.create_index(
        op.f("ix_coupons_payment_awards_merchant"),
        "coupons_payment_awards",
        ["merchant"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_coupons_payment_awards_merchant"), table_name="coupons_payment_awards")
    op.drop_table("coupons_payment_awards")
    with op.batch_alter_table("pay_payments") as batch_op:
        batch_op.drop_column("items")
    with op.batch_alter_table("coupons_campaigns") as batch_op:
        batch_op.drop_column("products")
