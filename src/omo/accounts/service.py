"""Official accounts: the rules of brands talking to the people who chose to hear from them.

- Follow = consent: a brand reaches a person only while they follow; unfollow stops every
  kind of brand message at once. The brand knows a follower only by openid (per account) and
  unionid (per organisation), nickname and avatar — never a phone number nor an internal id.
- Free-form replies only within 48 hours of the follower's last interaction (message, menu
  click, follow, QR scan); outside it only broadcasts.
- Broadcasts are stored once and read by reference: accepting one costs the same for ten
  followers or a million. The quota (1 a day for subscription accounts, 4 a calendar month for
  service accounts, configurable) is taken with one conditional UPDATE, so racing requests on
  any number of nodes never exceed it.

Seam: user↔account messages live in `accounts_messages` for now; `conversation()` and
`_append()` are the only places that read and write them, so moving them into messaging's
conversations later changes this file only.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import segno
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from omo.accounts.events import (
    BroadcastSent,
    Followed,
    MenuClicked,
    MessageReceived,
    Scanned,
    Unfollowed,
)
from omo.accounts.models import (
    AccessToken,
    AccountMessage,
    Broadcast,
    Follow,
    FollowerTag,
    KeywordRule,
    Member,
    OfficialAccount,
    Organisation,
    Quota,
    Tag,
    WebhookDelivery,
)
from omo.core.broker import Broker
from omo.core.clock import Clock
from omo.core.db import Database
from omo.core.errors import ProblemError, register
from omo.core.events import DomainEvent, record_event
from omo.core.ids import new_id
from omo.identity.service import IdentityService
from omo.messaging.service import user_channel

logger = logging.getLogger("omo.accounts")

Kind = Literal["subscription", "service"]
Role = Literal["owner", "admin", "agent"]
MANAGERS: tuple[Role, ...] = ("owner", "admin")
EVERYONE: tuple[Role, ...] = ("owner", "admin", "agent")

REPLY_WINDOW = timedelta(hours=48)
TOKEN_LIFETIME = timedelta(seconds=7200)
MENU_BUTTONS_MAX = 3
MENU_SUB_BUTTONS_MAX = 5
MENU_ACTIONS = ("click", "view", "miniprogram")
CARD_TYPES = ("article", "image", "voice", "video", "coupon", "miniprogram")
HISTORY_MAX = 200
PUSH_BATCH = 1000

# The platform operator's defaults; `set_quota` overrides them per account.
DEFAULT_QUOTAS: dict[str, int] = {"subscription": 1, "service": 4}

register("accounts-not-following", 409, "This person does not follow the account")
register("accounts-window-closed", 409, "The 48-hour reply window is closed")
register("accounts-quota-used", 409, "Broadcast quota used up")
register("accounts-invalid-menu", 400, "The menu is not valid")
register("accounts-invalid-message", 400, "The message is not valid")
register("accounts-not-allowed", 403, "Your role in this brand does not allow this")
register("accounts-bad-credentials", 401, "Wrong app id or secret")


@dataclass(frozen=True, slots=True)
class OrganisationView:
    id: uuid.UUID
    name: str
    role: str
    members: list[tuple[str, str]]  # (omo id, role)


@dataclass(frozen=True, slots=True)
class AccountView:
    id: uuid.UUID
    organisation_id: uuid.UUID
    kind: str
    name: str
    description: str
    avatar_url: str
    verified: bool
    app_id: str
    followers: int
    menu: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class CreatedAccount:
    account: AccountView
    app_secret: str  # shown once


@dataclass(frozen=True, slots=True)
class FollowerView:
    openid: str
    unionid: str
    nickname: str
    avatar_id: uuid.UUID | None
    followed_at: datetime
    scene: str
    tag_ids: list[int]
    last_interaction_at: datetime


@dataclass(frozen=True, slots=True)
class ThreadItem:
    id: uuid.UUID
    direction: str  # in | out
    broadcast: bool
    body: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Automation:
    welcome: str
    default_reply: str
    rules: list[tuple[str, str, str]] = field(default_factory=list)  # (match, keyword, reply)


@dataclass(frozen=True, slots=True)
class QuotaView:
    period: str
    used: int
    allowed: int


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def period_of(kind: str, now: datetime) -> str:
    """The quota period containing `now`: the UTC day for subscription accounts, the month
    for service accounts."""
    return now.strftime("%Y-%m-%d") if kind == "subscription" else now.strftime("%Y-%m")


def validate_menu(buttons: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most 3 buttons of at most 5 sub-buttons; each leaf a click, a URL or a mini program."""

    def leaf(button: dict[str, Any]) -> dict[str, Any]:
        action = button.get("type")
        name = button.get("name")
        if not isinstance(name, str) or not 0 < len(name) <= 60:
            raise ProblemError("accounts-invalid-menu", "Every button needs a name.")
        if action == "click":
            key = button.get("key")
            if not isinstance(key, str) or not 0 < len(key) <= 128:
                raise ProblemError("accounts-invalid-menu", "A click button needs a key.")
            return {"type": "click", "name": name, "key": key}
        if action in ("view", "miniprogram"):
            url = button.get("url")
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise ProblemError("accounts-invalid-menu", "A link button needs a web address.")
            out = {"type": action, "name": name, "url": url}
            if action == "miniprogram":
                appid, page = button.get("appid"), button.get("pagepath")
                if not isinstance(appid, str) or not isinstance(page, str) or not appid:
                    raise ProblemError(
                        "accounts-invalid-menu", "A mini program button needs an appid and page."
                    )
                out |= {"appid": appid, "pagepath": page}
            return out
        raise ProblemError("accounts-invalid-menu", "Unknown button type.")

    if len(buttons) > MENU_BUTTONS_MAX:
        raise ProblemError(
            "accounts-invalid-menu",
            "A menu has at most %(n)s buttons.",
            params={"n": MENU_BUTTONS_MAX},
        )
    menu: list[dict[str, Any]] = []
    for button in buttons:
        subs = button.get("sub_button")
        if isinstance(subs, dict):  # WeChat's "get" shape nests them under "list"
            subs = subs.get("list")
        if subs:
            if not isinstance(subs, list) or len(subs) > MENU_SUB_BUTTONS_MAX:
                raise ProblemError(
                    "accounts-invalid-menu",
                    "A button has at most %(n)s sub-buttons.",
                    params={"n": MENU_SUB_BUTTONS_MAX},
                )
            name = button.get("name")
            if not isinstance(name, str) or not 0 < len(name) <= 60:
                raise ProblemError("accounts-invalid-menu", "Every button needs a name.")
            menu.append(
                {"name": name, "sub_button": [leaf(s) for s in subs if isinstance(s, dict)]}
            )
        else:
            menu.append(leaf(button))
    return menu


def validate_body(body: dict[str, Any]) -> dict[str, Any]:
    """A message is text, or a card (article, image, voice, video, coupon, mini program)."""
    text = body.get("text")
    card = body.get("card")
    if isinstance(text, str) and card is None:
        if not 0 < len(text.strip()) <= 4000:
            raise ProblemError("accounts-invalid-message", "Write between 1 and 4000 characters.")
        return {"text": text}
    if isinstance(card, dict) and text is None:
        kind = card.get("type")
        if kind not in CARD_TYPES:
            raise ProblemError("accounts-invalid-message", "Unknown card type.")
        clean: dict[str, Any] = {"type": kind}
        for name, limit in (("title", 200), ("description", 500), ("url", 2048)):
            value = card.get(name, "")
            if not isinstance(value, str) or len(value) > limit:
                raise ProblemError("accounts-invalid-message", "A card field is too long.")
            clean[name] = value
        if clean["url"] and not clean["url"].startswith(("https://", "http://", "/")):
            raise ProblemError("accounts-invalid-message", "A card links to a web address.")
        return {"card": clean}
    raise ProblemError("accounts-invalid-message", "Send either text or a card.")


def _upsert(dialect: str) -> Any:
    return pg_insert if dialect == "postgresql" else sqlite_insert


class AccountService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        identity: IdentityService,
        broker: Broker,
        *,
        quotas: dict[str, int] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.identity = identity
        self.broker = broker
        self.quotas = dict(DEFAULT_QUOTAS, **(quotas or {}))
        self._tasks: set[asyncio.Task[None]] = set()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _record(self, session: AsyncSession, event: DomainEvent) -> None:
        record_event(session, event, self.clock.now())

    # -- organisations and members --------------------------------------------------------

    async def create_organisation(self, user_id: uuid.UUID, name: str) -> OrganisationView:
        now = self.clock.now()
        async with self.db.transaction() as session:
            org = Organisation(id=new_id(), name=name.strip(), created_at=now)
            session.add(org)
            await session.flush()
            session.add(
                Member(organisation_id=org.id, user_id=user_id, role="owner", joined_at=now)
            )
        return await self.organisation(user_id, org.id)

    async def _membership(
        self, session: AsyncSession, organisation_id: uuid.UUID, user_id: uuid.UUID
    ) -> Member:
        member = await session.get(Member, (organisation_id, user_id))
        if member is None:
            raise ProblemError("not-found", "No such organisation.")
        return member

    async def _require_role(
        self,
        session: AsyncSession,
        organisation_id: uuid.UUID,
        user_id: uuid.UUID,
        roles: Sequence[str],
    ) -> Member:
        member = await self._membership(session, organisation_id, user_id)
        if member.role not in roles:
            raise ProblemError("accounts-not-allowed", "Ask an owner or admin of the brand.")
        return member

    async def require_member(
        self, user_id: uuid.UUID, organisation_id: uuid.UUID, roles: Sequence[str] = EVERYONE
    ) -> str:
        """The caller's role in the organisation (404 for strangers, 403 for too small a role)."""
        async with self.db.sessions() as session:
            member = await self._require_role(session, organisation_id, user_id, roles)
            return member.role

    async def organisation(
        self, user_id: uuid.UUID, organisation_id: uuid.UUID
    ) -> OrganisationView:
        async with self.db.sessions() as session:
            me = await self._membership(session, organisation_id, user_id)
            org = await session.get(Organisation, organisation_id)
            assert org is not None
            rows = (
                await session.execute(
                    select(Member.user_id, Member.role).where(
                        Member.organisation_id == organisation_id
                    )
                )
            ).all()
        profiles = await self.identity.public_profiles([r.user_id for r in rows])
        members = [(profiles[r.user_id].omo_id, r.role) for r in rows if r.user_id in profiles]
        return OrganisationView(org.id, org.name, me.role, sorted(members))

    async def organisations_of(self, user_id: uuid.UUID) -> list[tuple[uuid.UUID, str, str]]:
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(Organisation.id, Organisation.name, Member.role)
                .join(Member, Member.organisation_id == Organisation.id)
                .where(Member.user_id == user_id)
                .order_by(Organisation.created_at)
            )
            return [(r.id, r.name, r.role) for r in rows]

    async def set_member(
        self, actor: uuid.UUID, organisation_id: uuid.UUID, omo_id: str, role: Role
    ) -> OrganisationView:
        person = await self.identity.find_by_omo_id(omo_id)
        now = self.clock.now()
        async with self.db.transaction() as session:
            me = await self._require_role(session, organisation_id, actor, MANAGERS)
            if role == "owner" and me.role != "owner":
                raise ProblemError("accounts-not-allowed", "Only an owner can add an owner.")
            existing = await session.get(Member, (organisation_id, person.user_id))
            if existing is None:
                session.add(
                    Member(
                        organisation_id=organisation_id,
                        user_id=person.user_id,
                        role=role,
                        joined_at=now,
                    )
                )
            else:
                if existing.role == "owner" and me.role != "owner":
                    raise ProblemError("accounts-not-allowed", "Only an owner can change an owner.")
                existing.role = role
        return await self.organisation(actor, organisation_id)

    # -- accounts ---------------------------------------------------------------------------

    async def create_account(
        self,
        actor: uuid.UUID,
        organisation_id: uuid.UUID,
        *,
        kind: Kind,
        name: str,
        description: str = "",
        avatar_url: str = "",
    ) -> CreatedAccount:
        secret = secrets.token_hex(16)
        async with self.db.transaction() as session:
            await self._require_role(session, organisation_id, actor, MANAGERS)
            account = OfficialAccount(
                id=new_id(),
                organisation_id=organisation_id,
                kind=kind,
                name=name.strip(),
                description=description,
                avatar_url=avatar_url,
                verified=False,
                app_id="wx" + secrets.token_hex(8),
                secret_hash=hash_secret(secret),
                welcome="",
                default_reply="",
                menu=[],
                webhook_url="",
                webhook_token="",
                created_at=self.clock.now(),
            )
            session.add(account)
        return CreatedAccount(await self.account(account.id), secret)

    async def _account(self, session: AsyncSession, account_id: uuid.UUID) -> OfficialAccount:
        account = await session.get(OfficialAccount, account_id)
        if account is None:
            raise ProblemError("not-found", "No such official account.")
        return account

    async def managed(
        self, actor: uuid.UUID, account_id: uuid.UUID, roles: Sequence[str] = EVERYONE
    ) -> OfficialAccount:
        """The account, if `actor` is a member of its brand with one of `roles` (else 404/403)."""
        async with self.db.sessions() as session:
            account = await self._account(session, account_id)
            member = await session.get(Member, (account.organisation_id, actor))
            if member is None:
                raise ProblemError("not-found", "No such official account.")
            if member.role not in roles:
                raise ProblemError("accounts-not-allowed", "Ask an owner or admin of the brand.")
            return account

    async def account(self, account_id: uuid.UUID) -> AccountView:
        async with self.db.sessions() as session:
            account = await self._account(session, account_id)
            followers = await session.scalar(
                select(func.count())
                .select_from(Follow)
                .where(Follow.account_id == account_id, Follow.following.is_(True))
            )
        return _view(account, followers or 0)

    async def accounts_of_organisation(
        self, actor: uuid.UUID, organisation_id: uuid.UUID
    ) -> list[AccountView]:
        async with self.db.sessions() as session:
            await self._membership(session, organisation_id, actor)
            rows = (
                await session.scalars(
                    select(OfficialAccount)
                    .where(OfficialAccount.organisation_id == organisation_id)
                    .order_by(OfficialAccount.created_at)
                )
            ).all()
        return [_view(a, 0) for a in rows]

    async def update_profile(
        self,
        account_id: uuid.UUID,
        *,
        name: str | None = None,
        description: str | None = None,
        avatar_url: str | None = None,
    ) -> AccountView:
        async with self.db.transaction() as session:
            account = await self._account(session, account_id)
            if name is not None:
                account.name = name.strip()
            if description is not None:
                account.description = description
            if avatar_url is not None:
                account.avatar_url = avatar_url
        return await self.account(account_id)

    # -- operator -----------------------------------------------------------------------------

    async def verify(self, account_id: uuid.UUID, verified: bool = True) -> AccountView:
        """Operator action: the verified badge, shown wherever the account appears."""
        async with self.db.transaction() as session:
            account = await self._account(session, account_id)
            account.verified = verified
        return await self.account(account_id)

    async def set_quota(self, account_id: uuid.UUID, allowed: int | None) -> None:
        """Operator action: this account's broadcasts per period (None: the kind's default)."""
        if allowed is not None and allowed < 0:
            raise ValueError("a quota is zero or more")
        async with self.db.transaction() as session:
            account = await self._account(session, account_id)
            account.quota_override = allowed

    # -- follow = consent ------------------------------------------------------------------

    async def follow(
        self, user_id: uuid.UUID, account_id: uuid.UUID, *, scene: str = "", by_scan: bool = False
    ) -> list[ThreadItem]:
        """Follow (or, by QR, follow or re-scan). Returns the automatic replies it caused."""
        async with self.db.sessions() as session:
            account = await self._account(session, account_id)
        openid = await self.identity.openid(account.app_id, user_id)
        try:
            replies = await self._follow(account, user_id, openid, scene, by_scan)
        except IntegrityError:  # a racing follow of the same person won; that is a follow
            return []
        await self._push(user_id, account_id, replies)
        return replies

    async def _follow(
        self, account: OfficialAccount, user_id: uuid.UUID, openid: str, scene: str, by_scan: bool
    ) -> list[ThreadItem]:
        account_id, now = account.id, self.clock.now()
        replies: list[ThreadItem] = []
        async with self.db.transaction() as session:
            row = await session.get(Follow, (account_id, user_id), with_for_update=True)
            if row is not None and row.following:
                row.last_interaction_at = now
                if by_scan:
                    self._record(
                        session, Scanned(account_id=account_id, openid=openid, scene=scene)
                    )
                return []
            if row is None:
                session.add(
                    Follow(
                        account_id=account_id,
                        user_id=user_id,
                        openid=openid,
                        following=True,
                        followed_at=now,
                        scene=scene,
                        last_interaction_at=now,
                    )
                )
            else:
                row.following, row.followed_at, row.scene = True, now, scene
                row.last_interaction_at = now
            self._record(
                session,
                Followed(account_id=account_id, openid=openid, scene=scene, by_scan=by_scan),
            )
            if account.welcome and not account.webhook_url:
                replies.append(
                    self._append(session, account_id, user_id, "out", {"text": account.welcome})
                )
        return replies

    async def unfollow(self, user_id: uuid.UUID, account_id: uuid.UUID) -> None:
        """Withdraws consent at once: every kind of brand message stops with this commit."""
        async with self.db.transaction() as session:
            row = await session.get(Follow, (account_id, user_id), with_for_update=True)
            if row is None or not row.following:
                return
            row.following = False
            self._record(session, Unfollowed(account_id=account_id, openid=row.openid))

    async def following(self, user_id: uuid.UUID) -> list[AccountView]:
        async with self.db.sessions() as session:
            rows = (
                await session.scalars(
                    select(OfficialAccount)
                    .join(Follow, Follow.account_id == OfficialAccount.id)
                    .where(Follow.user_id == user_id, Follow.following.is_(True))
                    .order_by(OfficialAccount.name)
                )
            ).all()
        return [_view(a, 0) for a in rows]

    async def is_following(self, user_id: uuid.UUID, account_id: uuid.UUID) -> bool:
        async with self.db.sessions() as session:
            row = await session.get(Follow, (account_id, user_id))
            return bool(row and row.following)

    def qr_payload(self, base_url: str, account: AccountView, scene: str) -> tuple[str, str]:
        """The QR code's URL (opens the profile, following with the scene) and its SVG."""
        url = f"{base_url.rstrip('/')}/accounts/{account.id}"
        if scene:
            from urllib.parse import quote

            url += f"?scene={quote(scene, safe='')}"
        svg = segno.make(url, error="m").svg_inline(scale=4)
        return url, svg

    # -- the conversation (seam: moves into messaging later) ----------------------------------

    def _append(
        self,
        session: AsyncSession,
        account_id: uuid.UUID,
        user_id: uuid.UUID,
        direction: str,
        body: dict[str, Any],
    ) -> ThreadItem:
        row = AccountMessage(
            id=new_id(),
            account_id=account_id,
            user_id=user_id,
            direction=direction,
            body=body,
            created_at=self.clock.now(),
        )
        session.add(row)
        return ThreadItem(row.id, direction, False, body, row.created_at)

    async def conversation(
        self, user_id: uuid.UUID, account_id: uuid.UUID, limit: int = 50
    ) -> list[ThreadItem]:
        """The person's thread with the account: their own messages and the account's, plus
        every broadcast since they followed (read by reference, never copied), oldest first."""
        limit = max(1, min(limit, HISTORY_MAX))
        async with self.db.sessions() as session:
            await self._account(session, account_id)
            own = (
                await session.scalars(
                    select(AccountMessage)
                    .where(
                        AccountMessage.account_id == account_id,
                        AccountMessage.user_id == user_id,
                    )
                    .order_by(AccountMessage.id.desc())
                    .limit(limit)
                )
            ).all()
            items = [ThreadItem(m.id, m.direction, False, m.body, m.created_at) for m in own]
            follow = await session.get(Follow, (account_id, user_id))
            if follow is not None and follow.following:
                tags = select(FollowerTag.tag_id).where(FollowerTag.user_id == user_id)
                casts = (
                    await session.scalars(
                        select(Broadcast)
                        .where(
                            Broadcast.account_id == account_id,
                            Broadcast.created_at >= follow.followed_at,
                            or_(Broadcast.tag_id.is_(None), Broadcast.tag_id.in_(tags)),
                        )
                        .order_by(Broadcast.created_at.desc())
                        .limit(limit)
                    )
                ).all()
                items += [ThreadItem(b.id, "out", True, b.body, b.created_at) for b in casts]
        items.sort(key=lambda i: (i.created_at, i.id))
        return items[-limit:]

    async def _touch(
        self, session: AsyncSession, account_id: uuid.UUID, user_id: uuid.UUID
    ) -> Follow:
        row = await session.get(Follow, (account_id, user_id), with_for_update=True)
        if row is None or not row.following:
            raise ProblemError("accounts-not-following", "Follow the account first.")
        row.last_interaction_at = self.clock.now()
        return row

    async def user_send(
        self, user_id: uuid.UUID, account_id: uuid.UUID, body: dict[str, Any]
    ) -> list[ThreadItem]:
        """A follower writes to the account; keyword rules or the default reply may answer
        (unless the brand's own server answers through its webhook)."""
        body = validate_body(body)
        async with self.db.transaction() as session:
            account = await self._account(session, account_id)
            follow = await self._touch(session, account_id, user_id)
            sent = self._append(session, account_id, user_id, "in", body)
            text = body.get("text", "")
            self._record(
                session,
                MessageReceived(
                    account_id=account_id, openid=follow.openid, message_id=sent.id, text=text
                ),
            )
            items = [sent]
            if not account.webhook_url:
                reply = await self._automatic_reply(session, account, text)
                if reply:
                    items.append(self._append(session, account_id, user_id, "out", {"text": reply}))
        await self._push(user_id, account_id, items[1:])
        return items

    async def _automatic_reply(
        self, session: AsyncSession, account: OfficialAccount, text: str
    ) -> str:
        rules = (
            await session.scalars(select(KeywordRule).where(KeywordRule.account_id == account.id))
        ).all()
        needle = text.strip().casefold()
        for rule in rules:
            if rule.match == "exact" and needle == rule.keyword.casefold():
                return rule.reply
        for rule in rules:
            if rule.match == "contains" and rule.keyword.casefold() in needle:
                return rule.reply
        return account.default_reply

    async def menu_click(self, user_id: uuid.UUID, account_id: uuid.UUID, key: str) -> str:
        """A follower taps a menu button: a click event (key) or a link (view). Returns the
        link to open, or '' for a click."""
        async with self.db.transaction() as session:
            account = await self._account(session, account_id)
            target = _find_button(account.menu, key)
            if target is None:
                raise ProblemError("not-found", "No such menu button.")
            follow = await self._touch(session, account_id, user_id)
            action = "click" if target["type"] == "click" else "view"
            self._record(
                session,
                MenuClicked(account_id=account_id, openid=follow.openid, action=action, key=key),
            )
            return "" if action == "click" else str(target["url"])

    async def brand_send(
        self, account_id: uuid.UUID, openid: str, body: dict[str, Any]
    ) -> ThreadItem:
        """A free-form message from the account: only to a follower, only within 48 hours of
        their last interaction."""
        body = validate_body(body)
        async with self.db.transaction() as session:
            follow = await session.scalar(
                select(Follow).where(Follow.account_id == account_id, Follow.openid == openid)
            )
            if follow is None or not follow.following:
                raise ProblemError("accounts-not-following", "This person does not follow you.")
            if self.clock.now() - follow.last_interaction_at > REPLY_WINDOW:
                raise ProblemError(
                    "accounts-window-closed",
                    "Free-form replies are allowed for 48 hours after the person's last "
                    "message; use a broadcast or a template.",
                )
            item = self._append(session, account_id, follow.user_id, "out", body)
            user_id = follow.user_id
        await self._push(user_id, account_id, [item])
        return item

    async def _push(
        self, user_id: uuid.UUID, account_id: uuid.UUID, items: Sequence[ThreadItem]
    ) -> None:
        for item in items:
            await self.broker.publish(user_channel(user_id), _frame(account_id, item))

    # -- broadcasts ---------------------------------------------------------------------------

    async def _take_quota(self, session: AsyncSession, account: OfficialAccount) -> None:
        period = period_of(account.kind, self.clock.now())
        allowed = (
            account.quota_override
            if account.quota_override is not None
            else self.quotas.get(account.kind, 1)
        )
        insert = _upsert("sqlite" if self.db.is_sqlite else "postgresql")
        await session.execute(
            insert(Quota)
            .values(account_id=account.id, period=period, used=0, allowed=allowed)
            .on_conflict_do_nothing()
        )
        # The one statement that decides: racing requests serialise on this row.
        taken = await session.execute(
            update(Quota)
            .where(
                Quota.account_id == account.id,
                Quota.period == period,
                Quota.used < allowed,
            )
            .values(used=Quota.used + 1, allowed=allowed)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise ProblemError(
                "accounts-quota-used",
                "This account may broadcast %(n)s times per period; the next one opens later.",
                params={"n": allowed},
            )

    async def quota(self, account_id: uuid.UUID) -> QuotaView:
        async with self.db.sessions() as session:
            account = await self._account(session, account_id)
            period = period_of(account.kind, self.clock.now())
            row = await session.get(Quota, (account_id, period))
            allowed = (
                account.quota_override
                if account.quota_override is not None
                else self.quotas.get(account.kind, 1)
            )
            return QuotaView(period, row.used if row else 0, allowed)

    async def broadcast(
        self,
        account_id: uuid.UUID,
        body: dict[str, Any],
        *,
        tag_id: int | None = None,
        push: bool = True,
    ) -> ThreadItem:
        """Accepted in O(1): one quota row, one broadcast row, one event — whatever the
        audience. Followers read it by reference; online ones get a push after the commit."""
        body = validate_body(body)
        async with self.db.transaction() as session:
            account = await self._account(session, account_id)
            if tag_id is not None:
                tag = await session.get(Tag, tag_id)
                if tag is None or tag.account_id != account_id:
                    raise ProblemError("not-found", "No such tag.")
            await self._take_quota(session, account)
            row = Broadcast(
                id=new_id(),
                account_id=account_id,
                tag_id=tag_id,
                body=body,
                created_at=self.clock.now(),
            )
            session.add(row)
            self._record(
                session, BroadcastSent(account_id=account_id, broadcast_id=row.id, tag_id=tag_id)
            )
        item = ThreadItem(row.id, "out", True, body, row.created_at)
        if push:
            self._spawn(self._push_broadcast(account_id, tag_id, item))
        return item

    async def _push_broadcast(
        self, account_id: uuid.UUID, tag_id: int | None, item: ThreadItem
    ) -> None:
        """Realtime push to followers, in pages, off the request path (at most once: the
        database is the truth, a client that missed it reads its thread)."""
        frame = _frame(account_id, item)
        after: uuid.UUID | None = None
        while True:
            async with self.db.sessions() as session:
                query = (
                    select(Follow.user_id)
                    .where(Follow.account_id == account_id, Follow.following.is_(True))
                    .order_by(Follow.user_id)
                    .limit(PUSH_BATCH)
                )
                if tag_id is not None:
                    query = query.join(
                        FollowerTag,
                        and_(FollowerTag.user_id == Follow.user_id, FollowerTag.tag_id == tag_id),
                    )
                if after is not None:
                    query = query.where(Follow.user_id > after)
                users = list((await session.scalars(query)).all())
            if not users:
                return
            await asyncio.gather(*(self.broker.publish(user_channel(u), frame) for u in users))
            after = users[-1]

    # -- followers, tags ------------------------------------------------------------------

    async def followers(
        self, account_id: uuid.UUID, *, after_openid: str = "", count: int = 10000
    ) -> tuple[int, list[str]]:
        async with self.db.sessions() as session:
            base = (Follow.account_id == account_id, Follow.following.is_(True))
            total = await session.scalar(select(func.count()).select_from(Follow).where(*base))
            query = select(Follow.openid).where(*base).order_by(Follow.openid).limit(count)
            if after_openid:
                query = query.where(Follow.openid > after_openid)
            return total or 0, list((await session.scalars(query)).all())

    async def follower(self, account_id: uuid.UUID, openid: str) -> FollowerView:
        """What a brand may know of a follower: pseudonyms, nickname, avatar — no phone."""
        async with self.db.sessions() as session:
            account = await self._account(session, account_id)
            follow = await session.scalar(
                select(Follow).where(Follow.account_id == account_id, Follow.openid == openid)
            )
            if follow is None or not follow.following:
                raise ProblemError("accounts-not-following", "This person does not follow you.")
            tag_ids = list(
                (
                    await session.scalars(
                        select(FollowerTag.tag_id)
                        .join(Tag, Tag.id == FollowerTag.tag_id)
                        .where(Tag.account_id == account_id, FollowerTag.user_id == follow.user_id)
                    )
                ).all()
            )
        profile = (await self.identity.public_profiles([follow.user_id]))[follow.user_id]
        unionid = await self.identity.unionid(str(account.organisation_id), follow.user_id)
        return FollowerView(
            openid=openid,
            unionid=unionid,
            nickname=profile.display_name,
            avatar_id=profile.avatar_id,
            followed_at=follow.followed_at,
            scene=follow.scene,
            tag_ids=sorted(tag_ids),
            last_interaction_at=follow.last_interaction_at,
        )

    async def create_tag(self, account_id: uuid.UUID, name: str) -> tuple[int, str]:
        async with self.db.transaction() as session:
            tag = Tag(account_id=account_id, name=name.strip())
            session.add(tag)
            await session.flush()
            return tag.id, tag.name

    async def tags(self, account_id: uuid.UUID) -> list[tuple[int, str, int]]:
        async with self.db.sessions() as session:
            counts = (
                select(FollowerTag.tag_id, func.count().label("n"))
                .group_by(FollowerTag.tag_id)
                .subquery()
            )
            rows = await session.execute(
                select(Tag.id, Tag.name, func.coalesce(counts.c.n, 0))
                .outerjoin(counts, counts.c.tag_id == Tag.id)
                .where(Tag.account_id == account_id)
                .order_by(Tag.id)
            )
            return [(r[0], r[1], int(r[2])) for r in rows]

    async def tag_followers(
        self, account_id: uuid.UUID, tag_id: int, openids: Sequence[str], *, remove: bool = False
    ) -> None:
        async with self.db.transaction() as session:
            tag = await session.get(Tag, tag_id)
            if tag is None or tag.account_id != account_id:
                raise ProblemError("not-found", "No such tag.")
            users = (
                await session.scalars(
                    select(Follow.user_id).where(
                        Follow.account_id == account_id, Follow.openid.in_(list(openids))
                    )
                )
            ).all()
            for user in users:
                existing = await session.get(FollowerTag, (tag_id, user))
                if remove and existing is not None:
                    await session.delete(existing)
                elif not remove and existing is None:
                    session.add(FollowerTag(tag_id=tag_id, user_id=user))

    # -- automation and menu ----------------------------------------------------------------

    async def set_automation(self, account_id: uuid.UUID, automation: Automation) -> Automation:
        async with self.db.transaction() as session:
            account = await self._account(session, account_id)
            account.welcome, account.default_reply = automation.welcome, automation.default_reply
            for old in (
                await session.scalars(
                    select(KeywordRule).where(KeywordRule.account_id == account_id)
                )
            ).all():
                await session.delete(old)
            for match, keyword, reply in automation.rules:
                session.add(
                    KeywordRule(
                        id=new_id(),
                        account_id=account_id,
                        match=match,
                        keyword=keyword,
                        reply=reply,
                    )
                )
        return await self.automation(account_id)

    async def automation(self, account_id: uuid.UUID) -> Automation:
        async with self.db.sessions() as session:
            account = await self._account(session, account_id)
            rules = (
                await session.scalars(
                    select(KeywordRule)
                    .where(KeywordRule.account_id == account_id)
                    .order_by(KeywordRule.id)
                )
            ).all()
            return Automation(
                account.welcome,
                account.default_reply,
                [(r.match, r.keyword, r.reply) for r in rules],
            )

    async def set_menu(
        self, account_id: uuid.UUID, buttons: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        menu = validate_menu(buttons)
        async with self.db.transaction() as session:
            account = await self._account(session, account_id)
            account.menu = menu
        return menu

    # -- developer credentials and webhook ----------------------------------------------------

    async def reset_secret(self, account_id: uuid.UUID) -> str:
        secret = secrets.token_hex(16)
        async with self.db.transaction() as session:
            account = await self._account(session, account_id)
            account.secret_hash = hash_secret(secret)
        return secret

    async def issue_token(self, app_id: str, secret: str) -> tuple[str, int]:
        """Client credentials → an access token valid 7200 s."""
        async with self.db.transaction() as session:
            account = await session.scalar(
                select(OfficialAccount).where(OfficialAccount.app_id == app_id)
            )
            if account is None or not hmac.compare_digest(account.secret_hash, hash_secret(secret)):
                raise ProblemError("accounts-bad-credentials", "Check the app id and secret.")
            token = secrets.token_urlsafe(48)
            session.add(
                AccessToken(
                    token_hash=hash_secret(token),
                    account_id=account.id,
                    expires_at=self.clock.now() + TOKEN_LIFETIME,
                )
            )
        return token, int(TOKEN_LIFETIME.total_seconds())

    async def token_status(self, token: str) -> tuple[uuid.UUID | None, str]:
        """(account id, "ok") for a live token; (None, "expired" | "invalid") otherwise."""
        async with self.db.sessions() as session:
            row = await session.get(AccessToken, hash_secret(token))
            if row is None:
                return None, "invalid"
            if row.expires_at <= self.clock.now():
                return None, "expired"
            return row.account_id, "ok"

    async def set_webhook(self, account_id: uuid.UUID, url: str, token: str) -> None:
        async with self.db.transaction() as session:
            account = await self._account(session, account_id)
            account.webhook_url, account.webhook_token = url, token

    async def webhook_target(self, account_id: uuid.UUID) -> tuple[str, str, str]:
        """(url, token, app id) of the account's webhook, or empty strings."""
        async with self.db.sessions() as session:
            account = await self._account(session, account_id)
            return account.webhook_url, account.webhook_token, account.app_id

    async def delivery_claimed(self, event_id: uuid.UUID, account_id: uuid.UUID) -> bool:
        """Claim an event for delivery (once across nodes); False if already done."""
        async with self.db.transaction() as session:
            row = await session.get(WebhookDelivery, event_id, with_for_update=True)
            if row is not None and row.status in ("delivered", "failed"):
                return False
            if row is None:
                session.add(
                    WebhookDelivery(
                        event_id=event_id,
                        account_id=account_id,
                        status="sending",
                        attempts=0,
                        last_error="",
                        updated_at=self.clock.now(),
                    )
                )
            return True

    async def delivery_done(
        self, event_id: uuid.UUID, *, delivered: bool, attempts: int, error: str = ""
    ) -> None:
        async with self.db.transaction() as session:
            row = await session.get(WebhookDelivery, event_id)
            if row is not None:
                row.status = "delivered" if delivered else "failed"
                row.attempts, row.last_error = attempts, error[:200]
                row.updated_at = self.clock.now()

    async def deliveries(self, account_id: uuid.UUID, limit: int = 50) -> list[WebhookDelivery]:
        async with self.db.sessions() as session:
            return list(
                (
                    await session.scalars(
                        select(WebhookDelivery)
                        .where(WebhookDelivery.account_id == account_id)
                        .order_by(WebhookDelivery.event_id.desc())
                        .limit(limit)
                    )
                ).all()
            )

    async def passive_reply(self, account_id: uuid.UUID, openid: str, text: str) -> None:
        """The brand server's passive XML reply, delivered to the follower as a message."""
        async with self.db.transaction() as session:
            follow = await session.scalar(
                select(Follow).where(Follow.account_id == account_id, Follow.openid == openid)
            )
            if follow is None or not follow.following:
                return
            item = self._append(session, account_id, follow.user_id, "out", {"text": text})
            user_id = follow.user_id
        await self._push(user_id, account_id, [item])

    # -- for customer care (omo.care): the thread by openid ---------------------------------

    async def thread_of(
        self, account_id: uuid.UUID, openid: str, limit: int = 50
    ) -> list[ThreadItem]:
        """The follower's thread with the account, found by openid (as the brand knows them);
        empty when no one has that openid here."""
        async with self.db.sessions() as session:
            user_id = await session.scalar(
                select(Follow.user_id).where(
                    Follow.account_id == account_id, Follow.openid == openid
                )
            )
        if user_id is None:
            return []
        return await self.conversation(user_id, account_id, limit)


def _find_button(menu: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    for button in menu:
        for leaf in button.get("sub_button", [button]):
            if leaf.get("key") == key or (leaf.get("type") != "click" and leaf.get("url") == key):
                found: dict[str, Any] = leaf
                return found
    return None


def _view(account: OfficialAccount, followers: int) -> AccountView:
    return AccountView(
        id=account.id,
        organisation_id=account.organisation_id,
        kind=account.kind,
        name=account.name,
        description=account.description,
        avatar_url=account.avatar_url,
        verified=account.verified,
        app_id=account.app_id,
        followers=followers,
        menu=account.menu,
    )


def _frame(account_id: uuid.UUID, item: ThreadItem) -> dict[str, Any]:
    return {
        "type": "account-message",
        "account_id": str(account_id),
        "id": str(item.id),
        "broadcast": item.broadcast,
        "body": item.body,
        "created_at": item.created_at.isoformat(),
    }
