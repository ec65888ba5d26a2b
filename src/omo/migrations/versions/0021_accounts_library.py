"""accounts: the platform's template library, broadcast quotas per account kind

Revision ID: 0021_accounts_library
Revises: 0014b_accounts_locales
Create Date: 2026-12-03 13:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omo.core.db import UtcDateTime

revision: str = "0021_accounts_library"
down_revision: str | None = "0014b_accounts_locales"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts_template_library",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("title", sa.String(64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("example", sa.Text(), nullable=False),
        sa.Column("primary_industry", sa.String(40), nullable=False),
        sa.Column("deputy_industry", sa.String(40), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "accounts_kind_quotas",
        sa.Column("kind", sa.String(12), primary_key=True),
        sa.Column("allowed", sa.Integer(), nullable=False),
    )
    with op.batch_alter_table("accounts_templates") as batch:
        for name, width in (("library_id", 32), ("primary_industry", 40), ("deputy_industry", 40)):
            batch.add_column(
                sa.Column(name, sa.String(width), nullable=False, server_default=sa.text("''"))
            )
        batch.add_column(
            sa.Column("example", sa.Text(), nullable=False, server_default=sa.text("''"))
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts_templates") as batch:
        for name in ("example", "deputy_industry", "primary_industry", "library_id"):
            batch.drop_column(name)
    op.drop_table("accounts_kind_quotas")
    op.drop_table("accounts_template_library")
