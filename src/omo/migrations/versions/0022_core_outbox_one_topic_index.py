"""core: the outbox keeps one index on its topic, (topic, id)

The single-column `topic` index from 0001 is a prefix of `ix_outbox_events_topic_id` (0018):
every lookup by topic can use the composite one, while each event written paid for both.
Every chat message and payment writes an outbox event: one index insert (and page) fewer.

Revision ID: 0022_core_outbox_one_topic_index
Revises: 0018_messaging_outbox_topic
Create Date: 2026-12-08 01:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0022_core_outbox_one_topic_index"
down_revision: str | None = "0018_messaging_outbox_topic"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_outbox_events_topic", table_name="outbox_events")


def downgrade() -> None:
    op.create_index("ix_outbox_events_topic", "outbox_events", ["topic"])
