"""The context-free part of a route answered without the router (a "direct route").

A hot route (a payment's scan, a flash sale's claim) can cost more in FastAPI's route
matching and dependency solving than in its own work. A context's ASGI layer may then answer
it directly, as long as the answer is the routed one, byte for byte. What such a layer needs
and no context owns is here: reading the body while keeping it for the router (a request the
layer does not take, e.g. one whose body does not validate, is passed on unread), FastAPI's
rule for when a body is JSON, the answer's bytes and headers as a Starlette `Response` sends
them, and an exception answered as the app's own handlers answer it (a problem's bytes kept
per problem, path and language: a refusal is usually one of a few).
"""

from __future__ import annotations

import inspect
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from omo.core.errors import PROBLEM_MEDIA_TYPE, ProblemError, problem_content
from omo.core.i18n import locale_of, translations

JSON = b"application/json"
_PROBLEM_JSON = PROBLEM_MEDIA_TYPE.encode("latin-1")


async def read_body(receive: Receive) -> bytes:
    """The whole request body, as Starlette's `Request.body` reads it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect  # as Starlette's: nobody is left to answer


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands out the body already read, then the server's own messages
    (a disconnect), so the router reads the request as if nobody had."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def json_content(scope: Scope) -> bool:
    """Whether FastAPI would parse this request's body as JSON: its first Content-Type is
    `application/json` (what clients send; any other type is left to the router)."""
    for key, value in scope["headers"]:
        if key == b"content-type":
            media_type: bytes = value.split(b";", 1)[0].strip().lower()
            return media_type == JSON
    return False


async def send_answer(send: Send, status: int, body: bytes, media_type: bytes = JSON) -> None:
    """The bytes and headers of the Starlette `Response` the router would send."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-length", str(len(body)).encode("latin-1")),
                (b"content-type", media_type),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Problems:
    """Answers an exception as the app's exception handlers (Starlette's
    `ExceptionMiddleware`) would; a plain `ProblemError`'s bytes are kept."""

    def __init__(self, kept: int = 512) -> None:
        self._kept = kept
        self._known: dict[tuple[str, int, str, str | None, str, str], bytes] = {}

    async def answer(self, scope: Scope, receive: Receive, send: Send, error: Exception) -> bool:
        """Send the app's answer to `error`; False when no handler of the app's takes it
        (the caller re-raises it, to the server-error handler, as the router would)."""
        if isinstance(error, ProblemError) and not (
            error.headers or error.params or error.extensions
        ):
            await send_answer(send, error.status, self._problem(scope, error), _PROBLEM_JSON)
            return True
        handler = _handler_for(scope["app"].exception_handlers, error)
        if handler is None:
            return False
        request = Request(scope, receive)
        response = handler(request, error)
        if inspect.isawaitable(response):
            response = await response
        assert isinstance(response, Response)
        await response(scope, receive, send)
        return True

    def _problem(self, scope: Scope, problem: ProblemError) -> bytes:
        state = scope.setdefault("state", {})
        locale = state.get("locale")
        if not isinstance(locale, str):
            # The platform middleware always chose one; without it, the handler's own rule.
            locale = locale_of(Request(scope))
        path: str = scope["path"]
        key = (problem.slug, problem.status, problem.title, problem.detail, locale, path)
        known = self._known.get(key)
        if known is None:
            content = problem_content(
                translations(locale).gettext,
                path,
                problem.slug,
                problem.status,
                problem.title,
                problem.detail,
            )
            known = bytes(JSONResponse(content).body)  # the handler's own rendering
            if len(self._known) >= self._kept:
                self._known.clear()
            self._known[key] = known
        return known


def _handler_for(handlers: dict[Any, Any], error: Exception) -> Any:
    """Starlette's lookup: the nearest class in the error's MRO with a handler; `Exception`
    (and 500) belong to the server-error middleware, not to the one routes raise into."""
    for cls in type(error).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None
