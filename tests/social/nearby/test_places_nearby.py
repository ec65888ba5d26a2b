"""Places nearby: shops near the person, nearest first, with the coupons open right now."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from tests.social.nearby.conftest import PEOPLES_SQUARE, Person

from omo.core.clock import ManualClock
from omo.core.events import OutboxEvent, record_event
from omo.pay.events import PaymentSucceeded

API = "/api/v1/nearby/places/search"


async def shop_with_stores(
    client: httpx.AsyncClient, owner: Person, stores: dict[str, tuple[float, float]]
) -> tuple[str, dict[str, str]]:
    merchant = await client.post(
        "/api/v1/pay/merchants",
        json={"organisation_id": "org-dumplings", "name": "Din Tai Fung"},
        headers=owner.headers,
    )
    assert merchant.status_code == 201, merchant.text
    merchant_id = merchant.json()["id"]
    ids = {}
    for name, (lat, lng) in stores.items():
        store = await client.post(
            f"/api/v1/pay/merchants/{merchant_id}/stores",
            json={"name": name, "latitude": lat, "longitude": lng},
            headers=owner.headers,
        )
        assert store.status_code == 201, store.text
        ids[name] = store.json()["id"]
    return merchant_id, ids


async def offer(
    client: httpx.AsyncClient, owner: Person, merchant_id: str, clock: ManualClock, **extra: Any
) -> str:
    body = {
        "issuer": merchant_id,
        "title": "10 off dumplings",
        "kind": "cash_off",
        "currency": "CNY",
        "value": "10.00",
        "starts_at": (clock.now() - timedelta(hours=1)).isoformat(),
        "ends_at": (clock.now() + timedelta(days=1)).isoformat(),
        "total_stock": 50,
        **extra,
    }
    made = await client.post("/api/v1/coupons/campaigns", json=body, headers=owner.headers)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def search(client: httpx.AsyncClient, who: Person) -> list[dict[str, Any]]:
    answer = await client.post(
        API,
        json={"latitude": PEOPLES_SQUARE[0], "longitude": PEOPLES_SQUARE[1]},
        headers=who.headers,
    )
    assert answer.status_code == 200, answer.text
    places: list[dict[str, Any]] = answer.json()
    return places


async def test_shops_nearby_are_listed_nearest_first_with_their_open_offers(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock, li: Person, yuki: Person
) -> None:
    merchant_id, stores = await shop_with_stores(
        client,
        yuki,
        {
            "Nanjing Road": (31.2352, 121.4770),
            "People's Square": (31.2310, 121.4740),
            "Pudong Airport": (31.1443, 121.8083),  # ~34 km: not nearby
        },
    )
    open_offer = await offer(client, yuki, merchant_id, clock)
    await offer(client, yuki, merchant_id, clock, title="Expired", ends_at=clock.now().isoformat())
    await offer(
        client,
        yuki,
        merchant_id,
        clock,
        title="Only at Nanjing Road",
        stores=[stores["Nanjing Road"]],
    )
    places = await search(client, li)
    assert [p["name"] for p in places] == ["People's Square", "Nanjing Road"]
    assert places[0]["distance_m"] == 50  # ~73 m, rounded to 50 m
    assert places[0]["merchant_name"] == "Din Tai Fung"
    assert [o["campaign_id"] for o in places[0]["offers"]] == [open_offer]
    assert {o["title"] for o in places[1]["offers"]} == {"10 off dumplings", "Only at Nanjing Road"}
    # The offer can be claimed from there.
    claimed = await client.post(
        "/api/v1/coupons/claims", json={"campaign_id": open_offer}, headers=li.headers
    )
    assert claimed.status_code == 201, claimed.text
    async with app.state.db.sessions() as session:
        visits = (
            await session.scalars(
                select(OutboxEvent).where(OutboxEvent.topic == "social.nearby.places_visited")
            )
        ).all()
    assert [v.payload["shown"] for v in visits] == [2]


async def test_places_nearby_need_a_login(client: httpx.AsyncClient) -> None:
    answer = await client.post(API, json={"latitude": 31.23, "longitude": 121.47})
    assert answer.status_code == 401


async def brand_with_account(client: httpx.AsyncClient, owner: Person, name: str) -> dict[str, str]:
    org = await client.post(
        "/api/v1/accounts/organisations", json={"name": name}, headers=owner.headers
    )
    assert org.status_code == 201, org.text
    account = await client.post(
        f"/api/v1/accounts/organisations/{org.json()['id']}/accounts",
        json={"kind": "subscription", "name": name},
        headers=owner.headers,
    )
    assert account.status_code == 201, account.text
    return {"organisation_id": org.json()["id"], "account_id": account.json()["id"]}


async def set_place(
    client: httpx.AsyncClient, who: Person, account_id: str, name: str, at: tuple[float, float]
) -> httpx.Response:
    return await client.put(
        f"/api/v1/nearby/accounts/{account_id}/place",
        json={"name": name, "latitude": at[0], "longitude": at[1]},
        headers=who.headers,
    )


async def test_an_official_account_without_stores_is_listed_at_its_place_with_its_offers(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock, li: Person, yuki: Person
) -> None:
    brand = await brand_with_account(client, yuki, "Tea House")
    merchant = await client.post(
        "/api/v1/pay/merchants",
        json={"organisation_id": brand["organisation_id"], "name": "Tea House"},
        headers=yuki.headers,
    )
    assert merchant.status_code == 201, merchant.text
    campaign = await offer(client, yuki, merchant.json()["id"], clock, title="Free jasmine tea")
    placed = await set_place(
        client, yuki, brand["account_id"], "Tea House garden", (31.2310, 121.4740)
    )
    assert placed.status_code == 200, placed.text
    places = await search(client, li)
    assert len(places) == 1
    place = places[0]
    assert place["kind"] == "account"
    assert place["name"] == "Tea House garden"
    assert place["account_id"] == brand["account_id"]
    assert place["account_name"] == "Tea House"
    assert place["store_id"] is None
    assert [o["campaign_id"] for o in place["offers"]] == [campaign]
    assert place["busy"] is None  # nobody paid there: nothing to say
    # Its owner reads it back; clearing removes it from Places nearby at once.
    read = await client.get(
        f"/api/v1/nearby/accounts/{brand['account_id']}/place", headers=yuki.headers
    )
    assert read.json()["name"] == "Tea House garden"
    gone = await client.delete(
        f"/api/v1/nearby/accounts/{brand['account_id']}/place", headers=yuki.headers
    )
    assert gone.status_code == 204
    assert await search(client, li) == []


async def test_a_store_carries_its_brands_account_and_is_not_listed_twice(
    client: httpx.AsyncClient, li: Person, yuki: Person
) -> None:
    brand = await brand_with_account(client, yuki, "Dumpling Co")
    merchant = await client.post(
        "/api/v1/pay/merchants",
        json={"organisation_id": brand["organisation_id"], "name": "Dumpling Co"},
        headers=yuki.headers,
    )
    store = await client.post(
        f"/api/v1/pay/merchants/{merchant.json()['id']}/stores",
        json={"name": "Dumpling Co · Square", "latitude": 31.2310, "longitude": 121.4740},
        headers=yuki.headers,
    )
    assert store.status_code == 201, store.text
    # The account's place is next to its store (within 200 m): one entry, the store.
    await set_place(client, yuki, brand["account_id"], "Dumpling Co", (31.2311, 121.4741))
    places = await search(client, li)
    assert [(p["kind"], p["name"], p["account_name"]) for p in places] == [
        ("store", "Dumpling Co · Square", "Dumpling Co")
    ]


async def test_how_busy_counts_distinct_payers_of_the_last_hour_and_says_nothing_below_three(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock, li: Person, yuki: Person
) -> None:
    merchant_id, stores = await shop_with_stores(
        client, yuki, {"People's Square": (31.2310, 121.4740)}
    )
    store = stores["People's Square"]
    service = app.state.nearby

    async def payments(payers: list[uuid.UUID], at: datetime) -> None:
        async with app.state.db.transaction() as session:
            for payer in payers:
                record_event(
                    session,
                    PaymentSucceeded(
                        payment_id=uuid.uuid4(),
                        merchant_id=uuid.UUID(merchant_id),
                        store_id=uuid.UUID(store),
                        order_id=str(uuid.uuid4()),
                        user_id=payer,
                        currency="CNY",
                        amount_minor=1000,
                        discount_minor=0,
                        coupon_id=None,
                    ),
                    at,
                )
        service.forget_places()

    two = [uuid.uuid4(), uuid.uuid4()]
    await payments(two + two, clock.now())  # two people, twice each: still two
    assert (await search(client, li))[0]["busy"] is None
    await payments([uuid.uuid4()], clock.now() - timedelta(hours=2))  # too old to count
    assert (await search(client, li))[0]["busy"] is None
    await payments([uuid.uuid4()], clock.now() - timedelta(minutes=10))
    assert (await search(client, li))[0]["busy"] == "quiet"
    await payments([uuid.uuid4() for _ in range(7)], clock.now())
    assert (await search(client, li))[0]["busy"] == "busy"
    clock.advance(hours=2)
    service.forget_places()
    assert (await search(client, li))[0]["busy"] is None


async def test_only_the_brands_owner_or_admin_sets_its_place(
    client: httpx.AsyncClient, li: Person, yuki: Person
) -> None:
    brand = await brand_with_account(client, yuki, "Noodle Bar")
    url = f"/api/v1/nearby/accounts/{brand['account_id']}/place"
    stranger = await set_place(client, li, brand["account_id"], "Mine now", (31.23, 121.47))
    assert stranger.status_code == 404
    assert (await client.get(url, headers=li.headers)).status_code == 404
    assert (await client.delete(url, headers=li.headers)).status_code == 404
    assert (
        await client.put(url, json={"name": "x", "latitude": 1, "longitude": 2})
    ).status_code == 401
    off_earth = await client.put(
        url, json={"name": "Moon", "latitude": 91, "longitude": 0}, headers=yuki.headers
    )
    assert off_earth.status_code == 422
    assert await search(client, li) == []
