"""Messaging use cases: contacts, conversations, sending, sync, receipts, recall.

Every rule about chatting lives here. The delivery rules:

- each conversation has a strictly increasing sequence, assigned here under a row lock on
  the conversation (PostgreSQL) or by the one writer (SQLite);
- a send carries the client's own message id; a retry with the same id returns the stored
  message and never stores a second one (unique constraint as the last line of defence);
- `send` returns only after the transaction that holds the message has committed, so an
  acknowledged message is durable; sends are committed in batches by a writer task
  (group commit) so durability does not cost a transaction per message;
- after the commit the message is published to every member's channel on the broker; a
  device that missed it asks for "everything after sequence N" (`history`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import orjson
from sqlalchemy import (
    String,
    Table,
    Uuid,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import text as text_clause
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from omo.core.broker import Broker, MemoryBroker
from omo.core.clock import Clock
from omo.core.db import Database
from omo.core.errors import ProblemError, register
from omo.core.events import DomainEvent, OutboxEvent, StoredEvent, consume, record_event
from omo.core.ids import new_id
from omo.core.ratelimit import Limit, RateLimiter
from omo.core.search import Query, index_terms
from omo.core.sqlite_inline import InlineConnection
from omo.identity.events import PersonErased
from omo.identity.service import IdentityService, PublicProfile
from omo.messaging import events
from omo.messaging.media import MEDIA_KINDS, SIZE_LIMITS, check
from omo.messaging.models import (
    Block,
    Contact,
    Conversation,
    Hidden,
    Media,
    Member,
    Message,
    MessageSearch,
)
from omo.messaging.storage import MediaStorage

# Friend requests are how strangers reach a person: a few dozen an hour is plenty for a human.
FRIEND_REQUESTS_PER_PERSON = Limit("friend-request-person", 30, 60 * 60)

logger = logging.getLogger("omo.messaging")

register("conversation-not-found", 404, "No such conversation")
register("not-a-member", 403, "You are not in this conversation")
register("blocked", 403, "This person does not accept your messages")
register("not-friends", 403, "Add this person as a friend first")
register("message-too-large", 413, "That message is too long")
register("invalid-message", 422, "That message cannot be sent")
register("message-not-found", 404, "No such message")
register("recall-too-late", 409, "That message can no longer be recalled")
register("not-an-admin", 403, "Only the group's owner or admins can do this")
register("group-full", 409, "This group is full")
register("friend-request-not-found", 404, "No such friend request")
register("invalid-contact", 422, "That person cannot be added")
register("invalid-media", 422, "That file cannot be used")
register("media-too-large", 413, "That file is too large")
register("media-not-found", 404, "No such file")

TEXT_MAX_BYTES = 16 * 1024
CLIENT_ID_MAX = 64
GROUP_MAX_MEMBERS = 500
GROUP_NAME_MAX = 64
ANNOUNCEMENT_MAX = 2000
RECALL_WINDOW = timedelta(minutes=2)
HISTORY_MAX = 200
SEARCH_MAX = 50
WRITE_BATCH_MAX = 256
PROFILE_CACHE_SECONDS = 30.0
CARD_FIELDS = {"url": 2048, "title": 200, "description": 500}
CONTENT_KINDS = ("text", "card", "location", *MEDIA_KINDS)
MEDIA_NAME_MAX = 200

Role = Literal["owner", "admin", "member"]


_CONVERSATIONS = cast(Table, Conversation.__table__)
_MEMBERS = cast(Table, Member.__table__)
_MESSAGES = cast(Table, Message.__table__)
_BLOCKS = cast(Table, Block.__table__)
_OUTBOX = cast(Table, OutboxEvent.__table__)
_SEARCH = cast(Table, MessageSearch.__table__)

# The writer's statements, built once: SQLAlchemy then reuses their cache key and compiled
# form instead of rebuilding both for every batch (this is the hot path of chat).
_LOCK_CONVERSATIONS = (
    select(_CONVERSATIONS.c.id, _CONVERSATIONS.c.kind, _CONVERSATIONS.c.last_seq)
    .where(_CONVERSATIONS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_CONVERSATIONS.c.id)
    .with_for_update()
)
_ACTIVE_MEMBERS = select(_MEMBERS.c.conversation_id, _MEMBERS.c.user_id, _MEMBERS.c.role).where(
    _MEMBERS.c.conversation_id.in_(bindparam("ids", expanding=True)), _MEMBERS.c.active.is_(True)
)
_BLOCKS_OF = select(_BLOCKS.c.user_id, _BLOCKS.c.blocked_id).where(
    _BLOCKS.c.user_id.in_(bindparam("people", expanding=True)),
    _BLOCKS.c.blocked_id.in_(bindparam("senders", expanding=True)),
)
_MOVE_SEQ = (
    update(_CONVERSATIONS)
    .where(_CONVERSATIONS.c.id == bindparam("conv"))
    .values(last_seq=bindparam("seq"))
)
_INSERT_MESSAGES = insert(_MESSAGES)
_INSERT_OUTBOX = insert(_OUTBOX)
_INSERT_SEARCH = insert(_SEARCH)
_MOVE_READ = (
    update(_MEMBERS)
    .where(
        _MEMBERS.c.conversation_id == bindparam("conv"),
        _MEMBERS.c.user_id == bindparam("member"),
        _MEMBERS.c.read_seq < bindparam("seq"),
    )
    .values(read_seq=bindparam("seq"))
)


class _DriverMany:
    """A Core statement run on SQLite as the driver's own executemany, its parameters turned
    into the driver's values by the column types' bind processors (the same values SQLAlchemy
    would send). SQLAlchemy's generic per-row parameter handling cost more than SQLite's
    insert itself on the writer's hot path (a third of the batch, profiled under the bench).
    Other databases run the statement through SQLAlchemy as before."""

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._prepared: tuple[str, list[tuple[str, Any]]] | None = None

    def _prepare(self, dialect: Any) -> tuple[str, list[tuple[str, Any]]]:
        if self._prepared is None:
            compiled = self.statement.compile(dialect=dialect)
            names = list(compiled.positiontup or ())
            processors = [
                (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                for name in names
            ]
            self._prepared = (compiled.string, processors)
        return self._prepared

    def processor(self, dialect: Any, name: str) -> Any:
        """The function turning a value of parameter `name` into the driver's value (the
        dialect may be None once the statement has run)."""
        found = dict(self._prepare(dialect)[1]).get(name)
        return found if found is not None else (lambda value: value)

    async def fetch(
        self, session: AsyncSession | _RawTx, params: dict[str, Any]
    ) -> list[Any] | None:
        """A query's rows in the driver's values on SQLite; None elsewhere."""
        found = await _driver(session)
        if found is None:
            return None
        driver, dialect = found
        sql, processors = self._prepare(dialect)
        cursor = driver.cursor()
        try:
            await cursor.execute(
                sql, tuple(params[name] if p is None else p(params[name]) for name, p in processors)
            )
            return await cursor.fetchall()
        finally:
            await cursor.close()

    def names(self, dialect: Any) -> tuple[str, ...]:
        """The statement's parameters in the order the driver takes them."""
        return tuple(name for name, _p in self._prepare(dialect)[1])

    async def run(self, session: AsyncSession | _RawTx, rows: list[dict[str, Any]]) -> None:
        found = await _driver(session)
        if found is None:
            assert isinstance(session, AsyncSession)
            await session.execute(self.statement, rows)
            return
        driver, dialect = found
        sql, processors = self._prepare(dialect)
        cursor = driver.cursor()
        try:
            await cursor.executemany(
                sql,
                [
                    tuple(row[name] if p is None else p(row[name]) for name, p in processors)
                    for row in rows
                ],
            )
        finally:
            await cursor.close()

    async def run_values(self, tx: _RawTx, values: list[tuple[Any, ...]]) -> None:
        """executemany with rows already in the driver's values, in `names` order."""
        cursor = tx.driver.cursor()
        try:
            await cursor.executemany(self._prepare(tx.dialect)[0], values)
        finally:
            await cursor.close()


@dataclass(frozen=True, slots=True)
class _RawTx:
    """The writer's own SQLite connection (`Database.sqlite_writer`) inside the batch's
    BEGIN IMMEDIATE … COMMIT: no session, pool checkout or greenlet per batch."""

    driver: InlineConnection
    dialect: Any


_DRIVER_KEY = "omo.messaging.driver"


async def _driver(session: AsyncSession | _RawTx) -> tuple[InlineConnection, Any] | None:
    """The SQLite connection under this session's transaction as its driver sees it, and the
    dialect; None on other databases. Remembered for the session (one batch): the writer's
    statements then go straight to the driver's cursor, in the session's transaction, without
    SQLAlchemy's execution machinery and its greenlet hop per statement (about half of a
    small batch's CPU, profiled)."""
    if isinstance(session, _RawTx):
        return session.driver, session.dialect
    found: tuple[InlineConnection, Any] | bool | None = session.info.get(_DRIVER_KEY)
    if found is None:
        found = False
        connection = await session.connection()
        if connection.dialect.name == "sqlite":
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            if isinstance(driver, InlineConnection):
                found = (driver, connection.dialect)
        session.info[_DRIVER_KEY] = found
    return found if isinstance(found, tuple) else None


# The writer's executemany statements, one row per message or per conversation.
_DRIVER_MOVE_SEQ = _DriverMany(_MOVE_SEQ)
_DRIVER_INSERT_MESSAGES = _DriverMany(_INSERT_MESSAGES)
_DRIVER_INSERT_OUTBOX = _DriverMany(_INSERT_OUTBOX)
_DRIVER_INSERT_SEARCH = _DriverMany(_INSERT_SEARCH)
_DRIVER_MOVE_READ = _DriverMany(_MOVE_READ)


def _orjson_text(value: dict[str, Any]) -> str:
    return orjson.dumps(value).decode()


class _RawValues:
    """The batch's inserts in the driver's values on the writer's own connection, each value
    turned by the column's own bind processor (what SQLAlchemy would send), but values every
    row of a batch shares (its time, its conversations' and senders' ids, an empty `extra`)
    turned once per batch instead of once per row. `usable` is False if a statement's
    columns are not in the order this expects (then the generic `_DriverMany.run`)."""

    MESSAGES = (
        "id",
        "conversation_id",
        "seq",
        "sender_id",
        "client_id",
        "kind",
        "text",
        "extra",
        "sent_at",
        "recalled_at",
    )
    OUTBOX = ("id", "topic", "payload", "occurred_at")
    SEARCH = ("message_id", "conversation_id", "terms")

    def __init__(self, dialect: Any) -> None:
        self.usable = (
            _DRIVER_INSERT_MESSAGES.names(dialect) == self.MESSAGES
            and _DRIVER_INSERT_OUTBOX.names(dialect) == self.OUTBOX
            and _DRIVER_INSERT_SEARCH.names(dialect) == self.SEARCH
        )
        self.uuid = _DRIVER_INSERT_MESSAGES.processor(dialect, "id")
        self.extra = _DRIVER_INSERT_MESSAGES.processor(dialect, "extra")
        self.time = _DRIVER_INSERT_MESSAGES.processor(dialect, "sent_at")
        # The outbox payload (a small dict of str and int) as orjson writes it: the same JSON
        # value (read back by the column's own json.loads), several times cheaper to make.
        self.payload = _orjson_text
        self.outbox_id = _DRIVER_INSERT_OUTBOX.processor(dialect, "id")
        self.search_id = _DRIVER_INSERT_SEARCH.processor(dialect, "message_id")
        self.no_extra = self.extra({})
        self.no_time = self.time(None)

    async def insert(
        self,
        tx: _RawTx,
        now: datetime,
        rows: list[dict[str, Any]],
        outbox: list[dict[str, Any]],
        indexed: list[dict[str, Any]],
    ) -> None:
        ids: dict[uuid.UUID, Any] = {}

        def shared(value: uuid.UUID) -> Any:
            found = ids.get(value)
            if found is None:
                found = ids[value] = self.uuid(value)
            return found

        at = self.time(now)
        extra = self.extra
        await _DRIVER_INSERT_MESSAGES.run_values(
            tx,
            [
                (
                    self.uuid(r["id"]),
                    shared(r["conversation_id"]),
                    r["seq"],
                    shared(r["sender_id"]),
                    r["client_id"],
                    r["kind"],
                    r["text"],
                    extra(r["extra"]) if r["extra"] else self.no_extra,
                    at if r["sent_at"] is now else self.time(r["sent_at"]),
                    self.no_time if r["recalled_at"] is None else self.time(r["recalled_at"]),
                )
                for r in rows
            ],
        )
        await _DRIVER_INSERT_OUTBOX.run_values(
            tx,
            [
                (
                    self.outbox_id(o["id"]),
                    o["topic"],
                    self.payload(o["payload"]),
                    at if o["occurred_at"] is now else self.time(o["occurred_at"]),
                )
                for o in outbox
            ],
        )
        if indexed:
            await _DRIVER_INSERT_SEARCH.run_values(
                tx,
                [
                    (self.search_id(i["message_id"]), shared(i["conversation_id"]), i["terms"])
                    for i in indexed
                ],
            )


def _probe(size: int) -> Any:
    return or_(
        *(
            and_(
                _MESSAGES.c.conversation_id == bindparam(f"c{n}", type_=Uuid),
                _MESSAGES.c.sender_id == bindparam(f"s{n}", type_=Uuid),
                _MESSAGES.c.client_id == bindparam(f"k{n}", type_=String),
            )
            for n in range(size)
        )
    )


@functools.cache
def _stored_sends(size: int) -> Any:
    """The stored messages among `size` (conversation, sender, client id) keys: each key an
    index probe of the unique constraint. An OR of ANDs, because SQLite scans the whole table
    for a row-value IN and three separate IN lists would also match other senders' ids.
    Sizes are powers of two (the keys padded by repeating one), so few statements exist."""
    return select(_MESSAGES).where(_probe(size))


@functools.cache
def _stored_keys(size: int) -> _DriverMany:
    """The same probe answering only which keys are stored, in the driver's values (SQLite):
    the usual answer is none, and only a retried send then loads its stored row."""
    return _DriverMany(
        select(_MESSAGES.c.conversation_id, _MESSAGES.c.sender_id, _MESSAGES.c.client_id).where(
            _probe(size)
        )
    )


def _padded(values: Sequence[Any]) -> list[Any]:
    """Values padded to a power of two (repeating the last): few statement sizes exist."""
    size = 1 << max(0, len(values) - 1).bit_length()
    return [*values, *([values[-1]] * (size - len(values)))]


def _ids_in(column: Any, prefix: str, size: int) -> Any:
    return column.in_([bindparam(f"{prefix}{n}", type_=Uuid) for n in range(size)])


# The writer's reads on SQLite, one statement per padded size (see _DriverMany).
@functools.cache
def _driver_lock(size: int) -> _DriverMany:
    c = _CONVERSATIONS.c
    return _DriverMany(
        select(c.id, c.kind, c.last_seq).where(_ids_in(c.id, "i", size)).order_by(c.id)
    )


@functools.cache
def _driver_members(size: int) -> _DriverMany:
    m = _MEMBERS.c
    return _DriverMany(
        select(m.conversation_id, m.user_id, m.role).where(
            _ids_in(m.conversation_id, "i", size), m.active.is_(True)
        )
    )


@functools.cache
def _driver_lock_members(size: int) -> _DriverMany:
    """The conversations (id, kind, last_seq) with each active member (person, role; None
    for a conversation without one), in id order: the lock read and the member read of a
    batch in one statement (the writer's own connection holds the write lock already)."""
    c, m = _CONVERSATIONS.c, _MEMBERS.c
    return _DriverMany(
        select(c.id, c.kind, c.last_seq, m.user_id, m.role)
        .select_from(
            _CONVERSATIONS.outerjoin(_MEMBERS, and_(m.conversation_id == c.id, m.active.is_(True)))
        )
        .where(_ids_in(c.id, "i", size))
        .order_by(c.id)
    )


@functools.cache
def _driver_stored_rows(size: int) -> _DriverMany:
    """The full stored rows of `size` keys (retried sends), on the writer's own connection."""
    return _DriverMany(_stored_sends(size))


@functools.cache
def _driver_blocks(people: int, senders: int) -> _DriverMany:
    b = _BLOCKS.c
    return _DriverMany(
        select(b.user_id, b.blocked_id).where(
            _ids_in(b.user_id, "p", people), _ids_in(b.blocked_id, "s", senders)
        )
    )


def _stored_sends_params(
    keys: Sequence[tuple[uuid.UUID, uuid.UUID, str]],
) -> tuple[Any, dict[str, Any]]:
    size = 1 << max(0, len(keys) - 1).bit_length()
    padded = [*keys, *([keys[-1]] * (size - len(keys)))]
    params: dict[str, Any] = {}
    for n, (conv_id, sender_id, client_id) in enumerate(padded):
        params[f"c{n}"], params[f"s{n}"], params[f"k{n}"] = conv_id, sender_id, client_id
    return _stored_sends(size), params


USER_CHANNEL_PREFIX = "messaging.user."


def user_channel(user_id: uuid.UUID) -> str:
    """Every device of a person listens here."""
    return f"{USER_CHANNEL_PREFIX}{user_id}"


# -- what callers get back ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatMessage:
    id: uuid.UUID
    conversation_id: uuid.UUID
    seq: int
    sender_id: uuid.UUID
    client_id: str
    kind: str
    text: str
    extra: dict[str, Any]
    sent_at: datetime
    recalled: bool


@dataclass(frozen=True, slots=True)
class Sent:
    message: ChatMessage
    duplicate: bool
    # The message as clients see it (`wire_message`), when the writer made it already: the
    # ack and the fan-out share it instead of building it twice.
    wired: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Page:
    messages: list[ChatMessage]
    until: int
    more: bool


@dataclass(frozen=True, slots=True)
class ContactView:
    profile: PublicProfile
    status: str


@dataclass(frozen=True, slots=True)
class MemberView:
    profile: PublicProfile
    role: str


@dataclass(frozen=True, slots=True)
class ConversationView:
    id: uuid.UUID
    kind: str
    name: str
    announcement: str
    last_seq: int
    read_seq: int
    unread: int
    muted: bool
    role: str
    peer: PublicProfile | None
    last_message: ChatMessage | None
    members: list[MemberView] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Draft:
    """What a person asks to send. Validated before it reaches the writer."""

    conversation_id: uuid.UUID
    client_id: str
    text: str = ""
    card: dict[str, Any] | None = None
    mentions: tuple[str, ...] = ()
    mention_all: bool = False
    media_id: uuid.UUID | None = None
    location: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class MediaView:
    id: uuid.UUID
    conversation_id: uuid.UUID
    kind: str
    content_type: str
    name: str
    size: int
    width: int | None
    height: int | None


def _media_view(row: Media) -> MediaView:
    return MediaView(
        row.id,
        row.conversation_id,
        row.kind,
        row.content_type,
        row.name,
        row.size,
        row.width,
        row.height,
    )


def _message(row: Message) -> ChatMessage:
    return ChatMessage(
        id=row.id,
        conversation_id=row.conversation_id,
        seq=row.seq,
        sender_id=row.sender_id,
        client_id=row.client_id,
        kind=row.kind,
        text=row.text,
        extra=dict(row.extra or {}),
        sent_at=row.sent_at,
        recalled=row.recalled_at is not None,
    )


def _message_row(row: Any) -> ChatMessage:
    """A ChatMessage from a Core row of the messages table."""
    return ChatMessage(
        id=row.id,
        conversation_id=row.conversation_id,
        seq=row.seq,
        sender_id=row.sender_id,
        client_id=row.client_id,
        kind=row.kind,
        text=row.text,
        extra=dict(row.extra or {}),
        sent_at=row.sent_at,
        recalled=row.recalled_at is not None,
    )


def _people_in(message: ChatMessage) -> set[uuid.UUID]:
    ids = {message.sender_id}
    for key in ("mentions", "people"):
        ids.update(uuid.UUID(value) for value in message.extra.get(key, ()))
    return ids


def wire_message(message: ChatMessage, people: dict[uuid.UUID, PublicProfile]) -> dict[str, Any]:
    """The message as every client sees it: people by OMO ID, never by internal id."""

    def omo_id(user_id: uuid.UUID | str) -> str:
        profile = people.get(user_id if type(user_id) is uuid.UUID else uuid.UUID(str(user_id)))
        return profile.omo_id if profile else ""

    extra = message.extra
    return {
        "id": str(message.id),
        "conversation": str(message.conversation_id),
        "seq": message.seq,
        "client_id": message.client_id,
        "sender": omo_id(message.sender_id),
        "sender_name": people[message.sender_id].display_name
        if message.sender_id in people
        else "",
        "kind": message.kind,
        "text": message.text,
        "card": extra.get("card"),
        "mentions": [omo_id(u) for u in extra.get("mentions", ())],
        "mention_all": bool(extra.get("mention_all", False)),
        "media": _wire_media(extra.get("media")),
        "location": extra.get("location"),
        "target_seq": extra.get("target"),
        "event": extra.get("event"),
        "people": [omo_id(u) for u in extra.get("people", ())],
        "sent_at": message.sent_at.isoformat(),
        "recalled": message.recalled,
    }


def _wire_media(media: dict[str, Any] | None) -> dict[str, Any] | None:
    if not media:
        return None
    url = f"/api/v1/messaging/media/{media['id']}"
    return {
        **media,
        "url": url,
        "thumbnail_url": url + "/thumbnail" if media.get("thumbnail") else None,
    }


def _validate_location(location: dict[str, Any]) -> dict[str, Any]:
    try:
        latitude, longitude = float(location["latitude"]), float(location["longitude"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ProblemError(
            "invalid-message", "A location needs a latitude and a longitude."
        ) from exc
    name = location.get("name", "")
    if (
        not (-90 <= latitude <= 90 and -180 <= longitude <= 180)
        or not isinstance(name, str)
        or len(name) > 200
    ):
        raise ProblemError("invalid-message", "A location needs a latitude and a longitude.")
    return {"latitude": latitude, "longitude": longitude, "name": name}


def _validate_card(card: dict[str, Any]) -> dict[str, Any]:
    unknown = set(card) - set(CARD_FIELDS)
    if unknown or not isinstance(card.get("url"), str):
        raise ProblemError("invalid-message", "A card needs a url, and only title and description.")
    cleaned: dict[str, Any] = {}
    for name, limit in CARD_FIELDS.items():
        value = card.get(name, "")
        if not isinstance(value, str) or len(value) > limit:
            raise ProblemError("invalid-message", "A card field is too long or not text.")
        cleaned[name] = value
    parts = urlsplit(cleaned["url"])
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProblemError("invalid-message", "A card links to an http or https address.")
    return cleaned


def searchable_text(text: str, extra: dict[str, Any]) -> str:
    """What search finds a message by: its text, a card's title and description, a place's
    name, a file's name."""
    card = extra.get("card") or {}
    parts = [text, card.get("title", ""), card.get("description", "")]
    parts.append((extra.get("location") or {}).get("name", ""))
    parts.append((extra.get("media") or {}).get("name", ""))
    return " ".join(part for part in parts if part)


def validate_draft(draft: Draft) -> None:
    """Rules that need no database: sizes and shapes."""
    if not draft.client_id or len(draft.client_id) > CLIENT_ID_MAX:
        raise ProblemError(
            "invalid-message",
            "Give each message a client id of 1 to %(max)d characters.",
            params={"max": CLIENT_ID_MAX},
        )
    if len(draft.text.encode("utf-8", "surrogatepass")) > TEXT_MAX_BYTES:
        raise ProblemError(
            "message-too-large",
            "Send at most %(kib)d KiB of text in one message.",
            params={"kib": TEXT_MAX_BYTES // 1024},
        )
    if (
        not draft.text.strip()
        and draft.card is None
        and draft.media_id is None
        and draft.location is None
    ):
        raise ProblemError("invalid-message", "A message needs text, a card, media or a place.")
    if len(draft.mentions) > GROUP_MAX_MEMBERS:
        raise ProblemError("invalid-message", "Too many mentions.")


# -- the batching writer ---------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    sender_id: uuid.UUID
    conversation_id: uuid.UUID
    client_id: str
    kind: str
    text: str
    extra: dict[str, Any]
    origin: str
    future: asyncio.Future[Sent]
    mention_ids: tuple[uuid.UUID, ...] = ()
    recall_seq: int | None = None


@dataclass(slots=True)
class _Outcome:
    pending: _Pending
    sent: Sent | None = None
    error: ProblemError | None = None


# Friends and blocks of one person, both ways: built once (read on every Moments page).
_RELATIONS = (
    select(Contact.peer_id.label("who"), literal("f").label("why"))
    .where(Contact.user_id == bindparam("user"), Contact.status == "friend")
    .union_all(
        select(Block.blocked_id, literal("b")).where(Block.user_id == bindparam("user")),
        select(Block.user_id, literal("b")).where(Block.blocked_id == bindparam("user")),
    )
)


def _raise_if_cancelling() -> None:
    """Re-raise a cancellation that a library swallowed: `stop` would wait forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class MessagingService:
    """The messaging context's use cases over one database, clock, broker and identity."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        broker: Broker,
        identity: IdentityService,
        *,
        storage: MediaStorage | None = None,
        upload_limit: int = 2 * 1024 * 1024,
        lanes: int | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.limiter = limiter
        self.storage = storage
        self.upload_limit = upload_limit
        self.db = db
        self.clock = clock
        self.broker = broker
        self.identity = identity
        # SQLite has one writer: serialise this context's writes in-process instead of
        # letting them race for the file lock. PostgreSQL takes row locks instead.
        self._serial = asyncio.Lock() if db.is_sqlite else None
        self._lanes = lanes or (1 if db.is_sqlite else 4)
        self._queues: list[asyncio.Queue[_Pending]] = []
        self._writers: list[asyncio.Task[None]] = []
        self._fanout_queue: asyncio.Queue[
            tuple[
                list[tuple[ChatMessage, str, dict[str, Any] | None]],
                dict[uuid.UUID, list[uuid.UUID]],
            ]
        ] = asyncio.Queue()
        self._profiles: dict[uuid.UUID, tuple[float, PublicProfile]] = {}
        self._uuids: dict[Any, uuid.UUID] = {}
        self.batches = 0
        self.batched_messages = 0
        self._local_only = isinstance(broker, MemoryBroker)
        # SQLite: the writer's own connection (opened at the first batch; None when the
        # database has none, e.g. in-memory, and then False: the session path for good).
        self._raw: _RawTx | Literal[False] | None = None
        self._raw_values: _RawValues | None = None

    async def start(self) -> None:
        self._writers.append(asyncio.create_task(self._fan_out_forever(), name="omo-fan-out"))
        for lane in range(self._lanes):
            queue: asyncio.Queue[_Pending] = asyncio.Queue()
            self._queues.append(queue)
            self._writers.append(
                asyncio.create_task(self._write_forever(queue), name=f"omo-messaging-writer-{lane}")
            )

    async def stop(self) -> None:
        for task in self._writers:
            task.cancel()
        await asyncio.gather(*self._writers, return_exceptions=True)
        for queue in self._queues:
            while not queue.empty():
                pending = queue.get_nowait()
                if not pending.future.done():
                    pending.future.set_exception(RuntimeError("messaging is stopping"))
        self._writers.clear()
        self._queues.clear()
        if self._raw:
            await self._raw.driver.close()
        self._raw = None

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        if self._serial is None:
            async with self.db.transaction() as session:
                yield session
            return
        async with self._serial, self.db.transaction() as session:
            yield session

    def _record(self, session: AsyncSession, event: DomainEvent) -> None:
        record_event(session, event, self.clock.now())

    # -- people ------------------------------------------------------------------------------

    async def profiles(self, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, PublicProfile]:
        """Public profiles, cached briefly: names shown in chats may lag a change by seconds."""
        now = time.monotonic()
        wanted = set(user_ids)
        found: dict[uuid.UUID, PublicProfile] = {}
        missing: list[uuid.UUID] = []
        for user_id in wanted:
            cached = self._profiles.get(user_id)
            if cached and now - cached[0] < PROFILE_CACHE_SECONDS:
                found[user_id] = cached[1]
            else:
                missing.append(user_id)
        if missing:
            fresh = await self.identity.public_profiles(missing)
            if len(self._profiles) > 50_000:
                self._profiles.clear()
            for user_id, profile in fresh.items():
                self._profiles[user_id] = (now, profile)
            found.update(fresh)
        return found

    async def wire(self, messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
        people = await self.profiles(set().union(*(_people_in(m) for m in messages)))
        return [wire_message(m, people) for m in messages]

    async def _person(self, omo_id: str) -> PublicProfile:
        return await self.identity.find_by_omo_id(omo_id)

    # -- contacts ----------------------------------------------------------------------------

    async def request_friend(self, user_id: uuid.UUID, omo_id: str) -> str:
        """Ask to be friends. Returns the relationship's status afterwards."""
        if self.limiter:
            await self.limiter.hit(FRIEND_REQUESTS_PER_PERSON, str(user_id))
        peer = await self._person(omo_id)
        if peer.user_id == user_id:
            raise ProblemError("invalid-contact", "You cannot add yourself.")
        now = self.clock.now()
        async with self._transaction() as session:
            mine = await session.get(Contact, (user_id, peer.user_id))
            if mine is not None and mine.status == "friend":
                return "friend"
            if mine is not None and mine.status == "incoming":
                await self._befriend(session, user_id, peer.user_id, now)
                status = "friend"
            else:
                blocked_by_peer = await session.get(Block, (peer.user_id, user_id))
                if mine is None:
                    session.add(
                        Contact(
                            user_id=user_id, peer_id=peer.user_id, status="outgoing", created_at=now
                        )
                    )
                # A person who blocked you never hears of your request; you are not told.
                if (
                    not blocked_by_peer
                    and await session.get(Contact, (peer.user_id, user_id)) is None
                ):
                    session.add(
                        Contact(
                            user_id=peer.user_id, peer_id=user_id, status="incoming", created_at=now
                        )
                    )
                status = "outgoing"
        if status == "outgoing":
            await self._notify_contact(peer.user_id, user_id, "incoming")
        else:
            await self._notify_contact(peer.user_id, user_id, "friend")
        return status

    async def _befriend(
        self, session: AsyncSession, user_id: uuid.UUID, peer_id: uuid.UUID, now: datetime
    ) -> None:
        for a, b in ((user_id, peer_id), (peer_id, user_id)):
            row = await session.get(Contact, (a, b))
            if row is None:
                session.add(Contact(user_id=a, peer_id=b, status="friend", created_at=now))
            else:
                row.status = "friend"
        self._record(session, events.FriendAdded(user_id=user_id, friend_id=peer_id))

    async def _notify_contact(self, to: uuid.UUID, about: uuid.UUID, status: str) -> None:
        profile = (await self.profiles([about])).get(about)
        if profile is not None:
            await self.broker.publish(
                user_channel(to), {"type": "contact", "status": status, "who": profile.omo_id}
            )

    async def accept_friend(self, user_id: uuid.UUID, omo_id: str) -> None:
        peer = await self._person(omo_id)
        async with self._transaction() as session:
            mine = await session.get(Contact, (user_id, peer.user_id))
            if mine is None or mine.status == "outgoing":
                raise ProblemError("friend-request-not-found", "This person has not asked.")
            if mine.status == "incoming":
                await self._befriend(session, user_id, peer.user_id, self.clock.now())
        await self._notify_contact(peer.user_id, user_id, "friend")

    async def decline_friend(self, user_id: uuid.UUID, omo_id: str) -> None:
        peer = await self._person(omo_id)
        async with self._transaction() as session:
            mine = await session.get(Contact, (user_id, peer.user_id))
            if mine is None or mine.status != "incoming":
                raise ProblemError("friend-request-not-found", "This person has not asked.")
            await self._unlink(session, user_id, peer.user_id)

    async def remove_friend(self, user_id: uuid.UUID, omo_id: str) -> None:
        peer = await self._person(omo_id)
        async with self._transaction() as session:
            await self._unlink(session, user_id, peer.user_id)

    async def _unlink(self, session: AsyncSession, a: uuid.UUID, b: uuid.UUID) -> None:
        await session.execute(
            delete(Contact).where(
                ((Contact.user_id == a) & (Contact.peer_id == b))
                | ((Contact.user_id == b) & (Contact.peer_id == a))
            )
        )

    async def block(self, user_id: uuid.UUID, omo_id: str) -> None:
        peer = await self._person(omo_id)
        if peer.user_id == user_id:
            raise ProblemError("invalid-contact", "You cannot block yourself.")
        async with self._transaction() as session:
            if await session.get(Block, (user_id, peer.user_id)) is None:
                session.add(
                    Block(user_id=user_id, blocked_id=peer.user_id, created_at=self.clock.now())
                )
            # Their pending request to you goes away with the block.
            mine = await session.get(Contact, (user_id, peer.user_id))
            if mine is not None and mine.status == "incoming":
                await self._unlink(session, user_id, peer.user_id)

    async def unblock(self, user_id: uuid.UUID, omo_id: str) -> None:
        peer = await self._person(omo_id)
        async with self._transaction() as session:
            await session.execute(
                delete(Block).where(Block.user_id == user_id, Block.blocked_id == peer.user_id)
            )

    async def contacts(self, user_id: uuid.UUID) -> tuple[list[ContactView], list[PublicProfile]]:
        """Friends and requests (both ways), and the people this person blocked."""
        async with self.db.sessions() as session:
            rows = (await session.scalars(select(Contact).where(Contact.user_id == user_id))).all()
            blocked = (
                await session.scalars(select(Block.blocked_id).where(Block.user_id == user_id))
            ).all()
        people = await self.profiles([r.peer_id for r in rows] + list(blocked))
        views = [ContactView(people[r.peer_id], r.status) for r in rows if r.peer_id in people]
        views.sort(key=lambda v: (v.status, v.profile.display_name.casefold()))
        return views, [people[b] for b in blocked if b in people]

    async def _are_friends(self, session: AsyncSession, a: uuid.UUID, b: uuid.UUID) -> bool:
        row = await session.get(Contact, (a, b))
        return row is not None and row.status == "friend"

    # -- conversations -----------------------------------------------------------------------

    async def open_direct(self, user_id: uuid.UUID, omo_id: str) -> uuid.UUID:
        """The one 1:1 conversation between two friends, created on first use."""
        peer = await self._person(omo_id)
        if peer.user_id == user_id:
            raise ProblemError("invalid-contact", "You cannot chat with yourself here.")
        key = ":".join(sorted((str(user_id), str(peer.user_id))))
        for _attempt in range(2):
            try:
                async with self._transaction() as session:
                    existing = await session.scalar(
                        select(Conversation.id).where(Conversation.direct_key == key)
                    )
                    if existing is not None:
                        return existing
                    if not await self._are_friends(session, user_id, peer.user_id):
                        raise ProblemError("not-friends", "Only friends can chat one to one.")
                    now = self.clock.now()
                    conversation = Conversation(
                        id=new_id(),
                        kind="direct",
                        direct_key=key,
                        name="",
                        announcement="",
                        last_seq=0,
                        created_at=now,
                    )
                    session.add(conversation)
                    await session.flush()
                    for member in (user_id, peer.user_id):
                        session.add(self._member(conversation.id, member, "member", 0, now))
                    return conversation.id
            except IntegrityError:
                continue  # the other person opened it at the same moment: read theirs
        raise ProblemError("conversation-not-found", "Try again.")

    def _member(
        self,
        conversation_id: uuid.UUID,
        user_id: uuid.UUID,
        role: str,
        joined_seq: int,
        now: datetime,
    ) -> Member:
        return Member(
            conversation_id=conversation_id,
            user_id=user_id,
            role=role,
            active=True,
            muted=False,
            joined_seq=joined_seq,
            read_seq=joined_seq,
            joined_at=now,
        )

    async def _friends_by_omo_id(
        self, session: AsyncSession, user_id: uuid.UUID, omo_ids: Iterable[str]
    ) -> list[uuid.UUID]:
        found: list[uuid.UUID] = []
        for omo_id in dict.fromkeys(omo_ids):
            peer = await self._person(omo_id)
            if peer.user_id == user_id:
                continue
            if not await self._are_friends(session, user_id, peer.user_id):
                raise ProblemError(
                    "not-friends", "%(omo_id)s is not your friend.", params={"omo_id": omo_id}
                )
            found.append(peer.user_id)
        return found

    async def create_group(
        self, owner_id: uuid.UUID, name: str, omo_ids: Sequence[str]
    ) -> uuid.UUID:
        name = name.strip()
        if len(name) > GROUP_NAME_MAX:
            raise ProblemError("invalid-message", "Use a shorter group name.")
        if len(set(omo_ids)) + 1 > GROUP_MAX_MEMBERS:
            raise ProblemError(
                "group-full",
                "A group has at most %(max)d members.",
                params={"max": GROUP_MAX_MEMBERS},
            )
        appended: list[ChatMessage] = []
        async with self._transaction() as session:
            members = await self._friends_by_omo_id(session, owner_id, omo_ids)
            now = self.clock.now()
            conversation = Conversation(
                id=new_id(),
                kind="group",
                direct_key=None,
                name=name,
                announcement="",
                last_seq=0,
                created_at=now,
            )
            session.add(conversation)
            await session.flush()
            session.add(self._member(conversation.id, owner_id, "owner", 0, now))
            for member in members:
                session.add(self._member(conversation.id, member, "member", 0, now))
            await session.flush()
            appended.append(
                self._append_system(session, conversation, owner_id, "created", members)
            )
            self._record(
                session, events.GroupCreated(conversation_id=conversation.id, owner_id=owner_id)
            )
        await self._publish(appended, [owner_id, *members])
        return conversation.id

    def _append_system(
        self,
        session: AsyncSession,
        conversation: Conversation,
        actor: uuid.UUID,
        event: str,
        people: Sequence[uuid.UUID] = (),
    ) -> ChatMessage:
        """A membership or settings change, in the conversation's log like any message."""
        conversation.last_seq += 1
        row = Message(
            id=new_id(),
            conversation_id=conversation.id,
            seq=conversation.last_seq,
            sender_id=actor,
            client_id=f"system:{new_id()}",
            kind="system",
            text="",
            extra={"event": event, "people": [str(p) for p in people]},
            sent_at=self.clock.now(),
            recalled_at=None,
        )
        session.add(row)
        return _message(row)

    async def _locked_conversation(
        self, session: AsyncSession, conversation_id: uuid.UUID
    ) -> Conversation:
        conversation = await session.scalar(
            select(Conversation).where(Conversation.id == conversation_id).with_for_update()
        )
        if conversation is None:
            raise ProblemError("conversation-not-found", "Check the conversation id.")
        return conversation

    async def _active_member(
        self, session: AsyncSession, conversation_id: uuid.UUID, user_id: uuid.UUID
    ) -> Member:
        member = await session.get(Member, (conversation_id, user_id))
        if member is None or not member.active:
            if await session.get(Conversation, conversation_id) is None:
                raise ProblemError("conversation-not-found", "Check the conversation id.")
            raise ProblemError("not-a-member", "Only members can do this.")
        return member

    async def require_member(self, user_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
        """Refuse anyone but a current member (404 for no such conversation, else 403)."""
        async with self.db.sessions() as session:
            await self._active_member(session, conversation_id, user_id)

    async def _active_ids(
        self, session: AsyncSession, conversation_id: uuid.UUID
    ) -> list[uuid.UUID]:
        return list(
            (
                await session.scalars(
                    select(Member.user_id).where(
                        Member.conversation_id == conversation_id, Member.active.is_(True)
                    )
                )
            ).all()
        )

    def _require_group_admin(self, conversation: Conversation, member: Member) -> None:
        if conversation.kind != "group" or member.role not in ("owner", "admin"):
            raise ProblemError("not-an-admin", "Ask the group's owner or an admin.")

    async def invite(
        self, actor_id: uuid.UUID, conversation_id: uuid.UUID, omo_ids: Sequence[str]
    ) -> None:
        async with self._transaction() as session:
            conversation = await self._locked_conversation(session, conversation_id)
            await self._active_member(session, conversation_id, actor_id)
            if conversation.kind != "group":
                raise ProblemError("not-an-admin", "Only groups take new members.")
            invited = await self._friends_by_omo_id(session, actor_id, omo_ids)
            active = set(await self._active_ids(session, conversation_id))
            new = [u for u in invited if u not in active]
            if len(active) + len(new) > GROUP_MAX_MEMBERS:
                raise ProblemError(
                    "group-full",
                    "A group has at most %(max)d members.",
                    params={"max": GROUP_MAX_MEMBERS},
                )
            if not new:
                return
            now = self.clock.now()
            joined = conversation.last_seq
            for user_id in new:
                row = await session.get(Member, (conversation_id, user_id))
                if row is None:
                    session.add(self._member(conversation_id, user_id, "member", joined, now))
                else:
                    row.active, row.role, row.joined_seq, row.read_seq = (
                        True,
                        "member",
                        joined,
                        joined,
                    )
            appended = self._append_system(session, conversation, actor_id, "joined", new)
        await self._publish([appended], [*active, *new])

    async def remove_member(
        self, actor_id: uuid.UUID, conversation_id: uuid.UUID, omo_id: str
    ) -> None:
        target = await self._person(omo_id)
        if target.user_id == actor_id:
            await self.leave(actor_id, conversation_id)
            return
        async with self._transaction() as session:
            conversation = await self._locked_conversation(session, conversation_id)
            actor = await self._active_member(session, conversation_id, actor_id)
            self._require_group_admin(conversation, actor)
            member = await session.get(Member, (conversation_id, target.user_id))
            if member is None or not member.active:
                raise ProblemError("not-a-member", "That person is not in this group.")
            if member.role == "owner" or (member.role == "admin" and actor.role != "owner"):
                raise ProblemError("not-an-admin", "Only the owner removes admins.")
            audience = await self._active_ids(session, conversation_id)
            member.active = False
            appended = self._append_system(
                session, conversation, actor_id, "removed", [target.user_id]
            )
        await self._publish([appended], audience)

    async def leave(self, user_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
        async with self._transaction() as session:
            conversation = await self._locked_conversation(session, conversation_id)
            member = await self._active_member(session, conversation_id, user_id)
            if conversation.kind != "group":
                raise ProblemError("not-an-admin", "A one-to-one chat cannot be left.")
            audience = await self._active_ids(session, conversation_id)
            appended = await self._depart(session, conversation, member)
        await self._publish([appended], audience)

    async def _depart(
        self, session: AsyncSession, conversation: Conversation, member: Member
    ) -> ChatMessage:
        """The member leaves the group; an owner hands the group to an admin, else the eldest."""
        member.active = False
        if member.role == "owner":
            heirs = (
                await session.scalars(
                    select(Member)
                    .where(
                        Member.conversation_id == conversation.id,
                        Member.active.is_(True),
                        Member.user_id != member.user_id,
                    )
                    .order_by((Member.role == "admin").desc(), Member.joined_at, Member.user_id)
                    .limit(1)
                )
            ).first()
            member.role = "member"
            if heirs is not None:
                heirs.role = "owner"
        return self._append_system(session, conversation, member.user_id, "left", [member.user_id])

    async def forget_erased_people(self) -> int:
        """React to identity's erasures: drop the person's contacts, requests and blocks, and
        take them out of every group (handing ownership on). 1:1 histories stay with the other
        person, under the erased name. Idempotent, from the outbox at this context's pace."""

        async def forget(session: AsyncSession, event: StoredEvent) -> None:
            user_id = uuid.UUID(event.payload["user_id"])
            await session.execute(
                delete(Contact).where(or_(Contact.user_id == user_id, Contact.peer_id == user_id))
            )
            await session.execute(
                delete(Block).where(or_(Block.user_id == user_id, Block.blocked_id == user_id))
            )
            memberships = await session.scalars(
                select(Member).where(Member.user_id == user_id, Member.active.is_(True))
            )
            for member in memberships.all():
                conversation = await self._locked_conversation(session, member.conversation_id)
                if conversation.kind == "group":
                    await self._depart(session, conversation, member)
                else:
                    member.active = False

        async with self._transaction() as session:
            return await consume(
                session, "messaging.erasures", forget, topics=(PersonErased.topic,)
            )

    async def set_role(
        self, actor_id: uuid.UUID, conversation_id: uuid.UUID, omo_id: str, role: Role
    ) -> None:
        target = await self._person(omo_id)
        async with self._transaction() as session:
            conversation = await self._locked_conversation(session, conversation_id)
            actor = await self._active_member(session, conversation_id, actor_id)
            if conversation.kind != "group" or actor.role != "owner":
                raise ProblemError("not-an-admin", "Only the owner changes roles.")
            member = await session.get(Member, (conversation_id, target.user_id))
            if member is None or not member.active or member.user_id == actor_id:
                raise ProblemError("not-a-member", "That person is not in this group.")
            if role == "owner":
                actor.role = "admin"
            member.role = role

    async def update_group(
        self,
        actor_id: uuid.UUID,
        conversation_id: uuid.UUID,
        *,
        name: str | None = None,
        announcement: str | None = None,
    ) -> None:
        appended: list[ChatMessage] = []
        async with self._transaction() as session:
            conversation = await self._locked_conversation(session, conversation_id)
            actor = await self._active_member(session, conversation_id, actor_id)
            self._require_group_admin(conversation, actor)
            if name is not None and name.strip() != conversation.name:
                if len(name.strip()) > GROUP_NAME_MAX:
                    raise ProblemError("invalid-message", "Use a shorter group name.")
                conversation.name = name.strip()
                appended.append(self._append_system(session, conversation, actor_id, "renamed"))
            if announcement is not None and announcement != conversation.announcement:
                if len(announcement) > ANNOUNCEMENT_MAX:
                    raise ProblemError("invalid-message", "Use a shorter announcement.")
                conversation.announcement = announcement
                appended.append(
                    self._append_system(session, conversation, actor_id, "announcement")
                )
            audience = await self._active_ids(session, conversation_id)
        await self._publish(appended, audience)

    async def set_muted(self, user_id: uuid.UUID, conversation_id: uuid.UUID, muted: bool) -> None:
        async with self._transaction() as session:
            member = await self._active_member(session, conversation_id, user_id)
            member.muted = muted

    async def conversations(
        self, user_id: uuid.UUID, only: uuid.UUID | None = None
    ) -> list[ConversationView]:
        """This person's conversations, newest activity first, with unread counts."""
        async with self.db.sessions() as session:
            query = (
                select(Conversation, Member)
                .join(Member, Member.conversation_id == Conversation.id)
                .where(Member.user_id == user_id, Member.active.is_(True))
            )
            if only is not None:
                query = query.where(Conversation.id == only)
            pairs = (await session.execute(query)).all()
            if not pairs:
                return []
            ids = [c.id for c, _m in pairs]
            unread_rows = await session.execute(
                select(Message.conversation_id, func.count())
                .join(
                    Member,
                    and_(
                        Member.conversation_id == Message.conversation_id,
                        Member.user_id == user_id,
                    ),
                )
                .where(
                    Message.conversation_id.in_(ids),
                    Message.seq > Member.read_seq,
                    Message.sender_id != user_id,
                    Message.kind.in_(CONTENT_KINDS),
                )
                .group_by(Message.conversation_id)
            )
            unread: dict[uuid.UUID, int] = {row[0]: int(row[1]) for row in unread_rows}
            last_rows = (
                await session.scalars(
                    select(Message)
                    .join(
                        Conversation,
                        and_(
                            Conversation.id == Message.conversation_id,
                            Conversation.last_seq == Message.seq,
                        ),
                    )
                    .where(Message.conversation_id.in_(ids))
                )
            ).all()
            last = {row.conversation_id: _message(row) for row in last_rows}
            peers: dict[uuid.UUID, uuid.UUID] = {}
            direct = [c.id for c, _m in pairs if c.kind == "direct"]
            if direct:
                for conv_id, peer_id in await session.execute(
                    select(Member.conversation_id, Member.user_id).where(
                        Member.conversation_id.in_(direct), Member.user_id != user_id
                    )
                ):
                    peers[conv_id] = peer_id
            roster: list[tuple[uuid.UUID, str]] = []
            if only is not None:
                roster = [
                    (row[0], row[1])
                    for row in await session.execute(
                        select(Member.user_id, Member.role)
                        .where(Member.conversation_id == only, Member.active.is_(True))
                        .order_by(Member.joined_at, Member.user_id)
                    )
                ]
        people = await self.profiles(
            [*peers.values(), *(u for u, _r in roster)]
            + [p for m in last.values() for p in _people_in(m)]
        )
        views = [
            ConversationView(
                id=c.id,
                kind=c.kind,
                name=c.name,
                announcement=c.announcement,
                last_seq=c.last_seq,
                read_seq=m.read_seq,
                unread=unread.get(c.id, 0),
                muted=m.muted,
                role=m.role,
                peer=people.get(peers[c.id]) if c.id in peers else None,
                last_message=last.get(c.id),
                members=[MemberView(people[u], r) for u, r in roster if u in people],
            )
            for c, m in pairs
        ]
        views.sort(
            key=lambda v: v.last_message.sent_at.isoformat() if v.last_message else "", reverse=True
        )
        return views

    async def conversation(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> ConversationView:
        found = await self.conversations(user_id, only=conversation_id)
        if not found:
            async with self.db.sessions() as session:
                await self._active_member(session, conversation_id, user_id)
            raise ProblemError("not-a-member", "Only members can do this.")
        return found[0]

    # -- sending -----------------------------------------------------------------------------

    async def send(self, sender_id: uuid.UUID, draft: Draft, *, origin: str = "") -> Sent:
        """Store a message durably (idempotent by client id), then fan it out.

        Returns after the commit: the caller may acknowledge to the client.
        """
        validate_draft(draft)
        mention_ids: list[uuid.UUID] = []
        for omo_id in dict.fromkeys(draft.mentions):
            mention_ids.append((await self._person(omo_id)).user_id)
        media = None
        if draft.media_id is not None:
            media = await self._media_for_sending(sender_id, draft)
        pending = self._pending(sender_id, draft, origin, tuple(mention_ids), media)
        return await self._submit(pending)

    def send_nowait(
        self, sender_id: uuid.UUID, draft: Draft, *, origin: str = ""
    ) -> asyncio.Future[Sent] | None:
        """`send` for a draft that needs nothing looked up (no mentions, no media): queued at
        once, and the future is done when the message is durable (or refused: the future's
        ProblemError). None when the draft needs `send`. A refused draft raises here as in
        `send`. The gateway acknowledges from the future's callback: no task per message."""
        if draft.mentions or draft.media_id is not None:
            return None
        validate_draft(draft)
        pending = self._pending(sender_id, draft, origin, (), None)
        self._enqueue(pending)
        return pending.future

    def _pending(
        self,
        sender_id: uuid.UUID,
        draft: Draft,
        origin: str,
        mention_ids: tuple[uuid.UUID, ...],
        media: Media | None,
    ) -> _Pending:
        extra: dict[str, Any] = {}
        if draft.card is not None:
            extra["card"] = _validate_card(draft.card)
        if mention_ids:
            extra["mentions"] = [str(m) for m in mention_ids]
        if draft.mention_all:
            extra["mention_all"] = True
        kind = "card" if draft.card is not None else "text"
        if draft.location is not None:
            extra["location"] = _validate_location(draft.location)
            kind = "location"
        if media is not None:
            extra["media"] = {
                "id": str(media.id),
                "kind": media.kind,
                "content_type": media.content_type,
                "name": media.name,
                "size": media.size,
                "width": media.width,
                "height": media.height,
                "thumbnail": media.has_thumbnail,
            }
            kind = media.kind
        return _Pending(
            sender_id=sender_id,
            conversation_id=draft.conversation_id,
            client_id=draft.client_id,
            kind=kind,
            text=draft.text,
            extra=extra,
            origin=origin,
            future=asyncio.get_running_loop().create_future(),
            mention_ids=mention_ids,
        )

    async def _media_for_sending(self, sender_id: uuid.UUID, draft: Draft) -> Media:
        async with self.db.sessions() as session:
            media = await session.get(Media, draft.media_id)
        if (
            media is None
            or media.conversation_id != draft.conversation_id
            or media.uploader_id != sender_id
        ):
            raise ProblemError("media-not-found", "Upload the file to this conversation first.")
        return media

    # -- media -------------------------------------------------------------------------------

    def limit_for(self, kind: str) -> int:
        return min(SIZE_LIMITS.get(kind, 0), self.upload_limit)

    async def upload_media(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID, kind: str, name: str, data: bytes
    ) -> MediaView:
        """Store a file for a conversation, checked by its content; send it with its id."""
        if kind not in MEDIA_KINDS:
            raise ProblemError("invalid-media", "Choose image, voice, video or file.")
        if len(data) > self.limit_for(kind):
            raise ProblemError(
                "media-too-large",
                "Send at most %(kib)d KiB.",
                params={"kib": self.limit_for(kind) // 1024},
            )
        if not data:
            raise ProblemError("invalid-media", "The file is empty.")
        async with self.db.sessions() as session:
            await self._active_member(session, conversation_id, user_id)
        checked = check(kind, data)
        if self.storage is None:
            raise RuntimeError("no media storage configured")
        media_id = new_id()
        await self.storage.put(str(media_id), data)
        if checked.thumbnail is not None:
            await self.storage.put(f"{media_id}.thumb", checked.thumbnail)
        row = Media(
            id=media_id,
            conversation_id=conversation_id,
            uploader_id=user_id,
            kind=kind,
            content_type=checked.content_type,
            name=name.strip()[:MEDIA_NAME_MAX],
            size=len(data),
            width=checked.width,
            height=checked.height,
            has_thumbnail=checked.thumbnail is not None,
            created_at=self.clock.now(),
        )
        async with self._transaction() as session:
            session.add(row)
        return _media_view(row)

    async def media_content(
        self, user_id: uuid.UUID, media_id: uuid.UUID, *, thumbnail: bool = False
    ) -> tuple[MediaView, bytes]:
        """The bytes, only for current members of the media's conversation."""
        async with self.db.sessions() as session:
            media = await session.get(Media, media_id)
            if media is None:
                raise ProblemError("media-not-found", "There is no such file.")
            try:
                await self._active_member(session, media.conversation_id, user_id)
            except ProblemError as refusal:
                raise ProblemError("media-not-found", "There is no such file.") from refusal
        if thumbnail and not media.has_thumbnail:
            raise ProblemError("media-not-found", "There is no such file.")
        assert self.storage is not None
        data = await self.storage.get(f"{media_id}.thumb" if thumbnail else str(media_id))
        if data is None:
            raise ProblemError("media-not-found", "There is no such file.")
        view = _media_view(media)
        if thumbnail:
            view = MediaView(
                view.id,
                view.conversation_id,
                view.kind,
                "image/jpeg",
                view.name,
                len(data),
                None,
                None,
            )
        return view, data

    async def recall(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID, seq: int, *, origin: str = ""
    ) -> Sent:
        """Take back one's own message within the window; the recall is itself in the log."""
        return await self._submit(
            _Pending(
                sender_id=user_id,
                conversation_id=conversation_id,
                client_id=f"recall:{seq}",
                kind="recall",
                text="",
                extra={"target": seq},
                origin=origin,
                future=asyncio.get_running_loop().create_future(),
                recall_seq=seq,
            )
        )

    async def _submit(self, pending: _Pending) -> Sent:
        self._enqueue(pending)
        return await asyncio.shield(pending.future)

    def _enqueue(self, pending: _Pending) -> None:
        if not self._queues:
            raise RuntimeError("the messaging service is not started")
        lane = hash(pending.conversation_id) % len(self._queues) if len(self._queues) > 1 else 0
        self._queues[lane].put_nowait(pending)

    async def _write_forever(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            _raise_if_cancelling()
            batch = [await queue.get()]
            while len(batch) < WRITE_BATCH_MAX and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._write_batch(batch)
            except asyncio.CancelledError:
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(RuntimeError("messaging is stopping"))
                raise
            except Exception:
                _raise_if_cancelling()
                # One bad apple must not fail the others: retry each on its own.
                logger.warning(
                    "a batch of %d sends failed; retrying one by one", len(batch), exc_info=True
                )
                for pending in batch:
                    if pending.future.done():
                        continue
                    try:
                        await self._write_batch([pending])
                    except Exception as exc:
                        if not pending.future.done():
                            pending.future.set_exception(exc)

    async def _write_batch(self, batch: list[_Pending]) -> None:
        outcomes = [_Outcome(p) for p in batch]
        audiences: dict[uuid.UUID, list[uuid.UUID]] = {}
        tx = await self._raw_tx() if all(p.recall_seq is None for p in batch) else None
        if tx is None:
            async with self._transaction() as session:
                await self._apply(session, outcomes, audiences)
        else:
            assert self._serial is not None
            async with self._serial:
                await self._apply_raw(tx, outcomes, audiences)
        self.batches += 1
        self.batched_messages += len(batch)
        stored = [o.sent.message for o in outcomes if o.sent is not None]
        wired: dict[uuid.UUID, dict[str, Any]] = {}
        if stored:
            try:
                wired = {m.id: w for m, w in zip(stored, await self.wire(stored), strict=True)}
            except Exception:  # already durable: acks and fan-out make their own
                logger.warning("could not prepare messages for the wire", exc_info=True)
        fresh: list[tuple[ChatMessage, str, dict[str, Any] | None]] = []
        for outcome in outcomes:
            future = outcome.pending.future
            if future.done():
                continue
            if outcome.error is not None:
                future.set_exception(outcome.error)
            elif outcome.sent is not None:
                message = outcome.sent.message
                future.set_result(Sent(message, outcome.sent.duplicate, wired.get(message.id)))
                if not outcome.sent.duplicate:
                    fresh.append((message, outcome.pending.origin, wired.get(message.id)))
        if fresh:
            # Published by the fan-out task, in commit order, while the next batch commits.
            self._fanout_queue.put_nowait((fresh, audiences))

    async def _raw_tx(self) -> _RawTx | None:
        """The writer's own SQLite connection (see `_RawTx`); None on other databases."""
        if self._raw is None:
            driver = await self.db.sqlite_writer() if self.db.is_sqlite else None
            self._raw = False if driver is None else _RawTx(driver, self.db.engine.dialect)
        return self._raw or None

    async def _apply_raw(
        self,
        tx: _RawTx,
        outcomes: list[_Outcome],
        audiences: dict[uuid.UUID, list[uuid.UUID]],
    ) -> None:
        """`_apply` in one BEGIN IMMEDIATE … COMMIT on the writer's own connection: the
        write lock is taken first, so the batch's reads and writes see one state; the
        futures are resolved by the caller only after COMMIT returned (durable acks)."""
        async with tx.driver.immediate():
            await self._apply(tx, outcomes, audiences)

    async def _fan_out_forever(self) -> None:
        while True:
            # A library (redis-py's publishing, say) may swallow our cancellation and return;
            # the task still says it is being cancelled, and stopping must stop.
            _raise_if_cancelling()
            fresh, audiences = await self._fanout_queue.get()
            try:
                await self._fan_out(fresh, audiences)
            except Exception:
                # A library may turn our cancellation into another error (a Redis read's own
                # timeout, say): stopping must still stop.
                _raise_if_cancelling()
                # Already durable: clients catch up by sync.
                logger.warning("fan-out failed", exc_info=True)

    async def _apply(
        self,
        session: AsyncSession | _RawTx,
        outcomes: list[_Outcome],
        audiences: dict[uuid.UUID, list[uuid.UUID]],
    ) -> None:
        conversation_ids = sorted({o.pending.conversation_id for o in outcomes})
        # Core statements, not ORM entities: this runs for every batch of sends.
        # Lock order by id, so two nodes' batches never deadlock each other.
        conversations: dict[uuid.UUID, list[Any]] = {}
        members: dict[tuple[uuid.UUID, uuid.UUID], str] = {}
        if isinstance(session, _RawTx):
            # The writer's own connection holds SQLite's write lock: conversations and
            # their members in one read.
            for conv_id, kind, last_seq, user_id, role in await self._lock_members(
                session, conversation_ids
            ):
                conversations.setdefault(conv_id, [kind, last_seq])
                if user_id is not None and role is not None:
                    members[(conv_id, user_id)] = role
                    audiences.setdefault(conv_id, []).append(user_id)
        else:
            for conv_id, kind, last_seq in await self._lock(session, conversation_ids):
                conversations[conv_id] = [kind, last_seq]
            for conv_id, user_id, role in await self._members(session, list(conversations)):
                members[(conv_id, user_id)] = role
                audiences.setdefault(conv_id, []).append(user_id)
        first_seq = {conv_id: state[1] for conv_id, state in conversations.items()}
        blocks: set[tuple[uuid.UUID, uuid.UUID]] = set()
        senders = {o.pending.sender_id for o in outcomes}
        direct_people = {
            u for (c, u) in members if c in conversations and conversations[c][0] == "direct"
        }
        if direct_people:
            blocks.update(await self._blocks(session, list(direct_people), list(senders)))
        known: dict[tuple[uuid.UUID, uuid.UUID, str], ChatMessage] = {}
        rows: list[dict[str, Any]] = []
        outbox: list[dict[str, Any]] = []
        indexed: list[dict[str, Any]] = []
        keys = list(
            dict.fromkeys(
                (o.pending.conversation_id, o.pending.sender_id, o.pending.client_id)
                for o in outcomes
            )
        )
        for stored in await self._stored(session, keys):
            known[(stored.conversation_id, stored.sender_id, stored.client_id)] = _message_row(
                stored
            )
        now = self.clock.now()
        read_up_to: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
        for outcome in outcomes:
            p = outcome.pending
            key = (p.conversation_id, p.sender_id, p.client_id)
            conversation = conversations.get(p.conversation_id)
            try:
                if conversation is None:
                    raise ProblemError("conversation-not-found", "Check the conversation id.")
                if key in known:
                    outcome.sent = Sent(known[key], duplicate=True)
                    continue
                sender_role = members.get((p.conversation_id, p.sender_id))
                if sender_role is None:
                    raise ProblemError("not-a-member", "Only members can send here.")
                if conversation[0] == "direct":
                    for other in audiences.get(p.conversation_id, ()):
                        if other != p.sender_id and (other, p.sender_id) in blocks:
                            raise ProblemError("blocked", "Your message was not delivered.")
                for mentioned in p.mention_ids:
                    if (p.conversation_id, mentioned) not in members:
                        raise ProblemError("invalid-message", "Mention only members.")
                if p.extra.get("mention_all") and (
                    conversation[0] != "group" or sender_role not in ("owner", "admin")
                ):
                    raise ProblemError("not-an-admin", "Only admins can mention everyone.")
                if p.recall_seq is not None:
                    assert isinstance(session, AsyncSession)  # recalls take the session path
                    await self._recall_target(session, p, now)
            except ProblemError as error:
                outcome.error = error
                continue
            conversation[1] += 1
            message = ChatMessage(
                id=new_id(),
                conversation_id=p.conversation_id,
                seq=conversation[1],
                sender_id=p.sender_id,
                client_id=p.client_id,
                kind=p.kind,
                text=p.text,
                extra=p.extra,
                sent_at=now,
                recalled=False,
            )
            rows.append(
                {
                    "id": message.id,
                    "conversation_id": message.conversation_id,
                    "seq": message.seq,
                    "sender_id": message.sender_id,
                    "client_id": message.client_id,
                    "kind": message.kind,
                    "text": message.text,
                    "extra": message.extra,
                    "sent_at": now,
                    "recalled_at": None,
                }
            )
            # The outbox row of events.MessageSent, built directly: this is the hot path.
            outbox.append(
                {
                    "id": new_id(),
                    "topic": events.MessageSent.topic,
                    "payload": {
                        "conversation_id": str(message.conversation_id),
                        "seq": message.seq,
                        "sender_id": str(message.sender_id),
                        "kind": message.kind,
                    },
                    "occurred_at": now,
                }
            )
            terms = index_terms(searchable_text(message.text, message.extra))
            if terms:
                indexed.append(
                    {
                        "message_id": message.id,
                        "conversation_id": message.conversation_id,
                        "terms": terms,
                    }
                )
            known[key] = message
            read_up_to[(p.conversation_id, p.sender_id)] = message.seq
            outcome.sent = Sent(message, duplicate=False)
        # Many rows, one statement each (executemany), in the one transaction of the batch.
        # Core inserts (executemany): the ORM's bulk path costs more per row on the hot path.
        moved = [
            {"conv": conv_id, "seq": state[1]}
            for conv_id, state in conversations.items()
            if state[1] != first_seq[conv_id]
        ]
        if moved:
            await _DRIVER_MOVE_SEQ.run(session, moved)
        # Many rows, one statement each (executemany), in the one transaction of the batch.
        # Core inserts (executemany): the ORM's bulk path costs more per row on the hot path.
        values = self._raw_values if isinstance(session, _RawTx) else None
        if values is None and isinstance(session, _RawTx):
            values = self._raw_values = _RawValues(session.dialect)
        if rows and isinstance(session, _RawTx) and values is not None and values.usable:
            await values.insert(session, now, rows, outbox, indexed)
        else:
            if rows:
                await _DRIVER_INSERT_MESSAGES.run(session, rows)
                await _DRIVER_INSERT_OUTBOX.run(session, outbox)
            if indexed:
                await _DRIVER_INSERT_SEARCH.run(session, indexed)
        # Sending is reading: what one sent is never unread for oneself.
        if read_up_to:
            await _DRIVER_MOVE_READ.run(
                session,
                [
                    {"conv": conv_id, "member": user_id, "seq": seq}
                    for (conv_id, user_id), seq in read_up_to.items()
                ],
            )

    # -- the writer's reads: SQLite through the driver, other databases through SQLAlchemy --

    def _uuid(self, value: Any) -> uuid.UUID:
        """A stored id (SQLite's driver value) as a UUID, remembered: the same people recur."""
        found = self._uuids.get(value)
        if found is None:
            if len(self._uuids) > 100_000:
                self._uuids.clear()
            found = self._uuids[value] = uuid.UUID(value)
        return found

    async def _lock(
        self, session: AsyncSession, ids: list[uuid.UUID]
    ) -> list[tuple[uuid.UUID, str, int]]:
        """(id, kind, last_seq) of these conversations, locked, in id order."""
        padded = _padded(ids)
        statement = _driver_lock(len(padded))
        found = await statement.fetch(
            session, {f"i{n}": conv_id for n, conv_id in enumerate(padded)}
        )
        if found is None:
            return [
                (r[0], r[1], r[2]) for r in await session.execute(_LOCK_CONVERSATIONS, {"ids": ids})
            ]
        by_value = self._by_driver_value(statement, "i0", ids)
        return [(by_value[r[0]], r[1], r[2]) for r in found]

    async def _lock_members(
        self, tx: _RawTx, ids: list[uuid.UUID]
    ) -> list[tuple[uuid.UUID, str, int, uuid.UUID | None, str | None]]:
        """(id, kind, last_seq, member, role) of these conversations and their active
        members, in id order (see `_driver_lock_members`)."""
        padded = _padded(ids)
        statement = _driver_lock_members(len(padded))
        found = await statement.fetch(tx, {f"i{n}": conv_id for n, conv_id in enumerate(padded)})
        assert found is not None
        by_value = self._by_driver_value(statement, "i0", ids)
        return [
            (by_value[r[0]], r[1], r[2], None if r[3] is None else self._uuid(r[3]), r[4])
            for r in found
        ]

    async def _members(
        self, session: AsyncSession, ids: list[uuid.UUID]
    ) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
        """(conversation, person, role) of the active members of these conversations."""
        if not ids:
            return []
        padded = _padded(ids)
        statement = _driver_members(len(padded))
        found = await statement.fetch(
            session, {f"i{n}": conv_id for n, conv_id in enumerate(padded)}
        )
        if found is None:
            return [
                (r[0], r[1], r[2]) for r in await session.execute(_ACTIVE_MEMBERS, {"ids": ids})
            ]
        by_value = self._by_driver_value(statement, "i0", ids)
        return [(by_value[r[0]], self._uuid(r[1]), r[2]) for r in found]

    async def _blocks(
        self, session: AsyncSession | _RawTx, people: list[uuid.UUID], senders: list[uuid.UUID]
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(person, blocked sender) pairs among these people and senders."""
        padded_people, padded_senders = _padded(people), _padded(senders)
        statement = _driver_blocks(len(padded_people), len(padded_senders))
        params = {f"p{n}": u for n, u in enumerate(padded_people)}
        params.update({f"s{n}": u for n, u in enumerate(padded_senders)})
        found = await statement.fetch(session, params)
        if found is None:
            assert isinstance(session, AsyncSession)
            return [
                (r[0], r[1])
                for r in await session.execute(_BLOCKS_OF, {"people": people, "senders": senders})
            ]
        return [(self._uuid(r[0]), self._uuid(r[1])) for r in found]

    def _by_driver_value(
        self, statement: _DriverMany, name: str, ids: list[uuid.UUID]
    ) -> dict[Any, uuid.UUID]:
        """The ids by their driver values (after `statement.fetch`), to read its rows."""
        to_driver = statement.processor(None, name)
        return {to_driver(value): value for value in ids}

    async def _stored(
        self, session: AsyncSession | _RawTx, keys: list[tuple[uuid.UUID, uuid.UUID, str]]
    ) -> list[Any]:
        """The stored rows of these (conversation, sender, client id) keys: retried sends."""
        statement, params = _stored_sends_params(keys)
        probe = _stored_keys(len(params) // 3)
        found = await probe.fetch(session, params)
        if found is not None:
            dialect = (await _driver(session) or (None, None))[1]
            conv, sender = probe.processor(dialect, "c0"), probe.processor(dialect, "s0")
            stored = {tuple(row) for row in found}
            keys = [k for k in keys if (conv(k[0]), sender(k[1]), k[2]) in stored]
            if not keys:
                return []
            statement, params = _stored_sends_params(keys)
        if isinstance(session, _RawTx):
            return await self._stored_raw(session, params)
        return list(await session.execute(statement, params))

    async def _stored_raw(self, tx: _RawTx, params: dict[str, Any]) -> list[Any]:
        """Retried sends' stored rows on the writer's own connection, in Python values (the
        columns' own result conversions), with the attribute access of a Core row."""
        many = _driver_stored_rows(len(params) // 3)
        found = await many.fetch(tx, params)
        assert found is not None
        dialect = tx.dialect
        columns = [
            (column.name, column.type.dialect_impl(dialect).result_processor(dialect, None))
            for column in _MESSAGES.columns
        ]
        return [
            SimpleNamespace(
                **{
                    name: value if process is None else process(value)
                    for (name, process), value in zip(columns, row, strict=True)
                }
            )
            for row in found
        ]

    async def _recall_target(self, session: AsyncSession, p: _Pending, now: datetime) -> None:
        target = await session.scalar(
            select(Message).where(
                Message.conversation_id == p.conversation_id, Message.seq == p.recall_seq
            )
        )
        if target is None or target.kind not in CONTENT_KINDS:
            raise ProblemError("message-not-found", "There is no such message to recall.")
        if target.sender_id != p.sender_id:
            raise ProblemError("forbidden", "You can only recall your own messages.")
        if now - target.sent_at > RECALL_WINDOW:
            raise ProblemError(
                "recall-too-late",
                "Messages can be recalled for %(minutes)d minutes.",
                params={"minutes": int(RECALL_WINDOW.total_seconds() // 60)},
            )
        target.text, target.extra, target.recalled_at = "", {}, now
        await session.execute(delete(MessageSearch).where(MessageSearch.message_id == target.id))

    async def _fan_out(
        self,
        fresh: list[tuple[ChatMessage, str, dict[str, Any] | None]],
        audiences: dict[uuid.UUID, list[uuid.UUID]],
    ) -> None:
        missing = [m for m, _o, w in fresh if w is None]
        made = dict(zip((m.id for m in missing), await self.wire(missing), strict=True))
        channels: dict[uuid.UUID, list[str]] = {}
        for message, origin, payload in fresh:
            frame = {"type": "message", "origin": origin, "message": payload or made[message.id]}
            audience = channels.get(message.conversation_id)
            if audience is None:
                audience = channels[message.conversation_id] = [
                    user_channel(u) for u in audiences.get(message.conversation_id, ())
                ]
            if self._local_only:
                # One node: nobody else to reach, so the subscribers get the frame itself
                # (shared read-only) without the JSON round trip publishing costs (~6 % of
                # the server's CPU per message, profiled); nothing changes it afterwards.
                self.broker.deliver_local(audience, frame)
            else:
                # One encoding per message, whatever the number of members; in commit order.
                await self.broker.publish_many(audience, frame)

    async def _publish(self, messages: list[ChatMessage], audience: Iterable[uuid.UUID]) -> None:
        if not messages:
            return
        people = list(dict.fromkeys(audience))
        for payload in await self.wire(messages):
            frame = {"type": "message", "origin": "", "message": payload}
            await asyncio.gather(*(self.broker.publish(user_channel(u), frame) for u in people))

    # -- reading -----------------------------------------------------------------------------

    async def history(
        self,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> Page:
        """Messages after `after` (sync: exactly the gap, oldest first), or the latest ones
        before `before` (scrolling back). Hidden-for-me messages are left out, but `until`
        still moves past them so a cursor never sticks."""
        limit = max(1, min(limit, HISTORY_MAX))
        async with self.db.sessions() as session:
            member = await self._active_member(session, conversation_id, user_id)
            floor = member.joined_seq
            query = select(Message).where(Message.conversation_id == conversation_id)
            if before is not None:
                query = query.where(Message.seq > floor, Message.seq < before)
                rows = list(
                    (
                        await session.scalars(query.order_by(Message.seq.desc()).limit(limit + 1))
                    ).all()
                )
                more = len(rows) > limit
                rows = sorted(rows[:limit], key=lambda r: r.seq)
            else:
                query = query.where(Message.seq > max(floor, after or 0))
                rows = list(
                    (await session.scalars(query.order_by(Message.seq).limit(limit + 1))).all()
                )
                more = len(rows) > limit
                rows = rows[:limit]
            hidden: set[uuid.UUID] = set()
            if rows:
                hidden = set(
                    (
                        await session.scalars(
                            select(Hidden.message_id).where(
                                Hidden.user_id == user_id,
                                Hidden.message_id.in_([r.id for r in rows]),
                            )
                        )
                    ).all()
                )
            until = rows[-1].seq if rows else max(floor, after or 0)
            return Page([_message(r) for r in rows if r.id not in hidden], until, more)

    async def search(
        self,
        user_id: uuid.UUID,
        text: str,
        *,
        conversation_id: uuid.UUID | None = None,
        limit: int = SEARCH_MAX,
    ) -> list[ChatMessage]:
        """This person's messages that hold `text` (every word; Chinese and Japanese words
        of one or more characters), newest first: only conversations they are in, only what
        they could read there, never recalled or hidden-for-me messages."""
        query = Query.parse(text)
        if query.empty:
            return []
        limit = max(1, min(limit, SEARCH_MAX))
        async with self.db.sessions() as session:
            if self.db.is_sqlite:
                match = text_clause("messaging_search MATCH :q").bindparams(q=query.fts5())
            else:
                match = text_clause(
                    "to_tsvector('simple', messaging_search.terms) @@ to_tsquery('simple', :q)"
                ).bindparams(q=query.tsquery())
            hidden = select(Hidden.message_id).where(
                Hidden.user_id == user_id, Hidden.message_id == Message.id
            )
            statement = (
                select(Message)
                .join(MessageSearch, MessageSearch.message_id == Message.id)
                .join(
                    Member,
                    and_(
                        Member.conversation_id == Message.conversation_id,
                        Member.user_id == user_id,
                        Member.active.is_(True),
                        Message.seq > Member.joined_seq,
                    ),
                )
                .where(match, Message.recalled_at.is_(None), ~hidden.exists())
                .order_by(Message.sent_at.desc(), Message.seq.desc())
                # The index narrows by terms; `matches` confirms CJK runs, so read some spare.
                .limit(limit * 4)
            )
            if conversation_id is not None:
                statement = statement.where(Message.conversation_id == conversation_id)
            rows = (await session.scalars(statement)).all()
        found = [
            _message(row) for row in rows if query.matches(searchable_text(row.text, row.extra))
        ]
        return found[:limit]

    async def mark_read(self, user_id: uuid.UUID, conversation_id: uuid.UUID, seq: int) -> int:
        """Move this person's read pointer forward (never back); tell the other members."""
        async with self._transaction() as session:
            member = await self._active_member(session, conversation_id, user_id)
            conversation = await session.get(Conversation, conversation_id)
            assert conversation is not None
            seq = min(seq, conversation.last_seq)
            moved = seq > member.read_seq
            if moved:
                member.read_seq = seq
            audience = await self._active_ids(session, conversation_id)
            pointer = member.read_seq
        if moved:
            profile = (await self.profiles([user_id])).get(user_id)
            frame = {
                "type": "read",
                "conversation": str(conversation_id),
                "reader": profile.omo_id if profile else "",
                "seq": pointer,
            }
            await asyncio.gather(*(self.broker.publish(user_channel(u), frame) for u in audience))
        return pointer

    async def typing(self, user_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
        """Ephemeral: never stored, dropped first under pressure."""
        async with self.db.sessions() as session:
            await self._active_member(session, conversation_id, user_id)
            audience = await self._active_ids(session, conversation_id)
        profile = (await self.profiles([user_id])).get(user_id)
        frame = {
            "type": "typing",
            "conversation": str(conversation_id),
            "who": profile.omo_id if profile else "",
        }
        await asyncio.gather(
            *(self.broker.publish(user_channel(u), frame) for u in audience if u != user_id)
        )

    async def hide(self, user_id: uuid.UUID, conversation_id: uuid.UUID, seq: int) -> None:
        """Delete for me: gone from this person's devices, still there for everyone else."""
        async with self._transaction() as session:
            await self._active_member(session, conversation_id, user_id)
            message_id = await session.scalar(
                select(Message.id).where(
                    Message.conversation_id == conversation_id, Message.seq == seq
                )
            )
            if message_id is None:
                raise ProblemError("message-not-found", "There is no such message.")
            if await session.get(Hidden, (user_id, message_id)) is None:
                session.add(Hidden(user_id=user_id, message_id=message_id))
        await self.broker.publish(
            user_channel(user_id),
            {"type": "hidden", "conversation": str(conversation_id), "seq": seq},
        )

    async def blocked_either_way(
        self, user_id: uuid.UUID, others: Iterable[uuid.UUID]
    ) -> set[uuid.UUID]:
        """Those of `others` whom this person blocked or who blocked this person."""
        wanted = list(set(others))
        if not wanted:
            return set()
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(Block.user_id, Block.blocked_id).where(
                    ((Block.user_id == user_id) & Block.blocked_id.in_(wanted))
                    | ((Block.blocked_id == user_id) & Block.user_id.in_(wanted))
                )
            )
        return {b if a == user_id else a for a, b in rows}

    # -- for other contexts (read only) -------------------------------------------------------

    async def relations(self, user_id: uuid.UUID) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
        """This person's friends, and everyone a block stands between them and (either way).

        For contexts whose rules follow friendship (social's Moments), read at their read time.
        """
        friends: set[uuid.UUID] = set()
        blocked: set[uuid.UUID] = set()
        async with self.db.sessions() as session:
            for who, why in await session.execute(_RELATIONS, {"user": user_id}):
                (friends if why == "f" else blocked).add(who)
        return friends, blocked
