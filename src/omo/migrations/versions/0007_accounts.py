"""accounts: organisations, official accounts, follows, quotas, messages, broadcasts, webhooks

Revision ID: 0007_accounts
Revises: 0001
Create Date: 2026-11-25 05:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.core.db

revision: str = "0007_accounts"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts_organisations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts_organisations")),
    )
    op.create_table(
        "accounts_accounts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("avatar_url", sa.String(length=2048), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("welcome", sa.Text(), nullable=False),
        sa.Column("default_reply", sa.Text(), nullable=False),
        sa.Column("menu", sa.JSON(), nullable=False),
        sa.Column("webhook_url", sa.String(length=2048), nullable=False),
        sa.Column("webhook_token", sa.String(length=64), nullable=False),
        sa.Column("quota_override", sa.Integer(), nullable=True),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["accounts_organisations.id"],
            name=op.f("fk_accounts_accounts_organisation_id_accounts_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts_accounts")),
        sa.UniqueConstraint("app_id", name=op.f("uq_accounts_accounts_app_id")),
    )
    op.create_index(
        op.f("ix_accounts_accounts_organisation_id"),
        "accounts_accounts",
        ["organisation_id"],
        unique=False,
    )
    op.create_table(
        "accounts_members",
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("joined_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["accounts_organisations.id"],
            name=op.f("fk_accounts_members_organisation_id_accounts_organisations"),
        ),
        sa.PrimaryKeyConstraint("organisation_id", "user_id", name=op.f("pk_accounts_members")),
    )
    op.create_index(
        op.f("ix_accounts_members_user_id"), "accounts_members", ["user_id"], unique=False
    )
    op.create_table(
        "accounts_access_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts_accounts.id"],
            name=op.f("fk_accounts_access_tokens_account_id_accounts_accounts"),
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_accounts_access_tokens")),
    )
    op.create_index(
        op.f("ix_accounts_access_tokens_account_id"),
        "accounts_access_tokens",
        ["account_id"],
        unique=False,
    )
    op.create_table(
        "accounts_broadcasts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts_accounts.id"],
            name=op.f("fk_accounts_broadcasts_account_id_accounts_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts_broadcasts")),
    )
    op.create_index(
        "ix_accounts_broadcasts_account",
        "accounts_broadcasts",
        ["account_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "accounts_follows",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("following", sa.Boolean(), nullable=False),
        sa.Column("followed_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("scene", sa.String(length=64), nullable=False),
        sa.Column("last_interaction_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts_accounts.id"],
            name=op.f("fk_accounts_follows_account_id_accounts_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", "user_id", name=op.f("pk_accounts_follows")),
    )
    op.create_index(
        "ix_accounts_follows_account_openid",
        "accounts_follows",
        ["account_id", "openid"],
        unique=True,
    )
    op.create_index(
        op.f("ix_accounts_follows_user_id"), "accounts_follows", ["user_id"], unique=False
    )
    op.create_table(
        "accounts_keyword_rules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("match", sa.String(length=8), nullable=False),
        sa.Column("keyword", sa.String(length=100), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts_accounts.id"],
            name=op.f("fk_accounts_keyword_rules_account_id_accounts_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts_keyword_rules")),
    )
    op.create_index(
        op.f("ix_accounts_keyword_rules_account_id"),
        "accounts_keyword_rules",
        ["account_id"],
        unique=False,
    )
    op.create_table(
        "accounts_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts_accounts.id"],
            name=op.f("fk_accounts_messages_account_id_accounts_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts_messages")),
    )
    op.create_index(
        "ix_accounts_messages_thread",
        "accounts_messages",
        ["account_id", "user_id", "id"],
        unique=False,
    )
    op.create_table(
        "accounts_quotas",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("allowed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts_accounts.id"],
            name=op.f("fk_accounts_quotas_account_id_accounts_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", "period", name=op.f("pk_accounts_quotas")),
    )
    op.create_table(
        "accounts_tags",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=30), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts_accounts.id"],
            name=op.f("fk_accounts_tags_account_id_accounts_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts_tags")),
    )
    op.create_index(
        op.f("ix_accounts_tags_account_id"), "accounts_tags", ["account_id"], unique=False
    )
    op.create_table(
        "accounts_webhook_deliveries",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=False),
        sa.Column("updated_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts_accounts.id"],
            name=op.f("fk_accounts_webhook_deliveries_account_id_accounts_accounts"),
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_accounts_webhook_deliveries")),
    )
    op.create_index(
        op.f("ix_accounts_webhook_deliveries_account_id"),
        "accounts_webhook_deliveries",
        ["account_id"],
        unique=False,
    )
    op.create_table(
        "accounts_follower_tags",
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tag_id"],
            ["accounts_tags.id"],
            name=op.f("fk_accounts_follower_tags_tag_id_accounts_tags"),
        ),
        sa.PrimaryKeyConstraint("tag_id", "user_id", name=op.f("pk_accounts_follower_tags")),
    )


def downgrade() -> None:
    op.drop_table("accounts_follower_tags")
    op.drop_index(
        op.f("ix_accounts_webhook_deliveries_account_id"), table_name="accounts_webhook_deliveries"
    )
    op.drop_table("accounts_webhook_deliveries")
    op.drop_index(op.f("ix_accounts_tags_account_id"), table_name="accounts_tags")
    op.drop_table("accounts_tags")
    op.drop_table("accounts_quotas")
    op.drop_index("ix_accounts_messages_thread", table_name="accounts_messages")
    op.drop_table("accounts_messages")
    op.drop_index(op.f("ix_accounts_keyword_rules_account_id"), table_name="accounts_keyword_rules")
    op.drop_table("accounts_keyword_rules")
    op.drop_index(op.f("ix_accounts_follows_user_id"), table_name="accounts_follows")
    op.drop_index("ix_accounts_follows_account_openid", table_name="accounts_follows")
    op.drop_table("accounts_follows")
    op.drop_index("ix_accounts_broadcasts_account", table_name="accounts_broadcasts")
    op.drop_table("accounts_broadcasts")
    op.drop_index(op.f("ix_accounts_access_tokens_account_id"), table_name="accounts_access_tokens")
    op.drop_table("accounts_access_tokens")
    op.drop_index(op.f("ix_accounts_members_user_id"), table_name="accounts_members")
    op.drop_table("accounts_members")
    op.drop_index(op.f("ix_accounts_accounts_organisation_id"), table_name="accounts_accounts")
    op.drop_table("accounts_accounts")
    op.drop_table("accounts_organisations")
