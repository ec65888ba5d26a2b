"""The accounts a person follows sit in their chat list: each is a conversation with a brand."""

from __future__ import annotations

import httpx
from tests.accounts.conftest import Brand, Person
from tests.accounts.test_accounts import API, follow


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
