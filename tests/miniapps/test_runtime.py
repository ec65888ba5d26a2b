"""The runtime's server side: the package origin is separate and sandboxed, the host page
frames it with `sandbox="allow-scripts"` only."""

from __future__ import annotations

import httpx
from tests.miniapps.conftest import Person, Program, released

from omo.core.auth import SESSION_COOKIE

PACKAGE_ORIGIN = "http://127.0.0.1:8001"  # the default: the app's port + 1


def _package_url(program: Program, version_id: str, name: str) -> str:
    return f"{PACKAGE_ORIGIN}/_mpf/{program.appid}/{version_id}/{name}"


async def test_a_package_file_is_served_sandboxed_from_the_package_origin(
    client: httpx.AsyncClient, program: Program
) -> None:
    version = await released(client, program)
    response = await client.get(_package_url(program, version, "pages/menu.html"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policies = response.headers.get_list("content-security-policy")
    assert len(policies) == 1
    assert policies[0].startswith("sandbox allow-scripts;")
    assert "allow-same-origin" not in policies[0]
    assert "connect-src 'none'" in policies[0]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert b"<h1>Menu</h1>" in response.content


async def test_package_files_never_answer_on_the_app_origin(
    client: httpx.AsyncClient, program: Program
) -> None:
    version = await released(client, program)
    response = await client.get(f"/_mpf/{program.appid}/{version}/pages/menu.html")
    assert response.status_code == 404


async def test_the_app_never_answers_on_the_package_origin(
    client: httpx.AsyncClient, diner: Person
) -> None:
    for path in ("/", "/api/v1/identity/me", "/login", "/static/js/api.js"):
        response = await client.get(f"{PACKAGE_ORIGIN}{path}", headers=diner.headers)
        assert response.status_code == 404, path


async def test_the_client_script_is_served_on_the_package_origin(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"{PACKAGE_ORIGIN}/omo.js")
    assert response.status_code == 200
    assert b"event.source !== window.parent" in response.content


async def test_a_file_of_another_mini_program_is_not_served_under_this_appid(
    client: httpx.AsyncClient, program: Program
) -> None:
    version = await released(client, program)
    response = await client.get(
        f"{PACKAGE_ORIGIN}/_mpf/mpsomeoneelse00000/{version}/pages/menu.html"
    )
    assert response.status_code == 404


async def test_a_withdrawn_version_is_no_longer_served(
    client: httpx.AsyncClient, program: Program
) -> None:
    await released(client, program, 1)
    second = await released(client, program, 2)
    assert (await client.get(_package_url(program, second, "app.js"))).status_code == 200
    await client.post(program.path("/rollback"), headers=program.owner.headers)
    assert (await client.get(_package_url(program, second, "app.js"))).status_code == 404


def _cookie(person: Person) -> dict[str, str]:
    return {SESSION_COOKIE: person.headers["Authorization"].split(" ", 1)[1]}


async def test_the_host_page_frames_the_package_origin_sandboxed(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await released(client, program)
    client.cookies.update(_cookie(diner))
    response = await client.get(f"/mp/{program.appid}/pages/order", params={"scene": "t=12"})
    client.cookies.clear()
    assert response.status_code == 200, response.text
    html = response.text
    assert 'sandbox="allow-scripts"' in html
    assert "allow-same-origin" not in html
    assert f'data-src="{PACKAGE_ORIGIN}/_mpf/{program.appid}/' in html
    policies = response.headers.get_list("content-security-policy")
    assert len(policies) == 1
    assert f"frame-src {PACKAGE_ORIGIN}" in policies[0]
    assert "frame-ancestors 'none'" in policies[0]
    assert '"scene": "t=12"' in html


async def test_the_host_page_sends_strangers_to_log_in(
    client: httpx.AsyncClient, program: Program
) -> None:
    await released(client, program)
    response = await client.get(f"/mp/{program.appid}/pages/menu")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


async def test_an_unreleased_mini_program_does_not_open_for_a_non_tester(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    client.cookies.update(_cookie(diner))
    response = await client.get(f"/mp/{program.appid}/pages/menu", params={"trial": "true"})
    client.cookies.clear()
    assert response.status_code == 404
    assert "_mpf" not in response.text


async def test_a_scanned_link_cannot_break_out_of_the_options_script(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await released(client, program)
    client.cookies.update(_cookie(diner))
    response = await client.get(
        f"/mp/{program.appid}/pages/menu", params={"link": "https://x.example/</script><b>"}
    )
    client.cookies.clear()
    assert response.status_code == 200
    assert "</script><b>" not in response.text


async def test_the_warm_page_is_blank_and_sandboxed_on_the_package_origin_only(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"{PACKAGE_ORIGIN}/_warm.html")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policies = response.headers.get_list("content-security-policy")
    assert len(policies) == 1
    assert policies[0].startswith("sandbox allow-scripts;")
    assert b"<script" not in response.content
    assert (await client.get("/_warm.html")).status_code == 404


async def test_the_app_pages_that_open_mini_programs_in_place_may_frame_only_its_origin(
    client: httpx.AsyncClient, diner: Person
) -> None:
    client.cookies.update(_cookie(diner))
    for path in ("/scan", "/miniapps"):
        response = await client.get(path)
        assert response.status_code == 200, path
        policies = response.headers.get_list("content-security-policy")
        assert len(policies) == 1
        assert f"frame-src {PACKAGE_ORIGIN};" in policies[0]
        assert "frame-ancestors 'none'" in policies[0]
        assert f'data-miniapp-warm="{PACKAGE_ORIGIN}/_warm.html"' in response.text
    client.cookies.clear()
