"""The HTTP protocol `omo serve` runs: one socket write per turn of the loop, nothing else
changed (keep-alive, streaming, HEAD, closing, WebSocket upgrade)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from omo.core.serving import OneWriteHttpToolsProtocol, _CoalescingTransport

pytestmark = pytest.mark.asyncio


class RecordingTransport(asyncio.Transport):
    """The socket side: what reached it, in order."""

    def __init__(self) -> None:
        super().__init__(extra={"peername": ("127.0.0.1", 5555)})
        self.writes: list[bytes] = []
        self.calls: list[str] = []
        self.closing = False

    def write(self, data: Any) -> None:
        assert not self.closing, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.calls.append("close")
        self.closing = True

    def abort(self) -> None:
        self.calls.append("abort")
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0


async def next_turn() -> None:
    await asyncio.sleep(0)


async def test_writes_of_one_turn_reach_the_socket_as_one_write() -> None:
    real = RecordingTransport()
    transport = _CoalescingTransport(real)
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert real.writes == []
    await next_turn()
    assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


async def test_writes_of_later_turns_follow_in_order() -> None:
    real = RecordingTransport()
    transport = _CoalescingTransport(real)
    for chunk in (b"one", b"two", b"three"):
        transport.write(chunk)
        await next_turn()
    assert real.writes == [b"one", b"two", b"three"]


async def test_closing_writes_what_is_kept_first() -> None:
    real = RecordingTransport()
    transport = _CoalescingTransport(real)
    transport.write(b"last answer")
    transport.close()
    await next_turn()
    assert real.writes == [b"last answer"]
    assert real.calls == ["close"]


async def test_aborting_drops_what_is_kept() -> None:
    real = RecordingTransport()
    transport = _CoalescingTransport(real)
    transport.write(b"never sent")
    transport.abort()
    await next_turn()
    assert real.writes == []
    assert real.calls == ["abort"]


async def test_kept_bytes_count_in_the_write_buffer() -> None:
    transport = _CoalescingTransport(RecordingTransport())
    transport.write(b"12345")
    assert transport.get_write_buffer_size() == 5


async def test_the_real_transports_details_are_answered() -> None:
    transport = _CoalescingTransport(RecordingTransport())
    assert transport.get_extra_info("peername") == ("127.0.0.1", 5555)
    assert transport.get_extra_info("sslcontext") is None


# -- a real uvicorn server on this protocol ----------------------------------------------------


async def _json(request: Request) -> Response:
    return JSONResponse({"path": request.url.path, "body": (await request.body()).decode()})


async def _stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for index in range(3):
            await asyncio.sleep(0.01)
            yield f"chunk {index};".encode()

    return StreamingResponse(chunks(), media_type="text/plain")


async def _nothing(request: Request) -> Response:
    return Response(status_code=204)


async def _echo(websocket: WebSocket) -> None:
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(text.upper())
        await websocket.send_text("again " + text)


APP = Starlette(
    routes=[
        Route("/json", _json, methods=["GET", "POST", "HEAD"]),
        Route("/stream", _stream),
        Route("/nothing", _nothing),
        WebSocketRoute("/ws", _echo),
    ]
)


@pytest_asyncio.fixture
async def served() -> AsyncIterator[str]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        APP, http=OneWriteHttpToolsProtocol, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    server.should_exit = True
    await task


async def test_answers_follow_each_other_on_one_keep_alive_connection(served: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{served}") as client:
        answers = [await client.post("/json", content=f"request {index}") for index in range(20)]
    assert [answer.json()["body"] for answer in answers] == [f"request {i}" for i in range(20)]


async def test_a_streamed_answer_arrives_whole(served: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{served}") as client:
        answer = await client.get("/stream")
    assert answer.text == "chunk 0;chunk 1;chunk 2;"


async def test_head_and_no_content_answers_carry_no_body(served: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{served}") as client:
        head = await client.head("/json")
        empty = await client.get("/nothing")
        after = await client.get("/json")
    assert (head.status_code, head.content) == (200, b"")
    assert (empty.status_code, empty.content) == (204, b"")
    assert after.json()["path"] == "/json"


async def test_a_connection_closed_by_the_client_request_gets_its_whole_answer(
    served: str,
) -> None:
    reader, writer = await asyncio.open_connection(*served.split(":"))
    writer.write(b"GET /json HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
    answer = await reader.read()  # to the end: the server closes after writing
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b'{"path":"/json","body":""}')


async def test_a_websocket_upgrades_and_exchanges_frames(served: str) -> None:
    async with websockets.connect(f"ws://{served}/ws") as connection:
        await connection.send("hello")
        assert [await connection.recv(), await connection.recv()] == ["HELLO", "again hello"]
        await connection.send("bye")
        assert await connection.recv() == "BYE"


async def test_unwrapping_writes_what_is_kept_and_hands_over_the_real_transport() -> None:
    real = RecordingTransport()
    transport = _CoalescingTransport(real)
    transport.write(b"101 switching")
    assert transport.unwrap() is real
    assert real.writes == [b"101 switching"]
