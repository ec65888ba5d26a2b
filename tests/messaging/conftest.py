"""People, friendships and a real WebSocket server (uvicorn in the test's loop) for messaging."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from fastapi import FastAPI

PASSWORD = "correct horse battery"


@dataclass
class Person:
    omo_id: str
    user_id: uuid.UUID
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


MakePerson = Callable[..., Awaitable[Person]]


@pytest.fixture
def make_person(app: FastAPI) -> MakePerson:
    counter = iter(range(100, 10_000))

    async def _make(omo_id: str, name: str | None = None) -> Person:
        phone = f"+3934012{next(counter):05d}"
        identity = app.state.identity
        user_id = await identity.ensure_person(phone, PASSWORD, name or omo_id.title(), omo_id)
        issued = await identity.log_in(
            phone,
            PASSWORD,
            device_name="test",
            kind="app",
            user_agent="pytest",
            client_address=f"198.51.100.{len(phone) + int(phone[-3:]) % 200}",
        )
        return Person(omo_id=omo_id, user_id=user_id, token=issued.token)

    return _make


async def befriend(client: httpx.AsyncClient, a: Person, b: Person) -> None:
    asked = await client.post(
        "/api/v1/messaging/contacts/requests", json={"omo_id": b.omo_id}, headers=a.auth
    )
    assert asked.status_code == 200, asked.text
    accepted = await client.post(f"/api/v1/messaging/contacts/{a.omo_id}/accept", headers=b.auth)
    assert accepted.status_code == 200, accepted.text


async def direct(client: httpx.AsyncClient, a: Person, b: Person) -> str:
    await befriend(client, a, b)
    opened = await client.post(
        "/api/v1/messaging/conversations/direct", json={"omo_id": b.omo_id}, headers=a.auth
    )
    assert opened.status_code == 200, opened.text
    return str(opened.json()["id"])


async def send(
    client: httpx.AsyncClient, who: Person, conversation: str, text: str, client_id: str
) -> httpx.Response:
    return await client.post(
        f"/api/v1/messaging/conversations/{conversation}/messages",
        json={"client_id": client_id, "text": text},
        headers=who.auth,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def ws_url(app: FastAPI) -> AsyncIterator[str]:
    """The app (lifespan already running) served by uvicorn on loopback, in this loop."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"ws://127.0.0.1:{port}/ws"
    server.should_exit = True
    await asyncio.wait_for(task, 10)


class Socket:
    """A WebSocket client that keeps every frame, so tests can wait for the one they need."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.frames: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.connection.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def expect(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        for frame in self.frames:
            if predicate(frame):
                self.frames.remove(frame)
                return frame
        async with asyncio.timeout(timeout):
            while True:
                frame = json.loads(await self.connection.recv())
                if predicate(frame):
                    return frame
                self.frames.append(frame)

    async def expect_type(self, kind: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
        return await self.expect(
            lambda f: f.get("type") == kind and all(f.get(k) == v for k, v in fields.items()),
            timeout,
        )

    async def close(self) -> None:
        await self.connection.close()


Connect = Callable[[Person], Awaitable[Socket]]


@pytest.fixture
async def connect(ws_url: str) -> AsyncIterator[Connect]:
    opened: list[Socket] = []

    async def _connect(person: Person) -> Socket:
        connection = await websockets.connect(ws_url, max_size=2**21)
        socket_ = Socket(connection)
        await socket_.send({"type": "auth", "token": person.token})
        await socket_.expect_type("ready")
        opened.append(socket_)
        return socket_

    yield _connect
    for socket_ in opened:
        await socket_.close()
