"""miniapps: verified mini programs, subscribed-message allowances, recently used list

Revision ID: 0017b_miniapps_bridge
Revises: 0017_miniapps
Create Date: 2026-12-03 13:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.core.db

revision: str = "0017b_miniapps_bridge"
down_revision: str | None = "0017_miniapps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("miniapps_apps") as batch:
        batch.add_column(
            sa.Column("verified_at", omo.core.db.UtcDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "miniapps_subscriptions",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("updated_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["miniapps_apps.id"],
            name=op.f("fk_miniapps_subscriptions_app_id_miniapps_apps"),
        ),
        sa.PrimaryKeyConstraint(
            "app_id", "user_id", "template_id", name=op.f("pk_miniapps_subscriptions")
        ),
    )
    op.create_index(
        op.f("ix_miniapps_subscriptions_user_id"), "miniapps_subscriptions", ["user_id"]
    )
    op.create_table(
        "miniapps_recents",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("opened_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["miniapps_apps.id"],
            name=op.f("fk_miniapps_recents_app_id_miniapps_apps"),
        ),
        sa.PrimaryKeyConstraint("user_id", "app_id", name=op.f("pk_miniapps_recents")),
    )
    op.create_index("ix_miniapps_recents_user_opened", "miniapps_recents", ["user_id", "opened_at"])


def downgrade() -> None:
    op.drop_index("ix_miniapps_recents_user_opened", table_name="miniapps_recents")
    op.drop_table("miniapps_recents")
    op.drop_index(op.f("ix_miniapps_subscriptions_user_id"), table_name="miniapps_subscriptions")
    op.drop_table("miniapps_subscriptions")
    with op.batch_alter_table("miniapps_apps") as batch:
        batch.drop_column("verified_at")
