"""A real person of the platform, logged in through the public API, for the test folders
that only need someone to act as (created the way the demo world creates people)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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
