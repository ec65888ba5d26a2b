"""Customer care routes: the JSON API under /api/v1/care and the console pages at /console.
Thin: parse, call the service, serialise."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request

from omo.accounts.service import EVERYONE, MANAGERS, AccountService, ThreadItem
from omo.care import pages, wechat
from omo.care.schemas import (
    AgentOut,
    AgentRequest,
    AssignRequest,
    CannedOut,
    CannedRequest,
    ConversationDetailOut,
    ConversationOut,
    CustomerOut,
    LabelsRequest,
    NoteOut,
    NoteRequest,
    PastConversationOut,
    ReplyRequest,
    ReportOut,
    ReportRowOut,
    SettingsOut,
    SettingsRequest,
    SnoozeRequest,
    TeamAccountsRequest,
    TeamOut,
    TeamRequest,
    ThreadItemOut,
)
from omo.care.service import (
    AgentView,
    CareService,
    ConversationView,
    NoteView,
    ReportRow,
    SettingsView,
    TeamView,
)
from omo.care.sla import DEFAULT_HOURS
from omo.core.access import Access, access
from omo.core.auth import CurrentPrincipal

router = APIRouter()
native = APIRouter(prefix="/api/v1/care", tags=["care"])

ORG_MEMBER = access(Access.BRAND_MEMBER, resource="accounts.organisation", roles=EVERYONE)
ORG_MANAGER = access(Access.BRAND_MEMBER, resource="accounts.organisation", roles=MANAGERS)
TEAM_MANAGER = access(Access.BRAND_MEMBER, resource="care.team", roles=MANAGERS)
ACCOUNT_MANAGER = access(Access.BRAND_MEMBER, resource="accounts.account", roles=MANAGERS)
AGENT = access(Access.CARE_AGENT, resource="care.conversation", roles=EVERYONE)


def care_service(request: Request) -> CareService:
    service: CareService = request.app.state.care
    return service


def account_service(request: Request) -> AccountService:
    service: AccountService = request.app.state.accounts
    return service


Care = Annotated[CareService, Depends(care_service)]
Accounts = Annotated[AccountService, Depends(account_service)]


async def start(app: FastAPI) -> None:
    service = CareService(
        app.state.db, app.state.clock, app.state.identity, app.state.accounts, app.state.broker
    )
    app.state.care = service
    service.start()


async def stop(app: FastAPI) -> None:
    await app.state.care.stop()


# Checked before the body is read: strangers learn nothing, not even what a valid body is.


async def _org_member(
    organisation_id: uuid.UUID, principal: CurrentPrincipal, accounts: Accounts
) -> uuid.UUID:
    await accounts.require_member(principal.user_id, organisation_id)
    return organisation_id


async def _org_manager(
    organisation_id: uuid.UUID, principal: CurrentPrincipal, accounts: Accounts
) -> uuid.UUID:
    await accounts.require_member(principal.user_id, organisation_id, MANAGERS)
    return organisation_id


async def _team_manager(
    team_id: uuid.UUID, principal: CurrentPrincipal, accounts: Accounts, care: Care
) -> uuid.UUID:
    organisation_id = await care.team_organisation(team_id)
    await accounts.require_member(principal.user_id, organisation_id, MANAGERS)
    return team_id


async def _account_manager(
    account_id: uuid.UUID, principal: CurrentPrincipal, accounts: Accounts
) -> uuid.UUID:
    await accounts.managed(principal.user_id, account_id, MANAGERS)
    return account_id


async def _agent(conversation_id: uuid.UUID, principal: CurrentPrincipal, care: Care) -> uuid.UUID:
    await care.check_access(principal.user_id, conversation_id)
    return conversation_id


OrgMember = Annotated[uuid.UUID, Depends(_org_member)]
OrgManager = Annotated[uuid.UUID, Depends(_org_manager)]
TeamManager = Annotated[uuid.UUID, Depends(_team_manager)]
AccountManager = Annotated[uuid.UUID, Depends(_account_manager)]
Serving = Annotated[uuid.UUID, Depends(_agent)]


def _agent_out(view: AgentView) -> AgentOut:
    return AgentOut(omo_id=view.omo_id, name=view.name, capacity=view.capacity, load=view.load)


def _team(view: TeamView) -> TeamOut:
    return TeamOut(
        id=view.id,
        organisation_id=view.organisation_id,
        name=view.name,
        strategy=view.strategy,
        account_ids=view.account_ids,
        agents=[_agent_out(a) for a in view.agents],
    )


def conversation_out(view: ConversationView) -> ConversationOut:
    return ConversationOut(
        id=view.id,
        organisation_id=view.organisation_id,
        account_id=view.account_id,
        openid=view.openid,
        status=view.status,  # type: ignore[arg-type]
        held_by_bot=view.held_by_bot,
        team_id=view.team_id,
        assignee=view.assignee,
        labels=view.labels,
        preview=view.preview,
        opened_at=view.opened_at,
        last_message_at=view.last_message_at,
        first_response_at=view.first_response_at,
        resolved_at=view.resolved_at,
        first_response_due=view.first_response_due,
        resolution_due=view.resolution_due,
        breached=view.breached,
        csat_score=view.csat_score,
        csat_comment=view.csat_comment,
        snoozed_until=view.snoozed_until,
    )


def _item(item: ThreadItem) -> ThreadItemOut:
    text = item.body.get("text") or item.body.get("card", {}).get("title", "")
    return ThreadItemOut(
        id=item.id,
        direction=item.direction,  # type: ignore[arg-type]
        broadcast=item.broadcast,
        text=str(text),
        created_at=item.created_at,
    )


def _note(view: NoteView) -> NoteOut:
    return NoteOut(
        id=view.id,
        author=view.author,
        text=view.text,
        mentions=view.mentions,
        created_at=view.created_at,
    )


def _settings(view: SettingsView) -> SettingsOut:
    return SettingsOut(
        account_id=view.account_id,
        first_response_minutes=view.first_response_minutes,
        resolution_minutes=view.resolution_minutes,
        time_zone=view.time_zone,
        hours=view.hours,
        holidays=view.holidays,
        language=view.language,
        bot_first=view.bot_first,
    )


def _row(row: ReportRow) -> ReportRowOut:
    return ReportRowOut(
        key=row.key,
        conversations=row.conversations,
        resolved=row.resolved,
        first_response_seconds=row.first_response_seconds,
        resolution_seconds=row.resolution_seconds,
        csat=row.csat,
        csat_count=row.csat_count,
        sla_hit_rate=row.sla_hit_rate,
    )


# -- teams -----------------------------------------------------------------------------------


@native.post(
    "/organisations/{organisation_id}/teams",
    response_model=TeamOut,
    status_code=201,
    openapi_extra=ORG_MANAGER,
)
async def create_team(
    organisation_id: OrgManager, body: TeamRequest, principal: CurrentPrincipal, care: Care
) -> TeamOut:
    return _team(
        await care.create_team(
            principal.user_id, organisation_id, body.name, body.strategy, body.account_ids
        )
    )


@native.get(
    "/organisations/{organisation_id}/teams",
    response_model=list[TeamOut],
    openapi_extra=ORG_MEMBER,
)
async def teams(
    organisation_id: OrgMember, principal: CurrentPrincipal, care: Care
) -> list[TeamOut]:
    return [_team(t) for t in await care.teams(principal.user_id, organisation_id)]


@native.put("/teams/{team_id}/agents", response_model=TeamOut, openapi_extra=TEAM_MANAGER)
async def set_agent(
    team_id: TeamManager, body: AgentRequest, principal: CurrentPrincipal, care: Care
) -> TeamOut:
    return _team(await care.set_agent(principal.user_id, team_id, body.omo_id, body.capacity))


@native.put("/teams/{team_id}/accounts", response_model=TeamOut, openapi_extra=TEAM_MANAGER)
async def set_team_accounts(
    team_id: TeamManager, body: TeamAccountsRequest, principal: CurrentPrincipal, care: Care
) -> TeamOut:
    return _team(await care.set_team_accounts(principal.user_id, team_id, body.account_ids))


# -- the inbox ---------------------------------------------------------------------------------


@native.get(
    "/organisations/{organisation_id}/conversations",
    response_model=list[ConversationOut],
    openapi_extra=ORG_MEMBER,
)
async def inbox(
    organisation_id: OrgMember,
    principal: CurrentPrincipal,
    care: Care,
    status: Literal["open", "pending", "snoozed", "resolved"] | None = None,
    assignee: Literal["me", "unassigned", "any"] = "any",
    label: Annotated[str, Query(max_length=30)] = "",
    breached: bool = False,
    q: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[ConversationOut]:
    views = await care.inbox(
        principal.user_id,
        organisation_id,
        status=status,
        assignee=assignee,
        label=label,
        breached=breached,
        q=q,
        limit=limit,
    )
    return [conversation_out(v) for v in views]


@native.get(
    "/conversations/{conversation_id}", response_model=ConversationDetailOut, openapi_extra=AGENT
)
async def conversation(
    conversation_id: Serving, principal: CurrentPrincipal, care: Care
) -> ConversationDetailOut:
    detail = await care.detail(principal.user_id, conversation_id)
    customer = detail.customer
    return ConversationDetailOut(
        conversation=conversation_out(detail.conversation),
        thread=[_item(i) for i in detail.thread],
        notes=[_note(n) for n in detail.notes],
        customer=CustomerOut(
            openid=customer.openid,
            following=customer.following,
            nickname=customer.nickname,
            followed_at=customer.followed_at,
            scene=customer.scene,
            tags=customer.tags,
            past=[
                PastConversationOut(
                    id=p.id, status=p.status, opened_at=p.opened_at, preview=p.preview
                )
                for p in customer.past
            ],
        ),
        agents=[_agent_out(a) for a in detail.agents],
    )


@native.post(
    "/conversations/{conversation_id}/replies",
    response_model=ThreadItemOut,
    status_code=201,
    openapi_extra=AGENT,
)
async def reply(
    conversation_id: Serving, body: ReplyRequest, principal: CurrentPrincipal, care: Care
) -> ThreadItemOut:
    return _item(await care.reply(principal.user_id, conversation_id, body.text))


@native.post(
    "/conversations/{conversation_id}/notes",
    response_model=NoteOut,
    status_code=201,
    openapi_extra=AGENT,
)
async def add_note(
    conversation_id: Serving, body: NoteRequest, principal: CurrentPrincipal, care: Care
) -> NoteOut:
    return _note(await care.add_note(principal.user_id, conversation_id, body.text))


@native.put(
    "/conversations/{conversation_id}/assignee", response_model=ConversationOut, openapi_extra=AGENT
)
async def assign(
    conversation_id: Serving, body: AssignRequest, principal: CurrentPrincipal, care: Care
) -> ConversationOut:
    return conversation_out(await care.assign(principal.user_id, conversation_id, body.omo_id))


@native.post(
    "/conversations/{conversation_id}/take-over",
    response_model=ConversationOut,
    openapi_extra=AGENT,
)
async def take_over(
    conversation_id: Serving, principal: CurrentPrincipal, care: Care
) -> ConversationOut:
    return conversation_out(await care.take_over(principal.user_id, conversation_id))


@native.post(
    "/conversations/{conversation_id}/hold", response_model=ConversationOut, openapi_extra=AGENT
)
async def hold(
    conversation_id: Serving, principal: CurrentPrincipal, care: Care
) -> ConversationOut:
    return conversation_out(await care.hold(principal.user_id, conversation_id))


@native.post(
    "/conversations/{conversation_id}/snooze", response_model=ConversationOut, openapi_extra=AGENT
)
async def snooze(
    conversation_id: Serving, body: SnoozeRequest, principal: CurrentPrincipal, care: Care
) -> ConversationOut:
    """Out of the inbox until `until` or for `minutes` (or until the customer writes
    again), then open."""
    return conversation_out(
        await care.snooze(principal.user_id, conversation_id, body.until, body.minutes)
    )


@native.post(
    "/conversations/{conversation_id}/resolve", response_model=ConversationOut, openapi_extra=AGENT
)
async def resolve(
    conversation_id: Serving, principal: CurrentPrincipal, care: Care
) -> ConversationOut:
    return conversation_out(await care.resolve(principal.user_id, conversation_id))


@native.put(
    "/conversations/{conversation_id}/labels", response_model=ConversationOut, openapi_extra=AGENT
)
async def set_labels(
    conversation_id: Serving, body: LabelsRequest, principal: CurrentPrincipal, care: Care
) -> ConversationOut:
    return conversation_out(await care.set_labels(principal.user_id, conversation_id, body.labels))


# -- canned replies, settings, reports ------------------------------------------------------


@native.get(
    "/organisations/{organisation_id}/canned",
    response_model=list[CannedOut],
    openapi_extra=ORG_MEMBER,
)
async def canned(
    organisation_id: OrgMember, principal: CurrentPrincipal, care: Care
) -> list[CannedOut]:
    rows = await care.canned(principal.user_id, organisation_id)
    return [CannedOut(shortcut=s, text=t) for s, t in rows]


@native.put(
    "/organisations/{organisation_id}/canned",
    response_model=list[CannedOut],
    openapi_extra=ORG_MANAGER,
)
async def set_canned(
    organisation_id: OrgManager, body: CannedRequest, principal: CurrentPrincipal, care: Care
) -> list[CannedOut]:
    rows = await care.set_canned(principal.user_id, organisation_id, body.shortcut, body.text)
    return [CannedOut(shortcut=s, text=t) for s, t in rows]


@native.get(
    "/accounts/{account_id}/settings", response_model=SettingsOut, openapi_extra=ACCOUNT_MANAGER
)
async def settings(
    account_id: AccountManager, principal: CurrentPrincipal, care: Care
) -> SettingsOut:
    return _settings(await care.settings(principal.user_id, account_id))


@native.put(
    "/accounts/{account_id}/settings", response_model=SettingsOut, openapi_extra=ACCOUNT_MANAGER
)
async def set_settings(
    account_id: AccountManager, body: SettingsRequest, principal: CurrentPrincipal, care: Care
) -> SettingsOut:
    view = SettingsView(
        account_id=account_id,
        first_response_minutes=body.first_response_minutes,
        resolution_minutes=body.resolution_minutes,
        time_zone=body.time_zone,
        hours=dict(DEFAULT_HOURS) if body.hours is None else dict(body.hours),
        holidays=body.holidays,
        language=body.language,
        bot_first=body.bot_first,
    )
    return _settings(await care.set_settings(principal.user_id, account_id, view))


@native.get(
    "/organisations/{organisation_id}/report", response_model=ReportOut, openapi_extra=ORG_MANAGER
)
async def report(
    request: Request,
    organisation_id: OrgManager,
    principal: CurrentPrincipal,
    care: Care,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> ReportOut:
    until = request.app.state.clock.now()
    result = await care.report(
        principal.user_id, organisation_id, until - timedelta(days=days), until
    )
    return ReportOut(
        since=result.since,
        until=result.until,
        total=_row(result.total),
        by_agent=[_row(r) for r in result.by_agent],
        by_team=[_row(r) for r in result.by_team],
        by_label=[_row(r) for r in result.by_label],
    )


router.include_router(native)
router.include_router(wechat.router)
router.include_router(pages.router)
