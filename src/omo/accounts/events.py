"""Events of official accounts; the webhook worker turns them into the brand's XML pushes."""

from __future__ import annotations

import dataclasses
import uuid
from typing import ClassVar

from omo.core.events import DomainEvent


@dataclasses.dataclass(frozen=True, kw_only=True)
class AccountEvent(DomainEvent):
    """Something a follower did that the brand's server hears about (by openid only)."""

    account_id: uuid.UUID
    openid: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Followed(AccountEvent):
    topic: ClassVar[str] = "accounts.followed"
    scene: str = ""
    by_scan: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class Unfollowed(AccountEvent):
    topic: ClassVar[str] = "accounts.unfollowed"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Scanned(AccountEvent):
    """A follower scanned the account's QR code again (already following)."""

    topic: ClassVar[str] = "accounts.scanned"
    scene: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class MessageReceived(AccountEvent):
    topic: ClassVar[str] = "accounts.message_received"
    message_id: uuid.UUID
    text: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class BotAnswered(AccountEvent):
    """The brand's server answered a follower's event through its webhook: with a passive
    text reply (its bot handled it) or `transfer_customer_service` (to the brand's people,
    optionally a named kf account). Customer care holds or hands over the conversation."""

    topic: ClassVar[str] = "accounts.bot_answered"
    answered: str  # the topic of the event answered
    transfer: bool
    kf_account: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class MenuClicked(AccountEvent):
    topic: ClassVar[str] = "accounts.menu_clicked"
    action: str  # click | view
    key: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class BroadcastSent(DomainEvent):
    topic: ClassVar[str] = "accounts.broadcast_sent"
    account_id: uuid.UUID
    broadcast_id: uuid.UUID
    tag_id: int | None


WEBHOOK_TOPICS = (
    Followed.topic,
    Unfollowed.topic,
    Scanned.topic,
    MessageReceived.topic,
    MenuClicked.topic,
)
