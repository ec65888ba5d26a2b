"""social: labels and remarks on friends, Moments (posts, audience, media, likes, comments)

Revision ID: 0015_social
Revises: 0001
Create Date: 2026-12-03 10:14:52.231314
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.core.db

revision: str = "0015_social"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "social_friend_settings",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("remark", sa.String(length=64), nullable=False),
        sa.Column("hide_my_moments", sa.Boolean(), nullable=False),
        sa.Column("hide_their_moments", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "person_id", name=op.f("pk_social_friend_settings")),
    )
    with op.batch_alter_table("social_friend_settings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_social_friend_settings_person", ["person_id", "hide_my_moments"], unique=False
        )

    op.create_table(
        "social_labels",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_social_labels")),
        sa.UniqueConstraint("owner_id", "name", name="uq_social_labels_name"),
    )
    with op.batch_alter_table("social_labels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_social_labels_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "social_posts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("card", sa.JSON(), nullable=True),
        sa.Column("place", sa.JSON(), nullable=True),
        sa.Column("visibility", sa.String(length=8), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", omo.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_social_posts")),
    )
    with op.batch_alter_table("social_posts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_social_posts_author_time", ["author_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "social_settings",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_social_settings")),
    )
    op.create_table(
        "social_comments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("post_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("reply_to_id", sa.Uuid(), nullable=True),
        sa.Column("reply_to_user", sa.Uuid(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", omo.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["post_id"], ["social_posts.id"], name=op.f("fk_social_comments_post_id_social_posts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_social_comments")),
    )
    with op.batch_alter_table("social_comments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_social_comments_post_time", ["post_id", "created_at"], unique=False
        )

    op.create_table(
        "social_label_members",
        sa.Column("label_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["label_id"],
            ["social_labels.id"],
            name=op.f("fk_social_label_members_label_id_social_labels"),
        ),
        sa.PrimaryKeyConstraint("label_id", "person_id", name=op.f("pk_social_label_members")),
    )
    op.create_table(
        "social_likes",
        sa.Column("post_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"], ["social_posts.id"], name=op.f("fk_social_likes_post_id_social_posts")
        ),
        sa.PrimaryKeyConstraint("post_id", "user_id", name=op.f("pk_social_likes")),
    )
    op.create_table(
        "social_media",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("uploader_id", sa.Uuid(), nullable=False),
        sa.Column("post_id", sa.Uuid(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("alt", sa.String(length=500), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("has_thumbnail", sa.Boolean(), nullable=False),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"], ["social_posts.id"], name=op.f("fk_social_media_post_id_social_posts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_social_media")),
    )
    with op.batch_alter_table("social_media", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_social_media_post_id"), ["post_id"], unique=False)

    op.create_table(
        "social_notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=False),
        sa.Column("post_id", sa.Uuid(), nullable=False),
        sa.Column("comment_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", omo.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("read", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["social_posts.id"],
            name=op.f("fk_social_notifications_post_id_social_posts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_social_notifications")),
    )
    with op.batch_alter_table("social_notifications", schema=None) as batch_op:
        batch_op.create_index("ix_social_notifications_user", ["user_id", "id"], unique=False)

    op.create_table(
        "social_post_audience",
        sa.Column("post_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["social_posts.id"],
            name=op.f("fk_social_post_audience_post_id_social_posts"),
        ),
        sa.PrimaryKeyConstraint("post_id", "person_id", name=op.f("pk_social_post_audience")),
    )


def downgrade() -> None:
    op.drop_table("social_post_audience")
    with op.batch_alter_table("social_notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_social_notifications_user")

    op.drop_table("social_notifications")
    with op.batch_alter_table("social_media", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_social_media_post_id"))

    op.drop_table("social_media")
    op.drop_table("social_likes")
    op.drop_table("social_label_members")
    with op.batch_alter_table("social_comments", schema=None) as batch_op:
        batch_op.drop_index("ix_social_comments_post_time")

    op.drop_table("social_comments")
    op.drop_table("social_settings")
    with op.batch_alter_table("social_posts", schema=None) as batch_op:
        batch_op.drop_index("ix_social_posts_author_time")

    op.drop_table("social_posts")
    with op.batch_alter_table("social_labels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_social_labels_owner_id"))

    op.drop_table("social_labels")
    with op.batch_alter_table("social_friend_settings", schema=None) as batch_op:
        batch_op.drop_index("ix_social_friend_settings_person")

    op.drop_table("social_friend_settings")
