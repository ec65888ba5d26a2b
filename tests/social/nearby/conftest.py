from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

PASSWORD = "correct horse battery"

# Two points in Shanghai ~600 m apart, and one ~3 km away.
PEOPLES_SQUARE = (31.2304, 121.4737)
NANJING_ROAD = (31.2352, 121.4770)
THE_BUND = (31.2400, 121.4900)


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


@pytest.fixture
async def li(person: MakePerson) -> Person:
    return await person("+8613800138000", "Li Wei")


@pytest.fixture
async def yuki(person: MakePerson) -> Person:
    return await person("+819012345678", "Sato Yuki")
