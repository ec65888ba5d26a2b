"""care: teams, agents, conversations, notes, canned replies, settings, search

Revision ID: 0013_care
Revises: 0001
Create Date: 2026-12-03 10:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.core.db

revision: str = "0013_care"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "care_canned_replies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("shortcut", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_canned_replies")),
    )
    with op.batch_alter_table("care_canned_replies", schema=None) as batch_op:
        batch_op.create_index(
            "ix_care_canned_shortcut", ["organisation_id", "shortcut"], unique=True
        )

    op.create_table(
        "care_conversations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("held_by_bot", sa.Boolean(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("assignee_id", sa.Uuid(), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("preview", sa.String(length=200), nullable=False),
        sa.Column("opened_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_message_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("first_response_at", omo.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", omo.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("first_response_due", omo.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("resolution_due", omo.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("first_response_breached", sa.Boolean(), nullable=False),
        sa.Column("resolution_breached", sa.Boolean(), nullable=False),
        sa.Column("csat_requested_at", omo.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("csat_score", sa.Integer(), nullable=True),
        sa.Column("csat_comment", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_conversations")),
    )
    with op.batch_alter_table("care_conversations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_care_conversations_customer", ["account_id", "openid", "opened_at"], unique=False
        )
        batch_op.create_index(
            "ix_care_conversations_inbox",
            ["organisation_id", "status", "last_message_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_care_conversations_queue",
            ["team_id", "assignee_id", "status", "opened_at"],
            unique=False,
        )

    op.create_table(
        "care_settings",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("first_response_minutes", sa.Integer(), nullable=True),
        sa.Column("resolution_minutes", sa.Integer(), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("hours", sa.JSON(), nullable=False),
        sa.Column("holidays", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("bot_first", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_care_settings")),
    )
    op.create_table(
        "care_teams",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("strategy", sa.String(length=14), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_teams")),
    )
    with op.batch_alter_table("care_teams", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_care_teams_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "care_agents",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("load", sa.Integer(), nullable=False),
        sa.Column("last_assigned_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["care_teams.id"], name=op.f("fk_care_agents_team_id_care_teams")
        ),
        sa.PrimaryKeyConstraint("team_id", "user_id", name=op.f("pk_care_agents")),
    )
    with op.batch_alter_table("care_agents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_care_agents_pick", ["team_id", "load", "last_assigned_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_care_agents_user_id"), ["user_id"], unique=False)

    op.create_table(
        "care_notes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("mentions", sa.JSON(), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["care_conversations.id"],
            name=op.f("fk_care_notes_conversation_id_care_conversations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_notes")),
    )
    with op.batch_alter_table("care_notes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_care_notes_conversation_id"), ["conversation_id"], unique=False
        )

    op.create_table(
        "care_team_accounts",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["care_teams.id"], name=op.f("fk_care_team_accounts_team_id_care_teams")
        ),
        sa.PrimaryKeyConstraint("team_id", "account_id", name=op.f("pk_care_team_accounts")),
    )
    with op.batch_alter_table("care_team_accounts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_care_team_accounts_account_id"), ["account_id"], unique=False
        )

    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE care_search USING fts5("
            "terms, message_id UNINDEXED, conversation_id UNINDEXED, text UNINDEXED, "
            "tokenize='unicode61')"
        )
    else:
        op.create_table(
            "care_search",
            sa.Column("message_id", sa.Uuid(), nullable=False),
            sa.Column("conversation_id", sa.Uuid(), nullable=False),
            sa.Column("terms", sa.Text(), nullable=False),
            sa.Column("text", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("message_id", name=op.f("pk_care_search")),
        )
        op.execute(
            "CREATE INDEX ix_care_search_terms ON care_search "
            "USING gin (to_tsvector('simple', terms))"
        )


def downgrade() -> None:
    op.execute("DROP TABLE care_search")
    for table in (
        "care_notes",
        "care_agents",
        "care_team_accounts",
        "care_teams",
        "care_settings",
        "care_conversations",
        "care_canned_replies",
    ):
        op.drop_table(table)
