"""Events of People Nearby, Places nearby and Shake: each visit and each shake is one.

They carry the H3 cell (never a position) and go through the outbox like every touchpoint.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import ClassVar

from omo.core.events import DomainEvent


@dataclasses.dataclass(frozen=True, kw_only=True)
class PeopleNearbyVisited(DomainEvent):
    topic: ClassVar[str] = "social.nearby.people_visited"
    user_id: uuid.UUID
    cell: str
    shown: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlacesNearbyVisited(DomainEvent):
    topic: ClassVar[str] = "social.nearby.places_visited"
    user_id: uuid.UUID
    cell: str
    shown: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class LocationCleared(DomainEvent):
    topic: ClassVar[str] = "social.nearby.cleared"
    user_id: uuid.UUID


@dataclasses.dataclass(frozen=True, kw_only=True)
class Greeted(DomainEvent):
    topic: ClassVar[str] = "social.nearby.greeted"
    user_id: uuid.UUID
    greeted_id: uuid.UUID


@dataclasses.dataclass(frozen=True, kw_only=True)
class Shaken(DomainEvent):
    """One shake and how it ended: "paired", "again" (ambiguous), "alone" or "shop"."""

    topic: ClassVar[str] = "social.nearby.shaken"
    user_id: uuid.UUID
    cell: str
    outcome: str
    partner_id: uuid.UUID | None = None
    beacon: str | None = None
