"""Privacy notice, permission grants (prompted once, revocable) and per-person storage."""

from __future__ import annotations

import json

import httpx
from tests.miniapps.conftest import (
    API,
    MakeProgram,
    Person,
    Program,
    manifest,
    package_files,
    released,
)

from omo.miniapps.package import build_zip


async def _with_profile(client: httpx.AsyncClient, program: Program) -> None:
    files = package_files(program.appid)
    files["manifest.json"] = json.dumps(
        manifest(
            program.appid,
            req_permissions=[{"name": "profile", "reason": "To greet you by name"}],
        )
    ).encode()
    uploaded = await client.post(
        program.path("/versions"),
        content=build_zip(files),
        headers={**program.owner.headers, "Content-Type": "application/zip"},
    )
    version = uploaded.json()["id"]
    for step in ("trial", "release"):
        await client.post(
            program.path(f"/versions/{version}/{step}"), headers=program.owner.headers
        )


async def _accept(client: httpx.AsyncClient, program: Program, person: Person) -> None:
    response = await client.post(f"{API}/launch/{program.appid}/privacy", headers=person.headers)
    assert response.status_code == 200, response.text
    assert response.json()["privacy_accepted"] is True


async def test_the_profile_needs_the_persons_grant(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await _with_profile(client, program)
    await _accept(client, program, diner)
    profile = f"{API}/launch/{program.appid}/profile"
    refused = await client.get(profile, headers=diner.headers)
    assert refused.status_code == 403
    assert refused.json()["type"] == "/problems/miniapps-permission-denied"
    granted = await client.put(
        f"{API}/launch/{program.appid}/grants/profile",
        json={"granted": True},
        headers=diner.headers,
    )
    assert granted.json()["grants"] == {"profile": True}
    allowed = await client.get(profile, headers=diner.headers)
    assert allowed.status_code == 200
    assert allowed.json()["nickname"] == "Camille"


async def test_a_denied_permission_is_an_error_until_granted(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await _with_profile(client, program)
    await _accept(client, program, diner)
    await client.put(
        f"{API}/launch/{program.appid}/grants/profile",
        json={"granted": False},
        headers=diner.headers,
    )
    response = await client.get(f"{API}/launch/{program.appid}/profile", headers=diner.headers)
    assert response.status_code == 403


async def test_a_revoked_permission_stops_working(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await _with_profile(client, program)
    await _accept(client, program, diner)
    await client.put(
        f"{API}/launch/{program.appid}/grants/profile",
        json={"granted": True},
        headers=diner.headers,
    )
    listed = await client.get(f"{API}/me/consents", headers=diner.headers)
    assert listed.json()[0]["grants"] == {"profile": True}
    revoked = await client.delete(
        f"{API}/launch/{program.appid}/grants/profile", headers=diner.headers
    )
    assert revoked.json()["grants"] == {}
    response = await client.get(f"{API}/launch/{program.appid}/profile", headers=diner.headers)
    assert response.status_code == 403


async def test_a_permission_the_manifest_does_not_ask_for_cannot_be_granted(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await released(client, program)  # asks for payment only
    await _accept(client, program, diner)
    response = await client.put(
        f"{API}/launch/{program.appid}/grants/profile",
        json={"granted": True},
        headers=diner.headers,
    )
    assert response.status_code == 403
    assert response.json()["type"] == "/problems/miniapps-permission-not-declared"


async def test_grants_wait_for_the_privacy_notice(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await _with_profile(client, program)
    response = await client.put(
        f"{API}/launch/{program.appid}/grants/profile",
        json={"granted": True},
        headers=diner.headers,
    )
    assert response.status_code == 403
    assert response.json()["type"] == "/problems/miniapps-privacy-not-accepted"


async def test_storage_is_per_person_and_per_mini_program(
    client: httpx.AsyncClient,
    program: Program,
    make_program: MakeProgram,
    diner: Person,
    owner: Person,
) -> None:
    other = await make_program(diner, "Other")
    for app in (program, other):
        await released(client, app)
        for person in (diner, owner):
            await _accept(client, app, person)
    key = f"{API}/launch/{program.appid}/storage/basket"
    saved = await client.put(key, json={"value": '["pizza"]'}, headers=diner.headers)
    assert saved.status_code == 200, saved.text
    assert (await client.get(key, headers=diner.headers)).json()["value"] == '["pizza"]'
    assert (await client.get(key, headers=owner.headers)).status_code == 404
    elsewhere = f"{API}/launch/{other.appid}/storage/basket"
    assert (await client.get(elsewhere, headers=diner.headers)).status_code == 404
    removed = await client.delete(key, headers=diner.headers)
    assert removed.status_code == 204
    assert (await client.get(key, headers=diner.headers)).status_code == 404


async def test_storage_refuses_beyond_its_quota(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await released(client, program)
    await _accept(client, program, diner)
    value = "x" * 60_000
    for index in range(4):
        stored = await client.put(
            f"{API}/launch/{program.appid}/storage/k{index}",
            json={"value": value},
            headers=diner.headers,
        )
        assert stored.status_code == 200, stored.text
    full = await client.put(
        f"{API}/launch/{program.appid}/storage/k4", json={"value": value}, headers=diner.headers
    )
    assert full.status_code == 413
    assert full.json()["type"] == "/problems/miniapps-storage-full"
    replaced = await client.put(
        f"{API}/launch/{program.appid}/storage/k0", json={"value": "small"}, headers=diner.headers
    )
    assert replaced.status_code == 200


async def test_storage_waits_for_the_privacy_notice(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await released(client, program)
    response = await client.put(
        f"{API}/launch/{program.appid}/storage/k", json={"value": "v"}, headers=diner.headers
    )
    assert response.status_code == 403
