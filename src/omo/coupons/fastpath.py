"""The flash-sale claim, answered without the router.

`POST /api/v1/coupons/flash-sales/{sale_id}/reservations` is the one route a popular sale
hits thousands of times a second, mostly to hear "sold out". Matching it among several
hundred routes and solving its dependencies cost more than the claim itself, so this ASGI
layer (inside the platform middleware: security headers, body limit and locale still apply)
answers it directly. It is the same route: the same authentication (`optional_principal`,
bearer or cookie + CSRF header), the same service call, the same JSON body and the same
problem+json answers; the route declared in `api.py` documents it (OpenAPI, access level)
and answers whatever this layer passes on (e.g. a malformed sale id, which it leaves to
the router's 422/404).
"""

from __future__ import annotations

import asyncio
import re
import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from omo.core.auth import _bearer, _cookie, optional_principal
from omo.core.errors import ProblemError
from omo.coupons.schemas import ReservationOut
from omo.pay.schemas import MoneyOut

CLAIM_PATH = re.compile(
    r"/api/v1/coupons/flash-sales/"
    r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"/reservations"
)


# Claims in progress at once per process; more wait here, in arrival order. Below the
# database pool's size (5 + 10), so a burst never queues inside the pool, whose waiters are
# not served in order and time out after 30 s on a saturated machine.
CLAIMS_AT_ONCE = 12


class FlashClaims:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._slots = asyncio.Semaphore(CLAIMS_AT_ONCE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        found = CLAIM_PATH.fullmatch(scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            async with self._slots:
                response = await self._claim(request, uuid.UUID(found[1]))
        except ProblemError as problem:
            handler = request.app.exception_handlers[ProblemError]
            response = await handler(request, problem)
        await response(scope, receive, send)

    async def _claim(self, request: Request, sale_id: uuid.UUID) -> Response:
        principal = await optional_principal(
            request, await _bearer(request), await _cookie(request)
        )
        if principal is None:
            raise ProblemError("unauthenticated", "Log in to do this.")
        view = await request.app.state.coupons.reserve(principal.user_id, sale_id)
        body = ReservationOut(
            id=view.id,
            sale_id=view.sale_id,
            status=view.status,
            expires_at=view.expires_at,
            price=MoneyOut.of(view.price),
        )
        return Response(
            body.model_dump_json().encode(), 201, media_type="application/json"
        )  # the same bytes FastAPI's JSONResponse would send for `response_model`
