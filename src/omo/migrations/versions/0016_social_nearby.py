"""social.nearby: People Nearby presences (grid cells only), tracks, shake bindings

Revision ID: 0016_social_nearby
Revises: 0001
Create Date: 2026-12-03 10:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.core.db

revision: str = "0016_social_nearby"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "nearby_presences",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("cell", sa.String(length=16), nullable=False),
        sa.Column("handle", sa.String(length=32), nullable=False),
        sa.Column("visible_until", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("since", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_nearby_presences")),
        sa.UniqueConstraint("handle", name=op.f("uq_nearby_presences_handle")),
    )
    op.create_index(op.f("ix_nearby_presences_cell"), "nearby_presences", ["cell"])
    op.create_index(
        op.f("ix_nearby_presences_visible_until"), "nearby_presences", ["visible_until"]
    )
    op.create_table(
        "nearby_tracks",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("cell", sa.String(length=16), nullable=False),
        sa.Column("at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_nearby_tracks")),
    )
    op.create_index(op.f("ix_nearby_tracks_at"), "nearby_tracks", ["at"])
    op.create_table(
        "nearby_shake_bindings",
        sa.Column("beacon", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("target", sa.String(length=2048), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("beacon", name=op.f("pk_nearby_shake_bindings")),
    )
    op.create_index(
        op.f("ix_nearby_shake_bindings_merchant_id"), "nearby_shake_bindings", ["merchant_id"]
    )


def downgrade() -> None:
    op.drop_table("nearby_shake_bindings")
    op.drop_table("nearby_tracks")
    op.drop_table("nearby_presences")
