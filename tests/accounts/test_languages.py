"""Brands write their own content per language: a follower gets the variant of their language
(profile, welcome, keyword and default replies, menu), else the account's default."""

from __future__ import annotations

import httpx
from tests.accounts.conftest import Brand, MakePerson, Person
from tests.accounts.test_accounts import follow, thread

API = "/api/v1/accounts"


async def speaks(client: httpx.AsyncClient, who: Person, locale: str) -> None:
    answer = await client.patch("/api/v1/identity/me", json={"locale": locale}, headers=who.headers)
    assert answer.status_code == 200, answer.text


async def setup_italian(client: httpx.AsyncClient, brand: Brand) -> None:
    automation = await client.put(
        brand.manage("/automation"),
        json={
            "welcome": "Welcome to Caffè Roma",
            "default_reply": "We will answer soon",
            "rules": [
                {
                    "match": "contains",
                    "keyword": "hours",
                    "reply": "Open 7 to 19",
                    "translations": {"it": "Aperti dalle 7 alle 19"},
                }
            ],
        },
        headers=brand.owner.headers,
    )
    assert automation.status_code == 200, automation.text
    assert automation.json()["rules"][0]["translations"] == {"it": "Aperti dalle 7 alle 19"}
    await client.put(
        brand.manage("/menu"),
        json={"button": [{"type": "click", "name": "Deals", "key": "DEALS"}]},
        headers=brand.owner.headers,
    )
    italian = await client.put(
        brand.manage("/translations/it"),
        json={
            "description": "Caffè dal 1920",
            "welcome": "Benvenuti al Caffè Roma",
            "menu": [{"type": "click", "name": "Offerte", "key": "DEALS"}],
        },
        headers=brand.owner.headers,
    )
    assert italian.status_code == 200, italian.text
    assert set(italian.json()["it"]) == {"description", "welcome", "menu"}


async def test_followers_get_their_languages_variant_else_the_default(
    client: httpx.AsyncClient, brand: Brand, fan: Person, person: MakePerson
) -> None:
    await setup_italian(client, brand)
    giorgio = await person("+393401111111", "Giorgio")
    await speaks(client, giorgio, "it")
    await speaks(client, fan, "fr")  # the brand wrote nothing in French
    await follow(client, brand, giorgio)
    await follow(client, brand, fan)
    for who in (giorgio, fan):
        await client.post(
            f"{API}/{brand.account_id}/messages", json={"text": "your hours?"}, headers=who.headers
        )
        await client.post(
            f"{API}/{brand.account_id}/messages", json={"text": "ciao"}, headers=who.headers
        )
    said = {
        who.omo_id: [
            i["body"]["text"] for i in await thread(client, brand, who) if i["direction"] == "out"
        ]
        for who in (giorgio, fan)
    }
    assert said[giorgio.omo_id] == [
        "Benvenuti al Caffè Roma",
        "Aperti dalle 7 alle 19",
        "We will answer soon",  # no Italian default reply written: the default
    ]
    assert said[fan.omo_id] == ["Welcome to Caffè Roma", "Open 7 to 19", "We will answer soon"]
    as_italian = await client.get(f"{API}/{brand.account_id}", headers=giorgio.headers)
    assert as_italian.json()["description"] == "Caffè dal 1920"
    assert as_italian.json()["menu"][0]["name"] == "Offerte"
    as_french = await client.get(f"{API}/{brand.account_id}", headers=fan.headers)
    assert as_french.json()["description"] == "Coffee since 1920"
    assert as_french.json()["menu"][0]["name"] == "Deals"
    # a reader who is not logged in: their browser's language
    browser = await client.get(f"/accounts/{brand.account_id}", headers={"Accept-Language": "it"})
    assert "Caffè dal 1920" in browser.text
    clicked = await client.post(
        f"{API}/{brand.account_id}/menu-clicks", json={"key": "DEALS"}, headers=giorgio.headers
    )
    assert clicked.status_code == 200


async def test_only_supported_languages_and_valid_menus_are_accepted(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    klingon = await client.put(
        brand.manage("/translations/tlh"), json={"description": "x"}, headers=brand.owner.headers
    )
    assert klingon.status_code == 422
    leaf = {"type": "click", "name": "A", "key": "A"}
    too_big = await client.put(
        brand.manage("/translations/ja"),
        json={"menu": [{"name": "B", "sub_button": [leaf] * 6}]},
        headers=brand.owner.headers,
    )
    assert too_big.status_code in (400, 422)
    bad_rule = await client.put(
        brand.manage("/automation"),
        json={
            "rules": [{"match": "exact", "keyword": "a", "reply": "b", "translations": {"xx": "c"}}]
        },
        headers=brand.owner.headers,
    )
    assert bad_rule.status_code == 422
    await client.put(
        brand.manage("/translations/ja"),
        json={"description": "1920年から"},
        headers=brand.owner.headers,
    )
    removed = await client.delete(brand.manage("/translations/ja"), headers=brand.owner.headers)
    assert removed.json() == {}
    listed = await client.get(brand.manage("/translations"), headers=brand.owner.headers)
    assert listed.json() == {}
