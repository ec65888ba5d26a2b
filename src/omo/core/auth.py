"""Who is calling: the principal behind a bearer token or session cookie.

`core` knows no context, so the identity context registers how a token is resolved
(`app.state.authenticator`) and the dependencies here only ask it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

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
    token = bearer.credentials if bearer else cookie
    if not token:
        return None
    if not bearer and request.method not in SAFE_METHODS and not request.headers.get(CSRF_HEADER):
        # A cookie rides along on cross-site requests; a custom header cannot be added by
        # another site without a CORS preflight we never grant.
        raise ProblemError("csrf-failed", "Send the X-OMO-CSRF header with cookie sessions.")
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.authenticate(token)
    if principal is None:
        raise ProblemError("unauthenticated", "Your session has ended; log in again.")
    request.state.principal = principal
    if principal.locale:
        request.state.locale = principal.locale
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
