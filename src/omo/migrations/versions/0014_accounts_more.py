"""accounts: notification templates and subscriptions, temporary media

Revision ID: 0014_accounts_more
Revises: 0007_accounts
Create Date: 2026-12-03 10:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.core.db

revision: str = "0014_accounts_more"
down_revision: str | None = "0007_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts_templates",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts_accounts.id"],
            name=op.f("fk_accounts_templates_account_id_accounts_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts_templates")),
    )
    op.create_index(
        op.f("ix_accounts_templates_account_id"), "accounts_templates", ["account_id"], unique=False
    )
    op.create_table(
        "accounts_template_subscriptions",
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("updated_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["accounts_templates.id"],
            name=op.f("fk_accounts_template_subscriptions_template_id_accounts_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "template_id", "user_id", name=op.f("pk_accounts_template_subscriptions")
        ),
    )
    op.create_index(
        op.f("ix_accounts_template_subscriptions_user_id"),
        "accounts_template_subscriptions",
        ["user_id"],
        unique=False,
    )
    op.create_table(
        "accounts_media",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts_accounts.id"],
            name=op.f("fk_accounts_media_account_id_accounts_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts_media")),
    )
    op.create_index(
        op.f("ix_accounts_media_account_id"), "accounts_media", ["account_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_accounts_media_account_id"), table_name="accounts_media")
    op.drop_table("accounts_media")
    op.drop_index(
        op.f("ix_accounts_template_subscriptions_user_id"),
        table_name="accounts_template_subscriptions",
    )
    op.drop_table("accounts_template_subscriptions")
    op.drop_index(op.f("ix_accounts_templates_account_id"), table_name="accounts_templates")
    op.drop_table("accounts_templates")
