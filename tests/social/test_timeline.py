"""The timeline: newest first, keyset pages that neither skip nor repeat, no depth cap."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from tests.social.conftest import API, MakePerson, befriend, people, publish

from omo.core.clock import ManualClock
from omo.social.service import Draft, SocialService


async def _all_pages(
    client: httpx.AsyncClient, who: object, limit: int, between: object = None
) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = await client.get(f"{API}/timeline", params=params, headers=who.auth)  # type: ignore[attr-defined]
        assert page.status_code == 200, page.text
        seen += [p["text"] for p in page.json()["posts"]]
        cursor = page.json()["next_cursor"]
        if between is not None:
            await between()  # type: ignore[operator]
        if cursor is None:
            return seen


async def test_pages_neither_skip_nor_repeat_while_new_posts_arrive(
    client: httpx.AsyncClient, make_person: MakePerson, clock: ManualClock
) -> None:
    ana, bo = await people(make_person, "t1", "ana", "bo")
    await befriend(client, ana, bo)
    for n in range(12):
        await publish(client, ana if n % 2 else bo, f"post {n}")
        if n % 3:
            clock.advance(seconds=1)  # some posts share a timestamp: the id breaks the tie
    fresh = iter(range(100))

    async def someone_posts() -> None:
        clock.advance(seconds=1)
        await publish(client, ana, f"new {next(fresh)}")

    seen = await _all_pages(client, bo, 5, someone_posts)
    assert seen == [f"post {n}" for n in reversed(range(12))]


async def test_the_timeline_scrolls_back_without_a_depth_cap(
    app: FastAPI, make_person: MakePerson, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    ana, bo = await people(make_person, "t2", "ana", "bo")
    await befriend(client, ana, bo)
    service: SocialService = app.state.social
    for n in range(260):
        await service.publish(ana.user_id, Draft(text=f"p{n}"))
        clock.advance(minutes=1)
    seen = await _all_pages(client, bo, 50)
    assert len(seen) == 260
    assert seen[-1] == "p0"


async def test_a_bad_cursor_is_refused(client: httpx.AsyncClient, make_person: MakePerson) -> None:
    (ana,) = await people(make_person, "t3", "ana")
    response = await client.get(f"{API}/timeline", params={"cursor": "bm9wZQ"}, headers=ana.auth)
    assert response.status_code == 422
