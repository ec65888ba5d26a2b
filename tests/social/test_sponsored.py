"""Sponsored posts: targeting (followers, tags, place), the "Sponsored" mark, the daily cap,
the person's opt-outs, blocks, and the brand-side refusals."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from tests.social.conftest import API, MakePerson, Person, people

from omo.core.events import OutboxEvent

SQUARE = {"latitude": 31.2304, "longitude": 121.4737}
FAR = {"latitude": 31.1443, "longitude": 121.8083}  # ~34 km away


async def brand(client: httpx.AsyncClient, owner: Person, name: str = "Tea House") -> str:
    org = await client.post(
        "/api/v1/accounts/organisations", json={"name": name}, headers=owner.auth
    )
    assert org.status_code == 201, org.text
    account = await client.post(
        f"/api/v1/accounts/organisations/{org.json()['id']}/accounts",
        json={"kind": "subscription", "name": name},
        headers=owner.auth,
    )
    assert account.status_code == 201, account.text
    return str(account.json()["id"])


async def sponsor(
    client: httpx.AsyncClient, app: FastAPI, owner: Person, account_id: str, **fields: Any
) -> httpx.Response:
    body = {
        "text": "Jasmine tea, half price this week",
        "ends_at": (app.state.clock.now() + timedelta(days=7)).isoformat(),
        **fields,
    }
    return await client.post(
        f"{API}/accounts/{account_id}/sponsored", json=body, headers=owner.auth
    )


async def seen(client: httpx.AsyncClient, who: Person, **params: Any) -> dict[str, Any] | None:
    page = await client.get(f"{API}/timeline", params=params, headers=who.auth)
    assert page.status_code == 200, page.text
    found: dict[str, Any] | None = page.json()["sponsored"]
    return found


async def follow(client: httpx.AsyncClient, who: Person, account_id: str) -> None:
    answer = await client.put(f"/api/v1/accounts/{account_id}/follow", json={}, headers=who.auth)
    assert answer.status_code == 204, answer.text


async def test_a_sponsored_post_is_marked_and_stops_at_the_daily_cap(
    client: httpx.AsyncClient, app: FastAPI, make_person: MakePerson
) -> None:
    owner, ana = await people(make_person, "s1", "owner", "ana")
    account_id = await brand(client, owner)
    made = await sponsor(client, app, owner, account_id, daily_cap=2)
    assert made.status_code == 201, made.text
    first = await seen(client, ana)
    assert first is not None
    assert first["sponsored"] is True
    assert first["account_name"] == "Tea House"
    assert first["text"] == "Jasmine tea, half price this week"
    assert set(first) == {"id", "sponsored", "account_id", "account_name", "text", "card"}
    assert await seen(client, ana) is not None
    assert await seen(client, ana) is None  # twice today: the cap
    # Older pages carry none; the next day it comes back.
    more = await client.get(f"{API}/timeline", params={"cursor": "x"}, headers=ana.auth)
    assert more.status_code == 422
    app.state.clock.advance(days=1)
    assert await seen(client, ana) is not None
    listed = await client.get(f"{API}/accounts/{account_id}/sponsored", headers=owner.auth)
    assert listed.json()[0]["shown"] == 3
    async with app.state.db.sessions() as session:
        shown = (
            await session.scalars(
                select(OutboxEvent).where(OutboxEvent.topic == "social.sponsored_shown")
            )
        ).all()
    assert len(shown) == 3


async def test_followers_tags_and_place_target_who_sees_it(
    client: httpx.AsyncClient, app: FastAPI, make_person: MakePerson
) -> None:
    owner, fan, tagged, stranger = await people(
        make_person, "s2", "owner", "fan", "tagged", "stranger"
    )
    account_id = await brand(client, owner)
    for who in (fan, tagged):
        await follow(client, who, account_id)
    accounts = app.state.accounts
    tag_id, _name = await accounts.create_tag(uuid.UUID(account_id), "tea lovers")
    _total, openids = await accounts.followers(uuid.UUID(account_id))
    tagged_openid = [
        o
        for o in openids
        if (await accounts.follower(uuid.UUID(account_id), o)).nickname == "Tagged_Mo_S2"
    ]
    await accounts.tag_followers(uuid.UUID(account_id), tag_id, tagged_openid)

    followers = await sponsor(
        client, app, owner, account_id, text="For followers", followers_only=True
    )
    assert followers.status_code == 201, followers.text
    assert (await seen(client, fan) or {}).get("text") == "For followers"
    assert await seen(client, stranger) is None
    await client.delete(f"{API}/sponsored/{followers.json()['id']}", headers=owner.auth)
    app.state.sponsored._loaded = float("-inf")

    by_tag = await sponsor(client, app, owner, account_id, text="For tea lovers", tag_ids=[tag_id])
    assert by_tag.status_code == 201, by_tag.text
    assert (await seen(client, tagged) or {}).get("text") == "For tea lovers"
    assert await seen(client, fan) is None
    await client.delete(f"{API}/sponsored/{by_tag.json()['id']}", headers=owner.auth)

    around = await sponsor(
        client, app, owner, account_id, text="Near the square", place={**SQUARE, "radius_m": 2000}
    )
    assert around.status_code == 201, around.text
    assert (await seen(client, stranger, **SQUARE) or {}).get("text") == "Near the square"
    assert await seen(client, fan, **FAR) is None
    assert await seen(client, fan) is None  # no position sent: not matched


async def test_opt_outs_hide_one_brand_or_every_sponsored_post(
    client: httpx.AsyncClient, app: FastAPI, make_person: MakePerson
) -> None:
    owner, other, ana = await people(make_person, "s3", "owner", "other", "ana")
    tea = await brand(client, owner, "Tea House")
    noodles = await brand(client, other, "Noodle Bar")
    for owner_of, account_id in ((owner, tea), (other, noodles)):
        assert (await sponsor(client, app, owner_of, account_id)).status_code == 201
    hide = await client.put(f"{API}/sponsored/hidden/{tea}", headers=ana.auth)
    assert hide.status_code == 204
    for _ in range(3):
        assert (await seen(client, ana) or {}).get("account_name") == "Noodle Bar"
    assert await seen(client, ana) is None  # Noodle Bar's cap; Tea House stays hidden
    prefs = await client.put(
        f"{API}/sponsored/preferences", json={"no_sponsored": True}, headers=ana.auth
    )
    assert prefs.json() == {"no_sponsored": True, "hidden_accounts": [tea]}
    app.state.clock.advance(days=1)
    assert await seen(client, ana) is None
    await client.put(f"{API}/sponsored/preferences", json={"no_sponsored": False}, headers=ana.auth)
    assert (await seen(client, ana) or {}).get("account_name") == "Noodle Bar"
    await client.delete(f"{API}/sponsored/hidden/{tea}", headers=ana.auth)
    names = {(await seen(client, ana) or {}).get("account_name") for _ in range(3)}
    assert "Tea House" in names


async def test_never_shown_to_someone_blocked_by_or_blocking_the_brand_member(
    client: httpx.AsyncClient, app: FastAPI, make_person: MakePerson
) -> None:
    owner, ana = await people(make_person, "s4", "owner", "ana")
    account_id = await brand(client, owner)
    assert (await sponsor(client, app, owner, account_id)).status_code == 201
    blocked = await client.post(
        "/api/v1/messaging/blocks", json={"omo_id": ana.omo_id}, headers=owner.auth
    )
    assert blocked.status_code in (200, 201, 204), blocked.text
    assert await seen(client, ana) is None


async def test_only_the_brands_owner_or_admin_sponsors_and_stops(
    client: httpx.AsyncClient, app: FastAPI, make_person: MakePerson
) -> None:
    owner, stranger = await people(make_person, "s5", "owner", "stranger")
    account_id = await brand(client, owner)
    refused = await sponsor(client, app, stranger, account_id)
    assert refused.status_code == 404
    assert (
        await client.get(f"{API}/accounts/{account_id}/sponsored", headers=stranger.auth)
    ).status_code == 404
    made = await sponsor(client, app, owner, account_id)
    stop = await client.delete(f"{API}/sponsored/{made.json()['id']}", headers=stranger.auth)
    assert stop.status_code == 404
    assert await seen(client, stranger) is not None  # still running
    # Bad input: a cap above 10, a window ending before it starts, someone else's tag.
    for fields in (
        {"daily_cap": 11},
        {"ends_at": app.state.clock.now().isoformat()},
        {"tag_ids": [987654]},
        {"place": {**SQUARE, "radius_m": 10}},
        {"card": {"kind": "link", "url": "javascript:alert(1)"}},
    ):
        bad = await sponsor(client, app, owner, account_id, **fields)
        assert bad.status_code == 422, (fields, bad.text)
    stopped = await client.delete(f"{API}/sponsored/{made.json()['id']}", headers=owner.auth)
    assert stopped.status_code == 204
    assert await seen(client, stranger) is None
    assert (await client.get(f"{API}/sponsored/preferences")).status_code == 401


async def test_timelines_loading_at_once_never_exceed_the_cap(
    client: httpx.AsyncClient, app: FastAPI, make_person: MakePerson
) -> None:
    owner, ana = await people(make_person, "s6", "owner", "ana")
    account_id = await brand(client, owner)
    assert (await sponsor(client, app, owner, account_id, daily_cap=2)).status_code == 201
    picks = await asyncio.gather(*(app.state.sponsored.pick(ana.user_id) for _ in range(8)))
    assert 1 <= sum(p is not None for p in picks) <= 2
    listed = await client.get(f"{API}/accounts/{account_id}/sponsored", headers=owner.auth)
    assert listed.json()[0]["shown"] == sum(p is not None for p in picks)
