from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from tests.support.people import PASSWORD, MakePerson, Person, person

__all__ = ["PASSWORD", "MakePerson", "Person", "person"]  # shared with this folder's tests


@dataclass
class Brand:
    owner: Person
    organisation_id: str
    account_id: str
    app_id: str
    app_secret: str

    def manage(self, path: str = "") -> str:
        return f"/api/v1/accounts/manage/{self.account_id}{path}"


MakeBrand = Callable[..., Awaitable[Brand]]


@pytest.fixture
def make_brand(client: httpx.AsyncClient) -> MakeBrand:
    async def make(owner: Person, kind: str = "subscription", name: str = "Caffè Roma") -> Brand:
        org = await client.post(
            "/api/v1/accounts/organisations", json={"name": name}, headers=owner.headers
        )
        assert org.status_code == 201, org.text
        org_id = org.json()["id"]
        account = await client.post(
            f"/api/v1/accounts/organisations/{org_id}/accounts",
            json={"kind": kind, "name": name, "description": "Coffee since 1920"},
            headers=owner.headers,
        )
        assert account.status_code == 201, account.text
        body: dict[str, Any] = account.json()
        return Brand(owner, org_id, body["id"], body["app_id"], body["app_secret"])

    return make


@pytest.fixture
async def owner(person: MakePerson) -> Person:
    return await person("+393401234567", "Giulia")


@pytest.fixture
async def fan(person: MakePerson) -> Person:
    return await person("+33612345678", "Camille")


@pytest.fixture
async def brand(make_brand: MakeBrand, owner: Person) -> Brand:
    return await make_brand(owner)
