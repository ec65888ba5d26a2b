from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

PASSWORD = "correct horse battery"


@dataclass
class Person:
    phone: str
    omo_id: str
    headers: dict[str, str]


MakePerson = Callable[[str, str], Awaitable[Person]]


@pytest.fixture
def person(client: httpx.AsyncClient, app: FastAPI) -> MakePerson:
    async def make(phone: str, name: str) -> Person:
        await app.state.identity.ensure_person(phone, PASSWORD, name)
        login = await client.post(
            "/api/v1/identity/login", json={"phone": phone, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        client.cookies.clear()
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        me = await client.get("/api/v1/identity/me", headers=headers)
        return Person(phone, me.json()["omo_id"], headers)

    return make


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
