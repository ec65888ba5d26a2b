from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.accounts.conftest import (  # noqa: F401  (fixtures shared with accounts' tests)
    Brand,
    MakeBrand,
    MakePerson,
    Person,
    brand,
    fan,
    make_brand,
    owner,
    person,
)

CARE = "/api/v1/care"


@dataclass
class Desk:
    """A brand with a care team serving its account."""

    brand: Brand
    team_id: str
    agents: list[Person]

    def conversation(self, cid: str, path: str = "") -> str:
        return f"{CARE}/conversations/{cid}{path}"

    @property
    def inbox(self) -> str:
        return f"{CARE}/organisations/{self.brand.organisation_id}/conversations"


MakeDesk = Callable[..., Awaitable[Desk]]


async def add_member(client: httpx.AsyncClient, to: Brand, who: Person, role: str) -> None:
    added = await client.put(
        f"/api/v1/accounts/organisations/{to.organisation_id}/members",
        json={"omo_id": who.omo_id, "role": role},
        headers=to.owner.headers,
    )
    assert added.status_code == 200, added.text


@pytest.fixture
def make_desk(client: httpx.AsyncClient) -> MakeDesk:
    async def make(
        of: Brand, agents: list[Person], capacity: int = 5, strategy: str = "least_loaded"
    ) -> Desk:
        shop = of
        team = await client.post(
            f"{CARE}/organisations/{shop.organisation_id}/teams",
            json={"name": "Front desk", "strategy": strategy, "account_ids": [shop.account_id]},
            headers=shop.owner.headers,
        )
        assert team.status_code == 201, team.text
        team_id = team.json()["id"]
        for agent in agents:
            await add_member(client, shop, agent, "agent")
            answer = await client.put(
                f"{CARE}/teams/{team_id}/agents",
                json={"omo_id": agent.omo_id, "capacity": capacity},
                headers=shop.owner.headers,
            )
            assert answer.status_code == 200, answer.text
        return Desk(shop, team_id, agents)

    return make


@pytest.fixture
async def agent(person: MakePerson) -> Person:  # noqa: F811
    return await person("+393409999999", "Marco")


@pytest.fixture
async def desk(make_desk: MakeDesk, brand: Brand, agent: Person) -> Desk:  # noqa: F811
    return await make_desk(brand, [agent])


async def write(client: httpx.AsyncClient, app: FastAPI, to: Brand, who: Person, text: str) -> None:
    """The customer follows (if needed) and writes; care reads it from the outbox."""
    shop = to
    followed = await client.put(
        f"/api/v1/accounts/{shop.account_id}/follow", json={}, headers=who.headers
    )
    assert followed.status_code == 204, followed.text
    sent = await client.post(
        f"/api/v1/accounts/{shop.account_id}/messages", json={"text": text}, headers=who.headers
    )
    assert sent.status_code in (200, 201), sent.text
    await app.state.care.run_once()


async def only_conversation(client: httpx.AsyncClient, desk: Desk, who: Person) -> dict[str, Any]:
    answer = await client.get(desk.inbox, headers=who.headers)
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()
    assert len(rows) == 1, rows
    return rows[0]
