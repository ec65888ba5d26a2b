"""The Moments pages: rendered for the signed-in person, with only what the rules allow."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI
from tests.social.conftest import API, MakePerson, Person, befriend, people, publish

from omo.core.auth import SESSION_COOKIE


def _as(who: Person) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={who.token}"}


async def test_the_timeline_post_and_friend_pages_show_what_the_rules_allow(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo, eve = await people(make_person, "p1", "ana", "bo", "eve")
    await befriend(client, ana, bo)
    post = await publish(client, ana, "pasta night")
    await client.post(f"{API}/posts/{post['id']}/comments", json={"text": "yum"}, headers=bo.auth)
    secret = await publish(client, ana, "just me", visibility="private")
    page = await client.get("/moments", headers=_as(bo))
    assert page.status_code == 200
    assert "pasta night" in page.text
    assert "just me" not in page.text
    single = await client.get(f"/moments/{post['id']}", headers=_as(bo))
    assert "yum" in single.text
    refused = await client.get(f"/moments/{secret['id']}", headers=_as(bo))
    assert refused.status_code == 404
    stranger = await client.get(f"/moments/{post['id']}", headers=_as(eve))
    assert stranger.status_code == 404
    friend = await client.get(f"/moments/friends/{bo.omo_id}", headers=_as(ana))
    assert friend.status_code == 200
    assert bo.omo_id in friend.text


async def test_the_moments_page_sends_a_signed_out_visitor_to_log_in(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/moments", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


async def test_a_post_fragment_follows_the_same_rules_and_the_page_marks_a_sponsored_post(
    client: httpx.AsyncClient, app: FastAPI, make_person: MakePerson
) -> None:
    ana, bo, eve = await people(make_person, "p2", "ana", "bo", "eve")
    await befriend(client, ana, bo)
    post = await publish(client, ana, "fresh bread")
    fragment = await client.get(f"/moments/{post['id']}?fragment=card", headers=_as(bo))
    assert fragment.status_code == 200
    assert "fresh bread" in fragment.text
    assert "<html" not in fragment.text
    refused = await client.get(f"/moments/{post['id']}?fragment=full", headers=_as(eve))
    assert refused.status_code == 404
    bad = await client.get(f"/moments/{post['id']}?fragment=other", headers=_as(bo))
    assert bad.status_code == 422
    org = await client.post(
        "/api/v1/accounts/organisations", json={"name": "Bakery"}, headers=ana.auth
    )
    account = await client.post(
        f"/api/v1/accounts/organisations/{org.json()['id']}/accounts",
        json={"kind": "subscription", "name": "Bakery"},
        headers=ana.auth,
    )
    ends = (app.state.clock.now() + timedelta(days=7)).isoformat()
    made = await client.post(
        f"{API}/accounts/{account.json()['id']}/sponsored",
        json={"text": "Warm croissants", "ends_at": ends},
        headers=ana.auth,
    )
    assert made.status_code == 201, made.text
    page = await client.get("/moments", headers=_as(eve))
    assert page.status_code == 200
    assert "Warm croissants" in page.text
    assert "Sponsored" in page.text
    assert f'data-hide-brand="{account.json()["id"]}"' in page.text
