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
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import orjson
import segno
from sqlalchemy import func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from omo.accounts.events import (
    BotAnswered,
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
    KindQuota,
    LibraryTemplate,
    Media,
    Member,
    OfficialAccount,
    Organisation,
    Quota,
    Tag,
    Template,
    TemplateSubscription,
    WebhookDelivery,
)
from omo.core import audit
from omo.core.broker import Broker, BrokerClosedError
from omo.core.clock import Clock
from omo.core.db import Database
from omo.core.errors import ProblemError, register
from omo.core.events import DomainEvent, StoredEvent, announce, consume, record_event
from omo.core.i18n import SUPPORTED, translations
from omo.core.ids import new_id
from omo.core.money import Money
from omo.core.ratelimit import Limit, RateLimiter
from omo.identity.events import PersonErased
from omo.identity.service import IdentityService
from omo.messaging.service import USER_CHANNEL_PREFIX, user_channel

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
CARD_TYPES = ("article", "image", "voice", "video", "coupon", "miniprogram", "subscribe")
HISTORY_MAX = 200
# A broadcast's realtime push is one event on this channel; every node then pushes it to its
# own connected followers (see AccountService._push_to_connected).
BROADCAST_CHANNEL = "accounts.broadcasts"
# Connected people checked against the follows per statement (one parameter holds them all:
# the size only bounds how long one read holds a connection).
ONLINE_PROBE = 10_000

# The platform operator's defaults; `set_quota` overrides them per account.
DEFAULT_QUOTAS: dict[str, int] = {"subscription": 1, "service": 4}

register("accounts-not-following", 409, "This person does not follow the account")
register("accounts-window-closed", 409, "The 48-hour reply window is closed")
register("accounts-quota-used", 409, "Broadcast quota used up")
register("accounts-invalid-menu", 400, "The menu is not valid")
register("accounts-invalid-message", 400, "The message is not valid")
register("accounts-not-allowed", 403, "Your role in this brand does not allow this")
register("accounts-bad-credentials", 401, "Wrong app id or secret")
register("accounts-not-subscribed", 409, "This person has not subscribed to this template")
register("accounts-invalid-template", 400, "The template is not valid")
register("accounts-invalid-media", 400, "The media file is not valid")
register("accounts-media-too-large", 413, "The media file is too large for its type")
register("accounts-not-operator", 403, "Only a platform operator may do this")
register("accounts-invalid-locale", 400, "This language is not supported")
register("accounts-too-many-templates", 409, "The account has as many templates as it may")

# Templates: each acceptance by the follower is one message; acceptances add up to this.
SUBSCRIPTION_CREDITS_MAX = 10
TEMPLATE_FIELD_MAX = 200
TEMPLATES_PER_ACCOUNT = 25  # as WeChat's private templates (errcode 45026 beyond)
LIBRARY_ID = re.compile(r"^[A-Za-z0-9_-]{2,32}$")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]{1,32})\.DATA\s*\}\}")

# Temporary media: kept 3 days; each kind has its content types (by their first bytes) and
# its size limit (below the deployment's request limit, 2 MiB by default).
MEDIA_LIFETIME = timedelta(days=3)
MEDIA_LIMITS: dict[str, int] = {
    "image": 1024 * 1024,
    "voice": 1024 * 1024,
    "video": 2 * 1024 * 1024,
    "thumb": 64 * 1024,
}

# The developer API's budget per app (per official account), on every node alike.
TOKENS_PER_APP = Limit("accounts-token", 20, 60 * 60)
SENDS_PER_APP = Limit("accounts-send", 600, 60)


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
    quota_override: int | None = None  # the operator's broadcasts per period for this account


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
    # per rule (same order): the reply in other languages, {locale: reply}
    rule_translations: list[dict[str, str]] = field(default_factory=list)


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
    """A message is text, or a card (article, image, voice, video, coupon, mini program, or a
    prompt to accept one of the account's templates)."""
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
        if kind == "coupon" and card.get("campaign_id"):
            try:
                clean["campaign_id"] = str(uuid.UUID(str(card["campaign_id"])))
            except ValueError:
                raise ProblemError("accounts-invalid-message", "No such coupon campaign.") from None
        if kind == "subscribe":  # asks the follower to accept one of the account's templates
            template_id = card.get("template_id")
            if not isinstance(template_id, str) or not 0 < len(template_id) <= 64:
                raise ProblemError("accounts-invalid-template", "Name the template to accept.")
            clean["template_id"] = template_id
        if kind == "miniprogram" and card.get("appid"):
            appid, page = str(card["appid"]), str(card.get("pagepath") or "")
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", appid) or len(page) > 256:
                raise ProblemError(
                    "accounts-invalid-message", "A mini program card needs an appid."
                )
            clean |= {"appid": appid, "pagepath": page.lstrip("/")}
            clean["url"] = f"/mp/{appid}/{quote(clean['pagepath'], safe='/?=&')}"
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
        limiter: RateLimiter | None = None,
        operators: Sequence[str] = (),
        pay: Any = None,
        coupons: Any = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.identity = identity
        self.broker = broker
        self.quotas = dict(DEFAULT_QUOTAS, **(quotas or {}))
        self.limiter = limiter
        # pay's and coupons' services (when this build has them): a coupon card must be of a
        # campaign issued by the brand's own merchant.
        self.pay, self.coupons = pay, coupons
        self.token_limit, self.send_limit = TOKENS_PER_APP, SENDS_PER_APP
        # Platform operators by OMO ID (settings OMO_OPERATORS), checked at each request.
        self.operators = frozenset(o.strip().lower() for o in operators if o.strip())
        self._tasks: set[asyncio.Task[None]] = set()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def start(self) -> None:
        """Listen for broadcasts to push to the followers connected to this node."""
        ready = asyncio.Event()
        self._spawn(self._push_forever(ready))
        await ready.wait()

    async def _push_forever(self, ready: asyncio.Event) -> None:
        while True:
            try:
                async with self.broker.subscribe(BROADCAST_CHANNEL) as subscription:
                    ready.set()
                    async for _channel, event in subscription:
                        try:
                            await self._push_to_connected(
                                uuid.UUID(event["account_id"]), event.get("tag_id"), event["frame"]
                            )
                        except Exception:  # at most once: followers read their thread
                            logger.warning("broadcast push failed", exc_info=True)
                return
            except BrokerClosedError:
                ready.set()
                return
            except Exception:
                ready.set()  # never hold the app's startup: pushes are at most once
                logger.warning("broadcast listener lost the broker, retrying", exc_info=True)
                await asyncio.sleep(1.0)

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
            before = existing.role if existing is not None else None
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
            if before != role:
                await self._audit_role(
                    session, organisation_id, actor, person.user_id, before, role
                )
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

    async def account(self, account_id: uuid.UUID, locale: str | None = None) -> AccountView:
        """The account as a reader in `locale` sees it (the brand's variant, else default)."""
        async with self.db.sessions() as session:
            account = await self._account(session, account_id)
            followers = await session.scalar(
                select(func.count())
                .select_from(Follow)
                .where(Follow.account_id == account_id, Follow.following.is_(True))
            )
        return _view(account, followers or 0, locale)

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

    def _audit_operator(
        self, session: AsyncSession, operator: uuid.UUID | None, detail: dict[str, Any]
    ) -> None:
        """An operator's change, in their own audit trail (same transaction as the change)."""
        if operator is not None:
            audit.record_audit(
                session,
                account_id=operator,
                action=audit.OPERATOR_ACTION,
                occurred_at=self.clock.now(),
                detail=detail,
            )

    async def verify(
        self, account_id: uuid.UUID, verified: bool = True, *, operator: uuid.UUID | None = None
    ) -> AccountView:
        """Operator action: the verified badge, shown wherever the account appears."""
        async with self.db.transaction() as session:
            account = await self._account(session, account_id)
            if account.verified != verified:
                self._audit_operator(
                    session,
                    operator,
                    {"change": "verified", "account_id": str(account_id), "to": verified},
                )
            account.verified = verified
        return await self.account(account_id)

    async def set_quota(
        self, account_id: uuid.UUID, allowed: int | None, *, operator: uuid.UUID | None = None
    ) -> None:
        """Operator action: this account's broadcasts per period (None: the kind's default)."""
        if allowed is not None and allowed < 0:
            raise ValueError("a quota is zero or more")
        async with self.db.transaction() as session:
            account = await self._account(session, account_id)
            if account.quota_override != allowed:
                self._audit_operator(
                    session,
                    operator,
                    {
                        "change": "account_quota",
                        "account_id": str(account_id),
                        "from": account.quota_override,
                        "to": allowed,
                    },
                )
            account.quota_override = allowed

    async def kind_quotas(self) -> dict[str, int]:
        """Broadcasts per period for each kind of account, as the operator set them."""
        async with self.db.sessions() as session:
            rows = (await session.scalars(select(KindQuota))).all()
        return {**self.quotas, **{r.kind: r.allowed for r in rows}}

    async def set_kind_quota(
        self, kind: str, allowed: int, *, operator: uuid.UUID | None = None
    ) -> dict[str, int]:
        """Operator action: broadcasts per period for every account of the kind that has no
        quota of its own; takes effect with the next broadcast."""
        if kind not in DEFAULT_QUOTAS:
            raise ProblemError("not-found", "The kinds are subscription and service.")
        if not 0 <= allowed <= 1000:
            raise ProblemError("validation-error", "A quota is between 0 and 1000.")
        async with self.db.transaction() as session:
            row = await session.get(KindQuota, kind)
            before = row.allowed if row is not None else self.quotas.get(kind, 1)
            if before != allowed:
                self._audit_operator(
                    session,
                    operator,
                    {"change": "kind_quota", "kind": kind, "from": before, "to": allowed},
                )
            if row is None:
                session.add(KindQuota(kind=kind, allowed=allowed))
            else:
                row.allowed = allowed
        return await self.kind_quotas()

    async def all_accounts(self, query: str = "", limit: int = 100) -> list[AccountView]:
        """Operator view: accounts by name (every organisation's), newest first."""
        async with self.db.sessions() as session:
            statement = select(OfficialAccount).order_by(OfficialAccount.created_at.desc())
            if query.strip():
                pattern = "%" + query.strip().lower().replace("%", "").replace("_", "") + "%"
                statement = statement.where(func.lower(OfficialAccount.name).like(pattern))
            rows = (await session.scalars(statement.limit(limit))).all()
        return [_view(a, 0) for a in rows]

    # -- follow = consent ------------------------------------------------------------------

    async def follow(
        self, user_id: uuid.UUID, account_id: uuid.UUID, *, scene: str = "", by_scan: bool = False
    ) -> list[ThreadItem]:
        """Follow (or, by QR, follow or re-scan). Returns the automatic replies it caused."""
        async with self.db.sessions() as session:
            account = await self._account(session, account_id)
        openid = await self.identity.openid(account.app_id, user_id)
        locale = await self._locale_of(user_id)
        try:
            replies = await self._follow(account, user_id, openid, scene, by_scan, locale)
        except IntegrityError:  # a racing follow of the same person won; that is a follow
            return []
        await self._push(user_id, account_id, replies)
        return replies

    async def _follow(
        self,
        account: OfficialAccount,
        user_id: uuid.UUID,
        openid: str,
        scene: str,
        by_scan: bool,
        locale: str | None = None,
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
            welcome = _localised(account, locale, "welcome")
            if welcome and not account.webhook_url:
                replies.append(self._append(session, account_id, user_id, "out", {"text": welcome}))
        return replies

    async def unfollow(self, user_id: uuid.UUID, account_id: uuid.UUID) -> None:
        """Withdraws consent at once: every kind of brand message stops with this commit."""
        async with self.db.transaction() as session:
            row = await session.get(Follow, (account_id, user_id), with_for_update=True)
            if row is None or not row.following:
                return
            row.following = False
            self._record(session, Unfollowed(account_id=account_id, openid=row.openid))

    async def forget_erased_people(self) -> int:
        """React to identity's erasures: an erased person follows no account any more (consent
        ends with the person), and each brand hears an unsubscribe for its openid."""

        async def unfollow_everything(session: AsyncSession, event: StoredEvent) -> None:
            user_id = uuid.UUID(event.payload["user_id"])
            follows = await session.scalars(
                select(Follow).where(Follow.user_id == user_id, Follow.following.is_(True))
            )
            for row in follows.all():
                row.following = False
                self._record(session, Unfollowed(account_id=row.account_id, openid=row.openid))

        async with self.db.transaction() as session:
            return await consume(
                session, "accounts.erasures", unfollow_everything, topics=(PersonErased.topic,)
            )

    async def following(self, user_id: uuid.UUID, locale: str | None = None) -> list[AccountView]:
        async with self.db.sessions() as session:
            rows = (
                await session.scalars(
                    select(OfficialAccount)
                    .join(Follow, Follow.account_id == OfficialAccount.id)
                    .where(Follow.user_id == user_id, Follow.following.is_(True))
                    .order_by(OfficialAccount.name)
                )
            ).all()
        return [_view(a, 0, locale) for a in rows]

    async def is_following(self, user_id: uuid.UUID, account_id: uuid.UUID) -> bool:
        async with self.db.sessions() as session:
            row = await session.get(Follow, (account_id, user_id))
            return bool(row and row.following)

    async def follower_tag_ids(self, account_id: uuid.UUID, user_id: uuid.UUID) -> set[int]:
        """The account's tags on a person who follows it now (none for anyone else): what a
        brand's targeting may match, without handing the brand anything about the person."""
        async with self.db.sessions() as session:
            follow = await session.get(Follow, (account_id, user_id))
            if follow is None or not follow.following:
                return set()
            rows = await session.scalars(
                select(FollowerTag.tag_id)
                .join(Tag, Tag.id == FollowerTag.tag_id)
                .where(Tag.account_id == account_id, FollowerTag.user_id == user_id)
            )
            return set(rows.all())

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
                reply = await self._automatic_reply(session, account, text, user_id)
                if reply:
                    items.append(self._append(session, account_id, user_id, "out", {"text": reply}))
        await announce(self.broker, MessageReceived.topic)  # care reads it at once
        await self._push(user_id, account_id, items[1:])
        return items

    async def _automatic_reply(
        self, session: AsyncSession, account: OfficialAccount, text: str, user_id: uuid.UUID
    ) -> str:
        """The reply of the first matching rule (exact before contains), else the default, in
        the person's language when the brand translated it. The person's language is read
        only then: most replies have no translation, and it is one more read per message."""
        rules = (
            await session.scalars(select(KeywordRule).where(KeywordRule.account_id == account.id))
        ).all()
        needle = text.strip().casefold()
        chosen = next(
            (r for r in rules if r.match == "exact" and needle == r.keyword.casefold()), None
        ) or next(
            (r for r in rules if r.match == "contains" and r.keyword.casefold() in needle), None
        )
        if chosen is not None:
            if not chosen.translations:
                return chosen.reply
            return chosen.translations.get(await self._locale_of(user_id) or "") or chosen.reply
        if not any(
            (variant or {}).get("default_reply")
            for variant in (account.translations or {}).values()
        ):
            return str(account.default_reply)
        return str(_localised(account, await self._locale_of(user_id), "default_reply"))

    async def menu_click(self, user_id: uuid.UUID, account_id: uuid.UUID, key: str) -> str:
        """A follower taps a menu button: a click event (key) or a link (view). Returns the
        link to open, or '' for a click."""
        async with self.db.transaction() as session:
            account = await self._account(session, account_id)
            target = _find_button(account.menu, key)
            for variant in (account.translations or {}).values():
                target = target or _find_button(variant.get("menu") or [], key)
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
        body = await self._checked_cards(account_id, validate_body(body))
        await self._hit(self.send_limit, str(account_id))
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
        allowed = await self._allowed(session, account)
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
            allowed = await self._allowed(session, account)
            return QuotaView(period, row.used if row else 0, allowed)

    async def _allowed(self, session: AsyncSession, account: OfficialAccount) -> int:
        """The account's own quota, else the operator's for its kind, else the default."""
        if account.quota_override is not None:
            return account.quota_override
        by_kind = await session.get(KindQuota, account.kind)
        return by_kind.allowed if by_kind is not None else self.quotas.get(account.kind, 1)

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
        body = await self._checked_cards(account_id, validate_body(body))
        await self._hit(self.send_limit, str(account_id))
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
        """Realtime push to the followers who are online, off the request path (at most
        once: the database is the truth, a client that missed it reads its thread).

        One event for every node; each node picks, among the people connected to it, those
        who follow (and carry the tag): the work grows with the connected people, not with
        the followers, and no channel is named on the wire per follower."""
        await self.broker.publish(
            BROADCAST_CHANNEL,
            {"account_id": str(account_id), "tag_id": tag_id, "frame": _frame(account_id, item)},
        )

    async def _push_to_connected(
        self, account_id: uuid.UUID, tag_id: int | None, frame: dict[str, Any]
    ) -> int:
        """Deliver a broadcast's frame to this node's connected followers; returns how many
        connections got it.

        The connected people are known by their channel names; they go to the database as
        they are, in one parameter per probe (not one per person), and the database answers
        with the channels of those who follow: no UUID is parsed nor built in Python, and no
        ORM row is made, per connected person (that was most of the push's time)."""
        online = self.broker.local_channels(USER_CHANNEL_PREFIX)
        if not online:
            return 0
        # In index order, consecutive probes share pages: at 1M followers, 10,000 connected
        # people are found in ~2/3 of the time random order takes (SQLite's cache is small).
        online.sort()
        channels: list[str] = []
        async with self.db.reader.connect() as connection:
            for start in range(0, len(online), ONLINE_PROBE):
                probe = online[start : start + ONLINE_PROBE]
                if self.db.is_sqlite:
                    channels += await self._following_channels_sqlite(
                        connection, account_id, tag_id, probe
                    )
                else:
                    channels += await self._following_channels_postgresql(
                        connection, account_id, tag_id, probe
                    )
        return self.broker.deliver_local(channels, frame)

    @staticmethod
    async def _following_channels_sqlite(
        connection: AsyncConnection, account_id: uuid.UUID, tag_id: int | None, probe: list[str]
    ) -> list[str]:
        # A user id is stored as 32 hex digits: SQLite strips the channel's prefix and dashes
        # itself while probing the covering index (account_id, following, user_id).
        result = await connection.execute(
            _SQLITE_FOLLOWING if tag_id is None else _SQLITE_FOLLOWING_TAGGED,
            {
                "channels": orjson.dumps(probe).decode(),
                "start": len(USER_CHANNEL_PREFIX) + 1,
                "account": account_id.hex,
                "tag": tag_id,
            },
        )
        return list(result.scalars().all())

    @staticmethod
    async def _following_channels_postgresql(
        connection: AsyncConnection, account_id: uuid.UUID, tag_id: int | None, probe: list[str]
    ) -> list[str]:
        statement = _PG_FOLLOWING if tag_id is None else _PG_FOLLOWING_TAGGED
        size = len(USER_CHANNEL_PREFIX)
        params: dict[str, Any] = {"account": account_id, "tag": tag_id}
        try:
            # asyncpg encodes the ids' text straight into the uuid[] parameter
            params["ids"] = [channel[size:] for channel in probe]
            rows = (await connection.execute(statement, params)).scalars().all()
        except (DBAPIError, ValueError):
            # Only if some channel under the prefix does not end with a UUID (no code makes
            # one): drop those and probe again.
            params["ids"] = [u for u in (_uuid_or_none(c[size:]) for c in probe) if u]
            rows = (await connection.execute(statement, params)).scalars().all()
        return [f"{USER_CHANNEL_PREFIX}{user_id}" for user_id in rows]

    # -- notification templates: the one way past the 48-hour window, by consent -------------

    async def create_template(self, account_id: uuid.UUID, title: str, content: str) -> Template:
        title, content = title.strip(), content.strip()
        if not 0 < len(title) <= 64 or not 0 < len(content) <= 2000:
            raise ProblemError("accounts-invalid-template", "Give a title and a content.")
        if not PLACEHOLDER.search(content):
            raise ProblemError(
                "accounts-invalid-template", "The content needs at least one {{name.DATA}} field."
            )
        async with self.db.transaction() as session:
            await self._account(session, account_id)
            await self._room_for_a_template(session, account_id)
            row = Template(
                id=secrets.token_urlsafe(32),
                account_id=account_id,
                title=title,
                content=content,
                created_at=self.clock.now(),
            )
            session.add(row)
        return row

    async def _room_for_a_template(self, session: AsyncSession, account_id: uuid.UUID) -> None:
        count = await session.scalar(
            select(func.count()).select_from(Template).where(Template.account_id == account_id)
        )
        if (count or 0) >= TEMPLATES_PER_ACCOUNT:
            raise ProblemError(
                "accounts-too-many-templates",
                "An account has at most %(n)s templates; delete one first.",
                params={"n": TEMPLATES_PER_ACCOUNT},
            )

    # The platform's template library: the operator curates it, accounts copy from it.

    async def library(self, industry: str = "") -> list[LibraryTemplate]:
        async with self.db.sessions() as session:
            statement = select(LibraryTemplate).order_by(
                LibraryTemplate.primary_industry, LibraryTemplate.id
            )
            if industry:
                statement = statement.where(LibraryTemplate.primary_industry == industry)
            return list((await session.scalars(statement)).all())

    async def add_to_library(
        self,
        *,
        title: str,
        content: str,
        primary_industry: str,
        deputy_industry: str = "",
        example: str = "",
        short_id: str = "",
        operator: uuid.UUID | None = None,
    ) -> LibraryTemplate:
        """Operator action: a template every account may add to its own."""
        title, content = title.strip(), content.strip()
        primary_industry, deputy_industry = primary_industry.strip(), deputy_industry.strip()
        short_id = short_id.strip() or f"OPENTM{secrets.randbelow(10**9):09d}"
        if not LIBRARY_ID.match(short_id):
            raise ProblemError(
                "accounts-invalid-template",
                "A library id is 2 to 32 letters, digits, '-' or '_'.",
            )
        if not 0 < len(title) <= 64 or not 0 < len(content) <= 2000:
            raise ProblemError("accounts-invalid-template", "Give a title and a content.")
        if not 0 < len(primary_industry) <= 40 or len(deputy_industry) > 40:
            raise ProblemError("accounts-invalid-template", "Give the industry (40 characters).")
        if not PLACEHOLDER.search(content):
            raise ProblemError(
                "accounts-invalid-template", "The content needs at least one {{name.DATA}} field."
            )
        row = LibraryTemplate(
            id=short_id,
            title=title,
            content=content,
            example=example.strip()[:2000],
            primary_industry=primary_industry,
            deputy_industry=deputy_industry,
            created_at=self.clock.now(),
        )
        try:
            async with self.db.transaction() as session:
                session.add(row)
                self._audit_operator(
                    session, operator, {"change": "library_added", "template_id_short": short_id}
                )
        except IntegrityError:
            raise ProblemError(
                "accounts-invalid-template", "The library already has a template with this id."
            ) from None
        return row

    async def remove_from_library(
        self, short_id: str, *, operator: uuid.UUID | None = None
    ) -> None:
        """Operator action: accounts can no longer add it; their copies stay."""
        async with self.db.transaction() as session:
            row = await session.get(LibraryTemplate, short_id)
            if row is None:
                raise ProblemError("not-found", "No such template in the library.")
            await session.delete(row)
            self._audit_operator(
                session, operator, {"change": "library_retired", "template_id_short": short_id}
            )

    async def add_from_library(self, account_id: uuid.UUID, short_id: str) -> Template:
        """The account's own copy of a library template (`api_add_template`); adding one it
        already has answers that one."""
        async with self.db.transaction() as session:
            await self._account(session, account_id)
            source = await session.get(LibraryTemplate, short_id)
            if source is None:
                raise ProblemError("accounts-invalid-template", "No such template in the library.")
            existing = await session.scalar(
                select(Template).where(
                    Template.account_id == account_id, Template.library_id == short_id
                )
            )
            if existing is not None:
                return existing
            await self._room_for_a_template(session, account_id)
            row = Template(
                id=secrets.token_urlsafe(32),
                account_id=account_id,
                title=source.title,
                content=source.content,
                created_at=self.clock.now(),
                library_id=source.id,
                primary_industry=source.primary_industry,
                deputy_industry=source.deputy_industry,
                example=source.example,
            )
            session.add(row)
        return row

    async def templates(self, account_id: uuid.UUID) -> list[Template]:
        async with self.db.sessions() as session:
            await self._account(session, account_id)
            return list(
                (
                    await session.scalars(
                        select(Template)
                        .where(Template.account_id == account_id)
                        .order_by(Template.created_at, Template.id)
                    )
                ).all()
            )

    async def delete_template(self, account_id: uuid.UUID, template_id: str) -> None:
        async with self.db.transaction() as session:
            row = await session.get(Template, template_id)
            if row is None or row.account_id != account_id:
                raise ProblemError("accounts-invalid-template", "No such template.")
            for sub in (
                await session.scalars(
                    select(TemplateSubscription).where(
                        TemplateSubscription.template_id == template_id
                    )
                )
            ).all():
                await session.delete(sub)
            await session.flush()
            await session.delete(row)

    async def subscriptions(self, user_id: uuid.UUID, account_id: uuid.UUID) -> dict[str, int]:
        """The person's remaining messages per template of the account."""
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(TemplateSubscription.template_id, TemplateSubscription.remaining)
                .join(Template, Template.id == TemplateSubscription.template_id)
                .where(Template.account_id == account_id, TemplateSubscription.user_id == user_id)
            )
            return {r[0]: r[1] for r in rows}

    async def subscribe_template(
        self,
        user_id: uuid.UUID,
        account_id: uuid.UUID,
        template_id: str,
        *,
        accept: bool = True,
        count: int = 1,
    ) -> int:
        """The follower accepts `count` more messages of this template (or, with
        accept=False, withdraws every one left); acceptances add up to at most
        SUBSCRIPTION_CREDITS_MAX. Returns how many messages the account may now send."""
        if not 1 <= count <= SUBSCRIPTION_CREDITS_MAX:
            raise ProblemError(
                "validation-error",
                "Accept between 1 and %(n)s messages at a time.",
                params={"n": SUBSCRIPTION_CREDITS_MAX},
            )
        now = self.clock.now()
        async with self.db.transaction() as session:
            template = await session.get(Template, template_id)
            if template is None or template.account_id != account_id:
                raise ProblemError("not-found", "No such template.")
            follow = await session.get(Follow, (account_id, user_id))
            if accept and (follow is None or not follow.following):
                raise ProblemError("accounts-not-following", "Follow the account first.")
            insert = _upsert("sqlite" if self.db.is_sqlite else "postgresql")
            await session.execute(
                insert(TemplateSubscription)
                .values(template_id=template_id, user_id=user_id, remaining=0, updated_at=now)
                .on_conflict_do_nothing()
            )
            credits = (
                func.min(TemplateSubscription.remaining + count, SUBSCRIPTION_CREDITS_MAX)
                if self.db.is_sqlite
                else func.least(TemplateSubscription.remaining + count, SUBSCRIPTION_CREDITS_MAX)
            )
            await session.execute(
                update(TemplateSubscription)
                .where(
                    TemplateSubscription.template_id == template_id,
                    TemplateSubscription.user_id == user_id,
                )
                .values(remaining=credits if accept else 0, updated_at=now)
            )
            remaining = await session.scalar(
                select(TemplateSubscription.remaining).where(
                    TemplateSubscription.template_id == template_id,
                    TemplateSubscription.user_id == user_id,
                )
            )
        return int(remaining or 0)

    async def send_template(
        self,
        account_id: uuid.UUID,
        openid: str,
        template_id: str,
        data: dict[str, Any],
        *,
        url: str = "",
        title: str = "",
    ) -> ThreadItem:
        """A template message: allowed outside the 48-hour window, but only to a follower who
        accepted it, and each acceptance is spent by one message (one conditional UPDATE, so
        racing sends never spend more than were given)."""
        if url and not url.startswith(("https://", "http://", "/")):
            raise ProblemError("accounts-invalid-message", "A card links to a web address.")
        await self._hit(self.send_limit, str(account_id))
        async with self.db.transaction() as session:
            template = await session.get(Template, template_id)
            if template is None or template.account_id != account_id:
                raise ProblemError("accounts-invalid-template", "No such template.")
            follow = await session.scalar(
                select(Follow).where(Follow.account_id == account_id, Follow.openid == openid)
            )
            if follow is None or not follow.following:
                raise ProblemError("accounts-not-following", "This person does not follow you.")
            spent = await session.execute(
                update(TemplateSubscription)
                .where(
                    TemplateSubscription.template_id == template_id,
                    TemplateSubscription.user_id == follow.user_id,
                    TemplateSubscription.remaining > 0,
                )
                .values(remaining=TemplateSubscription.remaining - 1, updated_at=self.clock.now())
            )
            if spent.rowcount != 1:  # type: ignore[attr-defined]
                raise ProblemError(
                    "accounts-not-subscribed",
                    "A template reaches only people who accepted it, once per acceptance.",
                )
            card = {
                "type": "template",
                "title": (title.strip() or template.title)[:200],
                "description": render_template(template.content, data),
                "url": url[:2048],
            }
            item = self._append(session, account_id, follow.user_id, "out", {"card": card})
            user_id = follow.user_id
        await self._push(user_id, account_id, [item])
        return item

    async def organisation_template(
        self, organisation_id: uuid.UUID, template_id: str
    ) -> Template | None:
        """A notification template of one of the organisation's official accounts (mini
        programs of the organisation send subscribed messages with them)."""
        async with self.db.sessions() as session:
            found: Template | None = await session.scalar(
                select(Template)
                .join(OfficialAccount, OfficialAccount.id == Template.account_id)
                .where(
                    Template.id == template_id, OfficialAccount.organisation_id == organisation_id
                )
            )
            return found

    async def deliver_notice(
        self,
        template_id: str,
        user_id: uuid.UUID,
        data: dict[str, Any],
        *,
        url: str = "",
        title: str = "",
    ) -> ThreadItem:
        """A template message the person allowed elsewhere — a mini program's
        requestSubscribeMessage, whose allowance the caller has just spent — written as a card
        in the person's thread with the template's account and pushed to their devices."""
        async with self.db.transaction() as session:
            template = await session.get(Template, template_id)
            if template is None:
                raise ProblemError("accounts-invalid-template", "No such template.")
            card = {
                "type": "template",
                "title": (title.strip() or template.title)[:200],
                "description": render_template(template.content, data),
                "url": url[:2048],
            }
            item = self._append(session, template.account_id, user_id, "out", {"card": card})
            account_id = template.account_id
        await self._push(user_id, account_id, [item])
        return item

    # -- temporary media (the developer API's media/upload) -----------------------------------

    async def upload_media(self, account_id: uuid.UUID, kind: str, data: bytes) -> Media:
        """Store a file for 3 days, if its first bytes are of a type its kind allows and it is
        within the kind's size limit."""
        if kind not in MEDIA_LIMITS:
            raise ProblemError(
                "accounts-invalid-media", "The kind is image, voice, video or thumb."
            )
        if len(data) > MEDIA_LIMITS[kind]:
            raise ProblemError(
                "accounts-media-too-large",
                "A %(kind)s is at most %(n)s bytes.",
                params={"kind": kind, "n": MEDIA_LIMITS[kind]},
            )
        content_type = sniff_media(kind, data)
        if content_type is None:
            raise ProblemError("accounts-invalid-media", "This file is not of its kind's types.")
        await self._hit(self.send_limit, str(account_id))
        async with self.db.transaction() as session:
            await self._account(session, account_id)
            row = Media(
                id=new_id(),
                account_id=account_id,
                kind=kind,
                content_type=content_type,
                size=len(data),
                data=data,
                created_at=self.clock.now(),
            )
            session.add(row)
        return row

    async def media(self, account_id: uuid.UUID | None, media_id: uuid.UUID) -> Media:
        """A live (under 3 days old) media file; of this account unless account_id is None."""
        async with self.db.sessions() as session:
            row = await session.get(Media, media_id)
        if (
            row is None
            or (account_id is not None and row.account_id != account_id)
            or self.clock.now() - row.created_at > MEDIA_LIFETIME
        ):
            raise ProblemError("not-found", "No such media, or it expired.")
        return row

    # -- operator, limits and audit helpers ------------------------------------------------

    async def is_operator(self, user_id: uuid.UUID) -> bool:
        if not self.operators:
            return False
        profiles = await self.identity.public_profiles([user_id])
        profile = profiles.get(user_id)
        return profile is not None and profile.omo_id.lower() in self.operators

    async def require_operator(self, user_id: uuid.UUID) -> None:
        if not await self.is_operator(user_id):
            raise ProblemError("accounts-not-operator", "Ask the platform's operator.")

    async def _hit(self, limit: Limit, key: str) -> None:
        if self.limiter is not None:
            await self.limiter.hit(limit, key)

    async def _audit_role(
        self,
        session: AsyncSession,
        organisation_id: uuid.UUID,
        actor: uuid.UUID,
        subject: uuid.UUID,
        before: str | None,
        after: str | None,
    ) -> None:
        """A role change in a brand, in the audit trail of the person whose role changed and
        of the person who changed it (same transaction as the change)."""
        profiles = await self.identity.public_profiles([actor])
        by = profiles[actor].omo_id if actor in profiles else "unknown"
        detail = {"organisation_id": str(organisation_id), "from": before, "to": after}
        now = self.clock.now()
        audit.record_audit(
            session,
            account_id=subject,
            action=audit.ROLE_CHANGED,
            occurred_at=now,
            actor="self" if subject == actor else by,
            detail=detail,
        )
        if subject != actor:
            whose = (await self.identity.public_profiles([subject])).get(subject)
            audit.record_audit(
                session,
                account_id=actor,
                action=audit.ROLE_CHANGED,
                occurred_at=now,
                detail=detail | {"member": whose.omo_id if whose else "unknown"},
            )

    async def remove_member(
        self, actor: uuid.UUID, organisation_id: uuid.UUID, omo_id: str
    ) -> OrganisationView:
        """An owner or admin removes a member (only an owner removes an owner; the last owner
        stays)."""
        person = await self.identity.find_by_omo_id(omo_id)
        async with self.db.transaction() as session:
            me = await self._require_role(session, organisation_id, actor, MANAGERS)
            member = await session.get(Member, (organisation_id, person.user_id))
            if member is None:
                raise ProblemError("not-found", "This person is not a member.")
            if member.role == "owner":
                if me.role != "owner":
                    raise ProblemError("accounts-not-allowed", "Only an owner can remove an owner.")
                owners = await session.scalar(
                    select(func.count())
                    .select_from(Member)
                    .where(Member.organisation_id == organisation_id, Member.role == "owner")
                )
                if (owners or 0) <= 1:
                    raise ProblemError("accounts-not-allowed", "A brand keeps at least one owner.")
            before = member.role
            await session.delete(member)
            await self._audit_role(session, organisation_id, actor, person.user_id, before, None)
        return await self.organisation(actor, organisation_id)

    # -- the brand's own content per language -----------------------------------------------

    async def set_translation(
        self,
        account_id: uuid.UUID,
        locale: str,
        *,
        description: str = "",
        welcome: str = "",
        default_reply: str = "",
        menu: Sequence[dict[str, Any]] = (),
    ) -> dict[str, dict[str, Any]]:
        """The account's content in `locale`; a field left empty falls back to the default."""
        _only_supported({locale: "x"})
        variant: dict[str, Any] = {
            "description": description,
            "welcome": welcome,
            "default_reply": default_reply,
            "menu": validate_menu(menu) if menu else [],
        }
        async with self.db.transaction() as session:
            account = await self._account(session, account_id)
            translations = dict(account.translations or {})
            translations[locale] = {k: v for k, v in variant.items() if v}
            account.translations = translations  # a new dict, so the JSON column is written
        return translations

    async def remove_translation(
        self, account_id: uuid.UUID, locale: str
    ) -> dict[str, dict[str, Any]]:
        async with self.db.transaction() as session:
            account = await self._account(session, account_id)
            translations = {k: v for k, v in (account.translations or {}).items() if k != locale}
            account.translations = translations
        return translations

    async def translations(self, account_id: uuid.UUID) -> dict[str, dict[str, Any]]:
        async with self.db.sessions() as session:
            return dict((await self._account(session, account_id)).translations or {})

    async def _locale_of(self, user_id: uuid.UUID) -> str | None:
        """The person's chosen language (None: they chose none, so the account's default)."""
        return await self.identity.locale_of(user_id)

    async def push_items(
        self, user_id: uuid.UUID, account_id: uuid.UUID, items: Sequence[ThreadItem]
    ) -> None:
        """Realtime push of committed thread items to the person's devices."""
        await self._push(user_id, account_id, items)

    async def _checked_cards(self, account_id: uuid.UUID, body: dict[str, Any]) -> dict[str, Any]:
        """A coupon card names a campaign of the brand's own merchant; its title and value
        come from the campaign when the brand gave none."""
        card = body.get("card") or {}
        if card.get("type") == "subscribe":
            async with self.db.sessions() as session:
                template = await session.get(Template, card["template_id"])
            if template is None or template.account_id != account_id:
                raise ProblemError("accounts-invalid-template", "No such template.")
            return {"card": dict(card, title=card.get("title") or template.title)}
        if card.get("type") != "coupon" or not card.get("campaign_id"):
            return body
        if self.coupons is None or self.pay is None:
            raise ProblemError("accounts-invalid-message", "No such coupon campaign.")
        async with self.db.sessions() as session:
            account = await self._account(session, account_id)
        try:
            campaign = await self.coupons.campaign(uuid.UUID(card["campaign_id"]))
            organisation, _name = await self.pay.merchant_brand(uuid.UUID(campaign.issuer))
        except (ProblemError, ValueError):
            raise ProblemError("accounts-invalid-message", "No such coupon campaign.") from None
        if str(organisation) != str(account.organisation_id):
            raise ProblemError("accounts-invalid-message", "No such coupon campaign.")
        filled = dict(card)
        filled["title"] = card.get("title") or campaign.title[:200]
        filled["url"] = card.get("url") or ""
        return {"card": filled}

    # -- payment receipts (from pay's payment.succeeded events) -------------------------------

    async def receipt_account(
        self, session: AsyncSession, organisation_id: uuid.UUID, user_id: uuid.UUID
    ) -> OfficialAccount | None:
        """The organisation's account that sends this person receipts: one they follow (a
        service account first, then the oldest); None when they follow none of them."""
        return await session.scalar(
            select(OfficialAccount)
            .join(Follow, Follow.account_id == OfficialAccount.id)
            .where(
                OfficialAccount.organisation_id == organisation_id,
                Follow.user_id == user_id,
                Follow.following.is_(True),
            )
            .order_by((OfficialAccount.kind != "service"), OfficialAccount.created_at)
            .limit(1)
        )

    async def append_receipt(
        self,
        session: AsyncSession,
        *,
        organisation_id: uuid.UUID,
        merchant_name: str,
        user_id: uuid.UUID,
        payment_id: str,
        order_id: str,
        currency: str,
        amount_minor: int,
        discount_minor: int,
    ) -> tuple[uuid.UUID, ThreadItem] | None:
        """A receipt card in the customer's conversation with the brand (in the caller's
        transaction, so it is written once with the consumer's cursor). It shows what the
        customer paid the brand, never their wallet balance: the brand reads this thread."""
        account = await self.receipt_account(session, organisation_id, user_id)
        if account is None:
            return None
        locale = await self._locale_of(user_id) or "en"
        gettext = translations(locale).gettext
        total = Money(amount_minor, currency)
        paid = Money(amount_minor - discount_minor, currency)
        lines = [gettext("Paid %(amount)s") % {"amount": paid.format(babel_name(locale))}]
        if discount_minor:
            lines.append(
                gettext("Order %(total)s, coupon −%(discount)s")
                % {
                    "total": total.format(babel_name(locale)),
                    "discount": Money(discount_minor, currency).format(babel_name(locale)),
                }
            )
        body = {
            "card": {
                "type": "receipt",
                "title": gettext("Payment to %(merchant)s") % {"merchant": merchant_name},
                "description": "\n".join(lines),
                "url": "",
            },
            "receipt": {
                "payment_id": payment_id,
                "order_id": order_id,
                "merchant": merchant_name,
                "currency": currency,
                "amount_minor": amount_minor,
                "discount_minor": discount_minor,
                "paid_minor": amount_minor - discount_minor,
                "coupon_applied": discount_minor > 0,
            },
        }
        return account.id, self._append(session, account.id, user_id, "out", body)

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
            for n, (match, keyword, reply) in enumerate(automation.rules):
                variants = (
                    automation.rule_translations[n] if n < len(automation.rule_translations) else {}
                )
                session.add(
                    KeywordRule(
                        id=new_id(),
                        account_id=account_id,
                        match=match,
                        keyword=keyword,
                        reply=reply,
                        translations=_only_supported(variants),
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
                [dict(r.translations or {}) for r in rules],
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
        """Client credentials → an access token valid 7200 s (at most `token_limit` per app)."""
        await self._hit(self.token_limit, app_id)
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

    async def webhook_targets(
        self, account_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[str, str, str]]:
        """(url, token, app id) of each account that has a webhook; the others are left out.

        One plain query per delivery round: most accounts have no webhook, and loading each
        account whole per follower event competed with care's assignment on the event loop.
        """
        if not account_ids:
            return {}
        columns = (
            OfficialAccount.id,
            OfficialAccount.webhook_url,
            OfficialAccount.webhook_token,
            OfficialAccount.app_id,
        )
        query = select(*columns).where(
            OfficialAccount.id.in_(set(account_ids)), OfficialAccount.webhook_url != ""
        )
        async with self.db.reader.connect() as connection:
            rows = (await connection.execute(query)).all()
        return {row[0]: (row[1], row[2], row[3]) for row in rows}

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
        await self.bot_answered(account_id, openid, MessageReceived.topic, "text", text)

    async def bot_answered(
        self, account_id: uuid.UUID, openid: str, answered: str, kind: str, said: str
    ) -> None:
        """The brand server answered an event through its webhook: a passive text reply
        (`kind` "text", delivered to the follower) or "transfer" to the brand's people (`said`
        is the kf account, maybe ''). Recorded as `BotAnswered` in the same transaction, for
        customer care to hold or hand over the conversation."""
        async with self.db.transaction() as session:
            follow = await session.scalar(
                select(Follow).where(Follow.account_id == account_id, Follow.openid == openid)
            )
            if follow is None or not follow.following:
                return
            items = []
            if kind == "text":
                items.append(
                    self._append(session, account_id, follow.user_id, "out", {"text": said})
                )
            self._record(
                session,
                BotAnswered(
                    account_id=account_id,
                    openid=openid,
                    answered=answered,
                    transfer=kind == "transfer",
                    kf_account=said if kind == "transfer" else "",
                ),
            )
            user_id = follow.user_id
        await announce(self.broker, BotAnswered.topic)
        await self._push(user_id, account_id, items)

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


def _view(account: OfficialAccount, followers: int, locale: str | None = None) -> AccountView:
    return AccountView(
        id=account.id,
        organisation_id=account.organisation_id,
        kind=account.kind,
        name=account.name,
        description=_localised(account, locale, "description"),
        avatar_url=account.avatar_url,
        verified=account.verified,
        app_id=account.app_id,
        followers=followers,
        menu=_localised(account, locale, "menu"),
        quota_override=account.quota_override,
    )


TRANSLATABLE = ("description", "welcome", "default_reply", "menu")


def _localised(account: OfficialAccount, locale: str | None, name: str) -> Any:
    """The brand's `locale` variant of a field if it wrote one, else the default."""
    variant = (account.translations or {}).get(locale or "") or {}
    return variant.get(name) or getattr(account, name)


def _only_supported(variants: dict[str, str]) -> dict[str, str]:
    for locale in variants:
        if locale not in SUPPORTED:
            raise ProblemError(
                "accounts-invalid-locale",
                "Languages are %(supported)s.",
                params={"supported": ", ".join(SUPPORTED)},
            )
    return {k: v for k, v in variants.items() if v}


# Which of some connected people (their channels) follow an account, and carry a tag. On
# SQLite the channels come as one JSON array and are the outer loop (CROSS JOIN keeps that
# order): one probe of the covering index (account_id, following, user_id) each.
_SQLITE_FOLLOWING = text(
    "SELECT c.value FROM json_each(:channels) AS c CROSS JOIN accounts_follows AS f"
    " WHERE f.account_id = :account AND f.following = 1"
    " AND f.user_id = replace(substr(c.value, :start), '-', '')"
)
_SQLITE_FOLLOWING_TAGGED = text(
    "SELECT c.value FROM json_each(:channels) AS c CROSS JOIN accounts_follows AS f"
    " CROSS JOIN accounts_follower_tags AS t"
    " WHERE f.account_id = :account AND f.following = 1"
    " AND f.user_id = replace(substr(c.value, :start), '-', '')"
    " AND t.tag_id = :tag AND t.user_id = f.user_id"
)
# On PostgreSQL one uuid[] parameter, probed on the same index.
_PG_FOLLOWING = text(
    "SELECT user_id FROM accounts_follows"
    " WHERE account_id = :account AND following AND user_id = ANY(:ids)"
)
_PG_FOLLOWING_TAGGED = text(
    "SELECT f.user_id FROM accounts_follows AS f"
    " JOIN accounts_follower_tags AS t ON t.user_id = f.user_id AND t.tag_id = :tag"
    " WHERE f.account_id = :account AND f.following AND f.user_id = ANY(:ids)"
)


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _frame(account_id: uuid.UUID, item: ThreadItem) -> dict[str, Any]:
    return {
        "type": "account-message",
        "account_id": str(account_id),
        "id": str(item.id),
        "broadcast": item.broadcast,
        "body": item.body,
        "created_at": item.created_at.isoformat(),
    }


def render_template(content: str, data: dict[str, Any]) -> str:
    """Fill `{{name.DATA}}` with data[name]["value"] (WeChat's shape; a bare string works
    too); unknown fields stay empty, every value is cut at 200 characters."""

    def value(match: re.Match[str]) -> str:
        field_ = data.get(match.group(1))
        if isinstance(field_, dict):
            field_ = field_.get("value", "")
        if field_ is None:
            return ""
        if not isinstance(field_, str | int | float):
            raise ProblemError("accounts-invalid-template", "A field's value is text.")
        return str(field_)[:TEMPLATE_FIELD_MAX]

    return PLACEHOLDER.sub(value, content)


_SIGNATURES: dict[str, tuple[tuple[bytes, int, str], ...]] = {
    "image": (
        (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
        (b"\xff\xd8\xff", 0, "image/jpeg"),
        (b"GIF87a", 0, "image/gif"),
        (b"GIF89a", 0, "image/gif"),
    ),
    "thumb": ((b"\xff\xd8\xff", 0, "image/jpeg"),),
    "voice": (
        (b"#!AMR\n", 0, "audio/amr"),
        (b"ID3", 0, "audio/mpeg"),
        (b"\xff\xfb", 0, "audio/mpeg"),
        (b"\xff\xf3", 0, "audio/mpeg"),
        (b"OggS", 0, "audio/ogg"),
    ),
    "video": ((b"ftyp", 4, "video/mp4"),),
}


def sniff_media(kind: str, data: bytes) -> str | None:
    """The content type of `data` if its first bytes are one its kind allows, else None."""
    for magic, offset, content_type in _SIGNATURES.get(kind, ()):
        if data[offset : offset + len(magic)] == magic:
            return content_type
    return None


def babel_name(locale: str) -> str:
    """Babel's name for one of our locales ("zh_Hans" is Babel's too; kept for clarity)."""
    return locale if locale in SUPPORTED else "en"
