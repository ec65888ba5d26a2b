"""Social tables (Moments, labels). Only this context reads them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from omo.core.db import Base, UtcDateTime


class FriendSetting(Base):
    """What one person set about one friend: remark, and the two Moments switches."""

    __tablename__ = "social_friend_settings"
    __table_args__ = (Index("ix_social_friend_settings_person", "person_id", "hide_my_moments"),)

    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    remark: Mapped[str] = mapped_column(String(64), default="")
    # "Don't let them see my Moments" (owner's posts hidden from person).
    hide_my_moments: Mapped[bool] = mapped_column(Boolean, default=False)
    # "Hide their Moments" (person's posts left out of owner's timeline).
    hide_their_moments: Mapped[bool] = mapped_column(Boolean, default=False)


class Label(Base):
    __tablename__ = "social_labels"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_social_labels_name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    name: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LabelMember(Base):
    __tablename__ = "social_label_members"

    label_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("social_labels.id"), primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)


class MomentsSetting(Base):
    """A person's window on their own past posts: days other people may look back (None: all)."""

    __tablename__ = "social_settings"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    window_days: Mapped[int | None] = mapped_column(Integer)


class Post(Base):
    __tablename__ = "social_posts"
    __table_args__ = (Index("ix_social_posts_author_time", "author_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(12))
    text: Mapped[str] = mapped_column(Text, default="")
    card: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    place: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # friends | private | only | except
    visibility: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class PostAudience(Base):
    """The people an `only`/`except` post names, labels resolved when it was published."""

    __tablename__ = "social_post_audience"

    post_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("social_posts.id"), primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)


class PostMedia(Base):
    """A photo or video uploaded for a post; the bytes live in the media storage."""

    __tablename__ = "social_media"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    uploader_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    post_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("social_posts.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(8))
    content_type: Mapped[str] = mapped_column(String(100))
    alt: Mapped[str] = mapped_column(String(500), default="")
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    has_thumbnail: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Like(Base):
    __tablename__ = "social_likes"

    post_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("social_posts.id"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Comment(Base):
    __tablename__ = "social_comments"
    __table_args__ = (Index("ix_social_comments_post_time", "post_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    post_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("social_posts.id"))
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    reply_to_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reply_to_user: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Notification(Base):
    __tablename__ = "social_notifications"
    __table_args__ = (Index("ix_social_notifications_user", "user_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(10))  # like | comment | reply | mention
    actor_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    post_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("social_posts.id"))
    comment_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    read: Mapped[bool] = mapped_column(Boolean, default=False)


class Sponsored(Base):
    """A brand's sponsored post, from its official account, with simple targeting."""

    __tablename__ = "social_sponsored"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    creator_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    text: Mapped[str] = mapped_column(Text)
    card: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    followers_only: Mapped[bool] = mapped_column(Boolean, default=False)
    tag_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    # {latitude, longitude, radius_m}: shown to someone whose app says they are inside it
    place: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    daily_cap: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SponsoredImpression(Base):
    """How many times one person was shown one sponsored post on one (UTC) day."""

    __tablename__ = "social_sponsored_impressions"

    sponsored_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("social_sponsored.id"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    shown: Mapped[int] = mapped_column(Integer, default=0)


class SponsoredOptOut(Base):
    """A person's "hide this brand's ads" (account_id) or "no sponsored posts" (the nil id)."""

    __tablename__ = "social_sponsored_opt_outs"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
