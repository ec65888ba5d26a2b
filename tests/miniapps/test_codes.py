"""Mini program codes (QR with a page and a scene) and a merchant's old printed links."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tests.miniapps.conftest import API, MakeProgram, Person, Program, released


async def test_a_code_opens_the_page_with_its_scene(
    client: httpx.AsyncClient, program: Program
) -> None:
    await released(client, program)
    response = await client.get(
        program.path("/code"),
        params={"page": "pages/order", "scene": "t=12"},
        headers=program.owner.headers,
    )
    assert response.status_code == 200, response.text
    url = urlsplit(response.json()["url"])
    assert url.path == f"/mp/{program.appid}/pages/order"
    assert parse_qs(url.query) == {"scene": ["t=12"]}
    assert response.json()["svg"].startswith("<svg")


@pytest.mark.parametrize("scene", ["x" * 33, "table 12", "t=12%20", "tavolo=è"])
async def test_a_scene_outside_32_safe_characters_is_refused(
    client: httpx.AsyncClient, program: Program, scene: str
) -> None:
    await released(client, program)
    response = await client.get(
        program.path("/code"),
        params={"page": "pages/menu", "scene": scene},
        headers=program.owner.headers,
    )
    assert response.status_code == 422


async def test_a_code_for_a_page_the_release_lacks_is_refused(
    client: httpx.AsyncClient, program: Program
) -> None:
    await released(client, program)
    response = await client.get(
        program.path("/code"), params={"page": "pages/secret"}, headers=program.owner.headers
    )
    assert response.status_code == 404


async def test_the_developer_api_gives_the_code_as_a_png(
    client: httpx.AsyncClient, program: Program
) -> None:
    await released(client, program)
    response = await client.get(
        f"{API}/dev/{program.appid}/code",
        params={"page": "pages/menu", "scene": "t=12"},
        headers=program.basic,
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")


class Site:
    """A merchant's own web site (a real HTTP server on loopback) serving one file."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        files = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def site() -> Iterator[Site]:
    served = Site()
    yield served
    served.server.shutdown()


async def _prefix(client: httpx.AsyncClient, program: Program, prefix: str) -> dict[str, str]:
    response = await client.post(
        program.path("/prefixes"),
        json={"prefix": prefix, "page": "pages/menu"},
        headers=program.owner.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


async def test_an_old_printed_link_opens_the_mini_program_once_the_prefix_is_verified(
    client: httpx.AsyncClient, program: Program, site: Site, diner: Person
) -> None:
    prefix = await _prefix(client, program, f"{site.url}/table/")
    link = f"{site.url}/table/12?ref=print"
    before = await client.get(f"{API}/links", params={"url": link}, headers=diner.headers)
    assert before.status_code == 404  # not verified yet
    site.files[urlsplit(prefix["verify_url"]).path] = prefix["token"].encode()
    verified = await client.post(
        program.path(f"/prefixes/{prefix['id']}/verify"), headers=program.owner.headers
    )
    assert verified.status_code == 200, verified.text
    after = await client.get(f"{API}/links", params={"url": link}, headers=diner.headers)
    assert after.status_code == 200
    body = after.json()
    assert (body["appid"], body["page"], body["link"]) == (program.appid, "pages/menu", link)
    assert parse_qs(urlsplit(body["url"]).query) == {"link": [link]}


async def test_a_prefix_is_not_verified_without_the_token_on_the_site(
    client: httpx.AsyncClient, program: Program, site: Site
) -> None:
    prefix = await _prefix(client, program, f"{site.url}/table/")
    site.files[urlsplit(prefix["verify_url"]).path] = b"someone else's token"
    response = await client.post(
        program.path(f"/prefixes/{prefix['id']}/verify"), headers=program.owner.headers
    )
    assert response.status_code == 409
    assert response.json()["type"] == "/problems/miniapps-prefix-unverified"


async def test_a_prefix_registered_by_one_mini_program_is_refused_to_another(
    client: httpx.AsyncClient,
    program: Program,
    make_program: MakeProgram,
    diner: Person,
    site: Site,
) -> None:
    await _prefix(client, program, f"{site.url}/table/")
    other = await make_program(diner, "Copycat")
    response = await client.post(
        other.path("/prefixes"),
        json={"prefix": f"{site.url}/table/", "page": "pages/menu"},
        headers=diner.headers,
    )
    assert response.status_code == 409


async def test_the_longest_verified_prefix_wins(
    client: httpx.AsyncClient, program: Program, site: Site, diner: Person
) -> None:
    for path, page in (("/", "pages/menu"), ("/table/", "pages/order")):
        created = await client.post(
            program.path("/prefixes"),
            json={"prefix": f"{site.url}{path}", "page": page},
            headers=program.owner.headers,
        )
        body = created.json()
        site.files[urlsplit(body["verify_url"]).path] = body["token"].encode()
        verified = await client.post(
            program.path(f"/prefixes/{body['id']}/verify"), headers=program.owner.headers
        )
        assert verified.status_code == 200
    found = await client.get(
        f"{API}/links", params={"url": f"{site.url}/table/3"}, headers=diner.headers
    )
    assert found.json()["page"] == "pages/order"
