"""messaging: outbox index (topic, id), so a consumer of some topics reads only its events

Chat writes one outbox event per message; consumers of other topics (pay's webhooks, care,
receipts) filter by topic and, with this index, no longer scan past every chat event.

Revision ID: 0018_messaging_outbox_topic
Revises: 0001
Create Date: 2026-12-03 13:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0018_messaging_outbox_topic"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_events_topic_id", "outbox_events", ["topic", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_events_topic_id", table_name="outbox_events")
