"""Abuse limits on the routes that invite abuse, beyond those identity tests already pin."""

from __future__ import annotations

import httpx
from tests.safety.matrix import Caller


async def test_payment_codes_cannot_be_minted_in_a_burst(
    client: httpx.AsyncClient, callers: dict[str, Caller]
) -> None:
    statuses = []
    for _ in range(31):
        response = await client.post("/api/v1/pay/codes", headers=callers["person"].headers)
        statuses.append(response.status_code)
    assert statuses[:30] == [201] * 30
    assert statuses[-1] == 429
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) >= 1


async def test_friend_requests_are_limited_per_person(
    client: httpx.AsyncClient, callers: dict[str, Caller]
) -> None:
    statuses = []
    for _ in range(31):
        response = await client.post(
            "/api/v1/messaging/contacts/requests",
            json={"omo_id": "nobody_here"},
            headers=callers["person"].headers,
        )
        statuses.append(response.status_code)
    assert statuses[0] == 404
    assert statuses[-1] == 429
