"""miniapps: mini programs, versions (packages), testers, URL prefixes

Revision ID: 0017_miniapps
Revises: 0001
Create Date: 2026-12-03 10:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.core.db

revision: str = "0017_miniapps"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "miniapps_apps",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("appid", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miniapps_apps")),
        sa.UniqueConstraint("appid", name=op.f("uq_miniapps_apps_appid")),
    )
    op.create_index(op.f("ix_miniapps_apps_organisation_id"), "miniapps_apps", ["organisation_id"])
    op.create_table(
        "miniapps_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("package", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("packed_size", sa.Integer(), nullable=False),
        sa.Column("unpacked_size", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("uploaded_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("released_at", omo.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["app_id"], ["miniapps_apps.id"], name=op.f("fk_miniapps_versions_app_id_miniapps_apps")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miniapps_versions")),
        sa.UniqueConstraint("app_id", "code", name=op.f("uq_miniapps_versions_app_id")),
    )
    op.create_index("ix_miniapps_versions_app_state", "miniapps_versions", ["app_id", "state"])
    op.create_table(
        "miniapps_testers",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["miniapps_apps.id"], name=op.f("fk_miniapps_testers_app_id_miniapps_apps")
        ),
        sa.PrimaryKeyConstraint("app_id", "user_id", name=op.f("pk_miniapps_testers")),
    )
    op.create_table(
        "miniapps_url_prefixes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("prefix", sa.String(length=512), nullable=False),
        sa.Column("page", sa.String(length=200), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("verified_at", omo.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["miniapps_apps.id"],
            name=op.f("fk_miniapps_url_prefixes_app_id_miniapps_apps"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miniapps_url_prefixes")),
        sa.UniqueConstraint("prefix", name=op.f("uq_miniapps_url_prefixes_prefix")),
    )
    op.create_index(op.f("ix_miniapps_url_prefixes_app_id"), "miniapps_url_prefixes", ["app_id"])
    op.create_table(
        "miniapps_login_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("used_at", omo.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["miniapps_apps.id"],
            name=op.f("fk_miniapps_login_codes_app_id_miniapps_apps"),
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_miniapps_login_codes")),
    )
    op.create_index(op.f("ix_miniapps_login_codes_app_id"), "miniapps_login_codes", ["app_id"])
    op.create_table(
        "miniapps_consents",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("privacy_accepted_at", omo.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("grants", sa.JSON(), nullable=False),
        sa.Column("updated_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["miniapps_apps.id"],
            name=op.f("fk_miniapps_consents_app_id_miniapps_apps"),
        ),
        sa.PrimaryKeyConstraint("app_id", "user_id", name=op.f("pk_miniapps_consents")),
    )
    op.create_index(op.f("ix_miniapps_consents_user_id"), "miniapps_consents", ["user_id"])
    op.create_table(
        "miniapps_storage",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["miniapps_apps.id"],
            name=op.f("fk_miniapps_storage_app_id_miniapps_apps"),
        ),
        sa.PrimaryKeyConstraint("app_id", "user_id", "key", name=op.f("pk_miniapps_storage")),
    )
    op.create_table(
        "miniapps_orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("description", sa.String(length=128), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["miniapps_apps.id"], name=op.f("fk_miniapps_orders_app_id_miniapps_apps")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miniapps_orders")),
        sa.UniqueConstraint("app_id", "order_id", name=op.f("uq_miniapps_orders_app_id")),
    )


def downgrade() -> None:
    op.drop_table("miniapps_orders")
    op.drop_table("miniapps_storage")
    op.drop_table("miniapps_consents")
    op.drop_table("miniapps_login_codes")
    op.drop_table("miniapps_url_prefixes")
    op.drop_table("miniapps_testers")
    op.drop_index("ix_miniapps_versions_app_state", table_name="miniapps_versions")
    op.drop_table("miniapps_versions")
    op.drop_index(op.f("ix_miniapps_apps_organisation_id"), table_name="miniapps_apps")
    op.drop_table("miniapps_apps")
