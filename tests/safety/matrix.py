"""The authorization matrix: every route, called as every role, with another tenant's ids.

A route's declared access (`omo.core.access`) says who may call it. `check_matrix` calls it
as each role and compares what happened with what was declared; `render_markdown` turns the
declarations into the table in docs/ACCESS_MATRIX.md.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute

from omo.contexts import CONTEXTS
from omo.core.access import ACCESS_KEY, Access, declared_access
from omo.web import pages

ROLES = ("anonymous", "person", "owner")
REFUSED = {401, 403, 404}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    declaration: dict[str, Any] | None

    @property
    def level(self) -> str | None:
        return self.declaration["level"] if self.declaration else None


@dataclass(frozen=True)
class Violation:
    route: str
    role: str
    problem: str


@dataclass
class Caller:
    """Credentials for a role; the two people are different tenants.

    Some routes end the caller's session (log out, revoke a device); `renew` logs in again.
    """

    headers: dict[str, str]
    renew: Callable[[], Awaitable[dict[str, str]]] | None = None

    async def ensure_valid(self, client: httpx.AsyncClient) -> None:
        if self.renew is None:
            return
        check = await client.get("/api/v1/identity/me", headers=self.headers)
        if check.status_code == 401:
            self.headers = await self.renew()


# kind -> async factory(owner_caller) -> path parameters naming a resource owned by that caller
ResourceFactory = Callable[[httpx.AsyncClient, Caller], Awaitable[dict[str, str]]]


def routes_of(app: FastAPI) -> list[Route]:
    """Every HTTP route: API operations from the OpenAPI document (the public contract, which
    carries each declaration), and the HTML pages (not in the document) from the routers."""
    found: dict[tuple[str, str], Route] = {}
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                declaration = operation.get(ACCESS_KEY)
                found[(method.upper(), path)] = Route(method.upper(), path, declaration)
    routers: list[Any] = [app.router, pages.router]
    routers += [importlib.import_module(f"omo.{name}.api").router for name in CONTEXTS]
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and not route.include_in_schema:
                for method in sorted(route.methods - {"HEAD"}):
                    found[(method, route.path)] = Route(
                        method, route.path, declared_access(route.openapi_extra)
                    )
    return sorted(found.values(), key=lambda r: (r.path, r.method))


def _placeholder(name: str) -> str:
    return str(uuid.UUID(int=1)) if name.endswith("_id") else "someone_else"


def _path(route: Route, params: dict[str, str]) -> str:
    path = route.path
    for name in _param_names(route.path):
        path = path.replace("{" + name + "}", params.get(name) or _placeholder(name))
    return path


def _param_names(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


def _refused(response: httpx.Response) -> bool:
    if response.status_code in REFUSED:
        return True
    location = response.headers.get("location", "")
    return response.status_code in (302, 303, 307) and location.startswith("/login")


async def _call(
    client: httpx.AsyncClient, route: Route, caller: Caller, params: dict[str, str]
) -> httpx.Response:
    body = {} if route.method in ("POST", "PUT", "PATCH") else None
    await caller.ensure_valid(client)
    response = await client.request(
        route.method, _path(route, params), json=body, headers=caller.headers
    )
    client.cookies.clear()
    return response


@dataclass
class Tenancy:
    """For a level beyond 'person': someone it admits to tenant A's resources (the insider),
    and someone of the same level at another tenant (the outsider), who must be refused."""

    insider: Caller
    outsider: Caller


async def check_matrix(
    app: FastAPI,
    client: httpx.AsyncClient,
    callers: dict[str, Caller],
    resources: dict[str, ResourceFactory],
    tenancies: dict[str, Tenancy] | None = None,
) -> list[Violation]:
    """Call every route as every role; return what contradicts the declarations."""
    tenancies = {
        Access.OWNER.value: Tenancy(insider=callers["owner"], outsider=callers["person"]),
        **(tenancies or {}),
    }
    violations: list[Violation] = []
    for route in routes_of(app):
        name = f"{route.method} {route.path}"
        if route.level is None:
            violations.append(Violation(name, "-", "no access declaration"))
        elif route.level == Access.ANONYMOUS:
            violations += await _check_anonymous_route(client, route, name, callers)
        elif route.level == Access.PERSON:
            violations += await _check_person_route(client, route, name, callers)
        elif route.level in tenancies:
            violations += await _check_tenant_route(
                client, route, name, callers, tenancies[route.level], resources
            )
        else:
            violations.append(
                Violation(name, "-", f"no test role for access level {route.level!r}; add one")
            )
    return violations


async def _check_anonymous_route(
    client: httpx.AsyncClient, route: Route, name: str, callers: dict[str, Caller]
) -> list[Violation]:
    response = await _call(client, route, callers["anonymous"], {})
    if response.status_code in (401, 403) or response.status_code >= 500:
        return [Violation(name, "anonymous", f"refused or failed: {response.status_code}")]
    return []


async def _check_person_route(
    client: httpx.AsyncClient, route: Route, name: str, callers: dict[str, Caller]
) -> list[Violation]:
    found: list[Violation] = []
    anonymous = await _call(client, route, callers["anonymous"], {})
    if not _refused(anonymous):
        found.append(Violation(name, "anonymous", f"answered {anonymous.status_code}"))
    person = await _call(client, route, callers["person"], {})
    if person.status_code in (401, 403) or person.status_code >= 500:
        found.append(Violation(name, "person", f"refused or failed: {person.status_code}"))
    return found


async def _check_tenant_route(
    client: httpx.AsyncClient,
    route: Route,
    name: str,
    callers: dict[str, Caller],
    tenancy: Tenancy,
    resources: dict[str, ResourceFactory],
) -> list[Violation]:
    """Anonymous, a plain person and the other tenant's insider are refused tenant A's
    resource; tenant A's insider is let through."""
    kind = (route.declaration or {}).get("resource")
    params: dict[str, str] = {}
    if kind:
        factory = resources.get(kind)
        if factory is None:
            return [Violation(name, "-", f"no resource factory for {kind!r}; add one")]
        await tenancy.insider.ensure_valid(client)
        params = await factory(client, tenancy.insider)
    strangers = {"anonymous": callers["anonymous"], "person": callers["person"]}
    if tenancy.outsider is not callers["person"]:
        strangers["outsider"] = tenancy.outsider
    found: list[Violation] = []
    for role, caller in strangers.items():
        response = await _call(client, route, caller, params)
        if not _refused(response):
            what = f"another's {kind}" if kind else "the route"
            found.append(Violation(name, role, f"reached {what}: {response.status_code}"))
    inside = await _call(client, route, tenancy.insider, params)
    if inside.status_code in REFUSED or inside.status_code >= 500:
        found.append(Violation(name, "insider", f"refused or failed: {inside.status_code}"))
    return found


def render_markdown(app: FastAPI) -> str:
    """The declared matrix as a table: ✓ may call, ✗ refused, ○ only their own resource."""
    header = (
        "# Access matrix\n\n"
        "Generated from the routes' declarations (`omo.core.access`) by "
        "`OMO_WRITE_DOCS=1 make unit PYTEST_ARGS=tests/safety`; a test fails when it is stale.\n"
        "Every row is also called as every role by tests/safety/test_authorization_matrix.py.\n\n"
        "✓ may call · ✗ refused · ○ only on resources they own (another's ids answer 404)\n\n"
        "| route | level | anonymous | person | owner of the resource |\n"
        "|---|---|---|---|---|\n"
    )
    marks = {
        "anonymous": ("✓", "✓", "✓"),
        "person": ("✗", "✓", "✓"),
        "owner": ("✗", "○", "✓"),
        "operator": ("✗", "✗", "✗"),  # only the platform's operators (settings OMO_OPERATORS)
    }
    rows = []
    for route in routes_of(app):
        level = route.level or "UNDECLARED"
        cells = marks.get(level, ("?", "?", "?"))
        resource = (
            f" ({route.declaration['resource']})"
            if route.declaration and route.declaration.get("resource")
            else ""
        )
        rows.append(
            f"| `{route.method} {route.path}` | {level}{resource} | " + " | ".join(cells) + " |"
        )
    return header + "\n".join(rows) + "\n"
