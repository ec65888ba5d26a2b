"""People and friendships (through messaging's API) for the social tests, plus small helpers."""

from __future__ import annotations

import io
from typing import Any

import httpx
from PIL import Image
from tests.messaging.conftest import (
    Connect,
    MakePerson,
    Person,
    befriend,
    connect,
    make_person,
    ws_url,
)

__all__ = ["Connect", "MakePerson", "Person", "befriend", "connect", "make_person", "ws_url"]

API = "/api/v1/social"


async def people(make_person: MakePerson, tag: str, *names: str) -> list[Person]:
    """People named e.g. ana_mo_v3 (omo ids need 6 to 20 characters)."""
    return [await make_person(f"{name}_mo_{tag}") for name in names]


async def publish(
    client: httpx.AsyncClient, who: Person, text: str = "hello", **fields: Any
) -> dict[str, Any]:
    response = await client.post(f"{API}/posts", json={"text": text, **fields}, headers=who.auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def timeline_texts(client: httpx.AsyncClient, who: Person) -> list[str]:
    response = await client.get(f"{API}/timeline?limit=50", headers=who.auth)
    assert response.status_code == 200, response.text
    return [p["text"] for p in response.json()["posts"]]


async def sees(client: httpx.AsyncClient, who: Person, post: dict[str, Any]) -> bool:
    response = await client.get(f"{API}/posts/{post['id']}", headers=who.auth)
    assert response.status_code in (200, 404), response.text
    in_timeline = post["text"] in await timeline_texts(client, who)
    assert in_timeline == (response.status_code == 200), "timeline and post page disagree"
    return response.status_code == 200


def png(size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


async def upload(client: httpx.AsyncClient, who: Person, alt: str = "a blue sky") -> str:
    response = await client.post(
        f"{API}/media",
        params={"kind": "image", "alt": alt},
        content=png(),
        headers={**who.auth, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
