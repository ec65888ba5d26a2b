"""Places nearby: shops near the person, nearest first, with the coupons open right now."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from tests.social.nearby.conftest import PEOPLES_SQUARE, Person

from omo.core.clock import ManualClock
from omo.core.events import OutboxEvent

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
