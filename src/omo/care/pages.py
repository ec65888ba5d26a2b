"""The brand console at /console: the team inbox and a conversation with its customer panel.

Server-rendered; `static/js/console.js` submits the forms through the JSON API and, on a
`care` frame from the realtime gateway (/ws), fetches the page again and swaps the live
regions, so new messages and assignments appear without a reload.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from omo.accounts.service import AccountService
from omo.care.service import CareService
from omo.core.access import Access, access
from omo.core.auth import SESSION_COOKIE, Principal
from omo.core.errors import ProblemError
from omo.web.pages import render

router = APIRouter(include_in_schema=False)


async def _principal(request: Request) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    principal: Principal | None = await request.app.state.identity.authenticate(token)
    if principal and principal.locale:
        request.state.locale = principal.locale
    return principal


def _to_login(request: Request) -> Response:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


def _not_found(request: Request) -> Response:
    return render(request, "console_missing.html", status=404)


@router.api_route(
    "/console",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.PERSON),
)
async def console_home(request: Request) -> Response:
    principal = await _principal(request)
    if principal is None:
        return _to_login(request)
    accounts: AccountService = request.app.state.accounts
    organisations = await accounts.organisations_of(principal.user_id)
    if len(organisations) == 1:
        return RedirectResponse(f"/console/{organisations[0][0]}", status_code=303)
    return render(request, "console_home.html", organisations=organisations)


@router.api_route(
    "/console/{organisation_id}",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(
        Access.BRAND_MEMBER, resource="accounts.organisation", roles=("owner", "admin", "agent")
    ),
)
async def console_inbox(
    request: Request,
    organisation_id: uuid.UUID,
    status: Literal["open", "pending", "snoozed", "resolved", ""] = "",
    assignee: Literal["me", "unassigned", "any"] = "any",
    label: Annotated[str, Query(max_length=30)] = "",
    breached: bool = False,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    principal = await _principal(request)
    if principal is None:
        return _to_login(request)
    care: CareService = request.app.state.care
    accounts: AccountService = request.app.state.accounts
    try:
        organisation = await accounts.organisation(principal.user_id, organisation_id)
        rows = await care.inbox(
            principal.user_id,
            organisation_id,
            status=status or None,
            assignee=assignee,
            label=label,
            breached=breached,
            q=q,
        )
    except ProblemError:
        return _not_found(request)
    names = {
        a.id: a.name
        for a in await accounts.accounts_of_organisation(principal.user_id, organisation_id)
    }
    return render(
        request,
        "console_inbox.html",
        organisation=organisation,
        rows=rows,
        account_names=names,
        filters={
            "status": status,
            "assignee": assignee,
            "label": label,
            "breached": breached,
            "q": q,
        },
    )


@router.api_route(
    "/console/conversations/{conversation_id}",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(
        Access.CARE_AGENT, resource="care.conversation", roles=("owner", "admin", "agent")
    ),
)
async def console_conversation(request: Request, conversation_id: uuid.UUID) -> Response:
    principal = await _principal(request)
    if principal is None:
        return _to_login(request)
    care: CareService = request.app.state.care
    accounts: AccountService = request.app.state.accounts
    try:
        detail = await care.detail(principal.user_id, conversation_id)
    except ProblemError:
        return _not_found(request)
    conversation = detail.conversation
    account = await accounts.account(conversation.account_id)
    canned = await care.canned(principal.user_id, conversation.organisation_id)
    return render(
        request,
        "console_conversation.html",
        detail=detail,
        conversation=conversation,
        row=conversation,
        account=account,
        canned=canned,
    )
