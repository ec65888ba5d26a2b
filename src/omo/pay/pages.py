"""The wallet (payment code, balances) and the cashier's till, as server-rendered pages."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from omo.core.access import Access, access
from omo.core.auth import SESSION_COOKIE, Principal
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


def _login(request: Request) -> Response:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


@router.api_route(
    "/wallet",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.PERSON),
)
async def wallet_page(request: Request) -> Response:
    principal = await _principal(request)
    if principal is None:
        return _login(request)
    service = request.app.state.pay
    balances = await service.wallet(principal.user_id)
    history = await service.history(principal.user_id, limit=10)
    coupons = await request.app.state.coupons.wallet(principal.user_id)
    return render(
        request,
        "wallet.html",
        balances=balances,
        history=history,
        coupons=[c for c in coupons if c.status == "available"],
        has_pin=await service.has_pin(principal.user_id),
    )


@router.api_route(
    "/cashier",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    openapi_extra=access(Access.PERSON),
)
async def cashier_page(request: Request) -> Response:
    principal = await _principal(request)
    if principal is None:
        return _login(request)
    merchants = await request.app.state.pay.my_merchants(principal.user_id)
    return render(request, "cashier.html", merchants=merchants)
