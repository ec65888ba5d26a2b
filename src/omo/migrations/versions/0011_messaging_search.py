"""messaging: a search index of messages that finds Chinese and Japanese words

Revision ID: 0011_messaging_search
Revises: 0002_messaging
Create Date: 2026-11-25 08:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omo.core.search import index_terms

revision: str = "0011_messaging_search"
down_revision: str | None = "0002_messaging"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_BATCH = 1000


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE messaging_search USING fts5("
            "terms, message_id UNINDEXED, conversation_id UNINDEXED, tokenize='unicode61')"
        )
    else:
        op.create_table(
            "messaging_search",
            sa.Column("message_id", sa.Uuid(), nullable=False),
            sa.Column("conversation_id", sa.Uuid(), nullable=False),
            sa.Column("terms", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("message_id", name=op.f("pk_messaging_search")),
        )
        op.execute(
            "CREATE INDEX ix_messaging_search_terms ON messaging_search "
            "USING gin (to_tsvector('simple', terms))"
        )
    _backfill(bind)


def _backfill(bind: sa.Connection) -> None:
    messages = sa.table(
        "messaging_messages",
        sa.column("id", sa.Uuid()),
        sa.column("conversation_id", sa.Uuid()),
        sa.column("text", sa.Text()),
        sa.column("recalled_at", sa.DateTime()),
    )
    search = sa.table(
        "messaging_search",
        sa.column("message_id", sa.Uuid()),
        sa.column("conversation_id", sa.Uuid()),
        sa.column("terms", sa.Text()),
    )
    after = None
    while True:  # by id pages, so the history is never held in memory at once
        query = sa.select(messages.c.id, messages.c.conversation_id, messages.c.text).where(
            messages.c.recalled_at.is_(None), messages.c.text != ""
        )
        if after is not None:
            query = query.where(messages.c.id > after)
        batch = bind.execute(query.order_by(messages.c.id).limit(BACKFILL_BATCH)).all()
        if not batch:
            return
        bind.execute(
            search.insert(),
            [
                {
                    "message_id": m.id,
                    "conversation_id": m.conversation_id,
                    "terms": index_terms(m.text),
                }
                for m in batch
            ],
        )
        after = batch[-1].id


def downgrade() -> None:
    op.execute("DROP TABLE messaging_search")
