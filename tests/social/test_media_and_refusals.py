"""Photos and videos of a post: served only to its audience; guessed ids and URLs refused."""

from __future__ import annotations

import uuid

import httpx
from tests.social.conftest import API, MakePerson, befriend, people, png, publish, upload


async def test_photos_are_served_to_the_audience_and_to_no_one_else(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo, cai, eve = await people(make_person, "m1", "ana", "bo", "cai", "eve")
    await befriend(client, ana, bo)
    await befriend(client, ana, cai)
    photos = [await upload(client, ana, alt=f"dish {n}") for n in range(3)]
    post = await publish(
        client, ana, "a good meal", photos=photos, visibility="except", people=[cai.omo_id]
    )
    assert [m["alt"] for m in post["media"]] == ["dish 0", "dish 1", "dish 2"]
    url = post["media"][0]["url"]
    thumb = post["media"][0]["thumbnail_url"]
    for allowed in (ana, bo):
        got = await client.get(url, headers=allowed.auth)
        assert got.status_code == 200
        assert got.content == png()
        assert (await client.get(thumb, headers=allowed.auth)).headers[
            "content-type"
        ] == "image/jpeg"
    for refused in (cai, eve):
        assert (await client.get(url, headers=refused.auth)).status_code == 404
        assert (await client.get(thumb, headers=refused.auth)).status_code == 404
    assert (await client.get(url)).status_code == 401


async def test_an_unpublished_upload_is_the_uploaders_alone(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await people(make_person, "m2", "ana", "bo")
    await befriend(client, ana, bo)
    media_id = await upload(client, ana)
    assert (await client.get(f"{API}/media/{media_id}", headers=ana.auth)).status_code == 200
    assert (await client.get(f"{API}/media/{media_id}", headers=bo.auth)).status_code == 404
    stolen = await client.post(
        f"{API}/posts", json={"text": "mine now", "photos": [media_id]}, headers=bo.auth
    )
    assert stolen.status_code == 404


async def test_guessed_post_comment_and_media_ids_are_refused_alike(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo, eve = await people(make_person, "m3", "ana", "bo", "eve")
    await befriend(client, ana, bo)
    post = await publish(client, ana, "friends only", photos=[await upload(client, ana)])
    comment = await client.post(
        f"{API}/posts/{post['id']}/comments", json={"text": "hi"}, headers=bo.auth
    )
    guesses = [
        f"{API}/posts/{post['id']}",
        f"{API}/posts/{uuid.uuid4()}",
        post["media"][0]["url"],
        f"{API}/media/{uuid.uuid4()}",
    ]
    for path in guesses:
        response = await client.get(path, headers=eve.auth)
        assert response.status_code == 404, path
    deleted = await client.delete(f"{API}/comments/{comment.json()['id']}", headers=eve.auth)
    assert deleted.status_code == 404
    # A real post out of reach and a made-up id answer the same, so ids leak nothing.
    real = await client.get(f"{API}/posts/{post['id']}", headers=eve.auth)
    made_up = await client.get(f"{API}/posts/{uuid.uuid4()}", headers=eve.auth)
    assert real.json()["type"] == made_up.json()["type"]


async def test_photos_of_a_post_hidden_later_are_refused_at_once(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await people(make_person, "m4", "ana", "bo")
    await befriend(client, ana, bo)
    post = await publish(client, ana, "lunch", photos=[await upload(client, ana)])
    url = post["media"][0]["url"]
    assert (await client.get(url, headers=bo.auth)).status_code == 200
    await client.patch(
        f"{API}/friends/{bo.omo_id}", json={"hide_my_moments": True}, headers=ana.auth
    )
    assert (await client.get(url, headers=bo.auth)).status_code == 404


async def test_a_post_is_photos_or_a_video_or_a_card_never_a_mix(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    (ana,) = await people(make_person, "m5", "ana")
    photo = await upload(client, ana)
    mixed = await client.post(
        f"{API}/posts",
        json={"photos": [photo], "card": {"kind": "link", "url": "https://example.org"}},
        headers=ana.auth,
    )
    assert mixed.status_code == 422
    too_many = await client.post(
        f"{API}/posts", json={"photos": [str(uuid.uuid4()) for _ in range(10)]}, headers=ana.auth
    )
    assert too_many.status_code == 422
    empty = await client.post(f"{API}/posts", json={"text": "  "}, headers=ana.auth)
    assert empty.status_code == 422
    not_an_image = await client.post(
        f"{API}/media?kind=image",
        content=b"GIF89a but not really",
        headers={**ana.auth, "Content-Type": "application/octet-stream"},
    )
    assert not_an_image.status_code == 422
    card = await publish(
        client,
        ana,
        "try this",
        card={"kind": "miniprogram", "target": "wx1234", "title": "Order"},
        place={"name": "Luigi's", "latitude": 45.4642, "longitude": 9.19},
    )
    assert card["kind"] == "miniprogram"
    assert card["place"]["name"] == "Luigi's"
