"""Resource factories for the messaging context's routes in the authorization matrix."""

from __future__ import annotations

import io
import uuid

import httpx
from PIL import Image
from tests.safety.matrix import Caller, ResourceFactory

API = "/api/v1/messaging"


async def _omo_id(client: httpx.AsyncClient, owner: Caller) -> str:
    me = await client.get("/api/v1/identity/me", headers=owner.headers)
    client.cookies.clear()
    omo_id: str = me.json()["omo_id"]
    return omo_id


async def _conversation(client: httpx.AsyncClient, owner: Caller) -> dict[str, str]:
    """A group the owner created (alone: their own id counts as no one else), with one message
    of theirs; `omo_id` names the owner, a member of it."""
    omo_id = await _omo_id(client, owner)
    group = await client.post(
        f"{API}/conversations/groups",
        json={"name": "Matrix group", "members": [omo_id]},
        headers=owner.headers,
    )
    assert group.status_code == 201, group.text
    conversation_id = group.json()["id"]
    sent = await client.post(
        f"{API}/conversations/{conversation_id}/messages",
        json={"client_id": str(uuid.uuid4()), "text": "hello"},
        headers=owner.headers,
    )
    assert sent.status_code in (200, 201), sent.text
    client.cookies.clear()
    return {
        "conversation_id": conversation_id,
        "seq": str(sent.json()["message"]["seq"]),
        "omo_id": omo_id,
    }


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


async def _media(client: httpx.AsyncClient, owner: Caller) -> dict[str, str]:
    """An image uploaded to a group the owner is in."""
    params = await _conversation(client, owner)
    upload = await client.post(
        f"{API}/conversations/{params['conversation_id']}/media",
        params={"kind": "image", "name": "matrix.png"},
        content=_png(),
        headers={**owner.headers, "Content-Type": "application/octet-stream"},
    )
    assert upload.status_code == 201, upload.text
    client.cookies.clear()
    return {"media_id": upload.json()["id"], "conversation_id": params["conversation_id"]}


FACTORIES: dict[str, ResourceFactory] = {
    "messaging.conversation": _conversation,
    "messaging.media": _media,
}
