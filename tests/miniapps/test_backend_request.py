"""The bridge's `request`: the host fetches from the mini program's registered server only
(WeChat's "request legal domains"), without the person's cookies, without following
redirects, within a timeout and a size cap; everything else is refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from tests.miniapps.conftest import API, MakeProgram, Person, Program, released
from tests.support.live import free_port


@dataclass
class Backend:
    url: str
    seen: list[dict[str, Any]] = field(default_factory=list)


async def _serve(app: Starlette) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    """A mini program's own server on loopback."""
    seen: list[dict[str, Any]] = []

    async def echo(request: Request) -> Response:
        body = await request.body()
        seen.append(
            {
                "method": request.method,
                "headers": dict(request.headers),
                "body": body,
                "query": request.url.query,
            }
        )
        response = JSONResponse({"method": request.method, "body": body.decode()})
        response.set_cookie("tracker", "1")
        return response

    async def big(request: Request) -> Response:
        return Response(b"x" * (1024 * 1024 + 10), media_type="text/plain")

    async def slow(request: Request) -> Response:
        await asyncio.sleep(2)
        return Response("late")

    async def moved(request: Request) -> Response:
        return RedirectResponse("http://169.254.169.254/latest/meta-data", status_code=302)

    app = Starlette(
        routes=[
            Route("/echo", echo, methods=["GET", "POST", "PUT", "DELETE"]),
            Route("/big", big),
            Route("/slow", slow),
            Route("/moved", moved),
        ]
    )
    async for url in _serve(app):
        yield Backend(url, seen)


async def _origins(
    client: httpx.AsyncClient, program: Program, origins: list[str]
) -> httpx.Response:
    return await client.put(
        program.path("/request-origins"), json={"origins": origins}, headers=program.owner.headers
    )


async def _ready(
    client: httpx.AsyncClient, program: Program, diner: Person, backend: Backend
) -> None:
    await released(client, program)
    registered = await _origins(client, program, [backend.url + "/"])
    assert registered.status_code == 200, registered.text
    assert registered.json() == {"origins": [backend.url]}
    accepted = await client.post(f"{API}/launch/{program.appid}/privacy", headers=diner.headers)
    assert accepted.status_code == 200


async def _request(
    client: httpx.AsyncClient, program: Program, diner: Person, **body: Any
) -> httpx.Response:
    return await client.post(
        f"{API}/launch/{program.appid}/request", json=body, headers=diner.headers
    )


async def test_the_host_fetches_from_the_registered_server_without_cookies(
    client: httpx.AsyncClient, program: Program, diner: Person, backend: Backend
) -> None:
    await _ready(client, program, diner, backend)
    client.cookies.set("omo_session", "the-persons-session")
    answer = await _request(
        client,
        program,
        diner,
        url=f"{backend.url}/echo?x=1",
        method="POST",
        data={"table": 12},
        header={"X-Session": "abc"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["statusCode"] == 200
    assert body["data"] == {"method": "POST", "body": '{"table":12}'}
    assert "set-cookie" not in body["header"]  # the server's cookies stay in the host
    sent = backend.seen[-1]["headers"]
    assert "cookie" not in sent
    assert "authorization" not in sent
    assert sent["x-session"] == "abc"
    assert sent["x-omo-miniapp"] == program.appid
    assert sent["content-type"] == "application/json"
    text = await _request(client, program, diner, url=f"{backend.url}/echo", dataType="text")
    assert isinstance(text.json()["data"], str)
    # As wx.request: with GET, an object becomes the query string.
    await _request(client, program, diner, url=f"{backend.url}/echo?a=1", data={"table": 12})
    assert backend.seen[-1]["query"] == "a=1&table=12"


async def test_a_server_that_is_not_registered_is_refused(
    client: httpx.AsyncClient,
    program: Program,
    diner: Person,
    backend: Backend,
    make_program: MakeProgram,
) -> None:
    await _ready(client, program, diner, backend)
    for url in (
        "http://127.0.0.1:1/echo",  # another port is another origin
        "https://127.0.0.1/echo",
        backend.url.replace("127.0.0.1", "localhost") + "/echo",  # another host name
        "file:///etc/passwd",
        "javascript:alert(1)",
        f"http://user:pw@{backend.url.removeprefix('http://')}/echo",
    ):
        refused = await _request(client, program, diner, url=url)
        assert refused.status_code == 403, (url, refused.text)
        assert refused.json()["type"] == "/problems/miniapps-request-refused"
    # Another organisation's mini program cannot use this one's registered server.
    other = await make_program(diner, "Other shop")
    await released(client, other)
    await client.post(f"{API}/launch/{other.appid}/privacy", headers=diner.headers)
    refused = await _request(client, other, diner, url=f"{backend.url}/echo")
    assert refused.status_code == 403
    assert backend.seen == []


async def test_redirects_are_handed_back_not_followed(
    client: httpx.AsyncClient, program: Program, diner: Person, backend: Backend
) -> None:
    await _ready(client, program, diner, backend)
    answer = await _request(client, program, diner, url=f"{backend.url}/moved")
    assert answer.status_code == 200, answer.text
    assert answer.json()["statusCode"] == 302


async def test_too_large_too_slow_and_forbidden_headers_are_bridge_errors(
    client: httpx.AsyncClient, app: FastAPI, program: Program, diner: Person, backend: Backend
) -> None:
    await _ready(client, program, diner, backend)
    big = await _request(client, program, diner, url=f"{backend.url}/big")
    assert big.status_code == 502
    assert big.json()["type"] == "/problems/miniapps-request-too-large"
    app.state.miniapp_backend.timeout = 0.3
    slow = await _request(client, program, diner, url=f"{backend.url}/slow")
    assert slow.status_code == 502
    assert slow.json()["type"] == "/problems/miniapps-request-failed"
    for header in ({"Cookie": "a=1"}, {"Host": "evil"}, {"X-Forwarded-For": "1.2.3.4"}):
        bad = await _request(client, program, diner, url=f"{backend.url}/echo", header=header)
        assert bad.status_code == 422, header
        assert bad.json()["type"] == "/problems/miniapps-request-invalid"
    verb = await _request(client, program, diner, url=f"{backend.url}/echo", method="TRACE")
    assert verb.status_code == 422
    huge = await _request(
        client, program, diner, url=f"{backend.url}/echo", method="POST", data="x" * 300_000
    )
    assert huge.status_code == 422


async def test_no_request_before_the_privacy_notice_is_accepted(
    client: httpx.AsyncClient, program: Program, diner: Person, backend: Backend
) -> None:
    await released(client, program)
    await _origins(client, program, [backend.url])
    refused = await _request(client, program, diner, url=f"{backend.url}/echo")
    assert refused.status_code == 403
    assert refused.json()["type"] == "/problems/miniapps-privacy-not-accepted"
    assert backend.seen == []


async def test_origins_are_validated_when_registered(
    client: httpx.AsyncClient, app: FastAPI, program: Program, diner: Person
) -> None:
    for origin in (
        "http://api.example.org",  # http only on loopback
        "ftp://api.example.org",
        "https://api.example.org/v1",  # an origin has no path
        "https://api.example.org/?q=1",
        "https://user:pw@api.example.org",
        "not a url",
    ):
        refused = await _origins(client, program, [origin])
        assert refused.status_code == 422, origin
        assert refused.json()["type"] == "/problems/miniapps-bad-origin"
    too_many = await _origins(client, program, [f"https://a{i}.example.org" for i in range(21)])
    assert too_many.status_code == 422
    # Loopback over http only where the operator allows private destinations.
    app.state.miniapp_backend.allow_private = False
    loopback = await _origins(client, program, ["http://127.0.0.1:9000"])
    assert loopback.status_code == 422
    private = await _origins(client, program, ["https://10.0.0.1"])
    assert private.status_code == 422
    app.state.miniapp_backend.allow_private = True
    done = await _origins(client, program, ["HTTPS://API.Example.org:443", "http://[::1]:9000"])
    assert done.json() == {"origins": ["http://[::1]:9000", "https://api.example.org"]}
    seen = await client.get(program.path("/request-origins"), headers=program.owner.headers)
    assert seen.json() == done.json()
    # Only the organisation's managers change them; strangers do not even see them.
    stranger = await _origins(client, Program(diner, *_rest(program)), ["https://x.example"])
    assert stranger.status_code == 404
    peek = await client.get(program.path("/request-origins"), headers=diner.headers)
    assert peek.status_code == 404


def _rest(program: Program) -> tuple[str, str, str, str]:
    return program.organisation_id, program.id, program.appid, program.secret
