"""ASGI middleware every response passes through: locale, body size limit, security headers."""

from __future__ import annotations

import json
import secrets
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omo.core.i18n import SUPPORTED, negotiate, translations

FRAMEABLE_PREFIX = "/mp/"
LANGUAGE_COOKIE = "omo_lang"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


@lru_cache(maxsize=256)
def _negotiated(accept_language: str | None, default: str) -> str:
    """`negotiate` remembered per header value: browsers send a handful of distinct ones."""
    return negotiate(accept_language, default)


class BodyTooLargeError(Exception):
    pass


class PlatformMiddleware:
    """Pure ASGI (no per-request task or buffering), so it costs microseconds per request."""

    def __init__(self, app: ASGIApp, *, max_body: int, tls: bool, default_locale: str) -> None:
        self.app = app
        self.max_body = max_body
        self.tls = tls
        self.default_locale = default_locale

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        state["locale"] = self._choose_locale(scope)
        state["csp_nonce"] = secrets.token_urlsafe(16)
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
            await self._refuse(
                state["locale"],
                scope,
                send,
                400,
                "http-error",
                "Bad request",
                "Text must not contain NUL characters.",
            )
            return
        declared = _header(scope, b"content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            await self._too_large(state["locale"], scope, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLargeError
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                added = self._security_headers(scope, state["csp_nonce"])
                if any(key.lower() == b"content-security-policy" for key, _ in headers):
                    # A page that states its own policy (the mini program host, which frames
                    # the package origin) owns it; a second policy would only narrow it.
                    added = [(k, v) for k, v in added if k != b"content-security-policy"]
                message["headers"] = headers + added
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except BodyTooLargeError:
            await self._too_large(state["locale"], scope, send)

    def _choose_locale(self, scope: Scope) -> str:
        """An explicit choice (?lang=, then the switcher's cookie) beats the browser's header.

        A logged-in person's own setting is applied later, once they are authenticated.
        """
        raw_query: bytes = scope.get("query_string", b"")
        if raw_query:
            chosen: str = parse_qs(raw_query.decode("latin-1")).get("lang", [""])[0]
            if chosen in SUPPORTED:
                return chosen
        cookie = _header(scope, b"cookie")
        if cookie:
            chosen = cookie_parser(cookie).get(LANGUAGE_COOKIE, "")
            if chosen in SUPPORTED:
                return chosen
        accept = _header(scope, b"accept-language")
        if accept is not None and len(accept) > 200:  # kept ones stay small
            return negotiate(accept, self.default_locale)
        return _negotiated(accept, self.default_locale)

    def _security_headers(self, scope: Scope, nonce: str) -> list[tuple[bytes, bytes]]:
        frame_ancestors = "'self'" if scope["path"].startswith(FRAMEABLE_PREFIX) else "'none'"
        csp = (
            "default-src 'self'; "
            f"script-src 'self' 'nonce-{nonce}'; "
            "style-src 'self'; img-src 'self' data: blob:; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            f"frame-ancestors {frame_ancestors}"
        )
        headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (
                b"permissions-policy",
                b"camera=(self), geolocation=(self), microphone=(self), payment=(self)",
            ),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if frame_ancestors == "'none'":
            headers.append((b"x-frame-options", b"DENY"))
        if self.tls:
            headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
        return headers

    async def _too_large(self, locale: str, scope: Scope, send: Send) -> None:
        detail = translations(locale).gettext("Send at most %(limit)d bytes.") % {
            "limit": self.max_body
        }
        await self._refuse(
            locale,
            scope,
            send,
            413,
            "payload-too-large",
            "Request body too large",
            detail,
            translate_detail=False,
        )

    async def _refuse(
        self,
        locale: str,
        scope: Scope,
        send: Send,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        translate_detail: bool = True,
    ) -> None:
        """Answer before the app sees the request, still as translated problem+json."""
        _ = translations(locale).gettext
        body = json.dumps(
            {
                "type": "/problems/" + slug,
                "title": _(title),
                "status": status,
                "detail": _(detail) if translate_detail else detail,
                "instance": scope["path"].replace("\x00", ""),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
