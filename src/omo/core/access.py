"""Who may call a route, declared on the route itself.

Every route says its access level through `openapi_extra=access(...)`; the authorization
matrix test reads these declarations, calls every route as every role (with another tenant's
ids) and fails when a route has no declaration or answers someone it should refuse.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

ACCESS_KEY = "x-omo-access"


class Access(StrEnum):
    ANONYMOUS = "anonymous"  # anyone, logged in or not
    PERSON = "person"  # any logged-in person, acting on their own account
    OWNER = "owner"  # the person who owns the resource named in the path
    BRAND_MEMBER = "brand-member"  # a member of the brand organisation, with a role
    CARE_AGENT = "care-agent"  # an agent of the team serving the conversation
    MINIAPP = "miniapp"  # a mini program's backend, by appid and secret
    OPERATOR = "operator"  # the platform operator


def access(
    level: Access, *, resource: str | None = None, roles: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The route's declaration, stored in its OpenAPI operation as `x-omo-access`.

    `resource` names the kind of thing the path's id points at (e.g. "identity.device"), so
    the matrix can create one that belongs to someone else and try to reach it.
    """
    if level is Access.OWNER and resource is None:
        raise ValueError("an owner-only route must name its resource kind")
    declaration: dict[str, Any] = {"level": level.value}
    if resource:
        declaration["resource"] = resource
    if roles:
        declaration["roles"] = list(roles)
    return {ACCESS_KEY: declaration}


def declared_access(openapi_extra: dict[str, Any] | None) -> dict[str, Any] | None:
    if not openapi_extra:
        return None
    declaration = openapi_extra.get(ACCESS_KEY)
    return declaration if isinstance(declaration, dict) else None
