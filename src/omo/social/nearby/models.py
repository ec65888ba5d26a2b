"""People Nearby, Shake and shop bindings: the tables of `social.nearby`.

No table holds a person's raw coordinates: a person is stored as the H3 cell they are in.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Float, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from omo.core.db import Base, UtcDateTime


class Presence(Base):
    """A person who turned People Nearby on: visible in `cell` until `visible_until`."""

    __tablename__ = "nearby_presences"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    cell: Mapped[str] = mapped_column(String(16), index=True)
    # Opaque, random per turning-on: what others see instead of any id (and greet by).
    handle: Mapped[str] = mapped_column(String(32), unique=True)
    visible_until: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    since: Mapped[datetime] = mapped_column(UtcDateTime)


class Track(Base):
    """Where (cell) and when the person last reported their position: only for refusing
    impossible jumps. Seen by nobody; it outlives "clear my location" so that clearing and
    turning on again far away cannot beat the speed limit, and is swept a day later."""

    __tablename__ = "nearby_tracks"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    cell: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class ShakeBinding(Base):
    """A shop's place or beacon: shaking there opens the page the shop bound to it."""

    __tablename__ = "nearby_shake_bindings"

    beacon: Mapped[str] = mapped_column(String(64), primary_key=True)
    merchant_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    title: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(12))  # "offer" | "miniprogram"
    target: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AccountPlace(Base):
    """Where an official account is (a brand's place is public, unlike a person's): listed in
    Places nearby even when the brand has no store in pay."""

    __tablename__ = "nearby_account_places"

    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    name: Mapped[str] = mapped_column(String(100))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ShakeMatch(Base):
    """One side of a shake pair, for the "greet" button: the token stands for the partner
    (never their id or number) and lasts a few minutes."""

    __tablename__ = "nearby_shake_matches"

    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    until: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
