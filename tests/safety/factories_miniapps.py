"""Resource factories and the developer tenancy for the mini programs' routes."""

from __future__ import annotations

import base64
from typing import Any

import httpx
from tests.miniapps.conftest import package
from tests.safety.matrix import Caller, ResourceFactory, Tenancy

API = "/api/v1/miniapps"


def _ok(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, f"{response.status_code} {response.text}"
    body: dict[str, Any] = response.json()
    return body


async def registered(client: httpx.AsyncClient, member: Caller) -> dict[str, str]:
    """A mini program of an organisation the caller owns: ids, appid and secret."""
    org = _ok(
        await client.post(
            "/api/v1/accounts/organisations", json={"name": "Matrix MP"}, headers=member.headers
        ),
        201,
    )
    app = _ok(
        await client.post(
            f"{API}/organisations/{org['id']}/apps", json={"name": "Matrix"}, headers=member.headers
        ),
        201,
    )
    return {"app_id": app["id"], "appid": app["appid"], "secret": app["secret"]}


async def _app(client: httpx.AsyncClient, member: Caller) -> dict[str, str]:
    """The caller's mini program with one version, one link prefix, and the caller's own
    OMO ID (routes name `app_id`, `version_id`, `prefix_id`, `omo_id`)."""
    app = await registered(client, member)
    version = _ok(
        await client.post(
            f"{API}/apps/{app['app_id']}/versions",
            content=package(app["appid"]),
            headers={**member.headers, "Content-Type": "application/zip"},
        ),
        201,
    )
    prefix = _ok(
        await client.post(
            f"{API}/apps/{app['app_id']}/prefixes",
            json={"prefix": f"https://matrix.example/{app['appid']}/", "page": "pages/menu"},
            headers=member.headers,
        ),
        201,
    )
    await _release(client, member, app["app_id"], version["id"])
    me = _ok(await client.get("/api/v1/identity/me", headers=member.headers), 200)
    return {
        "app_id": app["app_id"],
        "version_id": version["id"],
        "prefix_id": prefix["id"],
        "omo_id": me["omo_id"],
    }


async def _release(client: httpx.AsyncClient, member: Caller, app_id: str, version_id: str) -> None:
    for step in ("trial", "release"):
        _ok(
            await client.post(
                f"{API}/apps/{app_id}/versions/{version_id}/{step}", headers=member.headers
            ),
            200,
        )


def basic(appid: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{appid}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# appid -> an order its server created (routes name `order_id`)
ORDERS: dict[str, str] = {}


async def _appid(client: httpx.AsyncClient, developer: Caller) -> dict[str, str]:
    """The developer's own appid (the credentials it holds name it) and its order."""
    encoded = developer.headers["Authorization"].split(" ", 1)[1]
    appid = base64.b64decode(encoded).decode().split(":", 1)[0]
    return {"appid": appid, "order_id": ORDERS.get(appid, "none")}


async def developer_tenancy(
    client: httpx.AsyncClient, insider_owner: Caller, outsider_owner: Caller
) -> Tenancy:
    """Two mini programs' backends, each holding its own appid and secret."""
    mine = await registered(client, insider_owner)
    version = _ok(
        await client.post(
            f"{API}/apps/{mine['app_id']}/versions",
            content=package(mine["appid"]),
            headers={**insider_owner.headers, "Content-Type": "application/zip"},
        ),
        201,
    )
    await _release(client, insider_owner, mine["app_id"], version["id"])
    org = _ok(await client.get(f"{API}/apps/{mine['app_id']}", headers=insider_owner.headers), 200)
    _ok(
        await client.post(
            "/api/v1/pay/merchants",
            json={"organisation_id": org["organisation_id"], "name": "Matrix MP"},
            headers=insider_owner.headers,
        ),
        201,
    )
    _ok(
        await client.post(
            f"{API}/dev/{mine['appid']}/orders",
            json={"order_id": "matrix-1", "amount": "1.00", "currency": "EUR"},
            headers=basic(mine["appid"], mine["secret"]),
        ),
        201,
    )
    ORDERS[mine["appid"]] = "matrix-1"
    theirs = await registered(client, outsider_owner)
    return Tenancy(
        insider=Caller(basic(mine["appid"], mine["secret"])),
        outsider=Caller(basic(theirs["appid"], theirs["secret"])),
    )


FACTORIES: dict[str, ResourceFactory] = {"miniapps.app": _app, "miniapps.appid": _appid}
