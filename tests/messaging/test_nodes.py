"""Real `omo serve` processes: two nodes on PostgreSQL + Redis deliver to each other's clients,
and a node killed with SIGKILL in the middle of a send load loses no acknowledged message."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import websockets
from fastapi import FastAPI
from tests.conftest import POSTGRES_URL, REDIS_URL
from tests.messaging.conftest import MakePerson, Person
from tests.support.nodes import Node


async def _connect(url: str, person: Person) -> Any:
    connection = await websockets.connect(url)
    await connection.send(json.dumps({"type": "auth", "token": person.token}))
    assert json.loads(await connection.recv())["type"] == "ready"
    return connection


async def _next(connection: Any, kind: str, timeout: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame: dict[str, Any] = json.loads(await connection.recv())
            if frame["type"] == kind:
                return frame


async def _chat(app: FastAPI, make_person: MakePerson) -> tuple[Person, Person, str]:
    ana, bo = await make_person("ana_node"), await make_person("bo_nodes")
    service = app.state.messaging
    await service.request_friend(ana.user_id, bo.omo_id)
    await service.accept_friend(bo.user_id, ana.omo_id)
    return ana, bo, str(await service.open_direct(ana.user_id, bo.omo_id))


@pytest.mark.skipif(
    not (POSTGRES_URL and REDIS_URL), reason="needs OMO_TEST_POSTGRES_URL and OMO_TEST_REDIS_URL"
)
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_two_nodes_deliver_between_people_connected_to_different_nodes(
    app: FastAPI, make_person: MakePerson, start_node: Node
) -> None:
    ana, bo, conversation = await _chat(app, make_person)
    first, second = await start_node(), await start_node()
    ana_socket = await _connect(first.ws_url, ana)
    bo_socket = await _connect(second.ws_url, bo)
    try:
        for n in range(1, 6):
            await ana_socket.send(
                json.dumps(
                    {"type": "send", "id": f"a{n}", "conversation": conversation, "text": f"hi {n}"}
                )
            )
            ack = await _next(ana_socket, "ack")
            pushed = await _next(bo_socket, "message")
            assert pushed["message"]["seq"] == ack["seq"] == n
            assert pushed["message"]["text"] == f"hi {n}"
        await bo_socket.send(
            json.dumps({"type": "send", "id": "b1", "conversation": conversation, "text": "back"})
        )
        back = await _next(ana_socket, "message")
        assert (back["message"]["sender"], back["message"]["seq"]) == ("bo_nodes", 6)
    finally:
        await ana_socket.close()
        await bo_socket.close()


async def test_a_node_killed_mid_load_keeps_every_acked_message_exactly_once(
    app: FastAPI, make_person: MakePerson, start_node: Node
) -> None:
    ana, bo, conversation = await _chat(app, make_person)
    node = await start_node()
    acked: dict[str, int] = {}
    sent: list[str] = []

    async def load(socket: Any) -> None:
        for n in range(100_000):
            client_id = f"load-{n}"
            sent.append(client_id)
            await socket.send(
                json.dumps(
                    {"type": "send", "id": client_id, "conversation": conversation, "text": str(n)}
                )
            )
            if n % 10 == 9:
                await asyncio.sleep(0)

    async def collect(socket: Any) -> None:
        while True:
            frame = json.loads(await socket.recv())
            if frame["type"] == "ack":
                acked[frame["id"]] = frame["seq"]

    socket = await _connect(node.ws_url, ana)
    tasks = [asyncio.create_task(load(socket)), asyncio.create_task(collect(socket))]
    while len(acked) < 200:
        await asyncio.sleep(0.01)
    node.kill()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert len(acked) >= 200
    # Restart; the sender resends everything unacknowledged with the same ids (retries).
    node = await start_node()
    socket = await _connect(node.ws_url, ana)
    unacked = [c for c in sent if c not in acked][:300]
    for client_id in unacked:
        text = client_id.removeprefix("load-")
        await socket.send(
            json.dumps(
                {"type": "send", "id": client_id, "conversation": conversation, "text": text}
            )
        )
    resent: dict[str, int] = {}
    while len(resent) < len(unacked):
        frame = await _next(socket, "ack")
        resent[frame["id"]] = frame["seq"]
    await socket.close()
    # The reader resumes from zero and pages through the whole log.
    reader = await _connect(node.ws_url, bo)
    log: list[dict[str, Any]] = []
    after = 0
    while True:
        await reader.send(
            json.dumps({"type": "sync", "conversation": conversation, "after": after, "limit": 200})
        )
        page = await _next(reader, "messages")
        log.extend(page["messages"])
        after = page["until"]
        if not page["more"]:
            break
    await reader.close()
    seqs = [m["seq"] for m in log]
    assert seqs == list(range(1, len(seqs) + 1))
    by_client = {m["client_id"]: m["seq"] for m in log}
    assert len(by_client) == len(log)  # no duplicates
    for client_id, seq in acked.items():
        assert by_client[client_id] == seq  # every ack before the kill survived, same place
    for client_id, seq in resent.items():
        assert by_client[client_id] == seq
    assert uuid.UUID(conversation)
