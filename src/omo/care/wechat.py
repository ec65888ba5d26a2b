"""WeChat-shaped customer-service sessions (`/customservice/kfsession/*`), so that a brand's
server drives the hand-over between its bot and its people with the calls it already makes
to WeChat (wechatpy's `client.customservice.create_session`, `close_session`, …).

A kf account is an agent's OMO ID (WeChat writes `name@gh_account`; the part after `@` is
ignored). Like the rest of the developer API: HTTP 200 JSON, `access_token` in the query,
`{"errcode": N, "errmsg": ...}` on refusal with nothing done."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from omo.accounts.wechat import (
    OPEN,
    RESPONSES,
    WeChatError,
    _answer,
    _body_doc,
    _caller,
    _json,
    _ok,
)
from omo.care.service import CareService
from omo.core.errors import ProblemError

router = APIRouter(prefix="/customservice/kfsession", tags=["developer API (WeChat-compatible)"])

Token = Annotated[str, Query(max_length=200)]
SESSION_SCHEMA = {
    "type": "object",
    "required": ["kf_account", "openid"],
    "properties": {
        "kf_account": {"type": "string"},
        "openid": {"type": "string"},
        "text": {"type": "string"},
    },
}


def _care(request: Request) -> CareService:
    service: CareService = request.app.state.care
    return service


def _session_fields(data: dict[str, object]) -> tuple[str, str]:
    kf_account, openid = data.get("kf_account"), data.get("openid")
    if not isinstance(kf_account, str) or not kf_account.strip():
        raise WeChatError(65401, "invalid kf_account")
    if not isinstance(openid, str) or not openid.strip():
        raise WeChatError(40003, "invalid openid")
    return kf_account.strip()[:80], openid.strip()[:64]


def _kf_error(err: ProblemError) -> WeChatError:
    if err.slug == "care-not-an-agent":
        return WeChatError(65401, "invalid kf_account: no agent serving this account")
    return WeChatError(65413, "no session for this customer")


@router.post("/create", responses=RESPONSES, openapi_extra=_body_doc(SESSION_SCHEMA))
async def create(request: Request, access_token: Token = "") -> JSONResponse:
    """A person (the kf account) takes the customer's conversation from the bot or queue."""

    async def work() -> JSONResponse:
        account_id = await _caller(request, access_token)
        kf_account, openid = _session_fields(await _json(request))
        try:
            await _care(request).kf_session_create(account_id, openid, kf_account)
        except ProblemError as err:
            raise _kf_error(err) from None
        return _ok()

    return await _answer(work)


@router.post("/close", responses=RESPONSES, openapi_extra=_body_doc(SESSION_SCHEMA))
async def close(request: Request, access_token: Token = "") -> JSONResponse:
    """The person's session ends; the brand's bot holds the conversation again (pending)."""

    async def work() -> JSONResponse:
        account_id = await _caller(request, access_token)
        kf_account, openid = _session_fields(await _json(request))
        try:
            await _care(request).kf_session_close(account_id, openid, kf_account)
        except ProblemError as err:
            raise _kf_error(err) from None
        return _ok()

    return await _answer(work)


@router.get("/getsession", responses=RESPONSES, openapi_extra=OPEN)
async def get_session(
    request: Request,
    access_token: Token = "",
    openid: Annotated[str, Query(max_length=64)] = "",
) -> JSONResponse:
    """Who has the customer now: `kf_account` ('' while the bot or the queue has them)."""

    async def work() -> JSONResponse:
        account_id = await _caller(request, access_token)
        if not openid:
            raise WeChatError(40003, "invalid openid")
        kf_account, since = await _care(request).kf_session(account_id, openid)
        created = int(since.timestamp()) if since else 0
        return _ok(kf_account=kf_account, createtime=created)

    return await _answer(work)


@router.get("/getsessionlist", responses=RESPONSES, openapi_extra=OPEN)
async def get_session_list(
    request: Request,
    access_token: Token = "",
    kf_account: Annotated[str, Query(max_length=80)] = "",
) -> JSONResponse:
    """The kf account's customers of this account."""

    async def work() -> JSONResponse:
        account_id = await _caller(request, access_token)
        try:
            rows = await _care(request).kf_sessions(account_id, kf_account)
        except ProblemError as err:
            raise _kf_error(err) from None
        return _ok(sessionlist=[{"openid": o, "createtime": int(t.timestamp())} for o, t in rows])

    return await _answer(work)


@router.get("/getwaitcase", responses=RESPONSES, openapi_extra=OPEN)
async def get_wait_case(request: Request, access_token: Token = "") -> JSONResponse:
    """Customers waiting for a person (the queue and the bot's), oldest first."""

    async def work() -> JSONResponse:
        account_id = await _caller(request, access_token)
        rows = await _care(request).kf_waiting(account_id)
        return _ok(
            count=len(rows),
            waitcaselist=[{"openid": o, "latest_time": int(t.timestamp())} for o, t in rows],
        )

    return await _answer(work)
