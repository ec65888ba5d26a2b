"""miniapps: the backend origins a mini program's `request` bridge call may reach

Revision ID: 0018_miniapps_request_origins
Revises: 0017b_miniapps_bridge
Create Date: 2026-12-03 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.core.db

revision: str = "0018_miniapps_request_origins"
down_revision: str | None = "0017b_miniapps_bridge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "miniapps_request_origins",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("origin", sa.String(length=255), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["miniapps_apps.id"]),
        sa.PrimaryKeyConstraint("app_id", "origin"),
    )


def downgrade() -> None:
    op.drop_table("miniapps_request_origins")
