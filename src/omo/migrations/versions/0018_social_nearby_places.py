"""social.nearby: official accounts' places, shake pairs that can greet

Revision ID: 0018_social_nearby_places
Revises: 0016_social_nearby
Create Date: 2026-12-03 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.core.db

revision: str = "0018_social_nearby_places"
down_revision: str | None = "0016_social_nearby"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "nearby_account_places",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("updated_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_nearby_account_places")),
    )
    op.create_index(
        op.f("ix_nearby_account_places_organisation_id"),
        "nearby_account_places",
        ["organisation_id"],
    )
    op.create_table(
        "nearby_shake_matches",
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("until", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_nearby_shake_matches")),
    )
    op.create_index(op.f("ix_nearby_shake_matches_until"), "nearby_shake_matches", ["until"])


def downgrade() -> None:
    op.drop_table("nearby_shake_matches")
    op.drop_table("nearby_account_places")
