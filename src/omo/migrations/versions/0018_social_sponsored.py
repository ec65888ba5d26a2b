"""social: sponsored posts, their impressions per person and day, people's opt-outs

Revision ID: 0018_social_sponsored
Revises: 0015_social
Create Date: 2026-12-03 13:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.core.db

revision: str = "0018_social_sponsored"
down_revision: str | None = "0015_social"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "social_sponsored",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("creator_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("card", sa.JSON(), nullable=True),
        sa.Column("followers_only", sa.Boolean(), nullable=False),
        sa.Column("tag_ids", sa.JSON(), nullable=False),
        sa.Column("place", sa.JSON(), nullable=True),
        sa.Column("daily_cap", sa.Integer(), nullable=False),
        sa.Column("starts_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", omo.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_social_sponsored")),
    )
    op.create_index(op.f("ix_social_sponsored_account_id"), "social_sponsored", ["account_id"])
    op.create_index(op.f("ix_social_sponsored_ends_at"), "social_sponsored", ["ends_at"])
    op.create_table(
        "social_sponsored_impressions",
        sa.Column("sponsored_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("shown", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sponsored_id"],
            ["social_sponsored.id"],
            name=op.f("fk_social_sponsored_impressions_sponsored_id_social_sponsored"),
        ),
        sa.PrimaryKeyConstraint(
            "sponsored_id", "user_id", "day", name=op.f("pk_social_sponsored_impressions")
        ),
    )
    op.create_table(
        "social_sponsored_opt_outs",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "account_id", name=op.f("pk_social_sponsored_opt_outs")),
    )


def downgrade() -> None:
    op.drop_table("social_sponsored_opt_outs")
    op.drop_table("social_sponsored_impressions")
    op.drop_table("social_sponsored")
