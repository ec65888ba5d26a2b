"""Social use cases: labels and remarks on friends, Moments, likes, comments, notifications.

Every visibility rule lives in ONE place, `SocialService._scope` + `_visible_posts` (see
docs/SOCIAL.md). Friendship and blocks belong to messaging: they are read through
`MessagingService.relations` at read time, so unfriending or blocking hides old posts at once.
The timeline is a pull: friends' posts through the (author, created_at, id) index, newest first,
paged by a keyset cursor, never a copy per friend written at publish time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

import orjson
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    CompoundSelect,
    Select,
    String,
    Text,
    Uuid,
    and_,
    any_,
    bindparam,
    case,
    delete,
    exists,
    false,
    func,
    literal_column,
    null,
    or_,
    select,
    true,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from omo.core.broker import Broker
from omo.core.clock import Clock
from omo.core.db import Database, UtcDateTime
from omo.core.errors import ProblemError, register
from omo.core.events import DomainEvent, record_event
from omo.core.ids import new_id
from omo.identity.service import IdentityService, PublicProfile
from omo.messaging.media import check
from omo.messaging.service import MessagingService, user_channel
from omo.messaging.storage import MediaStorage
from omo.social import events
from omo.social.models import (
    Comment,
    FriendSetting,
    Label,
    LabelMember,
    Like,
    MomentsSetting,
    Notification,
    Post,
    PostAudience,
    PostMedia,
)

register("post-not-found", 404, "No such post")
register("comment-not-found", 404, "No such comment")
register("label-not-found", 404, "No such label")
register("invalid-post", 422, "That post cannot be published")
register("invalid-audience", 422, "Choose friends or your own labels")
register("invalid-label", 422, "That label cannot be saved")
register("invalid-cursor", 422, "That page cursor is not valid")
register("not-a-friend", 422, "This person is not your friend")

Visibility = Literal["friends", "private", "only", "except"]
VISIBILITIES: tuple[str, ...] = ("friends", "private", "only", "except")
# The author's window on their past posts, as other people see them.
WINDOWS: dict[str, int | None] = {"3d": 3, "1m": 30, "6m": 182, "all": None}
CARD_KINDS = ("link", "miniprogram", "coupon")
TEXT_MAX = 2000
COMMENT_MAX = 500
PHOTOS_MAX = 9
LABEL_NAME_MAX = 32
LABELS_MAX = 100
AUDIENCE_MAX = 5000
MENTIONS_MAX = 20
REMARK_MAX = 64
PAGE_MAX = 50
PAGE_DEFAULT = 20
FIRST_LOOK_BACK = timedelta(days=7)
LOOK_BACK_MAX = timedelta(days=400)
NOTIFICATIONS_MAX = 100
PLACE_NAME_MAX = 100
SIZE_LIMITS = {"image": 10 * 1024 * 1024, "video": 30 * 1024 * 1024}


# -- what callers get back ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MediaView:
    id: uuid.UUID
    kind: str
    content_type: str
    alt: str
    width: int | None
    height: int | None
    has_thumbnail: bool


@dataclass(frozen=True, slots=True)
class CommentView:
    id: uuid.UUID
    author: PublicProfile
    reply_to: PublicProfile | None
    reply_to_id: uuid.UUID | None
    text: str
    created_at: datetime
    mine: bool


@dataclass(frozen=True, slots=True)
class PostView:
    id: uuid.UUID
    author: PublicProfile
    remark: str
    kind: str
    text: str
    media: list[MediaView]
    card: dict[str, Any] | None
    place: dict[str, Any] | None
    visibility: str
    created_at: datetime
    mine: bool
    liked: bool
    likes: list[PublicProfile]
    comments: list[CommentView]


@dataclass(frozen=True, slots=True)
class TimelinePage:
    posts: list[PostView]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class LabelView:
    id: uuid.UUID
    name: str
    members: list[PublicProfile]


@dataclass(frozen=True, slots=True)
class FriendView:
    person: PublicProfile
    remark: str
    hide_my_moments: bool
    hide_their_moments: bool
    labels: list[str]


@dataclass(frozen=True, slots=True)
class NotificationView:
    id: uuid.UUID
    kind: str
    actor: PublicProfile
    post_id: uuid.UUID
    comment_id: uuid.UUID | None
    created_at: datetime
    read: bool


@dataclass(frozen=True, slots=True)
class Draft:
    text: str = ""
    photos: tuple[uuid.UUID, ...] = ()
    video: uuid.UUID | None = None
    card: dict[str, Any] | None = None
    place: dict[str, Any] | None = None
    visibility: str = "friends"
    people: tuple[str, ...] = ()
    labels: tuple[uuid.UUID, ...] = ()
    mentions: tuple[str, ...] = ()


# The viewer's own settings about the post's author (the remark, "hide their Moments").
_MINE = aliased(FriendSetting, name="mine")


class PostRow(NamedTuple):
    """A post as the visibility rules return it, with the viewer's remark on its author."""

    id: uuid.UUID
    author_id: uuid.UUID
    kind: str
    text: str
    card: dict[str, Any] | None
    place: dict[str, Any] | None
    visibility: str
    created_at: datetime
    remark: str


Reader = AsyncSession | AsyncConnection


def _among(column: Any, name: str, sqlite: bool) -> ColumnElement[bool]:
    """`column` is one of the ids bound as ONE parameter (see `_ids`): the statement's text
    stays the same whatever the number of ids, so it is compiled and prepared once, and no
    `IN (?, ?, ...)` of 200 rendered parameters is built per call."""
    if sqlite:
        each = func.json_each(bindparam(name, type_=String())).table_valued("value")
        return column.in_(select(each.c.value))  # type: ignore[no-any-return]
    return column == any_(bindparam(name, type_=ARRAY(Uuid())))  # type: ignore[no-any-return]


def _ids(sqlite: bool, ids: Iterable[uuid.UUID]) -> Any:
    """The value of an `_among` parameter: on SQLite a JSON array of the ids as SQLAlchemy's
    `Uuid` stores them there (32 hex digits), on PostgreSQL an array of uuids."""
    if sqlite:
        return "[" + ",".join(f'"{i.hex}"' for i in ids) + "]"
    return list(ids)


def _json(stored: Any) -> Any:
    """A JSON column's value. SQLite hands back the stored text (SQLAlchemy's JSON type stores
    None as null); PostgreSQL's driver has already decoded it."""
    if not isinstance(stored, str):
        return stored
    return None if stored == "null" else orjson.loads(stored)


# Statements read on every page, built once per backend (only their values change): plain
# rows, no ORM objects (a page reads ~100 rows and changes none).
@functools.cache
def _media_of(sqlite: bool) -> Select[*tuple[Any, ...]]:
    return (
        select(
            PostMedia.post_id,
            PostMedia.id,
            PostMedia.kind,
            PostMedia.content_type,
            PostMedia.alt,
            PostMedia.width,
            PostMedia.height,
            PostMedia.has_thumbnail,
        )
        .where(_among(PostMedia.post_id, "posts", sqlite))
        .order_by(PostMedia.position)
    )


@functools.cache
def _activity_of(sqlite: bool) -> CompoundSelect[*tuple[Any, ...]]:
    """The live comments ("c") and the likes ("l") of the page's posts in ONE statement:
    comments oldest first, then likes oldest first (each one's rules are applied after)."""
    nothing = type_coerce(null(), Uuid())
    comments: Select[*tuple[Any, ...]] = select(
        literal_column("'c'").label("kind"),
        Comment.post_id,
        Comment.id,
        Comment.author_id.label("who"),
        Comment.reply_to_id,
        Comment.reply_to_user,
        Comment.text,
        Comment.created_at,
    ).where(_among(Comment.post_id, "posts", sqlite), Comment.deleted_at.is_(None))
    likes: Select[*tuple[Any, ...]] = select(
        literal_column("'l'"),
        Like.post_id,
        nothing,
        Like.user_id,
        nothing,
        nothing,
        type_coerce(null(), Text()),
        Like.created_at,
    ).where(_among(Like.post_id, "posts", sqlite))
    return union_all(comments, likes).order_by(
        literal_column("kind"),
        literal_column("created_at"),
        literal_column("id"),
        literal_column("who"),
    )


@dataclass(slots=True)
class Scope:
    """What the visibility rules need about one viewer from messaging, read at read time.

    `people` are the viewer's friends now, minus anyone a block stands between them and, plus
    the viewer: whose posts the viewer may see at most (the two Moments switches, the post's
    own rule and its author's window are checked in SQL, `_visible_posts`), and whose likes
    and comments the viewer may see on a post they can see (the post's author is added per
    post).
    """

    viewer: uuid.UUID
    now: datetime
    people: set[uuid.UUID] = field(default_factory=set)


# -- cursors ---------------------------------------------------------------------------------
def encode_cursor(created_at: datetime, post_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{post_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, post_id = raw.split("|", 1)
        created_at = datetime.fromisoformat(moment)
        if created_at.tzinfo is None:
            raise ValueError("naive time")
        return created_at, uuid.UUID(post_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ProblemError("invalid-cursor", "Start again from the first page.") from exc


# -- validation (pure) ----------------------------------------------------------------------
def _kind_of(draft: Draft) -> str:
    shapes = [bool(draft.photos), draft.video is not None, draft.card is not None]
    if sum(shapes) > 1:
        raise ProblemError("invalid-post", "Share photos, a video or a card, not several.")
    if len(draft.photos) > PHOTOS_MAX:
        raise ProblemError("invalid-post", "Share at most 9 photos.")
    if len(set(draft.photos)) != len(draft.photos):
        raise ProblemError("invalid-post", "Each photo can be shared once.")
    if len(draft.text) > TEXT_MAX:
        raise ProblemError("invalid-post", "That text is too long.")
    if draft.photos:
        return "photos"
    if draft.video is not None:
        return "video"
    if draft.card is not None:
        return str(draft.card["kind"])
    if not draft.text.strip():
        raise ProblemError("invalid-post", "Write something or add photos.")
    return "text"


def _check_card(card: dict[str, Any]) -> dict[str, Any]:
    kind = card.get("kind")
    url = str(card.get("url") or "")
    if kind not in CARD_KINDS:
        raise ProblemError("invalid-post", "Share a link, a mini program or a coupon.")
    if kind == "link" and not url.startswith(("https://", "http://")):
        raise ProblemError("invalid-post", "A link starts with https://.")
    if kind != "link" and not card.get("target"):
        raise ProblemError("invalid-post", "Say which mini program or coupon.")
    if url and not url.startswith(("https://", "http://", "/mp/", "/coupons/")):
        raise ProblemError("invalid-post", "A link starts with https://.")
    return {
        "kind": kind,
        "url": url[:2048],
        "title": str(card.get("title") or "")[:200],
        "target": str(card.get("target") or "")[:200],
    }


def _check_place(place: dict[str, Any]) -> dict[str, Any]:
    name = str(place.get("name") or "").strip()
    if not name or len(name) > PLACE_NAME_MAX:
        raise ProblemError("invalid-post", "Name the place in at most 100 characters.")
    checked: dict[str, Any] = {"name": name}
    latitude, longitude = place.get("latitude"), place.get("longitude")
    if latitude is not None and longitude is not None:
        if not (-90 <= float(latitude) <= 90 and -180 <= float(longitude) <= 180):
            raise ProblemError("invalid-post", "That place is not on Earth.")
        checked["latitude"] = round(float(latitude), 5)
        checked["longitude"] = round(float(longitude), 5)
    return checked


def _media_view(row: PostMedia) -> MediaView:
    return MediaView(
        row.id, row.kind, row.content_type, row.alt, row.width, row.height, row.has_thumbnail
    )


class SocialService:
    """The social context's use cases over one database, clock, broker, identity, messaging."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        broker: Broker,
        identity: IdentityService,
        messaging: MessagingService,
        *,
        storage: MediaStorage | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.broker = broker
        self.identity = identity
        self.messaging = messaging
        self.storage = storage
        self._serial = asyncio.Lock() if db.is_sqlite else None

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        """SQLite has one writer: this context's writes queue in-process, not on the file lock."""
        if self._serial is None:
            async with self.db.transaction() as session:
                yield session
            return
        async with self._serial, self.db.transaction() as session:
            yield session

    def _record(self, session: AsyncSession, event: DomainEvent) -> None:
        record_event(session, event, self.clock.now())

    async def _person(self, omo_id: str) -> PublicProfile:
        return await self.identity.find_by_omo_id(omo_id)

    async def _friend(self, user_id: uuid.UUID, omo_id: str) -> PublicProfile:
        person = await self._person(omo_id)
        friends, _blocked = await self.messaging.relations(user_id)
        if person.user_id not in friends:
            raise ProblemError("not-a-friend", "Add this person as a friend first.")
        return person

    # -- friends: remarks, switches, labels --------------------------------------------------

    async def friend(self, user_id: uuid.UUID, omo_id: str) -> FriendView:
        person = await self._friend(user_id, omo_id)
        async with self.db.sessions() as session:
            setting = await session.get(FriendSetting, (user_id, person.user_id))
            labels = (
                await session.scalars(
                    select(Label.name)
                    .join(LabelMember, LabelMember.label_id == Label.id)
                    .where(Label.owner_id == user_id, LabelMember.person_id == person.user_id)
                    .order_by(Label.name)
                )
            ).all()
        return FriendView(
            person,
            setting.remark if setting else "",
            setting.hide_my_moments if setting else False,
            setting.hide_their_moments if setting else False,
            list(labels),
        )

    async def set_friend(
        self,
        user_id: uuid.UUID,
        omo_id: str,
        *,
        remark: str | None = None,
        hide_my_moments: bool | None = None,
        hide_their_moments: bool | None = None,
    ) -> FriendView:
        person = await self._friend(user_id, omo_id)
        if remark is not None and len(remark.strip()) > REMARK_MAX:
            raise ProblemError("invalid-label", "A remark has at most 64 characters.")
        async with self._transaction() as session:
            setting = await session.get(FriendSetting, (user_id, person.user_id))
            if setting is None:
                setting = FriendSetting(
                    owner_id=user_id,
                    person_id=person.user_id,
                    remark="",
                    hide_my_moments=False,
                    hide_their_moments=False,
                )
                session.add(setting)
            if remark is not None:
                setting.remark = remark.strip()
            if hide_my_moments is not None:
                setting.hide_my_moments = hide_my_moments
            if hide_their_moments is not None:
                setting.hide_their_moments = hide_their_moments
        return await self.friend(user_id, omo_id)

    async def _label_members(
        self, user_id: uuid.UUID, members: Iterable[str]
    ) -> list[PublicProfile]:
        wanted = list(dict.fromkeys(members))
        if len(wanted) > AUDIENCE_MAX:
            raise ProblemError("invalid-label", "A label holds at most 5000 people.")
        friends, _blocked = await self.messaging.relations(user_id)
        people = [await self._person(omo_id) for omo_id in wanted]
        if any(p.user_id not in friends for p in people):
            raise ProblemError("not-a-friend", "Add this person as a friend first.")
        return people

    def _label_name(self, name: str) -> str:
        name = name.strip()
        if not name or len(name) > LABEL_NAME_MAX:
            raise ProblemError("invalid-label", "Name the label in at most 32 characters.")
        return name

    async def create_label(
        self, user_id: uuid.UUID, name: str, members: Sequence[str]
    ) -> LabelView:
        name = self._label_name(name)
        people = await self._label_members(user_id, members)
        label_id = new_id()
        async with self._transaction() as session:
            count = len(
                (await session.scalars(select(Label.id).where(Label.owner_id == user_id))).all()
            )
            if count >= LABELS_MAX:
                raise ProblemError("invalid-label", "You have 100 labels already.")
            if await session.scalar(
                select(Label.id).where(Label.owner_id == user_id, Label.name == name)
            ):
                raise ProblemError("invalid-label", "You have a label with that name.")
            session.add(
                Label(id=label_id, owner_id=user_id, name=name, created_at=self.clock.now())
            )
            await session.flush()
            session.add_all(LabelMember(label_id=label_id, person_id=p.user_id) for p in people)
        return LabelView(label_id, name, people)

    async def _own_label(
        self, session: AsyncSession, user_id: uuid.UUID, label_id: uuid.UUID
    ) -> Label:
        label = await session.get(Label, label_id)
        if label is None or label.owner_id != user_id:
            raise ProblemError("label-not-found", "There is no such label.")
        return label

    async def update_label(
        self,
        user_id: uuid.UUID,
        label_id: uuid.UUID,
        *,
        name: str | None = None,
        members: Sequence[str] | None = None,
    ) -> LabelView:
        """Renaming or changing members never changes who saw a post published before."""
        people = await self._label_members(user_id, members) if members is not None else None
        async with self._transaction() as session:
            label = await self._own_label(session, user_id, label_id)
            if name is not None:
                new_name = self._label_name(name)
                clash = await session.scalar(
                    select(Label.id).where(
                        Label.owner_id == user_id, Label.name == new_name, Label.id != label_id
                    )
                )
                if clash:
                    raise ProblemError("invalid-label", "You have a label with that name.")
                label.name = new_name
            if people is not None:
                await session.execute(delete(LabelMember).where(LabelMember.label_id == label_id))
                session.add_all(LabelMember(label_id=label_id, person_id=p.user_id) for p in people)
        return (await self._labels(user_id, [label_id]))[0]

    async def delete_label(self, user_id: uuid.UUID, label_id: uuid.UUID) -> None:
        async with self._transaction() as session:
            await self._own_label(session, user_id, label_id)
            await session.execute(delete(LabelMember).where(LabelMember.label_id == label_id))
            await session.execute(delete(Label).where(Label.id == label_id))

    async def labels(self, user_id: uuid.UUID) -> list[LabelView]:
        return await self._labels(user_id, None)

    async def _labels(
        self, user_id: uuid.UUID, only: Sequence[uuid.UUID] | None
    ) -> list[LabelView]:
        async with self.db.sessions() as session:
            query = select(Label).where(Label.owner_id == user_id).order_by(Label.name)
            if only is not None:
                query = query.where(Label.id.in_(only))
            labels = (await session.scalars(query)).all()
            members = (
                await session.execute(
                    select(LabelMember.label_id, LabelMember.person_id).where(
                        LabelMember.label_id.in_([label.id for label in labels])
                    )
                )
            ).all()
        people = await self.messaging.profiles({m.person_id for m in members})
        by_label: dict[uuid.UUID, list[PublicProfile]] = {}
        for m in members:
            if m.person_id in people:
                by_label.setdefault(m.label_id, []).append(people[m.person_id])
        return [LabelView(label.id, label.name, by_label.get(label.id, [])) for label in labels]

    async def set_window(self, user_id: uuid.UUID, window: str) -> str:
        if window not in WINDOWS:
            raise ProblemError("invalid-post", "Choose 3 days, 1 month, 6 months or all.")
        async with self._transaction() as session:
            row = await session.get(MomentsSetting, user_id)
            if row is None:
                session.add(MomentsSetting(user_id=user_id, window_days=WINDOWS[window]))
            else:
                row.window_days = WINDOWS[window]
        return window

    async def window(self, user_id: uuid.UUID) -> str:
        async with self.db.sessions() as session:
            row = await session.get(MomentsSetting, user_id)
        days = row.window_days if row else None
        return next(name for name, value in WINDOWS.items() if value == days)

    # -- media -------------------------------------------------------------------------------

    async def upload_media(self, user_id: uuid.UUID, kind: str, alt: str, data: bytes) -> MediaView:
        """A photo or video for a post this person is about to publish; only they see it until
        it is part of a post, then only the post's audience does."""
        if kind not in SIZE_LIMITS:
            raise ProblemError("invalid-media", "Choose image or video.")
        if not data:
            raise ProblemError("invalid-media", "The file is empty.")
        if len(data) > SIZE_LIMITS[kind]:
            raise ProblemError("media-too-large", "That file is too large.")
        checked = check(kind, data)
        if self.storage is None:
            raise RuntimeError("no media storage configured")
        media_id = new_id()
        await self.storage.put(f"s{media_id}", data)
        if checked.thumbnail is not None:
            await self.storage.put(f"s{media_id}.thumb", checked.thumbnail)
        row = PostMedia(
            id=media_id,
            uploader_id=user_id,
            post_id=None,
            position=0,
            kind=kind,
            content_type=checked.content_type,
            alt=alt.strip()[:500],
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
        self, viewer: uuid.UUID, media_id: uuid.UUID, *, thumbnail: bool = False
    ) -> tuple[MediaView, bytes]:
        """The bytes, only for the uploader or someone the post is visible to now."""
        missing = ProblemError("media-not-found", "There is no such photo or video.")
        async with self.db.sessions() as session:
            media = await session.get(PostMedia, media_id)
            if media is None:
                raise missing
            if media.uploader_id != viewer:
                if media.post_id is None:
                    raise missing
                scope = await self._scope(viewer)
                if not await self._visible_posts(session, scope, ids=[media.post_id]):
                    raise missing
        if thumbnail and not media.has_thumbnail:
            raise missing
        assert self.storage is not None
        data = await self.storage.get(f"s{media_id}.thumb" if thumbnail else f"s{media_id}")
        if data is None:
            raise missing
        view = _media_view(media)
        if thumbnail:
            view = MediaView(view.id, view.kind, "image/jpeg", view.alt, None, None, True)
        return view, data

    # -- THE visibility rules (one place) ----------------------------------------------------

    async def _scope(self, viewer: uuid.UUID) -> Scope:
        """Who the viewer may see at most, read now: friendship and blocks from messaging (its
        tables are its own; the Moments switches are this context's and are read in SQL)."""
        friends, blocked = await self.messaging.relations(viewer)
        friends -= blocked
        friends.add(viewer)
        return Scope(viewer=viewer, now=self.clock.now(), people=friends)

    @staticmethod
    @functools.cache
    def _visible_posts_query(
        sqlite: bool, with_ids: bool, with_before: bool, with_since: bool, with_limit: bool
    ) -> Select[*tuple[Any, ...]]:
        """The visibility rules as ONE prebuilt statement per shape, with every value a bound
        parameter: built once, its compiled form cached, so a page pays for none of it.

        A live post by one of the allowed authors (the viewer's friends now, minus blocks,
        bound as one parameter) that its rules show the viewer: their own, or — unless the
        viewer hid the author's Moments or the author hid their Moments from the viewer —
        within the author's window (`MomentsSetting`, outer-joined) and visible by the post's
        rule (all friends; only the named; all except the named). The viewer's own setting
        about the author is outer-joined once per row: it carries the remark shown beside the
        post and "hide their Moments"; "don't let them see my Moments" is the set of authors
        who chose it for the viewer, read once per statement."""
        viewer = bindparam("viewer", type_=Uuid())
        since = case(
            *(
                (
                    MomentsSetting.window_days == days,
                    bindparam(f"since_{days}", type_=UtcDateTime()),
                )
                for days in WINDOWS.values()
                if days is not None
            ),
            else_=bindparam("now", type_=UtcDateTime()),
        )
        named = exists().where(PostAudience.post_id == Post.id, PostAudience.person_id == viewer)
        hidden_from_viewer = select(FriendSetting.owner_id).where(
            FriendSetting.person_id == viewer, FriendSetting.hide_my_moments == true()
        )
        query = (
            select(
                Post.id,
                Post.author_id,
                Post.kind,
                Post.text,
                # As stored (text): most posts have neither, and `_json` decodes only the rest.
                type_coerce(Post.card, Text()),
                type_coerce(Post.place, Text()),
                Post.visibility,
                Post.created_at,
                func.coalesce(_MINE.remark, "").label("remark"),
            )
            .outerjoin(MomentsSetting, MomentsSetting.user_id == Post.author_id)
            .outerjoin(_MINE, and_(_MINE.owner_id == viewer, _MINE.person_id == Post.author_id))
            .where(
                Post.deleted_at.is_(None),
                _among(Post.author_id, "authors", sqlite),
                or_(
                    Post.author_id == viewer,
                    and_(
                        func.coalesce(_MINE.hide_their_moments, false()) == false(),
                        Post.author_id.not_in(hidden_from_viewer),
                        or_(MomentsSetting.window_days.is_(None), Post.created_at >= since),
                        or_(
                            Post.visibility == "friends",
                            and_(Post.visibility == "only", named),
                            and_(Post.visibility == "except", ~named),
                        ),
                    ),
                ),
            )
        )
        if with_ids:
            query = query.where(Post.id.in_(bindparam("ids", expanding=True)))
        if with_before:
            before_at: Any = bindparam("before_at", type_=UtcDateTime())
            before_id: Any = bindparam("before_id", type_=Uuid())
            query = query.where(
                or_(
                    Post.created_at < before_at,
                    and_(Post.created_at == before_at, Post.id < before_id),
                )
            )
        if with_since:
            query = query.where(Post.created_at >= bindparam("since", type_=UtcDateTime()))
        query = query.order_by(Post.created_at.desc(), Post.id.desc())
        if with_limit:
            query = query.limit(bindparam("limit"))
        return query

    async def _visible_posts(
        self,
        reader: Reader,
        scope: Scope,
        *,
        ids: Sequence[uuid.UUID] | None = None,
        authors: Iterable[uuid.UUID] | None = None,
        before: tuple[datetime, uuid.UUID] | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[PostRow]:
        """Posts the viewer may see, newest first: the only way this context reads posts for
        someone."""
        allowed = scope.people if authors is None else scope.people.intersection(authors)
        if not allowed or ids == []:
            return []
        sqlite = self.db.is_sqlite
        query = self._visible_posts_query(
            sqlite, ids is not None, before is not None, since is not None, limit is not None
        )
        params: dict[str, Any] = {
            "authors": _ids(sqlite, allowed),
            "viewer": scope.viewer,
            "now": scope.now,
            **{
                f"since_{days}": scope.now - timedelta(days=days)
                for days in WINDOWS.values()
                if days is not None
            },
        }
        if ids is not None:
            params["ids"] = list(ids)
        if before is not None:
            params["before_at"], params["before_id"] = before
        if since is not None:
            params["since"] = since
        if limit is not None:
            params["limit"] = limit
        return [
            PostRow(id_, author, kind, text, _json(card), _json(place), *rest)
            for id_, author, kind, text, card, place, *rest in (
                await reader.execute(query, params)
            ).all()
        ]

    @staticmethod
    def _sees_activity_of(scope: Scope, post: PostRow, person: uuid.UUID) -> bool:
        """Likes and comments: only by the viewer's own friends, the viewer, and the author."""
        return person in scope.people or person == post.author_id

    # -- publishing --------------------------------------------------------------------------

    async def publish(self, author: uuid.UUID, draft: Draft) -> PostView:
        """Store a post and acknowledge it: no copy per friend (readers pull), so the time
        does not grow with the number of friends."""
        kind = _kind_of(draft)
        if draft.visibility not in VISIBILITIES:
            raise ProblemError("invalid-audience", "Choose who can see this post.")
        card = _check_card(draft.card) if draft.card is not None else None
        place = _check_place(draft.place) if draft.place is not None else None
        named = draft.people or draft.labels
        if draft.visibility in ("only", "except") and not named:
            raise ProblemError("invalid-audience", "Choose friends or labels.")
        if draft.visibility in ("friends", "private") and named:
            raise ProblemError("invalid-audience", "Friends and labels go with only or except.")
        if len(draft.mentions) > MENTIONS_MAX:
            raise ProblemError("invalid-post", "Mention at most 20 people.")
        friends: set[uuid.UUID] = set()
        if draft.people or draft.mentions:
            friends, _blocked = await self.messaging.relations(author)
        audience: set[uuid.UUID] = set()
        for omo_id in dict.fromkeys(draft.people):
            person = await self._person(omo_id)
            if person.user_id not in friends:
                raise ProblemError("invalid-audience", "Choose among your friends.")
            audience.add(person.user_id)
        mentioned: list[uuid.UUID] = []
        for omo_id in dict.fromkeys(draft.mentions):
            person = await self._person(omo_id)
            if person.user_id not in friends:
                raise ProblemError("not-a-friend", "Mention only your friends.")
            mentioned.append(person.user_id)
        media_ids = list(draft.photos) or ([draft.video] if draft.video else [])
        now = self.clock.now()
        post = Post(
            id=new_id(),
            author_id=author,
            kind=kind,
            text=draft.text.strip(),
            card=card,
            place=place,
            visibility=draft.visibility,
            created_at=now,
            deleted_at=None,
        )
        async with self._transaction() as session:
            if draft.labels:
                owned = (
                    await session.scalars(
                        select(Label.id).where(
                            Label.owner_id == author, Label.id.in_(set(draft.labels))
                        )
                    )
                ).all()
                if len(owned) != len(set(draft.labels)):
                    raise ProblemError("invalid-audience", "Choose among your own labels.")
                # Fixed now: a label changed later does not change who sees this post.
                audience.update(
                    (
                        await session.scalars(
                            select(LabelMember.person_id).where(LabelMember.label_id.in_(owned))
                        )
                    ).all()
                )
            if len(audience) > AUDIENCE_MAX:
                raise ProblemError("invalid-audience", "Name at most 5000 people.")
            media_rows: list[PostMedia] = []
            if media_ids:
                rows = {
                    m.id: m
                    for m in (
                        await session.scalars(select(PostMedia).where(PostMedia.id.in_(media_ids)))
                    ).all()
                }
                wanted = "image" if draft.photos else "video"
                for media_id in media_ids:
                    row = rows.get(media_id)
                    if (
                        row is None
                        or row.uploader_id != author
                        or row.post_id is not None
                        or row.kind != wanted
                    ):
                        raise ProblemError("media-not-found", "Upload the file first.")
                    media_rows.append(row)
            session.add(post)
            await session.flush()
            for position, row in enumerate(media_rows):
                row.post_id = post.id
                row.position = position
            if draft.visibility in ("only", "except"):
                session.add_all(PostAudience(post_id=post.id, person_id=p) for p in audience)
            notified = self._mentions_to_notify(post, mentioned, audience)
            for someone in notified:
                self._notify_row(session, someone, "mention", author, post.id, None, now)
            self._record(
                session,
                events.PostPublished(
                    post_id=post.id, author_id=author, kind=kind, visibility=draft.visibility
                ),
            )
        await self._push(notified, "mention", author, post.id, None)
        # The author's own fresh post: no likes or comments yet, no rules to apply.
        profile = (await self.messaging.profiles([author]))[author]
        return PostView(
            id=post.id,
            author=profile,
            remark="",
            kind=post.kind,
            text=post.text,
            media=[_media_view(m) for m in media_rows],
            card=post.card,
            place=post.place,
            visibility=post.visibility,
            created_at=post.created_at,
            mine=True,
            liked=False,
            likes=[],
            comments=[],
        )

    @staticmethod
    def _mentions_to_notify(
        post: Post, mentioned: list[uuid.UUID], audience: set[uuid.UUID]
    ) -> list[uuid.UUID]:
        """A mention reaches only people the post's own rules show it to."""
        if post.visibility == "private":
            return []
        if post.visibility == "only":
            return [m for m in mentioned if m in audience]
        if post.visibility == "except":
            return [m for m in mentioned if m not in audience]
        return mentioned

    async def delete_post(self, user_id: uuid.UUID, post_id: uuid.UUID) -> None:
        async with self._transaction() as session:
            post = await session.get(Post, post_id)
            if post is None or post.author_id != user_id or post.deleted_at is not None:
                raise ProblemError("post-not-found", "There is no such post.")
            post.deleted_at = self.clock.now()

    # -- reading -----------------------------------------------------------------------------

    async def timeline(
        self, viewer: uuid.UUID, cursor: str | None = None, limit: int = PAGE_DEFAULT
    ) -> TimelinePage:
        """Friends' posts and one's own, newest first; the cursor is the last post's
        (created_at, id), so a page neither skips nor repeats while new posts arrive."""
        return await self._page(viewer, None, cursor, limit)

    async def profile_posts(
        self, viewer: uuid.UUID, omo_id: str, cursor: str | None = None, limit: int = PAGE_DEFAULT
    ) -> TimelinePage:
        """One person's posts as the viewer may see them (nothing for a stranger)."""
        person = await self._person(omo_id)
        return await self._page(viewer, [person.user_id], cursor, limit)

    async def _page(
        self,
        viewer: uuid.UUID,
        authors: list[uuid.UUID] | None,
        cursor: str | None,
        limit: int,
    ) -> TimelinePage:
        limit = max(1, min(limit, PAGE_MAX))
        before = decode_cursor(cursor) if cursor else None
        scope = await self._scope(viewer)
        # Plain reads on one connection, no ORM session: a page only reads.
        async with self.db.reader.connect() as reader:
            # Look back a week first, then further: the (author, created_at) index then reads
            # only recent rows of each friend instead of sorting all their posts. Posts in a
            # window [since, anchor) are all newer than those outside it, so the page is the
            # same as without the bound.
            anchor = before[0] if before else scope.now
            span: timedelta | None = FIRST_LOOK_BACK
            while True:
                posts = await self._visible_posts(
                    reader,
                    scope,
                    authors=authors,
                    before=before,
                    since=anchor - span if span is not None else None,
                    limit=limit + 1,
                )
                if len(posts) > limit or span is None:
                    break
                span = span * 8 if span < LOOK_BACK_MAX else None
            more = len(posts) > limit
            posts = posts[:limit]
            views = await self._views_in(reader, scope, posts)
        next_cursor = encode_cursor(posts[-1].created_at, posts[-1].id) if more else None
        return TimelinePage(views, next_cursor)

    async def post(self, viewer: uuid.UUID, post_id: uuid.UUID) -> PostView:
        scope = await self._scope(viewer)
        async with self.db.reader.connect() as reader:
            posts = await self._visible_posts(reader, scope, ids=[post_id])
            if not posts:
                raise ProblemError("post-not-found", "There is no such post.")
            return (await self._views_in(reader, scope, posts))[0]

    async def _views_in(self, reader: Reader, scope: Scope, posts: list[PostRow]) -> list[PostView]:
        if not posts:
            return []
        ids = [p.id for p in posts]
        authors = dict(zip(ids, (p.author_id for p in posts), strict=True))
        sqlite = self.db.is_sqlite
        with_media = [p.id for p in posts if p.kind in ("photos", "video")]
        media = (
            (await reader.execute(_media_of(sqlite), {"posts": _ids(sqlite, with_media)})).all()
            if with_media
            else []
        )
        activity = (await reader.execute(_activity_of(sqlite), {"posts": _ids(sqlite, ids)})).all()
        viewer, people_ok = scope.viewer, scope.people
        # Likes and comments: only by the viewer's own friends, the viewer, and the author;
        # a reply also only when the person replied to passes the same test
        # (`_sees_activity_of`, inlined: ~100 rows a page).
        shown_likes: dict[uuid.UUID, list[uuid.UUID]] = {}
        shown_comments: dict[uuid.UUID, list[Any]] = {}
        for c in activity:
            post_author = authors[c.post_id]
            if not (c.who in people_ok or c.who == post_author):
                continue
            if c.kind == "l":
                shown_likes.setdefault(c.post_id, []).append(c.who)
            elif (
                c.reply_to_user is None
                or c.reply_to_user in people_ok
                or c.reply_to_user == post_author
            ):
                shown_comments.setdefault(c.post_id, []).append(c)
        people_ids = set(authors.values())
        for liked in shown_likes.values():
            people_ids.update(liked)
        for shown in shown_comments.values():
            for c in shown:
                people_ids.add(c.who)
                if c.reply_to_user:
                    people_ids.add(c.reply_to_user)
        people = await self.messaging.profiles(people_ids)
        media_by_post: dict[uuid.UUID, list[MediaView]] = {}
        for m in media:
            media_by_post.setdefault(m.post_id, []).append(
                MediaView(m.id, m.kind, m.content_type, m.alt, m.width, m.height, m.has_thumbnail)
            )
        views = []
        for post in posts:
            author = people.get(post.author_id)
            if author is None:
                continue
            mine = post.author_id == viewer
            liked_by = shown_likes.get(post.id, ())
            views.append(
                PostView(
                    id=post.id,
                    author=author,
                    remark=post.remark,
                    kind=post.kind,
                    text=post.text,
                    media=media_by_post.get(post.id, []),
                    card=post.card,
                    place=post.place,
                    visibility=post.visibility if mine else "",
                    created_at=post.created_at,
                    mine=mine,
                    liked=viewer in liked_by,
                    likes=[people[u] for u in liked_by if u in people],
                    comments=[
                        CommentView(
                            id=c.id,
                            author=people[c.who],
                            reply_to=people.get(c.reply_to_user) if c.reply_to_user else None,
                            reply_to_id=c.reply_to_id,
                            text=c.text,
                            created_at=c.created_at,
                            mine=c.who == viewer,
                        )
                        for c in shown_comments.get(post.id, ())
                        if c.who in people
                    ],
                )
            )
        return views

    # -- likes, comments, shares -------------------------------------------------------------

    async def _require_visible(
        self, session: AsyncSession, viewer: uuid.UUID, post_id: uuid.UUID
    ) -> tuple[Scope, PostRow]:
        scope = await self._scope(viewer)
        posts = await self._visible_posts(session, scope, ids=[post_id])
        if not posts:
            raise ProblemError("post-not-found", "There is no such post.")
        return scope, posts[0]

    async def like(self, user_id: uuid.UUID, post_id: uuid.UUID) -> None:
        now = self.clock.now()
        async with self._transaction() as session:
            _scope, post = await self._require_visible(session, user_id, post_id)
            if await session.get(Like, (post_id, user_id)) is not None:
                return
            session.add(Like(post_id=post_id, user_id=user_id, created_at=now))
            notify = [post.author_id] if post.author_id != user_id else []
            for person in notify:
                self._notify_row(session, person, "like", user_id, post_id, None, now)
            self._record(
                session,
                events.PostLiked(post_id=post_id, author_id=post.author_id, user_id=user_id),
            )
        await self._push(notify, "like", user_id, post_id, None)

    async def unlike(self, user_id: uuid.UUID, post_id: uuid.UUID) -> None:
        async with self._transaction() as session:
            await self._require_visible(session, user_id, post_id)
            await session.execute(
                delete(Like).where(Like.post_id == post_id, Like.user_id == user_id)
            )

    async def comment(
        self,
        user_id: uuid.UUID,
        post_id: uuid.UUID,
        text: str,
        reply_to: uuid.UUID | None = None,
    ) -> CommentView:
        text = text.strip()
        if not text or len(text) > COMMENT_MAX:
            raise ProblemError("invalid-post", "Write a comment of at most 500 characters.")
        now = self.clock.now()
        async with self._transaction() as session:
            scope, post = await self._require_visible(session, user_id, post_id)
            target: Comment | None = None
            if reply_to is not None:
                target = await session.get(Comment, reply_to)
                if (
                    target is None
                    or target.post_id != post_id
                    or target.deleted_at is not None
                    or not self._sees_activity_of(scope, post, target.author_id)
                ):
                    raise ProblemError("comment-not-found", "There is no such comment.")
            row = Comment(
                id=new_id(),
                post_id=post_id,
                author_id=user_id,
                reply_to_id=target.id if target else None,
                reply_to_user=target.author_id if target else None,
                text=text,
                created_at=now,
                deleted_at=None,
            )
            session.add(row)
            await session.flush()
            notify: list[tuple[uuid.UUID, str]] = []
            if post.author_id != user_id:
                notify.append((post.author_id, "comment"))
            if target is not None and target.author_id not in (user_id, post.author_id):
                notify.append((target.author_id, "reply"))
            for person, kind in notify:
                self._notify_row(session, person, kind, user_id, post_id, row.id, now)
            self._record(
                session,
                events.PostCommented(
                    post_id=post_id,
                    author_id=post.author_id,
                    comment_id=row.id,
                    user_id=user_id,
                    reply_to_id=row.reply_to_id,
                ),
            )
        for person, kind in notify:
            await self._push([person], kind, user_id, post_id, row.id)
        people = await self.messaging.profiles([user_id] + ([target.author_id] if target else []))
        return CommentView(
            row.id,
            people[user_id],
            people.get(target.author_id) if target else None,
            row.reply_to_id,
            row.text,
            row.created_at,
            True,
        )

    async def delete_comment(self, user_id: uuid.UUID, comment_id: uuid.UUID) -> None:
        """One's own comment, or any comment on one's own post."""
        async with self._transaction() as session:
            comment = await session.get(Comment, comment_id)
            post = await session.get(Post, comment.post_id) if comment else None
            if (
                comment is None
                or post is None
                or comment.deleted_at is not None
                or user_id not in (comment.author_id, post.author_id)
            ):
                raise ProblemError("comment-not-found", "There is no such comment.")
            comment.deleted_at = self.clock.now()

    async def share(self, user_id: uuid.UUID, post_id: uuid.UUID, to: str) -> None:
        """Record that a visible post was shared (to a chat or out of the app)."""
        async with self._transaction() as session:
            _scope, post = await self._require_visible(session, user_id, post_id)
            self._record(
                session,
                events.PostShared(
                    post_id=post_id, author_id=post.author_id, user_id=user_id, to=to
                ),
            )

    # -- notifications -----------------------------------------------------------------------

    def _notify_row(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        kind: str,
        actor: uuid.UUID,
        post_id: uuid.UUID,
        comment_id: uuid.UUID | None,
        now: datetime,
    ) -> None:
        session.add(
            Notification(
                id=new_id(),
                user_id=user_id,
                kind=kind,
                actor_id=actor,
                post_id=post_id,
                comment_id=comment_id,
                created_at=now,
                read=False,
            )
        )

    async def _push(
        self,
        people: Iterable[uuid.UUID],
        kind: str,
        actor: uuid.UUID,
        post_id: uuid.UUID,
        comment_id: uuid.UUID | None,
    ) -> None:
        people = list(people)
        if not people:
            return
        who = (await self.messaging.profiles([actor])).get(actor)
        frame = {
            "type": "moments",
            "event": kind,
            "who": who.omo_id if who else "",
            "post": str(post_id),
            "comment": str(comment_id) if comment_id else None,
        }
        await asyncio.gather(*(self.broker.publish(user_channel(p), frame) for p in people))

    async def notifications(self, user_id: uuid.UUID) -> list[NotificationView]:
        """Newest first; only about posts the person may still see, by people they may see."""
        async with self.db.sessions() as session:
            rows = (
                await session.scalars(
                    select(Notification)
                    .where(Notification.user_id == user_id)
                    .order_by(Notification.id.desc())
                    .limit(NOTIFICATIONS_MAX)
                )
            ).all()
            scope = await self._scope(user_id)
            posts = {
                p.id: p
                for p in await self._visible_posts(
                    session, scope, ids=list({r.post_id for r in rows})
                )
            }
            live = set(
                (
                    await session.scalars(
                        select(Comment.id).where(
                            Comment.id.in_([r.comment_id for r in rows if r.comment_id]),
                            Comment.deleted_at.is_(None),
                        )
                    )
                ).all()
            )
        kept = [
            r
            for r in rows
            if r.post_id in posts
            and self._sees_activity_of(scope, posts[r.post_id], r.actor_id)
            and (r.comment_id is None or r.comment_id in live)
        ]
        people = await self.messaging.profiles({r.actor_id for r in kept})
        return [
            NotificationView(
                r.id, r.kind, people[r.actor_id], r.post_id, r.comment_id, r.created_at, r.read
            )
            for r in kept
            if r.actor_id in people
        ]

    async def mark_notifications_read(self, user_id: uuid.UUID) -> None:
        async with self._transaction() as session:
            await session.execute(
                update(Notification)
                .where(Notification.user_id == user_id, Notification.read == false())
                .values(read=True)
            )
