"""The Moments pages: rendered for the signed-in person, with only what the rules allow."""

from __future__ import annotations

import httpx
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
