"""Resource factories for the social context's brand routes in the authorization matrix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from tests.safety.matrix import Caller, ResourceFactory


async def _sponsored(client: httpx.AsyncClient, owner: Caller) -> dict[str, str]:
    """A running sponsored post of an official account of a brand the caller owns."""
    org = await client.post(
        "/api/v1/accounts/organisations", json={"name": "Matrix ads"}, headers=owner.headers
    )
    assert org.status_code == 201, org.text
    account = await client.post(
        f"/api/v1/accounts/organisations/{org.json()['id']}/accounts",
        json={"kind": "subscription", "name": "Matrix ads"},
        headers=owner.headers,
    )
    assert account.status_code == 201, account.text
    made = await client.post(
        f"/api/v1/social/accounts/{account.json()['id']}/sponsored",
        json={
            "text": "Matrix sponsored post",
            "ends_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
        headers=owner.headers,
    )
    assert made.status_code == 201, made.text
    return {"account_id": account.json()["id"], "sponsored_id": made.json()["id"]}


FACTORIES: dict[str, ResourceFactory] = {"social.sponsored": _sponsored}
