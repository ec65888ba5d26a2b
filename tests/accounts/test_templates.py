"""Notification templates: the one way past the 48-hour window, by the follower's consent, one
message per acceptance (even when sends race), through the native API."""

from __future__ import annotations

import asyncio

import httpx
from tests.accounts.conftest import Brand, Person
from tests.accounts.test_accounts import follow, openid_of, thread

from omo.core.clock import ManualClock

API = "/api/v1/accounts"
SHIPPED = {"title": "Order shipped", "content": "{{first.DATA}}\nOrder: {{order.DATA}}"}


async def template_of(client: httpx.AsyncClient, brand: Brand) -> str:
    created = await client.post(
        brand.manage("/templates"), json=SHIPPED, headers=brand.owner.headers
    )
    assert created.status_code == 201, created.text
    template_id: str = created.json()["template_id"]
    return template_id


async def send(
    client: httpx.AsyncClient, brand: Brand, openid: str, template_id: str
) -> httpx.Response:
    return await client.post(
        brand.manage("/template-messages"),
        json={
            "openid": openid,
            "template_id": template_id,
            "data": {"first": {"value": "Your parcel left"}, "order": {"value": "42"}},
            "url": "https://roma.example/orders/42",
        },
        headers=brand.owner.headers,
    )


async def accept(client: httpx.AsyncClient, brand: Brand, who: Person, template_id: str) -> int:
    answer = await client.put(
        f"{API}/{brand.account_id}/templates/{template_id}/subscription", headers=who.headers
    )
    assert answer.status_code == 200, answer.text
    remaining: int = answer.json()["remaining"]
    return remaining


async def test_a_template_without_the_followers_acceptance_is_refused(
    client: httpx.AsyncClient, clock: ManualClock, brand: Brand, fan: Person
) -> None:
    template_id = await template_of(client, brand)
    await follow(client, brand, fan)
    openid = await openid_of(client, brand)
    clock.advance(hours=49)  # the free-form window is closed
    refused = await send(client, brand, openid, template_id)
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/accounts-not-subscribed"
    assert [i for i in await thread(client, brand, fan) if i["direction"] == "out"] == []


async def test_an_accepted_template_passes_the_closed_window_once_per_acceptance(
    client: httpx.AsyncClient, clock: ManualClock, brand: Brand, fan: Person
) -> None:
    template_id = await template_of(client, brand)
    await follow(client, brand, fan)
    openid = await openid_of(client, brand)
    assert await accept(client, brand, fan, template_id) == 1
    listed = await client.get(f"{API}/{brand.account_id}/templates", headers=fan.headers)
    assert [(t["title"], t["remaining"]) for t in listed.json()] == [("Order shipped", 1)]
    clock.advance(hours=72)
    sent = await send(client, brand, openid, template_id)
    assert sent.status_code == 201, sent.text
    card = sent.json()["body"]["card"]
    assert card == {
        "type": "template",
        "title": "Order shipped",
        "description": "Your parcel left\nOrder: 42",
        "url": "https://roma.example/orders/42",
    }
    again = await send(client, brand, openid, template_id)
    assert again.status_code == 409
    assert again.json()["type"] == "/problems/accounts-not-subscribed"
    cards = [i["body"] for i in await thread(client, brand, fan) if i["direction"] == "out"]
    assert cards == [{"card": card}]


async def test_racing_template_sends_spend_each_acceptance_once(
    client: httpx.AsyncClient, brand: Brand, fan: Person
) -> None:
    template_id = await template_of(client, brand)
    await follow(client, brand, fan)
    openid = await openid_of(client, brand)
    await accept(client, brand, fan, template_id)
    assert await accept(client, brand, fan, template_id) == 2
    answers = await asyncio.gather(*(send(client, brand, openid, template_id) for _ in range(6)))
    assert sorted(a.status_code for a in answers) == [201, 201, 409, 409, 409, 409]


async def test_unfollow_stops_templates_and_withdrawal_spends_nothing_more(
    client: httpx.AsyncClient, brand: Brand, fan: Person
) -> None:
    template_id = await template_of(client, brand)
    await follow(client, brand, fan)
    openid = await openid_of(client, brand)
    await accept(client, brand, fan, template_id)
    withdrawn = await client.delete(
        f"{API}/{brand.account_id}/templates/{template_id}/subscription", headers=fan.headers
    )
    assert withdrawn.json() == {"remaining": 0}
    assert (await send(client, brand, openid, template_id)).status_code == 409
    await accept(client, brand, fan, template_id)
    await client.delete(f"{API}/{brand.account_id}/follow", headers=fan.headers)
    gone = await send(client, brand, openid, template_id)
    assert gone.json()["type"] == "/problems/accounts-not-following"
    late = await client.put(
        f"{API}/{brand.account_id}/templates/{template_id}/subscription", headers=fan.headers
    )
    assert late.json()["type"] == "/problems/accounts-not-following"


async def test_a_template_needs_fields_and_belongs_to_its_account(
    client: httpx.AsyncClient, brand: Brand, make_brand: object, fan: Person
) -> None:
    flat = await client.post(
        brand.manage("/templates"),
        json={"title": "Hello", "content": "no fields here"},
        headers=brand.owner.headers,
    )
    assert flat.json()["type"] == "/problems/accounts-invalid-template"
    template_id = await template_of(client, brand)
    other = await make_brand(brand.owner, name="Other")  # type: ignore[operator]
    await follow(client, other, fan)
    openid = await openid_of(client, other)
    foreign = await send(client, other, openid, template_id)
    assert foreign.json()["type"] == "/problems/accounts-invalid-template"
    wrong_account = await client.put(
        f"{API}/{other.account_id}/templates/{template_id}/subscription", headers=fan.headers
    )
    assert wrong_account.status_code == 404
