"""Who is calling: the principal behind a bearer token or session cookie.

`core` knows no context, so the identity context registers how a token is resolved
(`app.state.authenticator`) and the dependencies here only ask it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import cookie_parser
from starlette.types import Scope

from omo.core.errors import ProblemError

SESSION_COOKIE = "omo_session"
CSRF_HEADER = "X-OMO-CSRF"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Principal:
    """A person acting through one of their device sessions."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    locale: str | None = None


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Principal | None: ...


_bearer = HTTPBearer(auto_error=False, description="A session token from login")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="Web session")


async def optional_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> Principal | None:
    return await _principal(
        request.app.state.authenticator,
        request.scope.setdefault("state", {}),
        bearer.credentials if bearer else None,
        cookie,
        request.method,
        lambda: bool(request.headers.get(CSRF_HEADER)),
    )


async def principal_of_scope(scope: Scope) -> Principal | None:
    """`optional_principal` for an ASGI layer that answers without the router (the flash-sale
    claim): the same bearer, cookie and CSRF rules read straight from the scope's headers,
    the same authenticator, the same request state written."""
    authorization: str | None = None
    csrf: str | None = None
    cookies: dict[str, str] = {}
    for key, value in scope["headers"]:
        if key == b"authorization":
            if authorization is None:
                authorization = value.decode("latin-1")
        elif key == b"cookie":
            cookies.update(cookie_parser(value.decode("latin-1")))
        elif key == _CSRF_KEY and csrf is None:
            csrf = value.decode("latin-1")
    bearer: str | None = None
    if authorization:  # as fastapi's HTTPBearer(auto_error=False)
        scheme, _, param = authorization.partition(" ")
        credentials = param.strip()
        if scheme and credentials and scheme.lower() == "bearer":
            bearer = credentials
    return await _principal(
        scope["app"].state.authenticator,
        scope.setdefault("state", {}),
        bearer,
        cookies.get(SESSION_COOKIE) or None,
        scope["method"],
        lambda: bool(csrf),
    )


_CSRF_KEY = CSRF_HEADER.lower().encode("latin-1")


async def _principal(
    authenticator: Authenticator,
    state: dict[str, Any],
    bearer: str | None,
    cookie: str | None,
    method: str,
    csrf_sent: Callable[[], bool],
) -> Principal | None:
    token = bearer or cookie
    if not token:
        return None
    if not bearer and method not in SAFE_METHODS and not csrf_sent():
        # A cookie rides along on cross-site requests; a custom header cannot be added by
        # another site without a CORS preflight we never grant.
        raise ProblemError("csrf-failed", "Send the X-OMO-CSRF header with cookie sessions.")
    principal = await authenticator.authenticate(token)
    if principal is None:
        raise ProblemError("unauthenticated", "Your session has ended; log in again.")
    state["principal"] = principal
    if principal.locale:
        state["locale"] = principal.locale
    return principal


async def require_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise ProblemError("unauthenticated", "Log in to do this.")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
MaybePrincipal = Annotated[Principal | None, Depends(optional_principal)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
