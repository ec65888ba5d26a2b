"""The WebSocket gateway, protocol v1: auth, send/ack, live delivery, sync, receipts, refusals."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI
from tests.messaging.conftest import Connect, MakePerson, befriend, direct, send

from omo.messaging import gateway


async def test_a_message_is_acked_with_its_sequence_and_pushed_to_every_device(
    client: httpx.AsyncClient, make_person: MakePerson, connect: Connect
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    conversation = await direct(client, ana, bo)
    ana_phone, bo_phone, bo_laptop = await connect(ana), await connect(bo), await connect(bo)
    await ana_phone.send(
        {"type": "send", "id": "m-1", "conversation": conversation, "text": "ciao"}
    )
    ack = await ana_phone.expect_type("ack", id="m-1")
    assert (ack["seq"], ack["duplicate"], ack["message"]["text"]) == (1, False, "ciao")
    for device in (bo_phone, bo_laptop):
        pushed = await device.expect_type("message")
        assert (pushed["message"]["seq"], pushed["message"]["sender"]) == (1, "ana_demo")
        assert "origin" not in pushed
    # The sending device does not get its own message twice (the ack is enough).
    with pytest.raises(TimeoutError):
        await ana_phone.expect_type("message", timeout=0.3)


async def test_a_retried_send_is_acked_with_the_original(
    client: httpx.AsyncClient, make_person: MakePerson, connect: Connect
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    conversation = await direct(client, ana, bo)
    socket = await connect(ana)
    frame = {"type": "send", "id": "m-1", "conversation": conversation, "text": "once"}
    await socket.send(frame)
    first = await socket.expect_type("ack", id="m-1")
    await socket.send(frame)
    second = await socket.expect_type("ack", id="m-1")
    assert second["duplicate"] is True
    assert second["message"] == first["message"]


async def test_a_reconnecting_device_syncs_exactly_what_it_missed(
    client: httpx.AsyncClient, make_person: MakePerson, connect: Connect
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    conversation = await direct(client, ana, bo)
    await send(client, ana, conversation, "seen", "c1")
    for n in range(2, 6):
        await send(client, ana, conversation, f"missed {n}", f"c{n}")
    socket = await connect(bo)
    await socket.send({"type": "conversations"})
    listed = await socket.expect_type("conversations")
    assert listed["conversations"][0]["last_seq"] == 5
    await socket.send({"type": "sync", "conversation": conversation, "after": 1})
    page = await socket.expect_type("messages")
    assert [m["seq"] for m in page["messages"]] == [2, 3, 4, 5]
    assert (page["until"], page["more"]) == (5, False)


async def test_read_receipts_and_typing_reach_the_other_side(
    client: httpx.AsyncClient, make_person: MakePerson, connect: Connect
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    conversation = await direct(client, ana, bo)
    await send(client, ana, conversation, "hello", "c1")
    ana_socket, bo_socket = await connect(ana), await connect(bo)
    await bo_socket.send({"type": "typing", "conversation": conversation})
    typing = await ana_socket.expect_type("typing")
    assert typing["who"] == "bo_demo1"
    await bo_socket.send({"type": "read", "conversation": conversation, "seq": 1})
    receipt = await ana_socket.expect_type("read")
    assert (receipt["reader"], receipt["seq"]) == ("bo_demo1", 1)


async def test_recall_and_hide_over_the_socket(
    client: httpx.AsyncClient, make_person: MakePerson, connect: Connect
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    conversation = await direct(client, ana, bo)
    ana_socket, bo_socket = await connect(ana), await connect(bo)
    await ana_socket.send({"type": "send", "id": "m1", "conversation": conversation, "text": "x"})
    await ana_socket.expect_type("ack", id="m1")
    await ana_socket.send({"type": "recall", "id": "r1", "conversation": conversation, "seq": 1})
    ack = await ana_socket.expect_type("ack", id="r1")
    assert (ack["message"]["kind"], ack["message"]["target_seq"]) == ("recall", 1)
    recall = await bo_socket.expect(
        lambda f: f.get("type") == "message" and f["message"]["kind"] == "recall"
    )
    assert recall["message"]["seq"] == 2
    await bo_socket.send({"type": "hide", "conversation": conversation, "seq": 2})
    assert (await bo_socket.expect_type("hidden"))["seq"] == 2


async def test_refusals_are_error_frames_and_the_connection_stays_usable(
    client: httpx.AsyncClient, make_person: MakePerson, connect: Connect
) -> None:
    ana, bo, eve = (
        await make_person("ana_demo"),
        await make_person("bo_demo1"),
        await make_person("eve_demo"),
    )
    conversation = await direct(client, ana, bo)
    eve_socket = await connect(eve)
    await eve_socket.send({"type": "send", "id": "x1", "conversation": conversation, "text": "hi"})
    error = await eve_socket.expect_type("error")
    assert (error["code"], error["ref"]) == ("not-a-member", "x1")
    assert error["title"] == "You are not in this conversation"
    await eve_socket.send(
        {"type": "sync", "conversation": "0190a000-0000-7000-8000-000000000000", "after": 0}
    )
    assert (await eve_socket.expect_type("error"))["code"] == "conversation-not-found"
    await eve_socket.send("{not json")
    assert (await eve_socket.expect_type("error"))["code"] == "malformed-frame"
    await eve_socket.send({"type": "launch-rockets"})
    assert (await eve_socket.expect_type("error"))["code"] == "malformed-frame"
    await eve_socket.send({"type": "send", "id": "x2", "conversation": "nope"})
    assert (await eve_socket.expect_type("error"))["ref"] == "x2"
    await eve_socket.send("[" * (gateway.MAX_FRAME_BYTES + 1))
    assert (await eve_socket.expect_type("error"))["code"] == "frame-too-large"
    await befriend(client, eve, ana)
    await client.post("/api/v1/messaging/blocks", json={"omo_id": "eve_demo"}, headers=ana.auth)
    opened = await client.post(
        "/api/v1/messaging/conversations/direct", json={"omo_id": "ana_demo"}, headers=eve.auth
    )
    blocked_chat = opened.json()["id"]
    await eve_socket.send({"type": "send", "id": "x3", "conversation": blocked_chat, "text": "hi"})
    assert (await eve_socket.expect_type("error", ref="x3"))["code"] == "blocked"
    await eve_socket.send({"type": "ping"})
    await eve_socket.expect_type("pong")


async def test_without_a_valid_token_the_socket_is_closed(ws_url: str) -> None:
    async with websockets.connect(ws_url) as connection:
        await connection.send(json.dumps({"type": "auth", "token": "forged"}))
        frame = json.loads(await connection.recv())
        assert frame["code"] == "unauthenticated"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await connection.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == gateway.CLOSE_UNAUTHENTICATED


async def test_a_cookie_from_another_site_is_not_enough(
    ws_url: str, make_person: MakePerson
) -> None:
    ana = await make_person("ana_demo")
    headers = {"Cookie": f"omo_session={ana.token}", "Origin": "https://evil.example"}
    async with websockets.connect(ws_url, additional_headers=headers) as connection:
        await connection.send(json.dumps({"type": "ping"}))
        frame = json.loads(await connection.recv())
        assert frame["code"] == "unauthenticated"


async def test_a_cookie_from_the_same_origin_authenticates(
    ws_url: str, make_person: MakePerson
) -> None:
    ana = await make_person("ana_demo")
    host = ws_url.split("/")[2]
    headers = {"Cookie": f"omo_session={ana.token}", "Origin": f"http://{host}"}
    async with websockets.connect(ws_url, additional_headers=headers) as connection:
        assert json.loads(await connection.recv())["type"] == "ready"


async def test_a_client_that_does_not_read_is_disconnected_not_buffered(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_person: MakePerson,
    ws_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gateway, "OUTBOX_BYTES_MAX", 100_000)
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    conversation = await direct(client, ana, bo)
    for n in range(20):
        await send(client, ana, conversation, "x" * 16000, f"c{n}")
    # A client that never reads: a raw socket with a tiny receive buffer.
    host, port = ws_url.split("/")[2].split(":")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(raw, (host, int(port)))
    await loop.sock_sendall(raw, _handshake(host, int(port)))
    response = b""
    while b"\r\n\r\n" not in response:
        response += await loop.sock_recv(raw, 1)
    assert b" 101 " in response
    await loop.sock_sendall(raw, _frame({"type": "auth", "token": bo.token}))
    sync = {"type": "sync", "conversation": conversation, "after": 0, "limit": 200}
    for _ in range(100):  # 100 answers of 320 kB each: 32 MB if the server buffered them
        await loop.sock_sendall(raw, _frame(sync))
    await asyncio.sleep(3)  # not reading while the server answers
    # Now read: a server that gave up closes the socket after what the kernel holds.
    received, closed = 0, False
    async with asyncio.timeout(20):
        while True:
            chunk = await loop.sock_recv(raw, 65536)
            if not chunk:
                closed = True
                break
            received += len(chunk)
    raw.close()
    assert closed
    assert received < 16_000_000


def _handshake(host: str, port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def _frame(payload: dict[str, object]) -> bytes:
    data = json.dumps(payload).encode()
    mask = os.urandom(4)
    header = bytes([0x81])
    if len(data) < 126:
        header += bytes([0x80 | len(data)])
    else:
        header += bytes([0x80 | 126]) + struct.pack("!H", len(data))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def test_the_server_pings_and_closes_a_silent_client(
    app: FastAPI, make_person: MakePerson, ws_url: str
) -> None:
    app.state.messaging_heartbeat = 0.2
    ana = await make_person("ana_demo")
    async with websockets.connect(ws_url) as connection:
        await connection.send(json.dumps({"type": "auth", "token": ana.token}))
        assert json.loads(await connection.recv())["heartbeat"] == 0.2
        assert json.loads(await connection.recv())["type"] == "ping"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await _drain(connection, 5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == gateway.CLOSE_IDLE


async def _drain(connection: Any, seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while True:
            await connection.recv()


_CONVERSATION = "0190f3a2-7b1c-7d4e-8f00-1234567890ab"


@pytest.mark.parametrize(
    "data",
    [
        {"type": "send", "id": "m-1", "conversation": _CONVERSATION, "text": "ciao"},
        {"type": "send", "id": "m-1", "conversation": _CONVERSATION},
        {"type": "send", "id": "m-1", "conversation": _CONVERSATION.upper(), "text": ""},
        {"type": "send", "id": "m-1", "conversation": _CONVERSATION, "text": "x", "to": "bo"},
        {"type": "send", "id": "x" * 64, "conversation": _CONVERSATION, "text": "x"},
        {"type": "send", "id": "x" * 65, "conversation": _CONVERSATION, "text": "x"},
        {"type": "send", "id": "", "conversation": _CONVERSATION, "text": "x"},
        {"type": "send", "id": 7, "conversation": _CONVERSATION, "text": "x"},
        {"type": "send", "conversation": _CONVERSATION, "text": "x"},
        {"type": "send", "id": "m-1", "text": "x"},
        {"type": "send", "id": "m-1", "conversation": "nope", "text": "x"},
        {"type": "send", "id": "m-1", "conversation": _CONVERSATION.replace("-", ""), "text": "x"},
        {"type": "send", "id": "m-1", "conversation": f"{{{_CONVERSATION}}}", "text": "x"},
        {"type": "send", "id": "m-1", "conversation": f"{_CONVERSATION}\n", "text": "x"},
        {"type": "send", "id": "m-1", "conversation": 12, "text": "x"},
        {"type": "send", "id": "m-1", "conversation": _CONVERSATION, "text": 5},
        {"type": "send", "id": "m-1", "conversation": _CONVERSATION, "text": None},
        {"type": "send", "id": "m-1", "conversation": _CONVERSATION, "mentions": ["bo"]},
        {"type": "send", "id": "m-1", "conversation": _CONVERSATION, "card": {"url": "u"}},
        {"type": "send", "id": "m-1", "conversation": _CONVERSATION, "mention_all": "yes"},
        {"type": "send", "id": "m-1", "conversation": _CONVERSATION, "media_id": None},
        {"type": "send", "id": "m-1", "conversation": _CONVERSATION, "location": None},
        {"type": "Send", "id": "m-1", "conversation": _CONVERSATION, "text": "x"},
        {"type": "ping"},
        ["send"],
        "send",
    ],
)
def test_the_plain_send_check_accepts_exactly_what_the_frame_schema_accepts(
    data: object,
) -> None:
    """The gateway's quick check of a text `send` frame gives the schema's own frame, or
    leaves the frame to the schema (which then refuses it or reads its other fields)."""
    quick = gateway.plain_send(data)
    try:
        expected = gateway.CLIENT_FRAME.validate_python(data)
    except ValueError:
        assert quick is None
        return
    if quick is not None:
        client_id, conversation, text = quick
        assert expected == gateway.SendFrame(
            type="send", id=client_id, conversation=conversation, text=text
        )
        assert expected.model_dump() == {
            "type": "send",
            "id": client_id,
            "conversation": conversation,
            "text": text,
            "card": None,
            "media_id": None,
            "location": None,
            "mentions": [],
            "mention_all": False,
        }


def test_a_text_send_frame_takes_the_quick_check() -> None:
    for data in (
        {"type": "send", "id": "m-1", "conversation": _CONVERSATION, "text": "ciao"},
        {"type": "send", "id": "m-1", "conversation": _CONVERSATION.upper(), "to": "bo"},
    ):
        frame = gateway.CLIENT_FRAME.validate_python(data)
        assert isinstance(frame, gateway.SendFrame)
        assert gateway.plain_send(data) == (frame.id, frame.conversation, frame.text)
