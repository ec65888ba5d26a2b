"""The developer API shaped like the WeChat Official Account API, under /cgi-bin.

Existing SDKs (e.g. wechatpy) work against OMO with only a base-URL change. As in WeChat,
every answer is HTTP 200 JSON and errors are `{"errcode": N, "errmsg": "..."}`; the caller
proves itself with `access_token` in the query (from `GET /cgi-bin/token`, app id + secret),
so at the HTTP level the routes are open and a missing or wrong token is errcode 41001/40001
with nothing done.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from omo.accounts.service import MEDIA_LIMITS, AccountService
from omo.core.access import Access, access
from omo.core.errors import ProblemError
from omo.core.ratelimit import RateLimited

router = APIRouter(prefix="/cgi-bin", tags=["developer API (WeChat-compatible)"])

OPEN = access(Access.ANONYMOUS)

WECHAT_JSON: dict[str, Any] = {
    "schema": {
        "type": "object",
        "properties": {"errcode": {"type": "integer"}, "errmsg": {"type": "string"}},
        "additionalProperties": True,
    }
}
WECHAT_RESULT: dict[str, Any] = {
    "description": (
        "WeChat-shaped JSON: the operation's fields, or {errcode, errmsg} with errcode != 0 "
        "(always HTTP 200, as WeChat answers)"
    ),
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"errcode": {"type": "integer"}, "errmsg": {"type": "string"}},
                "additionalProperties": True,
            }
        }
    },
}
RESPONSES: dict[int | str, dict[str, Any]] = {200: WECHAT_RESULT}


def _body_doc(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        **OPEN,
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
    }


# problem slug -> WeChat errcode
ERRCODES = {
    "accounts-bad-credentials": 40001,
    "accounts-not-following": 43004,
    "accounts-window-closed": 45015,
    "accounts-quota-used": 45028,
    "accounts-invalid-menu": 40016,
    "accounts-invalid-message": 44003,
    "not-found": 40003,
    "validation-error": 47001,
    "accounts-not-subscribed": 43101,
    "accounts-invalid-template": 40037,
    "accounts-too-many-templates": 45026,
    "accounts-invalid-media": 40005,
    "accounts-media-too-large": 40006,
}


class WeChatError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode, self.errmsg = errcode, errmsg


def _ok(**fields: Any) -> JSONResponse:
    return JSONResponse({"errcode": 0, "errmsg": "ok", **fields})


def _error(errcode: int, errmsg: str) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "errmsg": errmsg})


def _service(request: Request) -> AccountService:
    service: AccountService = request.app.state.accounts
    return service


async def _caller(request: Request, access_token: str) -> uuid.UUID:
    if not access_token:
        raise WeChatError(41001, "access_token missing")
    account_id, state = await _service(request).token_status(access_token)
    if account_id is None:
        if state == "expired":
            raise WeChatError(42001, "access_token expired")
        raise WeChatError(40001, "invalid credential, access_token is invalid or not latest")
    return account_id


async def _json(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise WeChatError(47001, "data format error") from None
    if not isinstance(data, dict):
        raise WeChatError(47001, "data format error")
    return data


AnyResponse = TypeVar("AnyResponse", bound=Response)


async def _answer(work: Callable[[], Awaitable[AnyResponse]]) -> AnyResponse | JSONResponse:
    try:
        return await work()
    except RateLimited as err:  # WeChat's "api freq out of limit", with when to come back
        answer = _error(45009, "reach max api daily quota limit")
        answer.headers["Retry-After"] = str(err.retry_after)
        return answer
    except WeChatError as err:
        return _error(err.errcode, err.errmsg)
    except ProblemError as err:
        return _error(ERRCODES.get(err.slug, -1), err.detail or err.title)
    except (KeyError, TypeError, ValueError, AttributeError):
        return _error(47001, "data format error")


Token = Annotated[str, Query(max_length=200)]


@router.get("/token", responses=RESPONSES, openapi_extra=OPEN)
async def token(
    request: Request,
    grant_type: Annotated[str, Query(max_length=40)] = "",
    appid: Annotated[str, Query(max_length=64)] = "",
    secret: Annotated[str, Query(max_length=128)] = "",
) -> JSONResponse:
    async def work() -> JSONResponse:
        if grant_type != "client_credential":
            raise WeChatError(40002, "invalid grant_type")
        if not appid:
            raise WeChatError(41002, "appid missing")
        if not secret:
            raise WeChatError(41004, "appsecret missing")
        issued, expires_in = await _service(request).issue_token(appid, secret)
        return JSONResponse({"access_token": issued, "expires_in": expires_in})

    return await _answer(work)


def _body_from_wechat(data: dict[str, Any]) -> dict[str, Any]:
    kind = data.get("msgtype")
    if kind == "text":
        return {"text": str(data["text"]["content"])}
    if kind == "news":
        article = data["news"]["articles"][0]
        return {
            "card": {
                "type": "article",
                "title": str(article.get("title", "")),
                "description": str(article.get("description", "")),
                "url": str(article.get("url", "")),
            }
        }
    if kind == "miniprogrampage":
        page = data["miniprogrampage"]
        return {
            "card": {
                "type": "miniprogram",
                "title": str(page.get("title", "")),
                "appid": str(page.get("appid", "")),
                "pagepath": str(page.get("pagepath", "")),
            }
        }
    if kind == "wxcard":  # a coupon card: card_id is the brand's coupon campaign
        return {"card": {"type": "coupon", "campaign_id": str(data["wxcard"]["card_id"])}}
    if kind in ("image", "voice", "video"):
        media_id = uuid.UUID(str(data[kind]["media_id"]))
        return {
            "card": {
                "type": kind,
                "title": str(data[kind].get("title", ""))[:200],
                "description": str(data[kind].get("description", ""))[:500],
                "url": f"/api/v1/accounts/media/{media_id}",
            }
        }
    raise WeChatError(40008, "invalid message type")


MESSAGE_SCHEMA = {
    "type": "object",
    "properties": {"touser": {"type": "string"}, "msgtype": {"type": "string"}},
}


@router.post("/message/custom/send", responses=RESPONSES, openapi_extra=_body_doc(MESSAGE_SCHEMA))
async def custom_send(request: Request, access_token: Token = "") -> JSONResponse:
    """Customer-service message to one follower (within the 48-hour window)."""

    async def work() -> JSONResponse:
        account_id = await _caller(request, access_token)
        data = await _json(request)
        await _service(request).brand_send(account_id, str(data["touser"]), _body_from_wechat(data))
        return _ok()

    return await _answer(work)


MASS_SCHEMA = {
    "type": "object",
    "properties": {"filter": {"type": "object"}, "msgtype": {"type": "string"}},
}


@router.post("/message/mass/sendall", responses=RESPONSES, openapi_extra=_body_doc(MASS_SCHEMA))
async def mass_send(request: Request, access_token: Token = "") -> JSONResponse:
    """Broadcast to every follower or to a tag (counts against the account's quota)."""

    async def work() -> JSONResponse:
        account_id = await _caller(request, access_token)
        data = await _json(request)
        rule = data.get("filter") or {"is_to_all": True}
        tag = rule.get("tag_id", rule.get("group_id"))  # older SDKs still say group_id
        tag_id = None if rule.get("is_to_all") else int(str(tag))
        item = await _service(request).broadcast(account_id, _body_from_wechat(data), tag_id=tag_id)
        return _ok(msg_id=item.id.int % 2**53, msg_data_id=item.id.int % 2**31)

    return await _answer(work)


MENU_SCHEMA = {"type": "object", "properties": {"button": {"type": "array"}}}


@router.post("/menu/create", responses=RESPONSES, openapi_extra=_body_doc(MENU_SCHEMA))
async def menu_create(request: Request, access_token: Token = "") -> JSONResponse:
    async def work() -> JSONResponse:
        account_id = await _caller(request, access_token)
        data = await _json(request)
        buttons = data.get("button")
        if not isinstance(buttons, list) or not all(isinstance(b, dict) for b in buttons):
            raise WeChatError(40016, "invalid button size")
        await _service(request).set_menu(account_id, buttons)
        return _ok()

    return await _answer(work)


@router.get("/menu/get", responses=RESPONSES, openapi_extra=OPEN)
async def menu_get(request: Request, access_token: Token = "") -> JSONResponse:
    async def work() -> JSONResponse:
        account_id = await _caller(request, access_token)
        view = await _service(request).account(account_id)
        if not view.menu:
            raise WeChatError(46003, "menu no exist")
        return JSONResponse({"menu": {"button": view.menu}})

    return await _answer(work)


@router.get("/menu/delete", responses=RESPONSES, openapi_extra=OPEN)
async def menu_delete(request: Request, access_token: Token = "") -> JSONResponse:
    async def work() -> JSONResponse:
        account_id = await _caller(request, access_token)
        await _service(request).set_menu(account_id, [])
        return _ok()

    return await _answer(work)


@router.get("/user/info", responses=RESPONSES, openapi_extra=OPEN)
async def user_info(
    request: Request,
    access_token: Token = "",
    openid: Annotated[str, Query(max_length=64)] = "",
    lang: Annotated[str, Query(max_length=10)] = "zh_CN",
) -> JSONResponse:
    """A follower as the brand may see them: openid, unionid, nickname, avatar — no phone."""

    async def work() -> JSONResponse:
        account_id = await _caller(request, access_token)
        try:
            view = await _service(request).follower(account_id, openid)
        except ProblemError as err:
            if err.slug != "accounts-not-following":
                raise
            return JSONResponse({"subscribe": 0, "openid": openid})
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "subscribe": 1,
                "openid": view.openid,
                "unionid": view.unionid,
                "nickname": view.nickname,
                "headimgurl": f"{base}/api/v1/identity/avatars/{view.avatar_id}"
                if view.avatar_id
                else "",
                "language": lang,
                "subscribe_time": int(view.followed_at.timestamp()),
                "remark": "",
                "groupid": 0,
                "tagid_list": view.tag_ids,
                "subscribe_scene": "ADD_SCENE_QR_CODE" if view.scene else "ADD_SCENE_PROFILE_CARD",
                "qr_scene": 0,
                "qr_scene_str": view.scene,
            }
        )

    return await _answer(work)


@router.get("/user/get", responses=RESPONSES, openapi_extra=OPEN)
async def user_get(
    request: Request,
    access_token: Token = "",
    next_openid: Annotated[str, Query(max_length=64)] = "",
) -> JSONResponse:
    async def work() -> JSONResponse:
        account_id = await _caller(request, access_token)
        total, openids = await _service(request).followers(
            account_id, after_openid=next_openid, count=10000
        )
        return JSONResponse(
            {
                "total": total,
                "count": len(openids),
                "data": {"openid": openids},
                "next_openid": openids[-1] if openids else "",
            }
        )

    return await _answer(work)


@router.get("/tags/get", responses=RESPONSES, openapi_extra=OPEN)
async def tags_get(request: Request, access_token: Token = "") -> JSONResponse:
    async def work() -> JSONResponse:
        account_id = await _caller(request, access_token)
        found = await _service(request).tags(account_id)
        return JSONResponse({"tags": [{"id": i, "name": n, "count": c} for i, n, c in found]})

    return await _answer(work)


TAG_SCHEMA = {"type": "object", "properties": {"tag": {"type": "object"}}}


@router.post("/tags/create", responses=RESPONSES, openapi_extra=_body_doc(TAG_SCHEMA))
async def tags_create(request: Request, access_token: Token = "") -> JSONResponse:
    async def work() -> JSONResponse:
        account_id = await _caller(request, access_token)
        name = str((await _json(request))["tag"]["name"]).strip()
        if not 0 < len(name) <= 30 or "\x00" in name:
            raise WeChatError(45158, "tag name too long")
        tag_id, created = await _service(request).create_tag(account_id, name)
        return JSONResponse({"tag": {"id": tag_id, "name": created}})

    return await _answer(work)


TAGGING_SCHEMA = {
    "type": "object",
    "properties": {"openid_list": {"type": "array"}, "tagid": {"type": "integer"}},
}


async def _tagging(request: Request, access_token: str, remove: bool) -> JSONResponse:
    async def work() -> JSONResponse:
        account_id = await _caller(request, access_token)
        data = await _json(request)
        openids = [str(o) for o in data["openid_list"]][:50]
        await _service(request).tag_followers(
            account_id, int(data["tagid"]), openids, remove=remove
        )
        return _ok()

    return await _answer(work)


@router.post(
    "/tags/members/batchtagging", responses=RESPONSES, openapi_extra=_body_doc(TAGGING_SCHEMA)
)
async def batch_tagging(request: Request, access_token: Token = "") -> JSONResponse:
    return await _tagging(request, access_token, remove=False)


@router.post(
    "/tags/members/batchuntagging", responses=RESPONSES, openapi_extra=_body_doc(TAGGING_SCHEMA)
)
async def batch_untagging(request: Request, access_token: Token = "") -> JSONResponse:
    return await _tagging(request, access_token, remove=True)


QR_SCHEMA = {
    "type": "object",
    "properties": {"action_name": {"type": "string"}, "action_info": {"type": "object"}},
}


@router.post("/qrcode/create", responses=RESPONSES, openapi_extra=_body_doc(QR_SCHEMA))
async def qrcode_create(request: Request, access_token: Token = "") -> JSONResponse:
    """A QR code carrying a scene (which store or poster it was scanned from)."""

    async def work() -> JSONResponse:
        account_id = await _caller(request, access_token)
        data = await _json(request)
        scene_info = data.get("action_info", {}).get("scene", {})
        scene = str(scene_info.get("scene_str") or scene_info.get("scene_id") or "")[:64]
        service = _service(request)
        base = request.app.state.settings.public_url or str(request.base_url)
        url, _svg = service.qr_payload(base, await service.account(account_id), scene)
        expire = data.get("expire_seconds")
        fields: dict[str, Any] = {"ticket": quote(url, safe=""), "url": url}
        if "LIMIT" not in str(data.get("action_name", "")):
            fields["expire_seconds"] = int(expire or 60)
        return JSONResponse(fields)

    return await _answer(work)


TEMPLATE_SEND_SCHEMA = {
    "type": "object",
    "properties": {
        "touser": {"type": "string"},
        "template_id": {"type": "string"},
        "url": {"type": "string"},
        "data": {"type": "object"},
    },
}


async def _template_send(request: Request, access_token: str) -> Response:
    async def work() -> Response:
        account_id = await _caller(request, access_token)
        data = await _json(request)
        fields = data.get("data") or {}
        if not isinstance(fields, dict):
            raise WeChatError(47001, "data format error")
        program = data.get("miniprogram")
        url = str(data.get("url") or data.get("page") or "")
        if isinstance(program, dict) and program.get("appid"):
            url = (
                "/mp/"
                + quote(str(program["appid"]), safe="")
                + "/"
                + str(program.get("pagepath", "")).lstrip("/")
            )
        item = await _service(request).send_template(
            account_id,
            str(data["touser"]),
            str(data["template_id"]),
            fields,
            url=url,
            title=str(data.get("title") or ""),
        )
        return _ok(msgid=item.id.int % 2**53)

    return await _answer(work)


@router.post(
    "/message/template/send", responses=RESPONSES, openapi_extra=_body_doc(TEMPLATE_SEND_SCHEMA)
)
async def template_send(request: Request, access_token: Token = "") -> Response:
    """A template message to a follower who accepted it (outside the 48-hour window too)."""
    return await _template_send(request, access_token)


@router.post(
    "/message/template/subscribe",
    responses=RESPONSES,
    openapi_extra=_body_doc(TEMPLATE_SEND_SCHEMA),
)
async def template_subscribe_send(request: Request, access_token: Token = "") -> Response:
    """The one-time subscription message: same rule, one message per acceptance."""
    return await _template_send(request, access_token)


@router.post(
    "/message/subscribe/bizsend", responses=RESPONSES, openapi_extra=_body_doc(TEMPLATE_SEND_SCHEMA)
)
async def subscribe_bizsend(request: Request, access_token: Token = "") -> Response:
    """Service accounts' subscription notification: same rule, one message per acceptance."""
    return await _template_send(request, access_token)


@router.get("/template/get_all_private_template", responses=RESPONSES, openapi_extra=OPEN)
async def templates_get(request: Request, access_token: Token = "") -> Response:
    async def work() -> Response:
        account_id = await _caller(request, access_token)
        rows = await _service(request).templates(account_id)
        return JSONResponse(
            {
                "template_list": [
                    {
                        "template_id": r.id,
                        "title": r.title,
                        "primary_industry": r.primary_industry,
                        "deputy_industry": r.deputy_industry,
                        "content": r.content,
                        "example": r.example,
                    }
                    for r in rows
                ]
            }
        )

    return await _answer(work)


TEMPLATE_ID_SCHEMA = {"type": "object", "properties": {"template_id": {"type": "string"}}}
TEMPLATE_SHORT_SCHEMA = {
    "type": "object",
    "properties": {"template_id_short": {"type": "string"}},
    "required": ["template_id_short"],
}


@router.post(
    "/template/api_add_template",
    responses=RESPONSES,
    openapi_extra=_body_doc(TEMPLATE_SHORT_SCHEMA),
)
async def template_add(request: Request, access_token: Token = "") -> Response:
    """Add a template of the platform's library to the account's own: its template_id."""

    async def work() -> Response:
        account_id = await _caller(request, access_token)
        short_id = (await _json(request))["template_id_short"]
        if not isinstance(short_id, str):
            raise ProblemError("validation-error", "template_id_short is a string.")
        row = await _service(request).add_from_library(account_id, short_id[:32])
        return JSONResponse({"errcode": 0, "errmsg": "ok", "template_id": row.id})

    return await _answer(work)


@router.post(
    "/template/del_private_template",
    responses=RESPONSES,
    openapi_extra=_body_doc(TEMPLATE_ID_SCHEMA),
)
async def template_delete(request: Request, access_token: Token = "") -> Response:
    async def work() -> Response:
        account_id = await _caller(request, access_token)
        template_id = str((await _json(request))["template_id"])[:64]
        await _service(request).delete_template(account_id, template_id)
        return _ok()

    return await _answer(work)


UPLOAD_DOC = {
    **OPEN,
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"media": {"type": "string", "format": "binary"}},
                }
            }
        },
    },
}


@router.post("/media/upload", responses=RESPONSES, openapi_extra=UPLOAD_DOC)
async def media_upload(
    request: Request,
    access_token: Token = "",
    type: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    """Temporary media (3 days): image, voice, video or thumb, checked by content and size."""

    async def work() -> Response:
        account_id = await _caller(request, access_token)
        if type not in MEDIA_LIMITS:
            raise WeChatError(40004, "invalid media type")
        try:
            form = await request.form(max_files=1, max_fields=4)
        except Exception:
            raise WeChatError(41005, "media data missing") from None
        media = form.get("media")
        if not isinstance(media, UploadFile):
            raise WeChatError(41005, "media data missing")
        data = await media.read(MEDIA_LIMITS[type] + 1)
        row = await _service(request).upload_media(account_id, type, data)
        return JSONResponse(
            {
                "type": row.kind,
                "media_id": str(row.id),
                "created_at": int(row.created_at.timestamp()),
            }
        )

    return await _answer(work)


MEDIA_RESULT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file, or WeChat-shaped JSON {errcode, errmsg}",
        "content": {
            "application/json": WECHAT_JSON,
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.get("/media/get", responses=MEDIA_RESULT, openapi_extra=OPEN)
async def media_get(
    request: Request,
    access_token: Token = "",
    media_id: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    async def work() -> Response:
        account_id = await _caller(request, access_token)
        try:
            wanted = uuid.UUID(media_id)
        except ValueError:
            raise WeChatError(40007, "invalid media_id") from None
        try:
            row = await _service(request).media(account_id, wanted)
        except ProblemError:
            raise WeChatError(40007, "invalid media_id") from None
        return Response(
            row.data,
            media_type=row.content_type,
            headers={"Content-Disposition": f'attachment; filename="{row.id}"'},
        )

    return await _answer(work)
