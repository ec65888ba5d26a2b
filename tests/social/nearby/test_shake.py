"""Shake: two people shaking together nearby are paired; an ambiguous shake is asked again;
a shake in a shop opens the page the shop bound to its beacon; through Redis, two nodes
pair with each other."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from tests.conftest import REDIS_URL
from tests.social.nearby.conftest import NANJING_ROAD, PEOPLES_SQUARE, MakePerson, Person

from omo.core.events import OutboxEvent
from omo.social.nearby.shake import MemoryMatcher, RedisMatcher

API = "/api/v1/nearby/shakes"
NEXT_DOOR = (PEOPLES_SQUARE[0] + 0.0003, PEOPLES_SQUARE[1] + 0.0002)  # ~40 m


@pytest.fixture(autouse=True)
def short_window(app: FastAPI) -> None:
    """Half a second of "together" keeps the suite fast; the rules are the same."""
    nearby = app.state.nearby
    nearby.config = dataclasses.replace(nearby.config, shake_window=0.5)
    nearby.matcher.window = 0.5


async def shake(
    client: httpx.AsyncClient, who: Person, where: tuple[float, float], **extra: Any
) -> dict[str, Any]:
    answer = await client.post(
        API, json={"latitude": where[0], "longitude": where[1], **extra}, headers=who.headers
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_two_people_shaking_together_nearby_see_each_others_card(
    client: httpx.AsyncClient, app: FastAPI, li: Person, yuki: Person
) -> None:
    mine, theirs = await asyncio.gather(
        shake(client, li, PEOPLES_SQUARE), shake(client, yuki, NEXT_DOOR)
    )
    assert mine["outcome"] == theirs["outcome"] == "paired"
    assert mine["partner"] == {"display_name": "Sato Yuki", "avatar_url": None, "region": "JP"}
    assert theirs["partner"]["display_name"] == "Li Wei"
    async with app.state.db.sessions() as session:
        shakes = (
            await session.scalars(
                select(OutboxEvent).where(OutboxEvent.topic == "social.nearby.shaken")
            )
        ).all()
    assert sorted(e.payload["outcome"] for e in shakes) == ["paired", "paired"]


async def test_a_matched_pair_greets_with_a_friend_request_and_nobody_else_can(
    client: httpx.AsyncClient, app: FastAPI, li: Person, yuki: Person, person: MakePerson
) -> None:
    mine, theirs = await asyncio.gather(
        shake(client, li, PEOPLES_SQUARE), shake(client, yuki, NEXT_DOOR)
    )
    assert mine["greet_token"]
    assert theirs["greet_token"]
    assert mine["greet_token"] != theirs["greet_token"]
    # No phone number, no id on the card: the token is all there is to greet with.
    assert set(mine["partner"]) == {"display_name", "avatar_url", "region"}
    greet = API + "/greetings"
    # Someone else cannot use Li's token, nor a guessed one.
    eve = await person("+447911123457", "Eve")
    stolen = await client.post(greet, json={"token": mine["greet_token"]}, headers=eve.headers)
    assert stolen.status_code == 404
    assert stolen.json()["type"].endswith("nearby-person-gone")
    guessed = await client.post(greet, json={"token": "x" * 24}, headers=li.headers)
    assert guessed.status_code == 404
    assert (await client.post(greet, json={"token": mine["greet_token"]})).status_code == 401
    first = await client.post(greet, json={"token": mine["greet_token"]}, headers=li.headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"status": "outgoing"}
    back = await client.post(greet, json={"token": theirs["greet_token"]}, headers=yuki.headers)
    assert back.json() == {"status": "friend"}
    async with app.state.db.sessions() as session:
        greeted = (
            await session.scalars(
                select(OutboxEvent).where(OutboxEvent.topic == "social.nearby.greeted")
            )
        ).all()
    assert len(greeted) == 2


async def test_a_shake_greeting_expires_and_a_block_refuses_it(
    client: httpx.AsyncClient, app: FastAPI, li: Person, yuki: Person
) -> None:
    mine, theirs = await asyncio.gather(
        shake(client, li, PEOPLES_SQUARE), shake(client, yuki, NEXT_DOOR)
    )
    blocked = await client.post(
        "/api/v1/messaging/blocks", json={"omo_id": li.omo_id}, headers=yuki.headers
    )
    assert blocked.status_code in (200, 201, 204), blocked.text
    refused = await client.post(
        API + "/greetings", json={"token": mine["greet_token"]}, headers=li.headers
    )
    assert refused.status_code == 404
    app.state.clock.advance(minutes=11)
    late = await client.post(
        API + "/greetings", json={"token": theirs["greet_token"]}, headers=yuki.headers
    )
    assert late.status_code == 404


async def test_a_shake_after_the_window_is_alone(
    client: httpx.AsyncClient, li: Person, yuki: Person
) -> None:
    first = await shake(client, li, PEOPLES_SQUARE)
    second = await shake(client, yuki, NEXT_DOOR)
    assert (
        first
        == second
        == {
            "outcome": "alone",
            "partner": None,
            "page": None,
            "greet_token": None,
        }
    )


async def test_shakes_far_apart_are_not_paired(
    client: httpx.AsyncClient, li: Person, yuki: Person
) -> None:
    mine, theirs = await asyncio.gather(
        shake(client, li, PEOPLES_SQUARE), shake(client, yuki, NANJING_ROAD)
    )
    assert mine["outcome"] == theirs["outcome"] == "alone"


async def test_three_shaking_together_are_asked_to_shake_again_rather_than_paired_wrongly(
    client: httpx.AsyncClient, person: MakePerson, li: Person, yuki: Person
) -> None:
    giulia = await person("+393401234567", "Giulia")
    answers = await asyncio.gather(
        shake(client, li, PEOPLES_SQUARE),
        shake(client, yuki, NEXT_DOOR),
        shake(client, giulia, PEOPLES_SQUARE),
    )
    assert [a["outcome"] for a in answers] == ["again", "again", "again"]
    assert all(a["partner"] is None for a in answers)


async def test_one_person_shaking_twice_is_not_paired_with_themselves(
    client: httpx.AsyncClient, li: Person
) -> None:
    answers = await asyncio.gather(shake(client, li, PEOPLES_SQUARE), shake(client, li, NEXT_DOOR))
    assert [a["outcome"] for a in answers] == ["alone", "alone"]


async def merchant_of(client: httpx.AsyncClient, owner: Person, name: str) -> str:
    made = await client.post(
        "/api/v1/pay/merchants",
        json={"organisation_id": f"org-{name}", "name": name},
        headers=owner.headers,
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def test_shaking_in_a_shop_opens_the_page_the_shop_bound_to_its_beacon(
    client: httpx.AsyncClient, li: Person, yuki: Person
) -> None:
    merchant = await merchant_of(client, yuki, "Tea House")
    beacons = f"/api/v1/nearby/merchants/{merchant}/beacons"
    bound = await client.put(
        f"{beacons}/tea-house-1",
        json={"title": "Our tea menu", "kind": "miniprogram", "target": "/mp/tea/menu"},
        headers=yuki.headers,
    )
    assert bound.status_code == 200, bound.text
    answer = await shake(client, li, PEOPLES_SQUARE, beacon="tea-house-1")
    assert answer["outcome"] == "shop"
    assert answer["page"] == {
        "beacon": "tea-house-1",
        "title": "Our tea menu",
        "kind": "miniprogram",
        "target": "/mp/tea/menu",
    }
    listed = await client.get(beacons, headers=yuki.headers)
    assert [b["beacon"] for b in listed.json()] == ["tea-house-1"]
    # An unknown beacon is just a shake.
    assert (await shake(client, li, PEOPLES_SQUARE, beacon="nobody"))["outcome"] == "alone"
    gone = await client.delete(f"{beacons}/tea-house-1", headers=yuki.headers)
    assert gone.status_code == 204
    assert (await shake(client, li, PEOPLES_SQUARE, beacon="tea-house-1"))["outcome"] == "alone"


async def test_a_shop_binds_only_its_own_offers_and_beacons(
    client: httpx.AsyncClient, clock: Any, li: Person, yuki: Person
) -> None:
    mine = await merchant_of(client, yuki, "Tea House")
    other = await merchant_of(client, li, "Coffee Bar")
    page = {"title": "10% off", "kind": "offer", "target": str(uuid.uuid4())}
    refused = await client.put(
        f"/api/v1/nearby/merchants/{mine}/beacons/b1", json=page, headers=yuki.headers
    )
    assert refused.status_code == 400
    assert refused.json()["type"] == "/problems/nearby-invalid-page"
    taken = await client.put(
        f"/api/v1/nearby/merchants/{other}/beacons/b1",
        json={"title": "Menu", "kind": "miniprogram", "target": "/mp/coffee"},
        headers=li.headers,
    )
    assert taken.status_code == 200
    stolen = await client.put(
        f"/api/v1/nearby/merchants/{mine}/beacons/b1",
        json={"title": "Menu", "kind": "miniprogram", "target": "/mp/tea"},
        headers=yuki.headers,
    )
    assert stolen.status_code == 409
    assert stolen.json()["type"] == "/problems/nearby-beacon-taken"
    not_owner = await client.put(
        f"/api/v1/nearby/merchants/{other}/beacons/b2",
        json={"title": "Menu", "kind": "miniprogram", "target": "/mp/tea"},
        headers=yuki.headers,
    )
    assert not_owner.status_code in (403, 404)


@pytest.mark.skipif(not REDIS_URL, reason="needs OMO_TEST_REDIS_URL")
async def test_two_nodes_pair_shakes_through_redis() -> None:
    assert REDIS_URL
    prefix = f"omotest:{uuid.uuid4().hex[:8]}:"
    node_a, node_b = RedisMatcher(REDIS_URL, prefix, 0.5), RedisMatcher(REDIS_URL, prefix, 0.5)
    li, yuki = uuid.uuid4(), uuid.uuid4()
    cells = ["89309e0b4bbffff"]

    async def shake_on(node: RedisMatcher, who: uuid.UUID) -> str:
        shake_id = uuid.uuid4().hex
        at = await node.add(shake_id, who, cells[0])
        await asyncio.sleep(0.05)
        return (
            await node.decide(shake_id, who, at, cells)
            or await node.wait(shake_id, 0.5)
            or await node.give_up(shake_id)
        )

    try:
        mine, theirs = await asyncio.gather(shake_on(node_a, li), shake_on(node_b, yuki))
    finally:
        await node_a.close()
        await node_b.close()
    assert (mine, theirs) == (f"paired:{yuki}", f"paired:{li}")


async def test_in_one_process_a_decision_is_never_taken_twice() -> None:
    matcher = MemoryMatcher(window=0.5)
    people = [uuid.uuid4() for _ in range(2)]
    ids = [uuid.uuid4().hex for _ in people]
    ats = [await matcher.add(i, p, "cell") for i, p in zip(ids, people, strict=True)]
    first = await matcher.decide(ids[0], people[0], ats[0], ["cell"])
    second = await matcher.decide(ids[1], people[1], ats[1], ["cell"])
    assert first == f"paired:{people[1]}"
    assert second == f"paired:{people[0]}"


# The settle time of a pair is counted from its first shake (docs/SOCIAL_NEARBY.md, Shake).


async def test_the_second_shake_waits_only_the_rest_of_the_first_ones_settle_time(
    app: FastAPI,
) -> None:
    nearby = app.state.nearby
    settle = nearby.config.shake_settle
    li, yuki = uuid.uuid4(), uuid.uuid4()
    first = asyncio.create_task(nearby.match(li, *PEOPLES_SQUARE))
    await asyncio.sleep(settle * 0.8)
    began = time.monotonic()
    second = await nearby.match(yuki, *NEXT_DOOR)
    waited = time.monotonic() - began
    assert second == ("paired", li)
    assert await first == ("paired", yuki)
    # ~20 % of the settle time is left; its full length would be a second settle time.
    assert waited < settle * 0.7


async def test_a_stranger_in_the_first_shakes_settle_time_makes_everyone_shake_again(
    app: FastAPI,
) -> None:
    nearby = app.state.nearby
    settle = nearby.config.shake_settle
    li, yuki, giulia = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    first = asyncio.create_task(nearby.match(li, *PEOPLES_SQUARE))
    await asyncio.sleep(settle * 0.3)
    second = asyncio.create_task(nearby.match(yuki, *NEXT_DOOR))
    await asyncio.sleep(settle * 0.3)
    third = await nearby.match(giulia, *PEOPLES_SQUARE)
    assert [await first, await second, third] == [("again", None)] * 3


async def test_a_shake_after_the_pair_was_decided_does_not_undo_it(app: FastAPI) -> None:
    nearby = app.state.nearby
    settle = nearby.config.shake_settle
    li, yuki, giulia = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    first = asyncio.create_task(nearby.match(li, *PEOPLES_SQUARE))
    await asyncio.sleep(settle * 0.5)
    second = asyncio.create_task(nearby.match(yuki, *NEXT_DOOR))
    assert await asyncio.gather(first, second) == [("paired", yuki), ("paired", li)]
    # Giulia shakes in the same 2 s window, but the pair is taken: she is alone, not a third.
    assert await nearby.match(giulia, *PEOPLES_SQUARE) == ("alone", None)


@pytest.mark.skipif(not REDIS_URL, reason="needs OMO_TEST_REDIS_URL")
async def test_two_nodes_pair_within_the_first_shakes_settle_time_through_redis() -> None:
    assert REDIS_URL
    prefix = f"omotest:{uuid.uuid4().hex[:8]}:"
    node_a, node_b = RedisMatcher(REDIS_URL, prefix, 0.5), RedisMatcher(REDIS_URL, prefix, 0.5)
    li, yuki = uuid.uuid4(), uuid.uuid4()
    cells = ["89309e0b4bbffff"]
    settle = 0.3

    async def shake_on(node: RedisMatcher, who: uuid.UUID) -> tuple[str, float]:
        shake_id = uuid.uuid4().hex
        at = await node.add(shake_id, who, cells[0])
        began = time.monotonic()
        await node.settle(shake_id, settle)
        result = (
            await node.decide(shake_id, who, at, cells)
            or await node.wait(shake_id, 0.5)
            or await node.give_up(shake_id)
        )
        return result, time.monotonic() - began

    async def later() -> tuple[str, float]:
        await asyncio.sleep(settle * 0.8)
        return await shake_on(node_b, yuki)

    try:
        (mine, _), (theirs, waited) = await asyncio.gather(shake_on(node_a, li), later())
    finally:
        await node_a.close()
        await node_b.close()
    assert (mine, theirs) == (f"paired:{yuki}", f"paired:{li}")
    assert waited < settle * 0.7  # woken by node A's decision, not its own settle time
