"""A payment's two hot routes, answered without the router.

Every payment with a payment code is two requests: the customer's app asks for a code
(`POST /api/v1/pay/codes`) and the cashier scans it
(`POST /api/v1/pay/merchants/{merchant_id}/payments`). Matching them among several hundred
routes and solving their dependencies cost about a fifth of the server's CPU per payment
(docs/BENCHMARKS.md), so this ASGI layer (inside the platform middleware: security headers,
body limit and locale still apply) answers them directly with `omo.core.direct`. They are
the same routes: the route functions of `api.py` are called, after the dependencies they
declare, in the order FastAPI solves them (`principal_of_scope` is `optional_principal` read
from the scope; then `require_principal`; then `merchant_member` for the scan), with the
body validated as FastAPI validates it, and the answers are the routed ones byte for byte
(a test compares them, success and every refusal). A request this layer does not take (a
body that is not JSON or does not validate, a malformed merchant id) is passed on to the
router, its body replayed, and answered there.
"""

from __future__ import annotations

import json
import re
import uuid

from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from omo.core.auth import principal_of_scope, require_principal
from omo.core.direct import Problems, json_content, read_body, replaying, send_answer
from omo.pay import api
from omo.pay.deps import merchant_member
from omo.pay.schemas import ChargeRequest

CODES_PATH = "/api/v1/pay/codes"
CHARGE_PATH = re.compile(
    r"/api/v1/pay/merchants/"
    r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"/payments"
)


class PayRoutes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._problems = Problems()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        try:
            if path == CODES_PATH:
                await send_answer(send, 201, await self._code(scope, receive))
                return
            found = CHARGE_PATH.fullmatch(path)
            if found is None:
                await self.app(scope, receive, send)
                return
            body = await read_body(receive)
            request = _charge_request(scope, body)
            if request is None:  # the router's 422 (or whatever it answers)
                await self.app(scope, replaying(body, receive), send)
                return
            paid = await self._charge(scope, uuid.UUID(found[1]), request)
            await send_answer(send, 200, paid)
        except Exception as error:
            if not await self._problems.answer(scope, receive, send, error):
                raise

    async def _code(self, scope: Scope, receive: Receive) -> bytes:
        principal = await require_principal(await principal_of_scope(scope))
        issued = await api.payment_code(Request(scope, receive), principal, scope["app"].state.pay)
        # The bytes FastAPI sends for `response_model` (pydantic's JSON of the model).
        return issued.model_dump_json().encode()

    async def _charge(self, scope: Scope, merchant_id: uuid.UUID, body: ChargeRequest) -> bytes:
        service = scope["app"].state.pay
        principal = await require_principal(await principal_of_scope(scope))
        await merchant_member(merchant_id, principal, service)
        paid = await api.charge(merchant_id, body, principal, service)
        return paid.model_dump_json().encode()


def _charge_request(scope: Scope, body: bytes) -> ChargeRequest | None:
    """The body as FastAPI reads it (JSON, then the model validated in Python mode); None
    when it would refuse it, so the router answers exactly as it does."""
    if not body or not json_content(scope):
        return None
    try:
        return ChargeRequest.model_validate(json.loads(body))
    except (ValueError, ValidationError):  # json's decode error is a ValueError
        return None
