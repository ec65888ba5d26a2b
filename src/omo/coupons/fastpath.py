"""The flash-sale claim, answered without the router.

`POST /api/v1/coupons/flash-sales/{sale_id}/reservations` is the one route a popular sale
hits thousands of times a second, mostly to hear "sold out". Matching it among several
hundred routes and solving its dependencies cost more than the claim itself, so this ASGI
layer (inside the platform middleware: security headers, body limit and locale still apply)
answers it directly. It is the same route: the same authentication (`principal_of_scope`:
`optional_principal`'s bearer, cookie and CSRF rules read from the scope), the same service
call, the same JSON body and the same problem+json answers, byte for byte (a test compares
them with the router's); only the answers are plain ASGI messages instead of Starlette
objects (`omo.core.direct`), and a refusal's bytes are kept per sale path and language. The
route declared in `api.py` documents it (OpenAPI, access level) and answers whatever this
layer passes on (e.g. a malformed sale id, which it leaves to the router's 422/404).
"""

from __future__ import annotations

import asyncio
import re
import uuid

from starlette.types import ASGIApp, Receive, Scope, Send

from omo.core.auth import principal_of_scope
from omo.core.direct import Problems, send_answer
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
        # A sold-out sale answers the same bytes to thousands of buyers: kept per problem,
        # path and language.
        self._problems = Problems()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        found = CLAIM_PATH.fullmatch(scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        try:
            async with self._slots:
                body = await self._claim(scope, uuid.UUID(found[1]))
        except ProblemError as problem:
            await self._problems.answer(scope, receive, send, problem)
            return
        await send_answer(send, 201, body)

    async def _claim(self, scope: Scope, sale_id: uuid.UUID) -> bytes:
        principal = await principal_of_scope(scope)
        if principal is None:
            raise ProblemError("unauthenticated", "Log in to do this.")
        view = await scope["app"].state.coupons.reserve(principal.user_id, sale_id)
        body = ReservationOut(
            id=view.id,
            sale_id=view.sale_id,
            status=view.status,
            expires_at=view.expires_at,
            price=MoneyOut.of(view.price),
        )
        # The same bytes FastAPI's JSONResponse would send for `response_model`.
        return body.model_dump_json().encode()
