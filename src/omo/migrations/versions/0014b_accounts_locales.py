"""accounts: brands' own content per language; a covering index for the broadcast push

Revision ID: 0014b_accounts_locales
Revises: 0014_accounts_more
Create Date: 2026-12-03 10:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014b_accounts_locales"
down_revision: str | None = "0014_accounts_more"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_accounts_follows_push",
        "accounts_follows",
        ["account_id", "following", "user_id"],
        unique=False,
    )
    with op.batch_alter_table("accounts_accounts") as batch:
        batch.add_column(
            sa.Column("translations", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
    with op.batch_alter_table("accounts_keyword_rules") as batch:
        batch.add_column(
            sa.Column("translations", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    op.drop_index("ix_accounts_follows_push", table_name="accounts_follows")
    with op.batch_alter_table("accounts_keyword_rules") as batch:
        batch.drop_column("translations")
    with op.batch_alter_table("accounts_accounts") as batch:
        batch.drop_column("translations")
