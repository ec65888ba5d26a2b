"""When a person erases their account, messaging forgets their contacts and groups."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from tests.messaging.conftest import PASSWORD, MakePerson, befriend

API = "/api/v1/messaging"


async def _erase(app: FastAPI, client: httpx.AsyncClient, token: str) -> None:
    erased = await client.post(
        "/api/v1/identity/me/erase",
        json={"password": PASSWORD},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert erased.status_code == 200, erased.text
    client.cookies.clear()
    await app.state.messaging.forget_erased_people()


async def test_an_erased_person_leaves_their_friends_contact_lists(
    app: FastAPI, client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_123"), await make_person("bo_1234")
    await befriend(client, ana, bo)
    await _erase(app, client, bo.token)
    contacts = (await client.get(f"{API}/contacts", headers=ana.auth)).json()
    assert contacts["contacts"] == []


async def test_an_erased_owner_hands_the_group_on_and_leaves_it(
    app: FastAPI, client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    owner, ben, cai = (
        await make_person("owner_1"),
        await make_person("ben_123"),
        await make_person("cai_123"),
    )
    for friend in (ben, cai):
        await befriend(client, owner, friend)
    created = await client.post(
        f"{API}/conversations/groups",
        json={"name": "Climbing", "members": ["ben_123", "cai_123"]},
        headers=owner.auth,
    )
    group = created.json()["id"]
    await _erase(app, client, owner.token)
    view = (await client.get(f"{API}/conversations/{group}", headers=ben.auth)).json()
    roles = sorted(m["role"] for m in view["members"])
    assert roles == ["member", "owner"]
    assert "owner_1" not in {m["person"]["omo_id"] for m in view["members"]}


async def test_forgetting_twice_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_123"), await make_person("bo_1234")
    await befriend(client, ana, bo)
    await _erase(app, client, bo.token)
    assert await app.state.messaging.forget_erased_people() == 0
