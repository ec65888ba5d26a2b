"""Media: uploaded first, checked by content, thumbnailed, served only to members; places."""

from __future__ import annotations

import io

import httpx
from PIL import Image
from tests.messaging.conftest import MakePerson, direct

API = "/api/v1/messaging"


def _png(size: tuple[int, int] = (800, 600)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


async def test_an_image_is_checked_thumbnailed_sent_and_served_only_to_members(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo, eve = (
        await make_person("ana_demo"),
        await make_person("bo_demo1"),
        await make_person("eve_demo"),
    )
    conversation = await direct(client, ana, bo)
    uploaded = await client.post(
        f"{API}/conversations/{conversation}/media?kind=image&name=sky.png",
        content=_png(),
        headers={**ana.auth, "Content-Type": "application/octet-stream"},
    )
    assert uploaded.status_code == 201, uploaded.text
    media = uploaded.json()
    assert (media["content_type"], media["width"], media["height"]) == ("image/png", 800, 600)
    sent = await client.post(
        f"{API}/conversations/{conversation}/messages",
        json={"client_id": "img-1", "media_id": media["id"]},
        headers=ana.auth,
    )
    message = sent.json()["message"]
    assert message["kind"] == "image"
    assert message["media"]["url"] == f"/api/v1/messaging/media/{media['id']}"
    full = await client.get(message["media"]["url"], headers=bo.auth)
    assert (full.status_code, full.headers["content-type"]) == (200, "image/png")
    assert full.content == _png()
    thumb = await client.get(message["media"]["thumbnail_url"], headers=bo.auth)
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 320
    refused = await client.get(message["media"]["url"], headers=eve.auth)
    assert (refused.status_code, refused.json()["type"]) == (404, "/problems/media-not-found")
    # Nobody else can send Ana's upload, and an outsider cannot upload to the chat.
    stolen = await client.post(
        f"{API}/conversations/{conversation}/messages",
        json={"client_id": "img-2", "media_id": media["id"]},
        headers=bo.auth,
    )
    assert stolen.json()["type"] == "/problems/media-not-found"
    outsider = await client.post(
        f"{API}/conversations/{conversation}/media?kind=image", content=_png(), headers=eve.auth
    )
    assert outsider.json()["type"] == "/problems/not-a-member"


async def test_media_is_checked_by_content_not_by_name(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    conversation = await direct(client, ana, bo)
    upload = f"{API}/conversations/{conversation}/media"
    fake = await client.post(
        f"{upload}?kind=image&name=cat.png", content=b"<script>alert(1)</script>", headers=ana.auth
    )
    assert (fake.status_code, fake.json()["type"]) == (422, "/problems/invalid-media")
    not_voice = await client.post(f"{upload}?kind=voice", content=b"hello", headers=ana.auth)
    assert not_voice.json()["type"] == "/problems/invalid-media"
    voice = await client.post(
        f"{upload}?kind=voice", content=b"OggS" + b"\0" * 100, headers=ana.auth
    )
    assert voice.json()["content_type"] == "audio/ogg"
    document = await client.post(
        f"{upload}?kind=file&name=notes.txt", content=b"plain notes", headers=ana.auth
    )
    assert document.json()["content_type"] == "application/octet-stream"
    served = await client.get(f"{API}/media/{document.json()['id']}", headers=bo.auth)
    assert served.headers["content-disposition"] == "attachment"
    too_big = await client.post(
        f"{upload}?kind=voice", content=b"OggS" + b"\0" * (2 * 1024 * 1024), headers=ana.auth
    )
    assert too_big.status_code == 413


async def test_a_place_is_a_message(client: httpx.AsyncClient, make_person: MakePerson) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    conversation = await direct(client, ana, bo)
    sent = await client.post(
        f"{API}/conversations/{conversation}/messages",
        json={
            "client_id": "loc-1",
            "location": {"latitude": 45.4642, "longitude": 9.19, "name": "Duomo"},
        },
        headers=ana.auth,
    )
    message = sent.json()["message"]
    assert (message["kind"], message["location"]["name"]) == ("location", "Duomo")
    listed = (await client.get(f"{API}/conversations", headers=bo.auth)).json()
    assert listed[0]["unread"] == 1
