"""The accounts a person follows sit in their chat list: each is a conversation with a brand."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from tests.accounts.conftest import PASSWORD, Brand, Person
from tests.accounts.test_accounts import API, follow

from omo.core.events import read_after


async def test_a_followed_account_appears_in_the_chat_list(
    client: httpx.AsyncClient, brand: Brand, fan: Person
) -> None:
    await follow(client, brand, fan)
    client.cookies.set("omo_session", fan.headers["Authorization"].removeprefix("Bearer "))
    page = await client.get("/chat")
    client.cookies.clear()
    assert page.status_code == 200
    assert "data-followed-accounts" in page.text
    assert f'href="/accounts/{brand.account_id}"' in page.text
    assert "Caffè Roma" in page.text


async def test_an_unfollowed_account_leaves_the_chat_list(
    client: httpx.AsyncClient, brand: Brand, fan: Person
) -> None:
    await follow(client, brand, fan)
    await client.delete(f"{API}/{brand.account_id}/follow", headers=fan.headers)
    client.cookies.set("omo_session", fan.headers["Authorization"].removeprefix("Bearer "))
    page = await client.get("/chat")
    client.cookies.clear()
    assert f'href="/accounts/{brand.account_id}"' not in page.text
    assert "data-followed-accounts" not in page.text


async def test_an_erased_follower_follows_nothing_and_the_brand_hears_unsubscribe(
    app: FastAPI, client: httpx.AsyncClient, brand: Brand, fan: Person
) -> None:
    await follow(client, brand, fan)
    erased = await client.post(
        "/api/v1/identity/me/erase", json={"password": PASSWORD}, headers=fan.headers
    )
    assert erased.status_code == 200, erased.text
    client.cookies.clear()
    await app.state.accounts.forget_erased_people()
    followers = await client.get(brand.manage("/followers"), headers=brand.owner.headers)
    assert followers.status_code == 200, followers.text
    assert followers.json()["total"] == 0
    async with app.state.db.sessions() as session:
        topics = [e.topic for e in await read_after(session, None, 1000)]
    assert topics.count("accounts.unfollowed") == 1
