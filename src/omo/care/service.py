"""Customer care: a brand's team looks after the people who write to its official accounts.

- Every message a follower writes to an account (accounts' `MessageReceived`, read from the
  outbox) lands in a care conversation: the open one of that follower, else a new one, which
  is assigned at once to an agent of the team serving the account (round robin or least
  loaded, within each agent's capacity) or, when every agent is full, waits in the team's
  queue, served oldest first as agents free up.
- Agents reply through `AccountService.brand_send`, so the 48-hour window and follow =
  consent are enforced in one place. Care knows a customer only by openid, nickname and
  avatar — never a phone number.
- Who sees what: owners and admins of the brand see all its conversations; an agent sees
  only those of the accounts their team serves; anyone else gets 404.
- SLA targets (first response, resolution) run in business minutes on the account's calendar;
  breaches are events and marks in the inbox. After resolve, the customer is asked for a
  rating (1–5 and a comment) by a message; their answer is recorded, not reopened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import statistics
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy import text as text_clause
from sqlalchemy.ext.asyncio import AsyncSession

from omo.accounts.service import EVERYONE, MANAGERS, AccountService, ThreadItem
from omo.care.events import (
    ConversationAssigned,
    ConversationOpened,
    ConversationResolved,
    CsatRated,
    SlaBreached,
)
from omo.care.models import (
    Agent,
    CannedReply,
    CareSearch,
    Conversation,
    Note,
    Settings,
    Team,
    TeamAccount,
)
from omo.care.sla import Calendar, add_business_minutes, business_minutes_between
from omo.core.broker import Broker
from omo.core.clock import Clock
from omo.core.db import Database
from omo.core.errors import ProblemError, register
from omo.core.events import (
    OUTBOX_WAKE_CHANNEL,
    DomainEvent,
    StoredEvent,
    consume,
    insert_event,
    record_event,
)
from omo.core.i18n import SUPPORTED, translations
from omo.core.ids import new_id
from omo.core.search import Query, index_terms
from omo.identity.service import IdentityService
from omo.messaging.service import user_channel

logger = logging.getLogger("omo.care")

Status = Literal["open", "pending", "resolved"]
Strategy = Literal["round_robin", "least_loaded"]
STATUSES: tuple[str, ...] = ("open", "pending", "resolved")
CONSUMER = "care.inbox"
MESSAGE_RECEIVED = "accounts.message_received"
BOT_ANSWERED = "accounts.bot_answered"
TOPICS = frozenset({MESSAGE_RECEIVED, BOT_ANSWERED})
INBOX_BATCH = 500  # outbox events handled per transaction
POLL_SECONDS = 1.0  # the safety net: wake-ups come through the broker
SWEEP_SECONDS = 1.0  # SLA breaches and snoozes due
INBOX_MAX = 200
LABELS_MAX = 10
CSAT_WINDOW = timedelta(days=7)
MIN_SNOOZE = timedelta(minutes=1)
MAX_SNOOZE = timedelta(days=366)
_RATING = re.compile(r"^\s*([1-5])(?:\s*[.,:;!-]?\s+(.*))?\s*$", re.DOTALL)
_MENTION = re.compile(r"@([A-Za-z0-9_.-]{2,32})")
_VARIABLE = re.compile(r"\{(nickname|account|agent)\}")
_SHORTCUT = re.compile(r"^[a-z0-9_-]{1,32}$")


def N_(message: str) -> str:  # noqa: N802 (the gettext marker)
    return message


CSAT_QUESTION = N_(
    "How did we do? Reply with a number from 1 (poor) to 5 (great), "
    "and a comment after it if you like."
)

register("care-not-allowed", 403, "Your role in this brand does not allow this")
register("care-not-an-agent", 409, "This person is not an agent serving this account")
register("care-not-a-member", 409, "This person is not a member of the brand")
register("care-invalid", 400, "The request is not valid")


# The hot path's statements, built once (Core on the tables: no unit of work, no identity map).
_CONVERSATIONS = cast(Table, Conversation.__table__)
_AGENTS = cast(Table, Agent.__table__)
_LATEST = (
    select(
        _CONVERSATIONS.c.id,
        _CONVERSATIONS.c.organisation_id,
        _CONVERSATIONS.c.status,
        _CONVERSATIONS.c.team_id,
        _CONVERSATIONS.c.assignee_id,
    )
    .where(
        _CONVERSATIONS.c.account_id == bindparam("account_id"),
        _CONVERSATIONS.c.openid == bindparam("openid"),
    )
    .order_by(_CONVERSATIONS.c.opened_at.desc(), _CONVERSATIONS.c.id.desc())
    .limit(1)
)
_TOUCH = (
    update(_CONVERSATIONS)
    .where(_CONVERSATIONS.c.id == bindparam("id_"))
    .values(last_message_at=bindparam("last_message_at"), preview=bindparam("preview"))
)
_INSERT_CONVERSATION = insert(_CONVERSATIONS)
_INSERT_SEARCH = insert(cast(Table, CareSearch.__table__))
_SETTINGS = select(
    Settings.first_response_minutes,
    Settings.resolution_minutes,
    Settings.time_zone,
    Settings.hours,
    Settings.holidays,
    Settings.bot_first,
).where(Settings.account_id == bindparam("account_id"))
_TEAM_OF = (
    select(Team.id, Team.strategy)
    .join(TeamAccount, TeamAccount.team_id == Team.id)
    .where(TeamAccount.account_id == bindparam("account_id"))
    .order_by(Team.created_at)
    .limit(1)
)
_TEAM_AGENTS = select(_AGENTS.c.user_id).where(_AGENTS.c.team_id == bindparam("team_"))
_WITH_ROOM = select(_AGENTS.c.user_id).where(
    _AGENTS.c.team_id == bindparam("team_"), _AGENTS.c.load < _AGENTS.c.capacity
)
_ANY_ROOM = _WITH_ROOM.limit(1)


def _take_statement(order: Sequence[Any]) -> Any:
    return (
        update(_AGENTS)
        .where(
            _AGENTS.c.team_id == bindparam("team_"),
            _AGENTS.c.user_id == _WITH_ROOM.order_by(*order).limit(1).scalar_subquery(),
            _AGENTS.c.load < _AGENTS.c.capacity,
        )
        .values(load=_AGENTS.c.load + 1, last_assigned_at=bindparam("now_"))
        .returning(_AGENTS.c.user_id)
    )


_TAKE_LEAST_LOADED = _take_statement(
    [_AGENTS.c.load, _AGENTS.c.last_assigned_at, _AGENTS.c.user_id]
)
_TAKE_ROUND_ROBIN = _take_statement([_AGENTS.c.last_assigned_at, _AGENTS.c.user_id])


@dataclass(frozen=True, slots=True)
class AgentView:
    omo_id: str
    name: str
    capacity: int
    load: int


@dataclass(frozen=True, slots=True)
class TeamView:
    id: uuid.UUID
    organisation_id: uuid.UUID
    name: str
    strategy: str
    account_ids: list[uuid.UUID]
    agents: list[AgentView]


@dataclass(frozen=True, slots=True)
class ConversationView:
    id: uuid.UUID
    organisation_id: uuid.UUID
    account_id: uuid.UUID
    openid: str
    status: str
    held_by_bot: bool
    team_id: uuid.UUID | None
    assignee: str | None  # omo id
    labels: list[str]
    preview: str
    opened_at: datetime
    last_message_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    first_response_due: datetime | None
    resolution_due: datetime | None
    breached: bool
    csat_score: int | None
    csat_comment: str
    snoozed_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class NoteView:
    id: uuid.UUID
    author: str
    text: str
    mentions: list[str]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Customer:
    """What the team may know of the person: pseudonyms, nickname, avatar — no phone."""

    openid: str
    following: bool
    nickname: str
    avatar_id: uuid.UUID | None
    followed_at: datetime | None
    scene: str
    tags: list[str]
    past: list[ConversationView]


@dataclass(frozen=True, slots=True)
class ConversationDetail:
    conversation: ConversationView
    thread: list[ThreadItem]
    notes: list[NoteView]
    customer: Customer
    agents: list[AgentView]  # who it may be assigned to


@dataclass(frozen=True, slots=True)
class SettingsView:
    account_id: uuid.UUID
    first_response_minutes: int | None
    resolution_minutes: int | None
    time_zone: str
    hours: dict[int, tuple[int, int]]
    holidays: list[date]
    language: str
    bot_first: bool


@dataclass(frozen=True, slots=True)
class ReportRow:
    key: str
    conversations: int
    resolved: int
    first_response_seconds: float | None  # mean
    resolution_seconds: float | None  # mean
    csat: float | None  # mean of 1..5
    csat_count: int
    sla_hit_rate: float | None  # share of conversations with targets that met them


@dataclass(frozen=True, slots=True)
class Report:
    since: datetime
    until: datetime
    total: ReportRow
    by_agent: list[ReportRow]
    by_team: list[ReportRow]
    by_label: list[ReportRow]


@dataclass
class _Notices:
    """Realtime frames to publish after the commit: user id -> frames."""

    frames: list[tuple[uuid.UUID, dict[str, Any]]] = field(default_factory=list)

    def add(self, users: Iterable[uuid.UUID], frame: dict[str, Any]) -> None:
        for user in dict.fromkeys(users):
            self.frames.append((user, frame))


def _frame(event: str, conversation: Conversation, **extra: Any) -> dict[str, Any]:
    return {
        "type": "care",
        "event": event,
        "conversation_id": str(conversation.id),
        "organisation_id": str(conversation.organisation_id),
        "status": conversation.status,
        **extra,
    }


def _clean_labels(labels: Sequence[str]) -> list[str]:
    clean = list(dict.fromkeys(label.strip() for label in labels if label.strip()))
    if len(clean) > LABELS_MAX or any(len(label) > 30 for label in clean):
        raise ProblemError("care-invalid", "At most 10 labels of at most 30 characters.")
    return clean


class CareService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        identity: IdentityService,
        accounts: AccountService,
        broker: Broker,
    ) -> None:
        self.db = db
        self.clock = clock
        self.identity = identity
        self.accounts = accounts
        self.broker = broker
        self._consume_lock = asyncio.Lock()
        self._organisation_of: dict[uuid.UUID, uuid.UUID] = {}  # an account never moves
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self, interval: float = POLL_SECONDS, sweep: float = SWEEP_SECONDS) -> None:
        """Read accounts' events into the inbox as soon as they are announced on the broker
        (`omo.core.events.announce`), with a slow poll as the safety net (broker messages are
        at most once); watch SLA targets and snoozes; until `stop`."""
        self._wake = asyncio.Event()
        self._listener = asyncio.create_task(self._listen(), name="omo-care-wake")
        self._task = asyncio.create_task(self._run_forever(interval, sweep), name="omo-care-inbox")

    async def stop(self) -> None:
        for task in (self._listener, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._listener = self._task = None

    async def _listen(self) -> None:
        while True:
            try:
                async with self.broker.subscribe(OUTBOX_WAKE_CHANNEL) as wakes:
                    self._wake.set()  # whatever came while not listening
                    async for _channel, message in wakes:
                        if not TOPICS.isdisjoint(message.get("topics") or ()):
                            self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("care's wake-up subscription failed; subscribing again")
                await asyncio.sleep(1)

    async def _run_forever(self, interval: float, sweep: float) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = 0.0
        while True:
            try:
                # Drain only while batches come full: after a partial one, anything committed
                # since has announced itself (the wake is set), so an empty read per message,
                # four round trips on PostgreSQL, is not needed to find it.
                while await self.run_once() >= INBOX_BATCH:
                    pass
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + sweep
                    await self.sweep_sla()
                    await self.wake_snoozed()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(interval, sweep)):
                        await self._wake.wait()
                self._wake.clear()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("care inbox round failed")
                await asyncio.sleep(interval)

    def _record(self, session: AsyncSession, event: DomainEvent) -> None:
        record_event(session, event, self.clock.now())

    async def _publish(self, notices: _Notices) -> None:
        for user, frame in notices.frames:
            await self.broker.publish(user_channel(user), frame)

    # -- who may do what ------------------------------------------------------------------

    async def _role(self, actor: uuid.UUID, organisation_id: uuid.UUID) -> str:
        """The actor's role in the brand; 404 for strangers."""
        return await self.accounts.require_member(actor, organisation_id, EVERYONE)

    async def _require_manager(self, actor: uuid.UUID, organisation_id: uuid.UUID) -> None:
        role = await self._role(actor, organisation_id)
        if role not in MANAGERS:
            raise ProblemError("care-not-allowed", "Ask an owner or admin of the brand.")

    async def _served_accounts(self, session: AsyncSession, actor: uuid.UUID) -> set[uuid.UUID]:
        rows = await session.scalars(
            select(TeamAccount.account_id)
            .join(Agent, Agent.team_id == TeamAccount.team_id)
            .where(Agent.user_id == actor)
        )
        return set(rows.all())

    async def _reach(
        self, session: AsyncSession, actor: uuid.UUID, cid: uuid.UUID, lock: bool = False
    ) -> tuple[Conversation, str]:
        """The conversation and the actor's role, if they may see it (else 404); `lock` for a
        change (two clicks, two agents: the second sees the first's result)."""
        conversation = await session.get(Conversation, cid, with_for_update=lock)
        if conversation is None:
            raise ProblemError("not-found", "No such conversation.")
        try:
            role = await self._role(actor, conversation.organisation_id)
        except ProblemError:
            raise ProblemError("not-found", "No such conversation.") from None
        if role not in MANAGERS and conversation.account_id not in await self._served_accounts(
            session, actor
        ):
            raise ProblemError("not-found", "No such conversation.")
        return conversation, role

    async def check_access(self, actor: uuid.UUID, cid: uuid.UUID) -> None:
        async with self.db.sessions() as session:
            await self._reach(session, actor, cid)

    # -- teams --------------------------------------------------------------------------------

    async def _accounts_of(
        self, organisation_id: uuid.UUID, account_ids: Sequence[uuid.UUID]
    ) -> list[uuid.UUID]:
        for account_id in account_ids:
            try:
                account = await self.accounts.account(account_id)
            except ProblemError:
                raise ProblemError("not-found", "No such official account.") from None
            if account.organisation_id != organisation_id:
                raise ProblemError("not-found", "No such official account.")
        return list(dict.fromkeys(account_ids))

    async def create_team(
        self,
        actor: uuid.UUID,
        organisation_id: uuid.UUID,
        name: str,
        strategy: Strategy,
        account_ids: Sequence[uuid.UUID],
    ) -> TeamView:
        await self._require_manager(actor, organisation_id)
        accounts = await self._accounts_of(organisation_id, account_ids)
        async with self.db.transaction() as session:
            team = Team(
                id=new_id(),
                organisation_id=organisation_id,
                name=name.strip(),
                strategy=strategy,
                created_at=self.clock.now(),
            )
            session.add(team)
            await session.flush()
            for account_id in accounts:
                session.add(TeamAccount(team_id=team.id, account_id=account_id))
        return await self.team(actor, team.id)

    async def _team(self, session: AsyncSession, team_id: uuid.UUID) -> Team:
        team = await session.get(Team, team_id)
        if team is None:
            raise ProblemError("not-found", "No such team.")
        return team

    async def _team_view(self, session: AsyncSession, team: Team) -> TeamView:
        accounts = (
            await session.scalars(
                select(TeamAccount.account_id).where(TeamAccount.team_id == team.id)
            )
        ).all()
        agents = (await session.scalars(select(Agent).where(Agent.team_id == team.id))).all()
        profiles = await self.identity.public_profiles([a.user_id for a in agents])
        views = [
            AgentView(
                profiles[a.user_id].omo_id, profiles[a.user_id].display_name, a.capacity, a.load
            )
            for a in agents
            if a.user_id in profiles
        ]
        return TeamView(
            team.id,
            team.organisation_id,
            team.name,
            team.strategy,
            sorted(accounts),
            sorted(views, key=lambda v: v.omo_id),
        )

    async def team(self, actor: uuid.UUID, team_id: uuid.UUID) -> TeamView:
        async with self.db.sessions() as session:
            team = await self._team(session, team_id)
            try:
                await self._role(actor, team.organisation_id)
            except ProblemError:
                raise ProblemError("not-found", "No such team.") from None
            return await self._team_view(session, team)

    async def teams(self, actor: uuid.UUID, organisation_id: uuid.UUID) -> list[TeamView]:
        await self._role(actor, organisation_id)
        async with self.db.sessions() as session:
            rows = (
                await session.scalars(
                    select(Team)
                    .where(Team.organisation_id == organisation_id)
                    .order_by(Team.created_at)
                )
            ).all()
            return [await self._team_view(session, t) for t in rows]

    async def team_organisation(self, team_id: uuid.UUID) -> uuid.UUID:
        async with self.db.sessions() as session:
            return (await self._team(session, team_id)).organisation_id

    async def set_team_accounts(
        self, actor: uuid.UUID, team_id: uuid.UUID, account_ids: Sequence[uuid.UUID]
    ) -> TeamView:
        organisation_id = await self.team_organisation(team_id)
        await self._require_manager(actor, organisation_id)
        accounts = await self._accounts_of(organisation_id, account_ids)
        async with self.db.transaction() as session:
            for old in (
                await session.scalars(select(TeamAccount).where(TeamAccount.team_id == team_id))
            ).all():
                await session.delete(old)
            await session.flush()
            for account_id in accounts:
                session.add(TeamAccount(team_id=team_id, account_id=account_id))
        return await self.team(actor, team_id)

    async def set_agent(
        self, actor: uuid.UUID, team_id: uuid.UUID, omo_id: str, capacity: int
    ) -> TeamView:
        """Add an agent to the team or change their capacity (0: takes no new conversations)."""
        organisation_id = await self.team_organisation(team_id)
        await self._require_manager(actor, organisation_id)
        person = await self.identity.find_by_omo_id(omo_id)
        try:
            await self._role(person.user_id, organisation_id)
        except ProblemError:
            raise ProblemError(
                "care-not-a-member", "Add the person to the brand first, as an agent."
            ) from None
        notices = _Notices()
        async with self.db.transaction() as session:
            agent = await session.get(Agent, (team_id, person.user_id))
            if agent is None:
                session.add(
                    Agent(
                        team_id=team_id,
                        user_id=person.user_id,
                        capacity=capacity,
                        load=0,
                        last_assigned_at=self.clock.now() - timedelta(days=3650),
                    )
                )
            else:
                agent.capacity = capacity
            await session.flush()
            await self._serve_queue(session, team_id, notices)
        await self._publish(notices)
        return await self.team(actor, team_id)

    # -- assignment ---------------------------------------------------------------------------

    async def _team_agents(
        self, session: AsyncSession, team_id: uuid.UUID | None
    ) -> list[uuid.UUID]:
        if team_id is None:
            return []
        return list((await session.execute(_TEAM_AGENTS, {"team_": team_id})).scalars())

    async def _pick_and_take(self, session: AsyncSession, team: Team) -> uuid.UUID | None:
        return await self._take(session, team.id, team.strategy)

    async def _take(
        self, session: AsyncSession, team_id: uuid.UUID, strategy: str
    ) -> uuid.UUID | None:
        """An agent of the team with room, their load taken in one prebuilt conditional UPDATE
        (the pick is its subquery, an index walk on (team, load, last assigned) or (team, last
        assigned): no scan). Racing nodes never push an agent over capacity: the `load <
        capacity` condition is checked again on the locked row, a lost race updates no row,
        and the next pick is tried."""
        statement = _TAKE_LEAST_LOADED if strategy == "least_loaded" else _TAKE_ROUND_ROBIN
        values = {"team_": team_id, "now_": self.clock.now()}
        for _ in range(4):
            user_id: uuid.UUID | None = (await session.execute(statement, values)).scalar()
            if user_id is not None:
                return user_id
            if (await session.execute(_ANY_ROOM, values)).first() is None:
                return None  # everyone is full
        return None

    async def _release(self, session: AsyncSession, conversation: Conversation) -> None:
        if conversation.assignee_id is None or conversation.team_id is None:
            return
        await session.execute(
            update(Agent)
            .where(
                Agent.team_id == conversation.team_id,
                Agent.user_id == conversation.assignee_id,
                Agent.load > 0,
            )
            .values(load=Agent.load - 1)
        )

    async def _assigned(
        self,
        session: AsyncSession,
        conversation: Conversation,
        notices: _Notices,
        also: Iterable[uuid.UUID] = (),
    ) -> None:
        self._record(
            session,
            ConversationAssigned(
                conversation_id=conversation.id,
                account_id=conversation.account_id,
                team_id=conversation.team_id,
                assignee_id=conversation.assignee_id,
            ),
        )
        notices.add(
            [*await self._audience(session, conversation), *also],
            _frame(
                "assigned",
                conversation,
                assignee_id=str(conversation.assignee_id) if conversation.assignee_id else None,
            ),
        )

    async def _audience(self, session: AsyncSession, conversation: Conversation) -> list[uuid.UUID]:
        """Who hears of a change live: its agent, or the whole team while no one has it."""
        if conversation.assignee_id is not None:
            return [conversation.assignee_id]
        return await self._team_agents(session, conversation.team_id)

    async def _serve_queue(
        self, session: AsyncSession, team_id: uuid.UUID, notices: _Notices
    ) -> None:
        """Give waiting conversations to agents who have room: the soonest first-response
        due first, then the oldest."""
        team = await session.get(Team, team_id)
        if team is None:
            return
        audience = await self._team_agents(session, team_id)
        for _ in range(100):
            waiting = await session.scalar(
                select(Conversation)
                .where(
                    Conversation.team_id == team_id,
                    Conversation.assignee_id.is_(None),
                    Conversation.status == "open",
                )
                # due first (accounts' SLAs differ), else oldest first
                .order_by(
                    Conversation.first_response_due.is_(None),
                    Conversation.first_response_due,
                    Conversation.opened_at,
                    Conversation.id,
                )
                .limit(1)
            )
            if waiting is None:
                return
            agent = await self._pick_and_take(session, team)
            if agent is None:
                return
            waiting.assignee_id = agent
            await session.flush()
            await self._assigned(session, waiting, notices, audience)

    # -- what comes in from accounts ----------------------------------------------------------

    async def run_once(self) -> int:
        """Read the next batch of outbox events into care; returns how many were read."""
        async with self._consume_lock:
            notices = _Notices()

            async def handle(session: AsyncSession, event: StoredEvent) -> None:
                if event.topic == MESSAGE_RECEIVED:
                    await self._on_message(session, event, notices)
                elif event.topic == BOT_ANSWERED:
                    await self._on_bot_answer(session, event, notices)

            async with self.db.transaction() as session:
                read = await consume(
                    session, CONSUMER, handle, limit=INBOX_BATCH, topics=tuple(sorted(TOPICS))
                )
            await self._publish(notices)
            return read

    async def _settings(self, session: AsyncSession, account_id: uuid.UUID) -> Settings | None:
        return await session.get(Settings, account_id)

    async def _organisation(self, account_id: uuid.UUID) -> uuid.UUID:
        organisation_id = self._organisation_of.get(account_id)
        if organisation_id is None:
            organisation_id = (await self.accounts.account(account_id)).organisation_id
            self._organisation_of[account_id] = organisation_id
        return organisation_id

    async def _on_message(
        self, session: AsyncSession, event: StoredEvent, notices: _Notices
    ) -> None:
        """The hot path, in prebuilt Core statements: find the follower's latest conversation;
        join it, or open a new one and assign it (one conditional UPDATE), index the text.
        Exactly once: `consume` moves the cursor in this same transaction (the cursor row is
        locked on PostgreSQL; SQLite has one writer), so an event is never handled twice."""
        payload = event.payload
        message_id = uuid.UUID(payload["message_id"])
        account_id, openid = uuid.UUID(payload["account_id"]), str(payload["openid"])
        text = str(payload["text"])
        now = event.occurred_at
        latest = (
            await session.execute(_LATEST, {"account_id": account_id, "openid": openid})
        ).first()
        if latest is not None and latest.status == "resolved":
            if await self._rated(session, latest.id, message_id, text, now, notices):
                return
            latest = None
        if latest is None:
            await self._open_and_assign(session, account_id, openid, message_id, text, now, notices)
            return
        status = latest.status
        if status == "snoozed":  # locked: a node waking due snoozes must not wake it too
            conversation = await session.get(
                Conversation, latest.id, with_for_update=True, populate_existing=True
            )
            assert conversation is not None
            if conversation.status == "snoozed":
                await self._unsnooze(session, conversation, now, notices)
            status = conversation.status
        await session.execute(
            _TOUCH, {"id_": latest.id, "last_message_at": now, "preview": text[:200]}
        )
        await self._insert_index(session, message_id, latest.id, text)
        audience = (
            [latest.assignee_id]
            if latest.assignee_id is not None
            else await self._team_agents(session, latest.team_id)
        )
        notices.add(
            audience,
            {
                "type": "care",
                "event": "message",
                "conversation_id": str(latest.id),
                "organisation_id": str(latest.organisation_id),
                "status": status,
            },
        )

    async def _rated(
        self,
        session: AsyncSession,
        cid: uuid.UUID,
        message_id: uuid.UUID,
        text: str,
        now: datetime,
        notices: _Notices,
    ) -> bool:
        """The answer to the satisfaction survey of a resolved conversation, if it is one."""
        rating = _RATING.match(text)
        if rating is None:
            return False
        conversation = await session.get(Conversation, cid)
        if (
            conversation is None
            or conversation.csat_requested_at is None
            or conversation.csat_score is not None
            or now - conversation.csat_requested_at > CSAT_WINDOW
        ):
            return False
        conversation.csat_score = int(rating.group(1))
        conversation.csat_comment = (rating.group(2) or "").strip()[:500]
        await self._insert_index(session, message_id, conversation.id, text)
        self._record(
            session,
            CsatRated(
                conversation_id=conversation.id,
                account_id=conversation.account_id,
                score=conversation.csat_score,
            ),
        )
        notices.add(await self._audience(session, conversation), _frame("rated", conversation))
        return True

    async def _open_and_assign(
        self,
        session: AsyncSession,
        account_id: uuid.UUID,
        openid: str,
        message_id: uuid.UUID,
        text: str,
        now: datetime,
        notices: _Notices,
    ) -> None:
        """A new conversation: SLA due times from the account's calendar, the first team
        serving the account, an agent with room (or the queue; or the bot, with bot first)."""
        organisation_id = await self._organisation(account_id)
        values = {"account_id": account_id}
        settings = (await session.execute(_SETTINGS, values)).first()
        team = (await session.execute(_TEAM_OF, values)).first()
        first_due = resolution_due = None
        held = False
        if settings is not None:
            calendar = _calendar(settings.time_zone, settings.hours, settings.holidays)
            if settings.first_response_minutes is not None:
                first_due = add_business_minutes(now, settings.first_response_minutes, calendar)
            if settings.resolution_minutes is not None:
                resolution_due = add_business_minutes(now, settings.resolution_minutes, calendar)
            held = bool(settings.bot_first)
        team_id = team.id if team is not None else None
        assignee = None
        if team is not None and not held:
            assignee = await self._take(session, team.id, team.strategy)
        cid = new_id()
        status = "pending" if held else "open"
        await session.execute(
            _INSERT_CONVERSATION,
            {
                "id": cid,
                "organisation_id": organisation_id,
                "account_id": account_id,
                "openid": openid,
                "status": status,
                "held_by_bot": held,
                "team_id": team_id,
                "assignee_id": assignee,
                "labels": [],
                "preview": text[:200],
                "opened_at": now,
                "last_message_at": now,
                "first_response_due": first_due,
                "resolution_due": resolution_due,
                "first_response_breached": False,
                "resolution_breached": False,
                "csat_comment": "",
            },
        )
        recorded = self.clock.now()
        await insert_event(
            session,
            ConversationOpened(conversation_id=cid, account_id=account_id, openid=openid),
            recorded,
        )
        if team is not None and not held:
            await insert_event(
                session,
                ConversationAssigned(
                    conversation_id=cid,
                    account_id=account_id,
                    team_id=team_id,
                    assignee_id=assignee,
                ),
                recorded,
            )
        await self._insert_index(session, message_id, cid, text)
        frame: dict[str, Any] = {
            "type": "care",
            "event": "message" if held else "assigned",
            "conversation_id": str(cid),
            "organisation_id": str(organisation_id),
            "status": status,
        }
        if not held:
            frame["assignee_id"] = str(assignee) if assignee else None
        notices.add(
            [assignee] if assignee is not None else await self._team_agents(session, team_id),
            frame,
        )

    async def _auto_team(self, session: AsyncSession, conversation: Conversation) -> None:
        team = (await session.execute(_TEAM_OF, {"account_id": conversation.account_id})).first()
        conversation.team_id = team.id if team is not None else None

    async def _insert_index(
        self, session: AsyncSession, message_id: uuid.UUID, conversation_id: uuid.UUID, text: str
    ) -> None:
        await session.execute(
            _INSERT_SEARCH,
            {
                "message_id": message_id,
                "conversation_id": conversation_id,
                "terms": index_terms(text),
                "text": text,
            },
        )

    def _index(
        self, session: AsyncSession, message_id: uuid.UUID, conversation_id: uuid.UUID, text: str
    ) -> None:
        session.add(
            CareSearch(
                message_id=message_id,
                conversation_id=conversation_id,
                terms=index_terms(text),
                text=text,
            )
        )

    async def sweep_sla(self) -> int:
        """Mark conversations past their SLA targets (once each) and tell the team."""
        now = self.clock.now()
        notices = _Notices()
        count = 0
        async with self.db.transaction() as session:
            late = (
                await session.scalars(
                    select(Conversation)
                    .where(
                        Conversation.status != "resolved",
                        or_(
                            and_(
                                Conversation.first_response_at.is_(None),
                                Conversation.first_response_breached.is_(False),
                                Conversation.first_response_due < now,
                            ),
                            and_(
                                Conversation.status != "snoozed",
                                Conversation.resolution_breached.is_(False),
                                Conversation.resolution_due < now,
                            ),
                        ),
                    )
                    .limit(200)
                )
            ).all()
            for conversation in late:
                for target in self._breaches(conversation, now):
                    count += 1
                    self._record(
                        session,
                        SlaBreached(
                            conversation_id=conversation.id,
                            account_id=conversation.account_id,
                            target=target,
                        ),
                    )
                notices.add(
                    await self._audience(session, conversation), _frame("breached", conversation)
                )
        await self._publish(notices)
        return count

    def _breaches(self, conversation: Conversation, now: datetime) -> list[str]:
        found = []
        due = conversation.first_response_due
        if (
            conversation.first_response_at is None
            and not conversation.first_response_breached
            and due is not None
            and due < now
        ):
            conversation.first_response_breached = True
            found.append("first_response")
        due = conversation.resolution_due
        if (
            conversation.status != "snoozed"  # the resolution clock waits while snoozed
            and not conversation.resolution_breached
            and due is not None
            and due < now
        ):
            conversation.resolution_breached = True
            found.append("resolution")
        return found

    # -- reading ------------------------------------------------------------------------------

    async def _views(self, rows: Sequence[Conversation]) -> list[ConversationView]:
        profiles = await self.identity.public_profiles(
            list({r.assignee_id for r in rows if r.assignee_id})
        )
        return [
            ConversationView(
                id=r.id,
                organisation_id=r.organisation_id,
                account_id=r.account_id,
                openid=r.openid,
                status=r.status,
                held_by_bot=r.held_by_bot,
                team_id=r.team_id,
                assignee=profiles[r.assignee_id].omo_id if r.assignee_id in profiles else None,
                labels=list(r.labels),
                preview=r.preview,
                opened_at=r.opened_at,
                last_message_at=r.last_message_at,
                first_response_at=r.first_response_at,
                resolved_at=r.resolved_at,
                first_response_due=r.first_response_due,
                resolution_due=r.resolution_due,
                breached=r.first_response_breached or r.resolution_breached,
                csat_score=r.csat_score,
                csat_comment=r.csat_comment,
                snoozed_until=r.snoozed_until,
            )
            for r in rows
        ]

    async def inbox(
        self,
        actor: uuid.UUID,
        organisation_id: uuid.UUID,
        *,
        status: str | None = None,
        assignee: Literal["me", "unassigned", "any"] = "any",
        label: str = "",
        breached: bool = False,
        q: str = "",
        limit: int = 50,
    ) -> list[ConversationView]:
        """The brand's conversations this actor may see, newest activity first."""
        role = await self._role(actor, organisation_id)
        limit = max(1, min(limit, INBOX_MAX))
        async with self.db.sessions() as session:
            query = select(Conversation).where(Conversation.organisation_id == organisation_id)
            if role not in MANAGERS:
                served = await self._served_accounts(session, actor)
                query = query.where(Conversation.account_id.in_(served))
            if status:
                query = query.where(Conversation.status == status)
            else:  # snoozed conversations leave the inbox until they wake
                query = query.where(Conversation.status != "snoozed")
            if assignee == "me":
                query = query.where(Conversation.assignee_id == actor)
            elif assignee == "unassigned":
                query = query.where(Conversation.assignee_id.is_(None))
            if breached:
                query = query.where(
                    or_(
                        Conversation.first_response_breached.is_(True),
                        Conversation.resolution_breached.is_(True),
                    )
                )
            parsed = Query.parse(q)
            if not parsed.empty:
                hits = await self._search(session, parsed)
                query = query.where(Conversation.id.in_(hits))
            query = query.order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
            if label:
                rows = [r for r in (await session.scalars(query)).all() if label in r.labels]
                rows = rows[:limit]
            else:
                rows = list((await session.scalars(query.limit(limit))).all())
        return await self._views(rows)

    async def _search(self, session: AsyncSession, query: Query) -> list[uuid.UUID]:
        """Conversations whose messages hold the query (every word; CJK words of 2+ chars)."""
        if self.db.is_sqlite:
            match = text_clause("care_search MATCH :q").bindparams(q=query.fts5())
        else:
            match = text_clause(
                "to_tsvector('simple', care_search.terms) @@ to_tsquery('simple', :q)"
            ).bindparams(q=query.tsquery())
        rows = (
            await session.execute(
                select(CareSearch.conversation_id, CareSearch.text).where(match).limit(2000)
            )
        ).all()
        return list(dict.fromkeys(r.conversation_id for r in rows if query.matches(r.text)))

    async def detail(self, actor: uuid.UUID, cid: uuid.UUID) -> ConversationDetail:
        async with self.db.sessions() as session:
            conversation, _role = await self._reach(session, actor, cid)
            notes = (
                await session.scalars(
                    select(Note)
                    .where(Note.conversation_id == cid)
                    .order_by(Note.created_at, Note.id)
                )
            ).all()
            past = (
                await session.scalars(
                    select(Conversation)
                    .where(
                        Conversation.account_id == conversation.account_id,
                        Conversation.openid == conversation.openid,
                        Conversation.id != cid,
                    )
                    .order_by(Conversation.opened_at.desc())
                    .limit(20)
                )
            ).all()
            agents = (
                await session.scalars(
                    select(Agent.user_id)
                    .join(TeamAccount, TeamAccount.team_id == Agent.team_id)
                    .where(TeamAccount.account_id == conversation.account_id)
                )
            ).all()
        view = (await self._views([conversation]))[0]
        authors = await self.identity.public_profiles(
            list({n.author_id for n in notes} | set(agents))
        )
        thread = await self.accounts.thread_of(conversation.account_id, conversation.openid, 50)
        return ConversationDetail(
            conversation=view,
            thread=thread,
            notes=[
                NoteView(
                    n.id,
                    authors[n.author_id].omo_id if n.author_id in authors else "",
                    n.text,
                    list(n.mentions),
                    n.created_at,
                )
                for n in notes
            ],
            customer=await self._customer(conversation, await self._views(past)),
            agents=sorted(
                {
                    AgentView(authors[a].omo_id, authors[a].display_name, 0, 0)
                    for a in agents
                    if a in authors
                },
                key=lambda v: v.omo_id,
            ),
        )

    async def _customer(self, conversation: Conversation, past: list[ConversationView]) -> Customer:
        try:
            follower = await self.accounts.follower(conversation.account_id, conversation.openid)
        except ProblemError:
            return Customer(conversation.openid, False, "", None, None, "", [], past)
        names = {t[0]: t[1] for t in await self.accounts.tags(conversation.account_id)}
        return Customer(
            openid=follower.openid,
            following=True,
            nickname=follower.nickname,
            avatar_id=follower.avatar_id,
            followed_at=follower.followed_at,
            scene=follower.scene,
            tags=[names[t] for t in follower.tag_ids if t in names],
            past=past,
        )

    # -- actions ------------------------------------------------------------------------------

    async def _expand(self, actor: uuid.UUID, conversation: Conversation, text: str) -> str:
        """`/shortcut` → the canned reply, with {nickname}, {account} and {agent} filled in."""
        stripped = text.strip()
        if not stripped.startswith("/") or not _SHORTCUT.match(stripped[1:]):
            return text
        async with self.db.sessions() as session:
            canned = await session.scalar(
                select(CannedReply).where(
                    CannedReply.organisation_id == conversation.organisation_id,
                    CannedReply.shortcut == stripped[1:],
                )
            )
        if canned is None:
            raise ProblemError("not-found", "No canned reply has that shortcut.")
        values = {"nickname": "", "account": "", "agent": ""}
        with contextlib.suppress(ProblemError):
            values["nickname"] = (
                await self.accounts.follower(conversation.account_id, conversation.openid)
            ).nickname
        values["account"] = (await self.accounts.account(conversation.account_id)).name
        me = await self.identity.public_profiles([actor])
        values["agent"] = me[actor].display_name if actor in me else ""
        return _VARIABLE.sub(lambda m: values[m.group(1)], canned.text)

    async def reply(self, actor: uuid.UUID, cid: uuid.UUID, text: str) -> ThreadItem:
        """Send the customer a message through the account (48-hour window, follow = consent
        enforced by accounts); the first reply stops the first-response clock."""
        async with self.db.sessions() as session:
            conversation, _role = await self._reach(session, actor, cid)
        text = await self._expand(actor, conversation, text)
        item = await self.accounts.brand_send(
            conversation.account_id, conversation.openid, {"text": text}
        )
        notices = _Notices()
        async with self.db.transaction() as session:
            row = await session.get(Conversation, cid, with_for_update=True)
            assert row is not None
            now = self.clock.now()
            if row.first_response_at is None:
                row.first_response_at = now
            if row.status == "snoozed":
                await self._unsnooze(session, row, now, notices)
            if row.status == "pending":
                row.status, row.held_by_bot = "open", False
            row.human_since = row.human_since or now
            if row.assignee_id is None:
                await self._set_assignee(session, row, actor, notices)
            row.last_message_at = now
            self._index(session, item.id, cid, text)
            notices.add(await self._audience(session, row), _frame("message", row))
        await self._publish(notices)
        return item

    async def _set_assignee(
        self,
        session: AsyncSession,
        conversation: Conversation,
        user_id: uuid.UUID | None,
        notices: _Notices,
    ) -> None:
        old_team, old_assignee = conversation.team_id, conversation.assignee_id
        await self._release(session, conversation)
        conversation.assignee_id = user_id
        if user_id is not None:
            team_id = await session.scalar(
                select(Agent.team_id)
                .join(TeamAccount, TeamAccount.team_id == Agent.team_id)
                .where(TeamAccount.account_id == conversation.account_id, Agent.user_id == user_id)
                .order_by(Agent.team_id)
                .limit(1)
            )
            if team_id is not None:
                conversation.team_id = team_id
                # a person's choice may go over capacity; automatic assignment never does
                await session.execute(
                    update(Agent)
                    .where(Agent.team_id == team_id, Agent.user_id == user_id)
                    .values(load=Agent.load + 1, last_assigned_at=self.clock.now())
                )
        await session.flush()
        await self._assigned(session, conversation, notices, [old_assignee] if old_assignee else [])
        if old_team is not None:
            await self._serve_queue(session, old_team, notices)

    async def assign(
        self, actor: uuid.UUID, cid: uuid.UUID, omo_id: str | None
    ) -> ConversationView:
        """Assign or transfer to an agent serving the account (or back to the queue). Agents
        move only conversations that are theirs or unassigned; owners and admins move any."""
        target = (await self.identity.find_by_omo_id(omo_id)).user_id if omo_id else None
        notices = _Notices()
        async with self.db.transaction() as session:
            conversation, role = await self._reach(session, actor, cid, lock=True)
            if role not in MANAGERS and conversation.assignee_id not in (None, actor):
                raise ProblemError(
                    "care-not-allowed", "Only its agent or a brand admin can transfer this."
                )
            if target is not None:
                serves = await session.scalar(
                    select(func.count())
                    .select_from(Agent)
                    .join(TeamAccount, TeamAccount.team_id == Agent.team_id)
                    .where(
                        TeamAccount.account_id == conversation.account_id, Agent.user_id == target
                    )
                )
                if not serves:
                    raise ProblemError(
                        "care-not-an-agent", "Choose an agent of a team serving this account."
                    )
            if conversation.status == "resolved":
                raise ProblemError("care-invalid", "This conversation is resolved.")
            if conversation.status == "snoozed":
                await self._unsnooze(session, conversation, self.clock.now(), notices)
            await self._set_assignee(session, conversation, target, notices)
            await session.flush()
            row = conversation
        await self._publish(notices)
        return (await self._views([row]))[0]

    async def take_over(self, actor: uuid.UUID, cid: uuid.UUID) -> ConversationView:
        """A person takes the conversation from the bot (or from the queue) in one action."""
        notices = _Notices()
        async with self.db.transaction() as session:
            conversation, _role = await self._reach(session, actor, cid, lock=True)
            if conversation.status == "resolved":
                raise ProblemError("care-invalid", "This conversation is resolved.")
            if conversation.status == "snoozed":
                await self._unsnooze(session, conversation, self.clock.now(), notices)
            conversation.status, conversation.held_by_bot = "open", False
            conversation.human_since = conversation.human_since or self.clock.now()
            if conversation.assignee_id != actor:
                await self._set_assignee(session, conversation, actor, notices)
            row = conversation
        await self._publish(notices)
        return (await self._views([row]))[0]

    async def hold(self, actor: uuid.UUID, cid: uuid.UUID) -> ConversationView:
        """Hand the conversation to the bot: pending, out of the agent's load."""
        notices = _Notices()
        async with self.db.transaction() as session:
            conversation, _role = await self._reach(session, actor, cid, lock=True)
            if conversation.status == "resolved":
                raise ProblemError("care-invalid", "This conversation is resolved.")
            team = conversation.team_id
            await self._release(session, conversation)
            if conversation.status == "snoozed":
                await self._unsnooze(session, conversation, self.clock.now(), notices)
                await self._release(session, conversation)
            conversation.assignee_id = None
            conversation.status, conversation.held_by_bot = "pending", True
            conversation.human_since = None
            if team is not None:
                await self._serve_queue(session, team, notices)
            notices.add(await self._team_agents(session, team), _frame("held", conversation))
            row = conversation
        await self._publish(notices)
        return (await self._views([row]))[0]

    # -- snooze -------------------------------------------------------------------------------

    async def snooze(
        self,
        actor: uuid.UUID,
        cid: uuid.UUID,
        until: datetime | None,
        minutes: int | None = None,
    ) -> ConversationView:
        """Put the conversation aside until `until` (None: until the customer writes again).
        It leaves the inbox views and frees its agent's place; it comes back open — to the
        same agent — when the time comes or the customer writes, whichever is first."""
        now = self.clock.now()
        if minutes is not None:
            if until is not None:
                raise ProblemError("care-invalid", "Give either a time or a number of minutes.")
            until = now + timedelta(minutes=minutes)
        if until is not None:
            if until.tzinfo is None:
                raise ProblemError("care-invalid", "Give the time with its UTC offset.")
            if until <= now + MIN_SNOOZE:
                raise ProblemError("care-invalid", "Snooze until a time at least a minute ahead.")
            if until > now + MAX_SNOOZE:
                raise ProblemError("care-invalid", "Snooze for at most a year.")
        notices = _Notices()
        async with self.db.transaction() as session:
            conversation, role = await self._reach(session, actor, cid, lock=True)
            if role not in MANAGERS and conversation.assignee_id not in (None, actor):
                raise ProblemError(
                    "care-not-allowed", "Only its agent or a brand admin can snooze this."
                )
            if conversation.status == "resolved":
                raise ProblemError("care-invalid", "This conversation is resolved.")
            if conversation.status != "snoozed":
                await self._release(session, conversation)
                conversation.status, conversation.held_by_bot = "snoozed", False
                conversation.snoozed_at = now
                if conversation.team_id is not None:
                    await self._serve_queue(session, conversation.team_id, notices)
            conversation.snoozed_until = until
            notices.add(
                [*await self._team_agents(session, conversation.team_id), actor],
                _frame("snoozed", conversation),
            )
            row = conversation
        await self._publish(notices)
        return (await self._views([row]))[0]

    async def _unsnooze(
        self, session: AsyncSession, conversation: Conversation, now: datetime, notices: _Notices
    ) -> None:
        """Back to open. The resolution clock resumes with the business minutes it had left
        when snoozed; the agent gets it back even over capacity (a person chose it)."""
        asleep_from = conversation.snoozed_at or now
        conversation.status, conversation.held_by_bot = "open", False
        conversation.snoozed_at = conversation.snoozed_until = None
        due = conversation.resolution_due
        if due is not None and not conversation.resolution_breached:
            settings = await self._settings(session, conversation.account_id)
            calendar = _settings_calendar(settings) if settings is not None else Calendar()
            left = business_minutes_between(asleep_from, due, calendar)
            conversation.resolution_due = add_business_minutes(now, left, calendar) or due
        if conversation.assignee_id is not None and conversation.team_id is not None:
            await session.execute(
                update(Agent)
                .where(
                    Agent.team_id == conversation.team_id,
                    Agent.user_id == conversation.assignee_id,
                )
                .values(load=Agent.load + 1)
            )
        await session.flush()
        notices.add(await self._audience(session, conversation), _frame("woke", conversation))
        if conversation.assignee_id is None and conversation.team_id is not None:
            await self._serve_queue(session, conversation.team_id, notices)

    async def wake_snoozed(self) -> int:
        """Bring back the snoozed conversations whose time has come (each once, even with
        several nodes sweeping: rows are locked and skipped by the others)."""
        now = self.clock.now()
        notices = _Notices()
        async with self.db.transaction() as session:
            due = (
                await session.scalars(
                    select(Conversation)
                    .where(Conversation.status == "snoozed", Conversation.snoozed_until <= now)
                    .order_by(Conversation.snoozed_until)
                    .limit(200)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for conversation in due:
                await self._unsnooze(session, conversation, now, notices)
        await self._publish(notices)
        return len(due)

    # -- the brand's bot (its webhook server) and WeChat-shaped kf sessions --------------------

    async def _on_bot_answer(
        self, session: AsyncSession, event: StoredEvent, notices: _Notices
    ) -> None:
        """The brand's server answered a follower's message: with a passive text reply the
        bot has it (held as pending) unless a person already took it; with
        `transfer_customer_service` it goes to people (open, assigned, or to the named agent)."""
        payload = event.payload
        if payload.get("answered") != MESSAGE_RECEIVED:
            return
        account_id, openid = uuid.UUID(payload["account_id"]), str(payload["openid"])
        conversation = await self._active(session, account_id, openid)
        if conversation is None:
            return
        if payload.get("transfer"):
            if conversation.status == "snoozed":
                await self._unsnooze(session, conversation, self.clock.now(), notices)
            target = await self._kf_agent(session, account_id, str(payload.get("kf_account", "")))
            if conversation.status == "pending":
                conversation.status, conversation.held_by_bot = "open", False
                if target is None and conversation.team_id is not None:
                    conversation.assignee_id = await self._take(
                        session, conversation.team_id, await self._strategy(session, conversation)
                    )
                    await session.flush()
                    await self._assigned(session, conversation, notices)
            if target is not None and conversation.assignee_id != target:
                await self._set_assignee(session, conversation, target, notices)
            return
        if conversation.status == "open" and conversation.human_since is None:
            team = conversation.team_id
            await self._release(session, conversation)
            conversation.assignee_id = None
            conversation.status, conversation.held_by_bot = "pending", True
            await session.flush()
            notices.add(await self._team_agents(session, team), _frame("held", conversation))
            if team is not None:
                await self._serve_queue(session, team, notices)

    async def _strategy(self, session: AsyncSession, conversation: Conversation) -> str:
        team = await session.get(Team, conversation.team_id)
        return team.strategy if team is not None else "least_loaded"

    async def _active(
        self, session: AsyncSession, account_id: uuid.UUID, openid: str
    ) -> Conversation | None:
        """The follower's conversation that is not resolved, locked for the change."""
        return await session.scalar(
            select(Conversation)
            .where(
                Conversation.account_id == account_id,
                Conversation.openid == openid,
                Conversation.status != "resolved",
            )
            .order_by(Conversation.opened_at.desc(), Conversation.id.desc())
            .limit(1)
            .with_for_update()
        )

    async def _kf_agent(
        self, session: AsyncSession, account_id: uuid.UUID, kf_account: str
    ) -> uuid.UUID | None:
        """The agent a kf account names (`omo_id` or `omo_id@anything`, as WeChat writes
        `name@gh_…`), if they serve the account; else None."""
        name = kf_account.split("@", 1)[0].strip().lower()
        if not name:
            return None
        try:
            person = await self.identity.find_by_omo_id(name)
        except ProblemError:
            return None
        serves = await session.scalar(
            select(func.count())
            .select_from(Agent)
            .join(TeamAccount, TeamAccount.team_id == Agent.team_id)
            .where(TeamAccount.account_id == account_id, Agent.user_id == person.user_id)
        )
        return person.user_id if serves else None

    async def kf_session_create(self, account_id: uuid.UUID, openid: str, kf_account: str) -> None:
        """`customservice/kfsession/create`: the named agent takes the customer's conversation
        from the bot or the queue (open, theirs, a person's from now on)."""
        notices = _Notices()
        async with self.db.transaction() as session:
            agent = await self._kf_agent(session, account_id, kf_account)
            if agent is None:
                raise ProblemError(
                    "care-not-an-agent", "No agent serving this account by that name."
                )
            conversation = await self._active(session, account_id, openid)
            if conversation is None:
                raise ProblemError("not-found", "This customer has no conversation waiting.")
            now = self.clock.now()
            if conversation.status == "snoozed":
                await self._unsnooze(session, conversation, now, notices)
            conversation.status, conversation.held_by_bot = "open", False
            conversation.human_since = conversation.human_since or now
            if conversation.assignee_id != agent:
                await self._set_assignee(session, conversation, agent, notices)
        await self._publish(notices)

    async def kf_session_close(self, account_id: uuid.UUID, openid: str, kf_account: str) -> None:
        """`customservice/kfsession/close`: the agent's session ends; the bot holds the
        conversation again (pending), their place is freed."""
        notices = _Notices()
        async with self.db.transaction() as session:
            agent = await self._kf_agent(session, account_id, kf_account)
            conversation = await self._active(session, account_id, openid)
            if agent is None or conversation is None or conversation.assignee_id != agent:
                raise ProblemError("not-found", "This agent has no session with this customer.")
            team = conversation.team_id
            if conversation.status != "snoozed":
                await self._release(session, conversation)
            conversation.snoozed_at = conversation.snoozed_until = None
            conversation.assignee_id, conversation.human_since = None, None
            conversation.status, conversation.held_by_bot = "pending", True
            await session.flush()
            audience = [agent, *await self._team_agents(session, team)]
            notices.add(audience, _frame("held", conversation))
            if team is not None:
                await self._serve_queue(session, team, notices)
        await self._publish(notices)

    async def kf_session(self, account_id: uuid.UUID, openid: str) -> tuple[str, datetime | None]:
        """`kfsession/getsession`: the agent (omo id) who has the customer, '' for none."""
        async with self.db.sessions() as session:
            conversation = await session.scalar(
                select(Conversation)
                .where(
                    Conversation.account_id == account_id,
                    Conversation.openid == openid,
                    Conversation.status != "resolved",
                )
                .order_by(Conversation.opened_at.desc())
                .limit(1)
            )
        if conversation is None or conversation.assignee_id is None:
            return "", None
        profiles = await self.identity.public_profiles([conversation.assignee_id])
        who = profiles.get(conversation.assignee_id)
        return (who.omo_id if who else ""), conversation.human_since or conversation.opened_at

    async def kf_sessions(
        self, account_id: uuid.UUID, kf_account: str
    ) -> list[tuple[str, datetime]]:
        """`kfsession/getsessionlist`: the agent's customers of this account (openid, since)."""
        async with self.db.sessions() as session:
            agent = await self._kf_agent(session, account_id, kf_account)
            if agent is None:
                raise ProblemError(
                    "care-not-an-agent", "No agent serving this account by that name."
                )
            rows = (
                await session.scalars(
                    select(Conversation)
                    .where(
                        Conversation.account_id == account_id,
                        Conversation.assignee_id == agent,
                        Conversation.status.in_(("open", "pending", "snoozed")),
                    )
                    .order_by(Conversation.opened_at)
                    .limit(INBOX_MAX)
                )
            ).all()
        return [(r.openid, r.human_since or r.opened_at) for r in rows]

    async def kf_waiting(self, account_id: uuid.UUID) -> list[tuple[str, datetime]]:
        """`kfsession/getwaitcase`: customers waiting for a person (queue or bot), oldest
        first (openid, latest message time)."""
        async with self.db.sessions() as session:
            rows = (
                await session.scalars(
                    select(Conversation)
                    .where(
                        Conversation.account_id == account_id,
                        Conversation.assignee_id.is_(None),
                        Conversation.status.in_(("open", "pending")),
                    )
                    .order_by(Conversation.opened_at)
                    .limit(INBOX_MAX)
                )
            ).all()
        return [(r.openid, r.last_message_at) for r in rows]

    async def resolve(self, actor: uuid.UUID, cid: uuid.UUID) -> ConversationView:
        """Resolve; then ask the customer for a rating (if the reply window allows)."""
        notices = _Notices()
        now = self.clock.now()
        async with self.db.transaction() as session:
            conversation, _role = await self._reach(session, actor, cid, lock=True)
            if conversation.status == "resolved":
                raise ProblemError("care-invalid", "This conversation is resolved.")
            team = conversation.team_id
            if conversation.status != "snoozed":  # a snoozed one holds no place
                await self._release(session, conversation)
            conversation.snoozed_at = conversation.snoozed_until = None
            conversation.status, conversation.held_by_bot = "resolved", False
            conversation.resolved_at = now
            self._breaches(conversation, now)
            self._record(
                session,
                ConversationResolved(conversation_id=cid, account_id=conversation.account_id),
            )
            if team is not None:
                await self._serve_queue(session, team, notices)
            notices.add(
                await self._audience(session, conversation), _frame("resolved", conversation)
            )
            settings = await self._settings(session, conversation.account_id)
            # marked before the question leaves: the customer sees it live and may answer
            # before a later write would land
            conversation.csat_requested_at = now
            row = conversation
        language = settings.language if settings is not None else "en"
        question = translations(language).gettext(CSAT_QUESTION)
        try:
            await self.accounts.brand_send(row.account_id, row.openid, {"text": question})
        except ProblemError:  # no consent or window closed: no survey
            async with self.db.transaction() as session:
                stored = await session.get(Conversation, cid)
                if stored is not None:
                    stored.csat_requested_at = None
                    row = stored
        await self._publish(notices)
        return (await self._views([row]))[0]

    async def set_labels(
        self, actor: uuid.UUID, cid: uuid.UUID, labels: Sequence[str]
    ) -> ConversationView:
        clean = _clean_labels(labels)
        async with self.db.transaction() as session:
            conversation, _role = await self._reach(session, actor, cid, lock=True)
            conversation.labels = clean
            row = conversation
        return (await self._views([row]))[0]

    async def add_note(self, actor: uuid.UUID, cid: uuid.UUID, text: str) -> NoteView:
        """A private note; @omo_id mentions of brand members notify them."""
        text = text.strip()
        if not 0 < len(text) <= 4000:
            raise ProblemError("care-invalid", "Write between 1 and 4000 characters.")
        async with self.db.sessions() as session:
            conversation, _role = await self._reach(session, actor, cid)
        mentioned: dict[str, uuid.UUID] = {}
        for name in dict.fromkeys(m.lower() for m in _MENTION.findall(text)):
            try:
                person = await self.identity.find_by_omo_id(name)
                await self._role(person.user_id, conversation.organisation_id)
            except ProblemError:
                continue
            mentioned[person.omo_id] = person.user_id
        me = (await self.identity.public_profiles([actor]))[actor]
        async with self.db.transaction() as session:
            note = Note(
                id=new_id(),
                conversation_id=cid,
                author_id=actor,
                text=text,
                mentions=list(mentioned),
                created_at=self.clock.now(),
            )
            session.add(note)
        notices = _Notices()
        notices.add(
            mentioned.values(),
            {
                "type": "care",
                "event": "mention",
                "conversation_id": str(cid),
                "organisation_id": str(conversation.organisation_id),
                "by": me.omo_id,
            },
        )
        await self._publish(notices)
        return NoteView(note.id, me.omo_id, note.text, list(note.mentions), note.created_at)

    # -- canned replies -----------------------------------------------------------------------

    async def set_canned(
        self, actor: uuid.UUID, organisation_id: uuid.UUID, shortcut: str, text: str
    ) -> list[tuple[str, str]]:
        await self._require_manager(actor, organisation_id)
        shortcut = shortcut.strip().lower()
        if not _SHORTCUT.match(shortcut) or not 0 < len(text.strip()) <= 4000:
            raise ProblemError(
                "care-invalid", "A shortcut is 1 to 32 letters, digits, - or _; the text is needed."
            )
        async with self.db.transaction() as session:
            row = await session.scalar(
                select(CannedReply).where(
                    CannedReply.organisation_id == organisation_id,
                    CannedReply.shortcut == shortcut,
                )
            )
            if row is None:
                session.add(
                    CannedReply(
                        id=new_id(), organisation_id=organisation_id, shortcut=shortcut, text=text
                    )
                )
            else:
                row.text = text
        return await self.canned(actor, organisation_id)

    async def canned(self, actor: uuid.UUID, organisation_id: uuid.UUID) -> list[tuple[str, str]]:
        await self._role(actor, organisation_id)
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(CannedReply.shortcut, CannedReply.text)
                .where(CannedReply.organisation_id == organisation_id)
                .order_by(CannedReply.shortcut)
            )
            return [(r[0], r[1]) for r in rows]

    # -- settings: SLA calendar, survey language, bot first ----------------------------------

    async def set_settings(
        self, actor: uuid.UUID, account_id: uuid.UUID, view: SettingsView
    ) -> SettingsView:
        """An owner's or admin's choice for one of the brand's accounts."""
        await self.accounts.managed(actor, account_id, MANAGERS)
        if view.language not in SUPPORTED:
            raise ProblemError("care-invalid", "Choose a supported language.")
        calendar = Calendar(view.time_zone)
        if calendar.zone().key != view.time_zone:
            raise ProblemError("care-invalid", "Choose a time zone by its IANA name.")
        for day, (start, end) in view.hours.items():
            if not (0 <= day <= 6 and 0 <= start < end <= 24 * 60):
                raise ProblemError(
                    "care-invalid", "Opening hours are minutes of a day, start before end."
                )
        async with self.db.transaction() as session:
            row = await session.get(Settings, account_id)
            if row is None:
                row = Settings(account_id=account_id)
                session.add(row)
            row.first_response_minutes = view.first_response_minutes
            row.resolution_minutes = view.resolution_minutes
            row.time_zone = view.time_zone
            row.hours = {str(d): [s, e] for d, (s, e) in sorted(view.hours.items())}
            row.holidays = sorted({d.isoformat() for d in view.holidays})
            row.language = view.language
            row.bot_first = view.bot_first
        return await self.settings(actor, account_id)

    async def settings(self, actor: uuid.UUID, account_id: uuid.UUID) -> SettingsView:
        await self.accounts.managed(actor, account_id, MANAGERS)
        async with self.db.sessions() as session:
            row = await session.get(Settings, account_id)
        if row is None:
            calendar = Calendar()
            return SettingsView(account_id, None, None, "UTC", calendar.hours, [], "en", False)
        calendar = _settings_calendar(row)
        return SettingsView(
            account_id,
            row.first_response_minutes,
            row.resolution_minutes,
            row.time_zone,
            calendar.hours,
            sorted(calendar.holidays),
            row.language,
            row.bot_first,
        )

    # -- reports ------------------------------------------------------------------------------

    async def report(
        self, actor: uuid.UUID, organisation_id: uuid.UUID, since: datetime, until: datetime
    ) -> Report:
        """Volume, first-response and resolution times (wall clock), CSAT and SLA hit rate of
        the conversations opened in [since, until), by agent, team and label."""
        await self._require_manager(actor, organisation_id)
        async with self.db.sessions() as session:
            rows = (
                await session.scalars(
                    select(Conversation).where(
                        Conversation.organisation_id == organisation_id,
                        Conversation.opened_at >= since,
                        Conversation.opened_at < until,
                    )
                )
            ).all()
            named = await session.execute(
                select(Team.id, Team.name).where(Team.organisation_id == organisation_id)
            )
            teams: dict[uuid.UUID, str] = {r[0]: r[1] for r in named}
        profiles = await self.identity.public_profiles(
            list({r.assignee_id for r in rows if r.assignee_id})
        )
        by_agent: dict[str, list[Conversation]] = {}
        by_team: dict[str, list[Conversation]] = {}
        by_label: dict[str, list[Conversation]] = {}
        for row in rows:
            agent = profiles[row.assignee_id].omo_id if row.assignee_id in profiles else ""
            by_agent.setdefault(agent, []).append(row)
            by_team.setdefault(teams.get(row.team_id, "") if row.team_id else "", []).append(row)
            for label in row.labels:
                by_label.setdefault(label, []).append(row)

        def rows_of(groups: dict[str, list[Conversation]]) -> list[ReportRow]:
            return [_report_row(key, group) for key, group in sorted(groups.items())]

        return Report(
            since,
            until,
            _report_row("", list(rows)),
            rows_of(by_agent),
            rows_of(by_team),
            rows_of(by_label),
        )


def _calendar(time_zone: str, hours: dict[str, Any] | None, holidays: list[str] | None) -> Calendar:
    days = {int(day): (int(span[0]), int(span[1])) for day, span in (hours or {}).items()}
    closed = frozenset(date.fromisoformat(d) for d in holidays or [])
    if not days:
        return Calendar(time_zone, holidays=closed)
    return Calendar(time_zone, days, closed)


def _settings_calendar(settings: Settings) -> Calendar:
    return _calendar(settings.time_zone, settings.hours, settings.holidays)


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 1) if values else None


def _report_row(key: str, rows: list[Conversation]) -> ReportRow:
    first = [
        (r.first_response_at - r.opened_at).total_seconds() for r in rows if r.first_response_at
    ]
    resolution = [(r.resolved_at - r.opened_at).total_seconds() for r in rows if r.resolved_at]
    scores = [float(r.csat_score) for r in rows if r.csat_score is not None]
    targeted = [r for r in rows if r.first_response_due or r.resolution_due]
    met = [r for r in targeted if not (r.first_response_breached or r.resolution_breached)]
    return ReportRow(
        key=key,
        conversations=len(rows),
        resolved=sum(1 for r in rows if r.status == "resolved"),
        first_response_seconds=_mean(first),
        resolution_seconds=_mean(resolution),
        csat=_mean(scores),
        csat_count=len(scores),
        sla_hit_rate=round(len(met) / len(targeted), 3) if targeted else None,
    )


__all__ = ["CSAT_QUESTION", "CareService"]
