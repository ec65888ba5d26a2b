"""The messaging context's public contract: REST bodies and the WebSocket frames (v1)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from omo.identity.schemas import PublicProfileOut


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- REST ------------------------------------------------------------------------------------


class PersonRef(Strict):
    omo_id: str = Field(min_length=1, max_length=40)


class ContactOut(BaseModel):
    person: PublicProfileOut
    status: Literal["friend", "incoming", "outgoing"]


class ContactsOut(BaseModel):
    contacts: list[ContactOut]
    blocked: list[PublicProfileOut]


class RequestOut(BaseModel):
    status: str


class CardIn(Strict):
    url: str = Field(max_length=2048)
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=500)


class LocationIn(Strict):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: str = Field(default="", max_length=200)


class MessageIn(Strict):
    client_id: str = Field(min_length=1, max_length=64, description="Retry with the same id")
    text: str = Field(default="", max_length=16 * 1024)
    card: CardIn | None = None
    media_id: uuid.UUID | None = Field(default=None, description="From an upload")
    location: LocationIn | None = None
    mentions: list[str] = Field(default_factory=list, max_length=500)
    mention_all: bool = False


class MessageOut(BaseModel):
    id: uuid.UUID
    conversation: uuid.UUID
    seq: int
    client_id: str
    sender: str = Field(description="The sender's OMO ID")
    sender_name: str
    kind: Literal["text", "card", "image", "voice", "video", "file", "location", "recall", "system"]
    text: str
    card: dict[str, Any] | None
    media: dict[str, Any] | None = Field(default=None, description="url, thumbnail_url, ...")
    location: dict[str, Any] | None = None
    mentions: list[str]
    mention_all: bool
    target_seq: int | None = Field(description="For a recall: the recalled message's seq")
    event: str | None = Field(description="For a system message: what happened")
    people: list[str]
    sent_at: datetime
    recalled: bool


class MediaOut(BaseModel):
    id: uuid.UUID
    kind: str
    content_type: str
    name: str
    size: int
    width: int | None
    height: int | None


class SentOut(BaseModel):
    duplicate: bool
    message: MessageOut


class PageOut(BaseModel):
    messages: list[MessageOut]
    until: int = Field(description="Ask for messages after this seq next time")
    more: bool


class SearchOut(BaseModel):
    messages: list[MessageOut] = Field(description="Newest first")


class DirectIn(Strict):
    omo_id: str = Field(min_length=1, max_length=40)


class GroupIn(Strict):
    name: str = Field(default="", max_length=64)
    members: list[str] = Field(min_length=1, max_length=499)


class GroupUpdate(Strict):
    name: str | None = Field(default=None, max_length=64)
    announcement: str | None = Field(default=None, max_length=2000)


class InviteIn(Strict):
    members: list[str] = Field(min_length=1, max_length=499)


class RoleIn(Strict):
    role: Literal["owner", "admin", "member"]


class MuteIn(Strict):
    muted: bool


class ReadIn(Strict):
    seq: int = Field(ge=0)


class ReadOut(BaseModel):
    read_seq: int


class MemberOut(BaseModel):
    person: PublicProfileOut
    role: str


class ConversationOut(BaseModel):
    id: uuid.UUID
    kind: Literal["direct", "group"]
    title: str = Field(description="The group's name, or the other person's name")
    name: str
    announcement: str
    peer: PublicProfileOut | None
    last_seq: int
    read_seq: int
    unread: int
    muted: bool
    role: str
    last_message: MessageOut | None
    members: list[MemberOut]


class CreatedOut(BaseModel):
    id: uuid.UUID


# -- WebSocket frames, client to server (protocol version 1) ------------------------------


class Frame(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AuthFrame(Frame):
    type: Literal["auth"]
    token: str = Field(max_length=200)


class PingFrame(Frame):
    type: Literal["ping"]


class PongFrame(Frame):
    """The answer to the server's heartbeat `ping`; any frame also counts as alive."""

    type: Literal["pong"]


class SendFrame(Frame):
    type: Literal["send"]
    id: str = Field(min_length=1, max_length=64, description="The client's message id")
    conversation: uuid.UUID
    text: str = ""
    card: dict[str, Any] | None = None
    media_id: uuid.UUID | None = None
    location: dict[str, Any] | None = None
    mentions: list[str] = Field(default_factory=list, max_length=500)
    mention_all: bool = False


class SyncFrame(Frame):
    type: Literal["sync"]
    conversation: uuid.UUID
    after: int = Field(default=0, ge=0)
    limit: int = Field(default=100, ge=1, le=200)


class ConversationsFrame(Frame):
    type: Literal["conversations"]


class ReadFrame(Frame):
    type: Literal["read"]
    conversation: uuid.UUID
    seq: int = Field(ge=0)


class TypingFrame(Frame):
    type: Literal["typing"]
    conversation: uuid.UUID


class RecallFrame(Frame):
    type: Literal["recall"]
    conversation: uuid.UUID
    seq: int = Field(ge=1)
    id: str = Field(default="", max_length=64)


class HideFrame(Frame):
    type: Literal["hide"]
    conversation: uuid.UUID
    seq: int = Field(ge=1)


ClientFrame = Annotated[
    PingFrame
    | PongFrame
    | SendFrame
    | SyncFrame
    | ConversationsFrame
    | ReadFrame
    | TypingFrame
    | RecallFrame
    | HideFrame
    | AuthFrame,
    Field(discriminator="type"),
]
CLIENT_FRAME: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)
