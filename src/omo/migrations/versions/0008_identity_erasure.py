"""identity: erased accounts keep a tombstone row (the audit log and pseudonyms refer to it)

Revision ID: 0008_identity_erasure
Revises: 0006_audit
Create Date: 2026-12-03 10:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.core.db

revision: str = "0008_identity_erasure"
down_revision: str | None = "0006_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identity_users") as batch_op:
        batch_op.add_column(
            sa.Column("erased_at", omo.core.db.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("identity_users") as batch_op:
        batch_op.drop_column("erased_at")
