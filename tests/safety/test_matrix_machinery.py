"""The matrix itself is tested: it must catch an undeclared, an unprotected and a leaking route."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from tests.safety.matrix import Caller, ResourceFactory, Tenancy, check_matrix

from omo.core.access import Access, access
from omo.core.auth import CurrentPrincipal


def _problems_for(violations: list[object], path: str) -> list[str]:
    return [v.role + ": " + v.problem for v in violations if path in v.route]  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
async def _the_operator_exists(tenancies: dict[str, Tenancy]) -> None:
    """The payment factory has merchants approved by the matrix's operator, who must exist."""


async def test_a_route_without_a_declaration_fails(
    app: FastAPI,
    client: httpx.AsyncClient,
    callers: dict[str, Caller],
    resources: dict[str, ResourceFactory],
) -> None:
    @app.get("/api/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {"secret": "everyone sees this"}

    violations = await check_matrix(app, client, callers, resources)
    assert _problems_for(violations, "/api/v1/forgotten") == ["-: no access declaration"]


async def test_a_person_route_that_forgot_authentication_fails(
    app: FastAPI,
    client: httpx.AsyncClient,
    callers: dict[str, Caller],
    resources: dict[str, ResourceFactory],
) -> None:
    @app.get("/api/v1/unprotected", openapi_extra=access(Access.PERSON))
    async def unprotected() -> dict[str, str]:
        return {"secret": "no login needed"}

    violations = await check_matrix(app, client, callers, resources)
    assert _problems_for(violations, "/api/v1/unprotected") == ["anonymous: answered 200"]


async def test_an_owner_route_that_leaks_across_tenants_fails(
    app: FastAPI,
    client: httpx.AsyncClient,
    callers: dict[str, Caller],
    resources: dict[str, ResourceFactory],
) -> None:
    @app.get(
        "/api/v1/leaky-devices/{device_id}",
        openapi_extra=access(Access.OWNER, resource="identity.device"),
    )
    async def leaky(device_id: uuid.UUID, principal: CurrentPrincipal) -> dict[str, str]:
        return {"device": str(device_id)}  # forgot to check that it is the caller's

    violations = await check_matrix(app, client, callers, resources)
    assert _problems_for(violations, "/api/v1/leaky-devices") == [
        "person: reached another's identity.device: 200"
    ]


async def test_a_route_whose_role_has_no_test_fails(
    app: FastAPI,
    client: httpx.AsyncClient,
    callers: dict[str, Caller],
    resources: dict[str, ResourceFactory],
) -> None:
    @app.get("/api/v1/ops-only", openapi_extra=access(Access.OPERATOR))
    async def ops_only() -> dict[str, str]:
        return {}

    violations = await check_matrix(app, client, callers, resources)
    assert _problems_for(violations, "/api/v1/ops-only") == [
        "-: no test role for access level 'operator'; add one"
    ]
