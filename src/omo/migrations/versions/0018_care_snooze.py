"""care: snooze, a human's ownership of a conversation (bot hold), the round-robin pick index

Revision ID: 0018_care_snooze
Revises: 0013_care
Create Date: 2026-12-03 13:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.core.db

revision: str = "0018_care_snooze"
down_revision: str | None = "0013_care"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("care_conversations") as batch:
        batch.add_column(sa.Column("snoozed_at", omo.core.db.UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("snoozed_until", omo.core.db.UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("human_since", omo.core.db.UtcDateTime(), nullable=True))
    op.create_index(
        "ix_care_conversations_snoozed", "care_conversations", ["status", "snoozed_until"]
    )
    op.create_index("ix_care_agents_turn", "care_agents", ["team_id", "last_assigned_at"])


def downgrade() -> None:
    op.drop_index("ix_care_agents_turn", table_name="care_agents")
    op.drop_index("ix_care_conversations_snoozed", table_name="care_conversations")
    with op.batch_alter_table("care_conversations") as batch:
        batch.drop_column("human_since")
        batch.drop_column("snoozed_until")
        batch.drop_column("snoozed_at")
