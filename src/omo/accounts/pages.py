"""The account's profile page: name, avatar, description, verified badge, follow/unfollow and,
for a follower, the conversation with the account and the notifications they allow; and the
platform operator's console (/operator)."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from omo.accounts.service import SUBSCRIPTION_CREDITS_MAX, AccountService
from omo.core.access import Access, access
from omo.core.auth import SESSION_COOKIE, Principal
from omo.core.errors import ProblemError
from omo.core.i18n import locale_of
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


@router.api_route(
    "/accounts/{account_id}",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.ANONYMOUS),
)
async def account_page(
    request: Request,
    account_id: uuid.UUID,
    scene: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    service: AccountService = request.app.state.accounts
    principal = await _principal(request)  # their language, if they chose one
    try:
        account = await service.account(account_id, locale_of(request))
    except ProblemError:
        return render(request, "account.html", status=404, account=None)
    following = bool(principal) and await service.is_following(
        principal.user_id if principal else uuid.UUID(int=0), account_id
    )
    thread = (
        await service.conversation(principal.user_id, account_id, 50)
        if principal and following
        else []
    )
    # The account's notification templates and how many of each the follower accepted.
    templates = await service.templates(account_id) if principal and following else []
    accepted = (
        await service.subscriptions(principal.user_id, account_id)
        if principal and following
        else {}
    )
    return render(
        request,
        "account.html",
        account=account,
        signed_in=principal is not None,
        following=following,
        thread=thread,
        scene=scene,
        templates=templates,
        accepted=accepted,
        titles={t.id: t.title for t in templates},
        most=SUBSCRIPTION_CREDITS_MAX,
    )


@router.api_route(
    "/operator",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.OPERATOR),
)
async def operator_console(
    request: Request, q: Annotated[str, Query(max_length=64)] = ""
) -> Response:
    """The platform operator's console: verify accounts, set broadcast quotas (per kind and
    per account) and curate the template library. Anyone else: a 404 page (the console's
    existence is no secret, but nothing of it shows)."""
    principal = await _principal(request)
    if principal is None:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    service: AccountService = request.app.state.accounts
    if not await service.is_operator(principal.user_id):
        return render(request, "operator_missing.html", status=404)
    return render(
        request,
        "operator.html",
        accounts=await service.all_accounts(q),
        q=q,
        kind_quotas=await service.kind_quotas(),
        library=await service.library(),
    )
