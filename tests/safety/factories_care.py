"""Resource factories for customer care's routes in the authorization matrix."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from tests.safety.matrix import Caller, ResourceFactory

CARE = "/api/v1/care"


def _ok(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, f"{response.status_code} {response.text}"
    body: dict[str, Any] = response.json()
    return body


async def _desk(client: httpx.AsyncClient, owner: Caller) -> dict[str, str]:
    """A brand of the owner's, with an account and a team serving it (the owner its agent)."""
    headers = owner.headers
    org = _ok(
        await client.post(
            "/api/v1/accounts/organisations", json={"name": "Matrix care"}, headers=headers
        ),
        201,
    )
    account = _ok(
        await client.post(
            f"/api/v1/accounts/organisations/{org['id']}/accounts",
            json={"kind": "service", "name": "Matrix care"},
            headers=headers,
        ),
        201,
    )
    team = _ok(
        await client.post(
            f"{CARE}/organisations/{org['id']}/teams",
            json={"name": "Desk", "account_ids": [account["id"]]},
            headers=headers,
        ),
        201,
    )
    me = _ok(await client.get("/api/v1/identity/me", headers=headers), 200)
    _ok(
        await client.put(
            f"{CARE}/teams/{team['id']}/agents",
            json={"omo_id": me["omo_id"], "capacity": 5},
            headers=headers,
        ),
        200,
    )
    client.cookies.clear()
    return {"organisation_id": org["id"], "account_id": account["id"], "team_id": team["id"]}


async def _team(client: httpx.AsyncClient, owner: Caller) -> dict[str, str]:
    desk = await _desk(client, owner)
    return {"team_id": desk["team_id"]}


async def _conversation(client: httpx.AsyncClient, owner: Caller) -> dict[str, str]:
    """A care conversation of the owner's brand: the owner follows their own account and
    writes to it; the care worker (in the background) opens the conversation."""
    desk = await _desk(client, owner)
    account = desk["account_id"]
    followed = await client.put(
        f"/api/v1/accounts/{account}/follow", json={}, headers=owner.headers
    )
    assert followed.status_code == 204, followed.text
    _ok(
        await client.post(
            f"/api/v1/accounts/{account}/messages", json={"text": "help"}, headers=owner.headers
        ),
        200,
        201,
    )
    inbox = f"{CARE}/organisations/{desk['organisation_id']}/conversations"
    for _ in range(200):
        rows = _ok(await client.get(inbox, headers=owner.headers), 200)
        if rows:
            client.cookies.clear()
            return {"conversation_id": rows[0]["id"]}
        await asyncio.sleep(0.05)
    raise AssertionError("care never opened the conversation")


FACTORIES: dict[str, ResourceFactory] = {
    "care.team": _team,
    "care.conversation": _conversation,
}
