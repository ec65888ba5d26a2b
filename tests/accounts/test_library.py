"""The platform's template library (the operator curates it, accounts add from it, also with
wechatpy's `template.get`), broadcast quotas per account kind, and the follower accepting N
messages of a template — from the API or from a prompt card in the account conversation."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.accounts.conftest import PASSWORD, Brand, MakeBrand, MakePerson, Person
from tests.accounts.test_accounts import follow, openid_of, thread
from tests.accounts.test_developer_api import served
from tests.accounts.test_developer_api_more import _errcode, sdk_for
from tests.accounts.test_operator import OPERATOR_OMO_ID, operator
from tests.accounts.test_templates import send, template_of

from omo.accounts.demo import LIBRARY, seed_demo
from omo.core.clock import ManualClock
from omo.core.config import Settings
from omo.demo import PEOPLE

__all__ = ["operator", "served"]  # fixtures shared with the other accounts tests

API = "/api/v1/accounts"
SHIPPED = {
    "template_id_short": "TM00015",
    "title": "Order shipped",
    "content": "{{first.DATA}}\nOrder: {{order.DATA}}\n{{remark.DATA}}",
    "example": "Your parcel left\nOrder: 42\nThanks!",
    "primary_industry": "Retail",
    "deputy_industry": "Shipping",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"operators": OPERATOR_OMO_ID})


async def in_library(client: httpx.AsyncClient, operator: Person, **changes: str) -> str:
    added = await client.post(
        f"{API}/operator/template-library", json=SHIPPED | changes, headers=operator.headers
    )
    assert added.status_code == 201, added.text
    short_id: str = added.json()["template_id_short"]
    return short_id


async def test_the_operator_curates_the_library_and_accounts_add_from_it(
    client: httpx.AsyncClient, operator: Person, brand: Brand, fan: Person
) -> None:
    short_id = await in_library(client, operator)
    assert short_id == "TM00015"
    picked = await in_library(
        client, operator, template_id_short="", title="Table ready", primary_industry="Food"
    )
    assert picked.startswith("OPENTM")
    assert len(picked) == 15
    browsed = await client.get(f"{API}/template-library", headers=fan.headers)
    assert [(t["template_id_short"], t["primary_industry"]) for t in browsed.json()] == [
        (picked, "Food"),
        ("TM00015", "Retail"),
    ]
    only_food = await client.get(f"{API}/template-library?industry=Food", headers=fan.headers)
    assert [t["title"] for t in only_food.json()] == ["Table ready"]

    added = await client.post(
        brand.manage("/library-templates"),
        json={"template_id_short": short_id},
        headers=brand.owner.headers,
    )
    assert added.status_code == 201, added.text
    mine = added.json()
    assert mine["library_id"] == "TM00015"
    assert (mine["title"], mine["primary_industry"], mine["deputy_industry"]) == (
        "Order shipped",
        "Retail",
        "Shipping",
    )
    again = await client.post(
        brand.manage("/library-templates"),
        json={"template_id_short": short_id},
        headers=brand.owner.headers,
    )
    assert again.json()["template_id"] == mine["template_id"]  # one copy per library template

    # retiring it from the library keeps the account's copy
    gone = await client.delete(
        f"{API}/operator/template-library/{short_id}", headers=operator.headers
    )
    assert gone.status_code == 204
    listed = await client.get(brand.manage("/templates"), headers=brand.owner.headers)
    assert [t["template_id"] for t in listed.json()] == [mine["template_id"]]
    unknown = await client.post(
        brand.manage("/library-templates"),
        json={"template_id_short": short_id},
        headers=brand.owner.headers,
    )
    assert unknown.status_code == 400
    assert unknown.json()["type"] == "/problems/accounts-invalid-template"
    again_gone = await client.delete(
        f"{API}/operator/template-library/{short_id}", headers=operator.headers
    )
    assert again_gone.status_code == 404


async def test_only_operators_curate_and_only_managers_add(
    client: httpx.AsyncClient, operator: Person, brand: Brand, fan: Person, person: MakePerson
) -> None:
    for who in (fan, brand.owner):
        refused = await client.post(
            f"{API}/operator/template-library", json=SHIPPED, headers=who.headers
        )
        assert refused.status_code == 403
        assert refused.json()["type"] == "/problems/accounts-not-operator"
    short_id = await in_library(client, operator)
    refused = await client.delete(
        f"{API}/operator/template-library/{short_id}", headers=brand.owner.headers
    )
    assert refused.status_code == 403
    assert (await client.get(f"{API}/template-library")).status_code == 401
    duplicate = await client.post(
        f"{API}/operator/template-library", json=SHIPPED, headers=operator.headers
    )
    assert duplicate.status_code == 400
    flat = await client.post(
        f"{API}/operator/template-library",
        json=SHIPPED | {"template_id_short": "", "content": "no fields"},
        headers=operator.headers,
    )
    assert flat.json()["type"] == "/problems/accounts-invalid-template"
    agent = await person("+393409999999", "Marco")
    await client.put(
        f"{API}/organisations/{brand.organisation_id}/members",
        json={"omo_id": agent.omo_id, "role": "agent"},
        headers=brand.owner.headers,
    )
    for who, status in ((agent, 403), (fan, 404), (operator, 404)):
        answer = await client.post(
            brand.manage("/library-templates"),
            json={"template_id_short": short_id},
            headers=who.headers,
        )
        assert answer.status_code == status, (who.omo_id, answer.text)
    listed = await client.get(brand.manage("/templates"), headers=brand.owner.headers)
    assert listed.json() == []


async def test_wechatpy_adds_library_templates_within_the_accounts_limit(
    client: httpx.AsyncClient, operator: Person, served: str, brand: Brand
) -> None:
    short_id = await in_library(client, operator)
    sdk = sdk_for(brand, served)

    def add_and_list() -> tuple[str, str, Any, int]:
        template_id = sdk.template.get(short_id)
        same = sdk.template.get(short_id)
        listed = sdk.template.get_all_private_template()
        unknown = _errcode(lambda: sdk.template.get("TM99999"))
        return template_id, same, listed, unknown

    template_id, same, listed, unknown = await asyncio.to_thread(add_and_list)
    assert same == template_id
    assert unknown == 40037
    assert listed["template_list"] == [
        {
            "template_id": template_id,
            "title": "Order shipped",
            "primary_industry": "Retail",
            "deputy_industry": "Shipping",
            "content": SHIPPED["content"],
            "example": SHIPPED["example"],
        }
    ]
    for n in range(24):  # 25 templates per account, as WeChat
        made = await client.post(
            brand.manage("/templates"),
            json={"title": f"T{n}", "content": "{{first.DATA}}"},
            headers=brand.owner.headers,
        )
        assert made.status_code == 201, made.text
    other = await in_library(client, operator, template_id_short="TM00016")
    full = await asyncio.to_thread(lambda: _errcode(lambda: sdk.template.get(other)))
    assert full == 45026
    native = await client.post(
        brand.manage("/templates"),
        json={"title": "One more", "content": "{{first.DATA}}"},
        headers=brand.owner.headers,
    )
    assert native.status_code == 409
    assert native.json()["type"] == "/problems/accounts-too-many-templates"


async def test_the_operator_sets_broadcast_quotas_per_kind(
    client: httpx.AsyncClient, operator: Person, make_brand: MakeBrand, owner: Person
) -> None:
    brand = await make_brand(owner)
    other = await make_brand(owner, name="Caffè Due")
    assert (await client.get(f"{API}/operator/kind-quotas", headers=operator.headers)).json() == {
        "subscription": 1,
        "service": 4,
    }
    refused = await client.put(
        f"{API}/operator/kind-quotas",
        json={"kind": "subscription", "allowed": 5},
        headers=owner.headers,
    )
    assert refused.status_code == 403
    changed = await client.put(
        f"{API}/operator/kind-quotas",
        json={"kind": "subscription", "allowed": 2},
        headers=operator.headers,
    )
    assert changed.json() == {"subscription": 2, "service": 4}
    # the account's own quota comes first
    await client.put(
        f"{API}/operator/{other.account_id}/quota", json={"allowed": 0}, headers=operator.headers
    )
    answers = [
        (
            await client.post(b.manage("/broadcasts"), json={"text": "News"}, headers=owner.headers)
        ).status_code
        for b in (brand, brand, brand, other)
    ]
    assert answers == [201, 201, 409, 409]
    quota = await client.get(brand.manage("/quota"), headers=owner.headers)
    assert (quota.json()["used"], quota.json()["allowed"]) == (2, 2)
    listed = await client.get(f"{API}/operator/accounts?q=due", headers=operator.headers)
    assert [a["name"] for a in listed.json()] == ["Caffè Due"]
    assert (await client.get(f"{API}/operator/accounts", headers=owner.headers)).status_code == 403


async def test_a_follower_accepts_n_messages_and_the_account_sends_exactly_that_many(
    client: httpx.AsyncClient, clock: ManualClock, served: str, brand: Brand, fan: Person
) -> None:
    template_id = await template_of(client, brand)
    await follow(client, brand, fan)
    openid = await openid_of(client, brand)
    url = f"{API}/{brand.account_id}/templates/{template_id}/subscription"
    too_many = await client.put(url, json={"count": 11}, headers=fan.headers)
    assert too_many.status_code == 422
    accepted = await client.put(url, json={"count": 3}, headers=fan.headers)
    assert accepted.json() == {"remaining": 3}
    capped = await client.put(url, json={"count": 9}, headers=fan.headers)
    assert capped.json() == {"remaining": 10}  # acceptances add up to 10
    await client.delete(url, headers=fan.headers)
    assert (await client.put(url, json={"count": 2}, headers=fan.headers)).json() == {
        "remaining": 2
    }
    clock.advance(hours=72)  # outside the 48-hour window
    sdk = sdk_for(brand, served)
    data = {"content": {"value": "Your table is ready"}}

    def three_sends() -> list[int]:
        return [
            _errcode(
                lambda: sdk.message.send_subscribe_template(openid, template_id, 7, "Table", data)
            )
            for _ in range(3)
        ]

    assert await asyncio.to_thread(three_sends) == [0, 0, 43101]
    native = await send(client, brand, openid, template_id)
    assert native.status_code == 409
    assert native.json()["type"] == "/problems/accounts-not-subscribed"
    out = [i for i in await thread(client, brand, fan) if i["direction"] == "out"]
    assert len([i for i in out if i["body"]["card"]["type"] == "template"]) == 2  # type: ignore[index]


async def test_subscription_refusals_unfollowed_and_other_accounts_template(
    client: httpx.AsyncClient, brand: Brand, make_brand: MakeBrand, fan: Person, owner: Person
) -> None:
    template_id = await template_of(client, brand)
    other = await make_brand(owner, name="Altro")
    unfollowed = await client.put(
        f"{API}/{brand.account_id}/templates/{template_id}/subscription",
        json={"count": 2},
        headers=fan.headers,
    )
    assert unfollowed.status_code == 409
    assert unfollowed.json()["type"] == "/problems/accounts-not-following"
    await follow(client, brand, fan)
    await follow(client, other, fan)
    crossed = await client.put(
        f"{API}/{other.account_id}/templates/{template_id}/subscription", headers=fan.headers
    )
    assert crossed.status_code == 404
    # the other account may not spend this account's template, nor offer it in a card
    other_openid = (await client.get(other.manage("/followers"), headers=owner.headers)).json()[
        "openids"
    ][0]
    spent = await send(client, other, other_openid, template_id)
    assert spent.json()["type"] == "/problems/accounts-invalid-template"
    card = await client.post(
        other.manage("/messages"),
        json={"openid": other_openid, "card": {"type": "subscribe", "template_id": template_id}},
        headers=owner.headers,
    )
    assert card.status_code == 400
    assert card.json()["type"] == "/problems/accounts-invalid-template"
    assert [i for i in await thread(client, other, fan) if i["direction"] == "out"] == []


async def test_a_prompt_card_in_the_conversation_asks_the_follower_to_accept(
    client: httpx.AsyncClient, brand: Brand, fan: Person
) -> None:
    template_id = await template_of(client, brand)
    await follow(client, brand, fan)
    openid = await openid_of(client, brand)
    sent = await client.post(
        brand.manage("/messages"),
        json={"openid": openid, "card": {"type": "subscribe", "template_id": template_id}},
        headers=brand.owner.headers,
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["body"]["card"]["title"] == "Order shipped"
    client.cookies.clear()
    login = await client.post(
        "/api/v1/identity/login", json={"phone": fan.phone, "password": PASSWORD}
    )
    assert login.status_code == 200
    page = await client.get(f"/accounts/{brand.account_id}")
    client.cookies.clear()
    assert f"/templates/{template_id}/subscription" in page.text
    assert "data-accept-template" in page.text


async def test_the_operator_console_shows_only_to_operators(
    client: httpx.AsyncClient, operator: Person, brand: Brand, fan: Person
) -> None:
    await in_library(client, operator)

    async def page_as(who: Person | None, path: str = "/operator") -> httpx.Response:
        client.cookies.clear()
        if who is not None:
            login = await client.post(
                "/api/v1/identity/login", json={"phone": who.phone, "password": PASSWORD}
            )
            assert login.status_code == 200
        answer = await client.get(path)
        client.cookies.clear()
        return answer

    anonymous = await page_as(None)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=/operator"
    for who in (fan, brand.owner):
        refused = await page_as(who)
        assert refused.status_code == 404
        assert "Caffè Roma" not in refused.text
        assert "TM00015" not in refused.text
    shown = await page_as(operator)
    assert shown.status_code == 200
    assert f'data-account="{brand.account_id}"' in shown.text
    assert 'data-library-template="TM00015"' in shown.text
    assert 'data-kind-quota="subscription"' in shown.text
    searched = await page_as(operator, "/operator?q=nothing-like-it")
    assert f'data-account="{brand.account_id}"' not in searched.text
    # the console's forms send "" for an emptied quota: the kind's default again
    await client.put(
        f"{API}/operator/{brand.account_id}/quota", json={"allowed": 3}, headers=operator.headers
    )
    reset = await client.put(
        f"{API}/operator/{brand.account_id}/quota", json={"allowed": ""}, headers=operator.headers
    )
    assert reset.json()["allowed"] == 1


async def test_the_demo_world_has_the_library_and_the_cafe_asks_before_notifying(
    app: FastAPI,
) -> None:
    await seed_demo(app)
    await seed_demo(app)  # seeding twice changes nothing
    service = app.state.accounts
    library = await service.library()
    assert len(library) == len(LIBRARY)
    assert {t.primary_industry for t in library} >= {"Food & beverage", "Retail"}
    li_wei = await app.state.identity.ensure_person(PEOPLE[0].phone, "x", "x")
    (cafe,) = await service.following(li_wei)
    (ready,) = await service.templates(cafe.id)
    assert ready.library_id == "OPENTM200000001"
    prompts = [
        i.body["card"]
        for i in await service.conversation(li_wei, cafe.id, 50)
        if i.body.get("card", {}).get("type") == "subscribe"
    ]
    assert prompts == [
        {
            "type": "subscribe",
            "title": "Order ready",
            "description": "",
            "url": "",
            "template_id": ready.id,
        }
    ]
    assert await service.subscriptions(li_wei, cafe.id) == {}  # asked, not yet accepted


async def test_operator_changes_are_in_the_operators_audit_trail(
    client: httpx.AsyncClient, operator: Person, brand: Brand
) -> None:
    account = brand.account_id
    for path, body in (
        (f"/operator/{account}/verification", {"verified": True}),
        (f"/operator/{account}/verification", {"verified": True}),  # no change, no entry
        (f"/operator/{account}/quota", {"allowed": 3}),
        ("/operator/kind-quotas", {"kind": "service", "allowed": 6}),
    ):
        answer = await client.put(f"{API}{path}", json=body, headers=operator.headers)
        assert answer.status_code == 200, answer.text
    short_id = await in_library(client, operator)
    await client.delete(f"{API}/operator/template-library/{short_id}", headers=operator.headers)
    refused = await client.put(
        f"{API}/operator/kind-quotas",
        json={"kind": "service", "allowed": 9},
        headers=brand.owner.headers,
    )
    assert refused.status_code == 403
    trail = await client.get("/api/v1/identity/audit-log", headers=operator.headers)
    changes = [e["detail"] for e in trail.json() if e["action"] == "operator_action"]
    assert changes[::-1] == [
        {"change": "verified", "account_id": account, "to": True},
        {"change": "account_quota", "account_id": account, "from": None, "to": 3},
        {"change": "kind_quota", "kind": "service", "from": 4, "to": 6},
        {"change": "library_added", "template_id_short": short_id},
        {"change": "library_retired", "template_id_short": short_id},
    ]
    owners = await client.get("/api/v1/identity/audit-log", headers=brand.owner.headers)
    assert [e for e in owners.json() if e["action"] == "operator_action"] == []
