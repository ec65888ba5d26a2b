"""People Nearby through the API: opt-in, time-limited, cleared at once, coarse bands, the
same answer for the same cell, no impossible jumps, rate-limited, greeting = friend request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from tests.social.nearby.conftest import (
    NANJING_ROAD,
    PEOPLES_SQUARE,
    THE_BUND,
    MakePerson,
    Person,
)

from omo.core.clock import ManualClock
from omo.core.events import OutboxEvent
from omo.social.nearby.grid import snap
from omo.social.nearby.models import Presence, Track

API = "/api/v1/nearby/people"


def at(point: tuple[float, float], **extra: Any) -> dict[str, Any]:
    return {"latitude": point[0], "longitude": point[1], **extra}


async def turn_on(
    client: httpx.AsyncClient, who: Person, point: tuple[float, float], **extra: Any
) -> dict[str, Any]:
    answer = await client.put(f"{API}/visibility", json=at(point, **extra), headers=who.headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def search(
    client: httpx.AsyncClient, who: Person, point: tuple[float, float]
) -> list[dict[str, Any]]:
    answer = await client.post(f"{API}/search", json=at(point), headers=who.headers)
    assert answer.status_code == 200, answer.text
    people: list[dict[str, Any]] = answer.json()["people"]
    return people


async def test_two_people_who_turned_it_on_see_each_others_public_card(
    client: httpx.AsyncClient, li: Person, yuki: Person
) -> None:
    await turn_on(client, li, PEOPLES_SQUARE)
    await turn_on(client, yuki, NANJING_ROAD)
    [card] = await search(client, li, PEOPLES_SQUARE)
    assert card["display_name"] == "Sato Yuki"
    assert card["band"] == "1km"
    assert set(card) == {"handle", "display_name", "avatar_url", "region", "band"}
    assert yuki.omo_id not in str(card)
    assert yuki.phone not in str(card)
    [seen_by_yuki] = await search(client, yuki, NANJING_ROAD)
    assert seen_by_yuki["display_name"] == "Li Wei"


async def test_someone_who_did_not_turn_it_on_sees_nobody_and_is_seen_by_nobody(
    client: httpx.AsyncClient, li: Person, yuki: Person
) -> None:
    refused = await client.post(f"{API}/search", json=at(PEOPLES_SQUARE), headers=yuki.headers)
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/nearby-not-visible"
    await turn_on(client, li, PEOPLES_SQUARE)
    assert await search(client, li, PEOPLES_SQUARE) == []


async def test_clearing_my_location_removes_me_at_once(
    client: httpx.AsyncClient, li: Person, yuki: Person
) -> None:
    await turn_on(client, li, PEOPLES_SQUARE)
    await turn_on(client, yuki, NANJING_ROAD)
    assert len(await search(client, li, PEOPLES_SQUARE)) == 1
    cleared = await client.delete(f"{API}/visibility", headers=yuki.headers)
    assert cleared.status_code == 204
    assert await search(client, li, PEOPLES_SQUARE) == []
    gone = await client.post(f"{API}/search", json=at(NANJING_ROAD), headers=yuki.headers)
    assert gone.status_code == 409
    state = await client.get(f"{API}/visibility", headers=yuki.headers)
    assert state.json() == {"visible": False, "visible_until": None}


async def test_visibility_ends_by_itself_after_a_few_hours(
    client: httpx.AsyncClient, app: FastAPI, clock: ManualClock, li: Person, yuki: Person
) -> None:
    until = await turn_on(client, yuki, NANJING_ROAD)
    assert until["visible_until"].startswith("2026-11-25T13:00:00")  # 4 hours by default
    clock.advance(hours=3, minutes=59)
    await turn_on(client, li, PEOPLES_SQUARE)
    assert len(await search(client, li, PEOPLES_SQUARE)) == 1
    clock.advance(minutes=2)
    assert await search(client, li, PEOPLES_SQUARE) == []
    assert await app.state.nearby.sweep() == 1
    state = await client.get(f"{API}/visibility", headers=yuki.headers)
    assert state.json()["visible"] is False


async def test_a_person_chooses_how_long_to_stay_visible_within_a_limit(
    client: httpx.AsyncClient, clock: ManualClock, li: Person, yuki: Person
) -> None:
    await turn_on(client, yuki, NANJING_ROAD, minutes=30)
    await turn_on(client, li, PEOPLES_SQUARE)
    clock.advance(minutes=31)
    assert await search(client, li, PEOPLES_SQUARE) == []
    too_long = await client.put(
        f"{API}/visibility", json=at(NANJING_ROAD, minutes=721), headers=yuki.headers
    )
    assert too_long.status_code == 422


async def test_only_the_grid_cell_is_stored_never_the_position(
    client: httpx.AsyncClient, app: FastAPI, li: Person
) -> None:
    await turn_on(client, li, PEOPLES_SQUARE)
    for table in (Presence.__table__, Track.__table__):
        assert float not in {column.type.python_type for column in table.columns}
    async with app.state.db.sessions() as session:
        [row] = (await session.scalars(select(Presence))).all()
    assert row.cell == snap(*PEOPLES_SQUARE)


async def test_bands_are_coarse_and_people_beyond_5_km_are_not_listed(
    client: httpx.AsyncClient, person: MakePerson, li: Person, yuki: Person
) -> None:
    far = await person("+393401234567", "Giulia")
    await turn_on(client, li, PEOPLES_SQUARE)
    await turn_on(client, yuki, THE_BUND)
    await turn_on(client, far, (31.30, 121.60))  # ~14 km away
    [card] = await search(client, li, PEOPLES_SQUARE)
    assert card["display_name"] == "Sato Yuki"
    assert card["band"] == "2km"


async def test_the_same_query_cell_always_gets_the_same_answer(
    client: httpx.AsyncClient, person: MakePerson, li: Person
) -> None:
    others = [await person(f"+3361234560{i}", f"Person {i}") for i in range(6)]
    for i, other in enumerate(others):
        await turn_on(client, other, (31.2304 + 0.004 * i, 121.4737 - 0.003 * i))
    await turn_on(client, li, PEOPLES_SQUARE)
    cell = snap(*PEOPLES_SQUARE)
    first = await search(client, li, PEOPLES_SQUARE)
    assert len(first) == 6
    # Another point of the same cell: exactly the same list, in the same order.
    nudged = (PEOPLES_SQUARE[0] + 0.0005, PEOPLES_SQUARE[1] - 0.0004)
    assert snap(*nudged) == cell
    assert await search(client, li, nudged) == first


async def test_an_impossible_jump_is_refused_until_the_time_to_travel_it_has_passed(
    client: httpx.AsyncClient, clock: ManualClock, li: Person
) -> None:
    await turn_on(client, li, PEOPLES_SQUARE)
    beijing = (39.9042, 116.4074)  # ~1,070 km
    jump = await client.post(f"{API}/search", json=at(beijing), headers=li.headers)
    assert jump.status_code == 409
    assert jump.json()["type"] == "/problems/nearby-impossible-jump"
    assert int(jump.headers["retry-after"]) > 3 * 3600
    # Clearing and turning on again there does not beat it either.
    await client.delete(f"{API}/visibility", headers=li.headers)
    again = await client.put(f"{API}/visibility", json=at(beijing), headers=li.headers)
    assert again.status_code == 409
    clock.advance(hours=4)
    assert (await client.put(f"{API}/visibility", json=at(beijing), headers=li.headers)).is_success


async def test_nearby_queries_are_rate_limited_per_person(
    client: httpx.AsyncClient, li: Person
) -> None:
    await turn_on(client, li, PEOPLES_SQUARE)
    statuses = [
        (await client.post(f"{API}/search", json=at(PEOPLES_SQUARE), headers=li.headers))
        for _ in range(31)
    ]
    assert [s.status_code for s in statuses[:30]] == [200] * 30
    assert statuses[-1].status_code == 429
    assert int(statuses[-1].headers["retry-after"]) >= 1


async def test_a_greeting_is_a_friend_request_and_greeting_back_makes_friends(
    client: httpx.AsyncClient, li: Person, yuki: Person
) -> None:
    await turn_on(client, li, PEOPLES_SQUARE)
    await turn_on(client, yuki, NANJING_ROAD)
    [card] = await search(client, li, PEOPLES_SQUARE)
    hello = await client.post(
        f"{API}/greetings", json={"handle": card["handle"]}, headers=li.headers
    )
    assert hello.json() == {"status": "outgoing"}
    contacts = await client.get("/api/v1/messaging/contacts", headers=yuki.headers)
    assert [c["status"] for c in contacts.json()["contacts"]] == ["incoming"]
    [back] = await search(client, yuki, NANJING_ROAD)
    answer = await client.post(
        f"{API}/greetings", json={"handle": back["handle"]}, headers=yuki.headers
    )
    assert answer.json() == {"status": "friend"}


async def test_nobody_can_be_greeted_once_gone_or_by_a_guessed_handle(
    client: httpx.AsyncClient, li: Person, yuki: Person
) -> None:
    await turn_on(client, li, PEOPLES_SQUARE)
    await turn_on(client, yuki, NANJING_ROAD)
    [card] = await search(client, li, PEOPLES_SQUARE)
    await client.delete(f"{API}/visibility", headers=yuki.headers)
    for handle in (card["handle"], "guessed-handle"):
        gone = await client.post(f"{API}/greetings", json={"handle": handle}, headers=li.headers)
        assert gone.status_code == 404
        assert gone.json()["type"] == "/problems/nearby-person-gone"


@pytest.mark.parametrize("topic", ["social.nearby.people_visited", "social.nearby.cleared"])
async def test_visits_and_clears_are_events_in_the_outbox(
    client: httpx.AsyncClient, app: FastAPI, li: Person, topic: str
) -> None:
    await turn_on(client, li, PEOPLES_SQUARE)
    await search(client, li, PEOPLES_SQUARE)
    await client.delete(f"{API}/visibility", headers=li.headers)
    async with app.state.db.sessions() as session:
        rows = (await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == topic))).all()
    assert len(rows) == 1
    assert "latitude" not in rows[0].payload


async def test_people_who_blocked_each_other_do_not_see_or_greet_each_other(
    client: httpx.AsyncClient, li: Person, yuki: Person
) -> None:
    await turn_on(client, li, PEOPLES_SQUARE)
    await turn_on(client, yuki, NANJING_ROAD)
    [card] = await search(client, li, PEOPLES_SQUARE)
    blocked = await client.post(
        "/api/v1/messaging/blocks", json={"omo_id": li.omo_id}, headers=yuki.headers
    )
    assert blocked.is_success, blocked.text
    assert await search(client, li, PEOPLES_SQUARE) == []
    assert await search(client, yuki, NANJING_ROAD) == []
    hello = await client.post(
        f"{API}/greetings", json={"handle": card["handle"]}, headers=li.headers
    )
    assert hello.status_code == 404
