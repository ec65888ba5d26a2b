"""A mini program's own backend: the origins its organisation registered (WeChat's "request
legal domains") and the host's `request` bridge call, which fetches from them on the frame's
behalf.

The frame has no network of its own (its CSP says `connect-src 'none'`), so the platform is
the only way out, and it goes only to a registered origin: https, or http on loopback when
the operator allows private destinations (development, tests). The fetch carries no cookies
and no credentials of the person, follows no redirect, is cut after a timeout and at a size
cap, and only JSON or text comes back: `{statusCode, header, data}`.
"""

from __future__ import annotations

import functools
import json
import re
import ssl
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from sqlalchemy import delete, select

from omo.core.clock import Clock
from omo.core.db import Database
from omo.core.errors import ProblemError, register
from omo.core.outbound import RefusedDestination, check_destination
from omo.miniapps.models import MiniApp, RequestOrigin
from omo.miniapps.service import MiniAppService

register("miniapps-bad-origin", 422, "The backend origin is not valid")
register("miniapps-request-refused", 403, "The mini program may not reach this address")
register("miniapps-request-invalid", 422, "The request is not valid")
register("miniapps-request-failed", 502, "The mini program's server did not answer")
register("miniapps-request-too-large", 502, "The mini program's server answered too much")

MAX_ORIGINS = 20  # as many "request legal domains" as WeChat allows
MAX_REQUEST_BYTES = 256 * 1024
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_HEADERS = 32
REQUEST_TIMEOUT_SECONDS = 10.0
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
# Headers the frame may not set: the transport's own, cookies, and what would make the
# request look like it came from somewhere else.
FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "cookie",
        "cookie2",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "origin",
        "referer",
        "forwarded",
        "via",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-real-ip",
        "x-omo-miniapp",
    }
)
# Headers never handed back to the frame.
HIDDEN_HEADERS = frozenset({"set-cookie", "set-cookie2"})


@dataclass(frozen=True)
class BackendResponse:
    status: int
    headers: dict[str, str]
    data: Any


def normalise_origin(value: str, *, allow_loopback_http: bool) -> str:
    """`scheme://host[:port]`, lower-cased, default port dropped; no path, query, fragment
    nor credentials. https, or http on loopback when allowed."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise ProblemError(
            "miniapps-bad-origin", "Give an origin like https://api.example.org."
        ) from None
    host = (parts.hostname or "").lower()
    if (
        not host
        or parts.username
        or parts.password
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ProblemError("miniapps-bad-origin", "Give an origin like https://api.example.org.")
    if parts.scheme == "http":
        if not (allow_loopback_http and host in LOOPBACK):
            raise ProblemError(
                "miniapps-bad-origin", "Use https (http only on this computer, in development)."
            )
    elif parts.scheme != "https":
        raise ProblemError("miniapps-bad-origin", "Use https.")
    default = 443 if parts.scheme == "https" else 80
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}" + (f":{port}" if port and port != default else "")


def origin_of(url: str) -> str | None:
    """The origin of a URL the frame asks for (None when it is not an http(s) URL)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        return None
    default = 443 if parts.scheme == "https" else 80
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}" + (f":{port}" if port and port != default else "")


@functools.cache
def _tls() -> ssl.SSLContext:
    """Building a context loads the CA bundle (tens of milliseconds): once per process."""
    return ssl.create_default_context()


def _body(data: Any) -> tuple[bytes | None, str | None]:
    """The request body and its default content type: objects as JSON, strings as text."""
    if data is None:
        return None, None
    if isinstance(data, str):
        return data.encode(), "text/plain; charset=utf-8"
    return json.dumps(data, separators=(",", ":")).encode(), "application/json"


def _query_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _headers(given: dict[str, Any]) -> dict[str, str]:
    if len(given) > MAX_HEADERS:
        raise ProblemError("miniapps-request-invalid", "Send at most 32 headers.")
    headers: dict[str, str] = {}
    for name, value in given.items():
        lowered = str(name).lower()
        text = str(value)
        if (
            not HEADER_NAME.match(str(name))
            or lowered in FORBIDDEN_HEADERS
            or lowered.startswith(("proxy-", "sec-"))
            or len(text) > 1024
            or any(c in text for c in "\r\n\0")
        ):
            raise ProblemError(
                "miniapps-request-invalid",
                "The header %(name)s may not be sent.",
                params={"name": str(name)[:64]},
            )
        headers[lowered] = text
    return headers


def _decode(content: bytes, content_type: str, data_type: str) -> Any:
    text = content.decode("utf-8", errors="replace")
    if data_type == "json" and ("json" in content_type or text.lstrip()[:1] in ("{", "[")):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


class BackendService:
    """Registered origins and the fetch. `allow_loopback_http` (the operator's "private
    destinations allowed" switch) lets development and tests use http://127.0.0.1:PORT."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        miniapps: MiniAppService,
        *,
        allow_private_destinations: bool = False,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.db, self.clock, self.miniapps = db, clock, miniapps
        self.allow_private = allow_private_destinations
        self.timeout = timeout
        self.transport = transport

    # -- registered origins ----------------------------------------------------------------

    async def origins(self, app_id: uuid.UUID) -> list[str]:
        async with self.db.sessions() as session:
            rows = await session.scalars(
                select(RequestOrigin.origin)
                .where(RequestOrigin.app_id == app_id)
                .order_by(RequestOrigin.origin)
            )
            return list(rows)

    async def origins_for_member(self, actor: uuid.UUID, app_id: uuid.UUID) -> list[str]:
        await self.miniapps.app(actor, app_id)
        return await self.origins(app_id)

    async def set_origins(self, app_id: uuid.UUID, values: list[str]) -> list[str]:
        """Replace the registered origins (each validated; at most 20)."""
        if len(values) > MAX_ORIGINS:
            raise ProblemError(
                "miniapps-bad-origin",
                "Register at most %(max)d origins.",
                params={"max": MAX_ORIGINS},
            )
        chosen = sorted(
            {normalise_origin(v, allow_loopback_http=self.allow_private) for v in values}
        )
        for origin in chosen:
            try:
                await check_destination(origin, allow_private=self.allow_private)
            except RefusedDestination:
                raise ProblemError(
                    "miniapps-bad-origin",
                    "%(origin)s cannot be reached from the internet.",
                    params={"origin": origin},
                ) from None
        now = self.clock.now()
        async with self.db.transaction() as session:
            if await session.get(MiniApp, app_id) is None:
                raise ProblemError("not-found", "No such mini program.")
            await session.execute(delete(RequestOrigin).where(RequestOrigin.app_id == app_id))
            for origin in chosen:
                session.add(RequestOrigin(app_id=app_id, origin=origin, created_at=now))
        return chosen

    async def set_origins_as_manager(
        self, actor: uuid.UUID, app_id: uuid.UUID, values: list[str]
    ) -> list[str]:
        await self.miniapps.require_manager(actor, app_id)
        return await self.set_origins(app_id, values)

    # -- the bridge's `request` ------------------------------------------------------------

    async def request(
        self,
        appid: str,
        user_id: uuid.UUID,
        *,
        url: str,
        method: str,
        headers: dict[str, Any],
        data: Any,
        data_type: str,
        trial: bool = False,
    ) -> BackendResponse:
        """Fetch `url` for the mini program running in the person's host, only if its origin
        is one the organisation registered."""
        launch = await self.miniapps.launch(appid, None, user_id, trial=trial)
        app = await self.miniapps.require(launch.appid, user_id, None)
        verb = method.upper()
        if verb not in METHODS:
            raise ProblemError("miniapps-request-invalid", "Use GET, POST, PUT, PATCH or DELETE.")
        origin = origin_of(url)
        if origin is None or len(url) > 2048:
            raise ProblemError("miniapps-request-refused", "Give an http(s) URL of its server.")
        if origin not in await self.origins(app.id):
            raise ProblemError(
                "miniapps-request-refused",
                "%(origin)s is not one of the mini program's registered servers.",
                params={"origin": origin},
            )
        if verb in ("GET", "HEAD"):
            # As wx.request does: an object sent with GET becomes the query string.
            if isinstance(data, dict) and data:
                query = urlencode({str(k): _query_value(v) for k, v in data.items()})
                url = f"{url}{'&' if '?' in url else '?'}{query}"
            body, content_type = None, None
        else:
            body, content_type = _body(data)
        if body is not None and len(body) > MAX_REQUEST_BYTES:
            raise ProblemError("miniapps-request-invalid", "Send at most 256 KiB.")
        sent = _headers(headers)
        if content_type and "content-type" not in sent:
            sent["content-type"] = content_type
        sent["x-omo-miniapp"] = launch.appid
        try:  # again at every call: DNS answers change
            await check_destination(url, allow_private=self.allow_private)
        except RefusedDestination:
            raise ProblemError(
                "miniapps-request-refused", "The server cannot be reached."
            ) from None
        return await self._fetch(verb, url, sent, body, data_type)

    async def _fetch(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, data_type: str
    ) -> BackendResponse:
        # A new client per call: no cookie jar, no connection shared between people. The TLS
        # context (certificates loaded once) is shared: it holds no one's state.
        async with httpx.AsyncClient(
            timeout=self.timeout, follow_redirects=False, transport=self.transport, verify=_tls()
        ) as http:
            try:
                async with http.stream(method, url, headers=headers, content=body) as response:
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
                        raise ProblemError(
                            "miniapps-request-too-large", "The answer is over 1 MiB."
                        )
                    content = bytearray()
                    async for chunk in response.aiter_bytes():
                        content.extend(chunk)
                        if len(content) > MAX_RESPONSE_BYTES:
                            raise ProblemError(
                                "miniapps-request-too-large", "The answer is over 1 MiB."
                            )
            except httpx.TimeoutException:
                raise ProblemError("miniapps-request-failed", "The server took too long.") from None
            except httpx.HTTPError:
                raise ProblemError(
                    "miniapps-request-failed", "The server did not answer."
                ) from None
        shown = {
            name.lower(): value
            for name, value in response.headers.items()
            if name.lower() not in HIDDEN_HEADERS
        }
        data = _decode(bytes(content), shown.get("content-type", ""), data_type)
        return BackendResponse(response.status_code, shown, data)
