"""Registration (appid + hashed secret) and versions: uploaded → trial → released, rollback."""

from __future__ import annotations

import hashlib

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from tests.miniapps.conftest import (
    API,
    MakePerson,
    MakeProgram,
    Person,
    Program,
    package,
    package_files,
    released,
    upload,
)

from omo.miniapps.models import MiniApp
from omo.miniapps.package import build_zip


async def test_registering_gives_an_appid_and_a_secret_kept_only_as_a_hash(
    program: Program, app: FastAPI
) -> None:
    assert program.appid.startswith("mp")
    async with app.state.db.sessions() as session:
        row = await session.scalar(select(MiniApp).where(MiniApp.appid == program.appid))
    assert row is not None
    assert program.secret not in row.secret_hash
    assert row.secret_hash == hashlib.sha256(program.secret.encode()).hexdigest()


async def test_a_stranger_cannot_register_for_an_organisation(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    response = await client.post(
        f"{API}/organisations/{program.organisation_id}/apps",
        json={"name": "Fake"},
        headers=diner.headers,
    )
    assert response.status_code == 404


async def test_an_uploaded_version_lists_its_pages_and_permissions(
    client: httpx.AsyncClient, program: Program
) -> None:
    response = await upload(client, program, package(program.appid))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["state"] == "uploaded"
    assert body["pages"] == ["pages/menu", "pages/order"]
    assert body["permissions"] == [{"name": "payment", "reason": "To pay for your order"}]


async def test_a_package_of_another_mini_program_is_refused(
    client: httpx.AsyncClient, program: Program
) -> None:
    response = await upload(client, program, package("mpsomeoneelse0000"))
    assert response.status_code == 422
    assert response.json()["type"] == "/problems/miniapps-wrong-app"


async def test_an_invalid_package_answers_every_problem(
    client: httpx.AsyncClient, program: Program
) -> None:
    response = await upload(client, program, package(program.appid, pages=[]))
    assert response.status_code == 422
    assert {"code": "manifest.not_a_list", "where": "pages"} in response.json()["problems"]


async def test_a_zip_bomb_is_refused_as_too_large(
    client: httpx.AsyncClient, program: Program
) -> None:
    files = package_files(program.appid)
    files["bomb.txt"] = b"\0" * (20 * 1024 * 1024)
    response = await upload(client, program, build_zip(files))
    assert response.status_code == 413
    assert response.json()["type"] == "/problems/miniapps-package-too-large"


async def test_a_body_over_one_mebibyte_is_refused_while_reading(
    client: httpx.AsyncClient, program: Program
) -> None:
    response = await upload(client, program, b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413


async def test_version_codes_must_increase(client: httpx.AsyncClient, program: Program) -> None:
    assert (await upload(client, program, package(program.appid, 5))).status_code == 201
    again = await upload(client, program, package(program.appid, 5))
    assert again.status_code == 409
    lower = await upload(client, program, package(program.appid, 4))
    assert lower.status_code == 409


async def test_a_version_is_released_only_after_a_trial(
    client: httpx.AsyncClient, program: Program
) -> None:
    version = (await upload(client, program, package(program.appid))).json()["id"]
    response = await client.post(
        program.path(f"/versions/{version}/release"), headers=program.owner.headers
    )
    assert response.status_code == 409


async def test_a_trial_opens_for_listed_testers_only(
    client: httpx.AsyncClient, program: Program, diner: Person, person: MakePerson
) -> None:
    version = (await upload(client, program, package(program.appid))).json()["id"]
    trial = await client.post(
        program.path(f"/versions/{version}/trial"), headers=program.owner.headers
    )
    assert trial.status_code == 200
    added = await client.post(
        program.path("/testers"), json={"omo_id": diner.omo_id}, headers=program.owner.headers
    )
    assert added.json()["testers"] == [diner.omo_id]
    launch = f"{API}/launch/{program.appid}"
    tester = await client.get(launch, params={"trial": "true"}, headers=diner.headers)
    assert tester.status_code == 200, tester.text
    assert tester.json()["trial"] is True
    stranger = await person("+447911123456", "Olivia")
    refused = await client.get(launch, params={"trial": "true"}, headers=stranger.headers)
    assert refused.status_code == 404
    assert refused.json()["type"] == "/problems/miniapps-not-released"
    unreleased = await client.get(launch, headers=stranger.headers)
    assert unreleased.status_code == 404


async def test_a_removed_tester_can_no_longer_open_the_trial(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    version = (await upload(client, program, package(program.appid))).json()["id"]
    await client.post(program.path(f"/versions/{version}/trial"), headers=program.owner.headers)
    await client.post(
        program.path("/testers"), json={"omo_id": diner.omo_id}, headers=program.owner.headers
    )
    removed = await client.delete(
        program.path(f"/testers/{diner.omo_id}"), headers=program.owner.headers
    )
    assert removed.status_code == 204
    launch = await client.get(
        f"{API}/launch/{program.appid}", params={"trial": "true"}, headers=diner.headers
    )
    assert launch.status_code == 404


async def test_a_release_opens_for_everyone_at_its_entry_page(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await released(client, program)
    launch = await client.get(f"{API}/launch/{program.appid}", headers=diner.headers)
    assert launch.status_code == 200
    assert launch.json()["page"] == "pages/menu"
    assert launch.json()["version"] == "1.0.1"
    unknown = await client.get(
        f"{API}/launch/{program.appid}", params={"page": "pages/admin"}, headers=diner.headers
    )
    assert unknown.status_code == 404


async def test_rollback_brings_back_the_previous_release(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await released(client, program, 1)
    await released(client, program, 2)
    launch = f"{API}/launch/{program.appid}"
    assert (await client.get(launch, headers=diner.headers)).json()["version"] == "1.0.2"
    back = await client.post(program.path("/rollback"), headers=program.owner.headers)
    assert back.status_code == 200
    assert back.json()["code"] == 1
    assert (await client.get(launch, headers=diner.headers)).json()["version"] == "1.0.1"
    states = {
        v["code"]: v["state"]
        for v in (await client.get(program.path("/versions"), headers=program.owner.headers)).json()
    }
    assert states == {1: "released", 2: "withdrawn"}
    nothing_left = await client.post(program.path("/rollback"), headers=program.owner.headers)
    assert nothing_left.status_code == 409


async def test_the_developer_api_uploads_with_appid_and_secret(
    client: httpx.AsyncClient, program: Program
) -> None:
    response = await client.post(
        f"{API}/dev/{program.appid}/versions",
        content=package(program.appid),
        headers={**program.basic, "Content-Type": "application/zip"},
    )
    assert response.status_code == 201, response.text


async def test_a_wrong_secret_is_refused(client: httpx.AsyncClient, program: Program) -> None:
    program_with_wrong = Program(
        program.owner, program.organisation_id, program.id, program.appid, "0" * 32
    )
    response = await client.post(
        f"{API}/dev/{program.appid}/versions",
        content=package(program.appid),
        headers={**program_with_wrong.basic, "Content-Type": "application/zip"},
    )
    assert response.status_code == 401
    assert response.json()["type"] == "/problems/miniapps-bad-credentials"


async def test_one_mini_program_cannot_upload_to_another(
    client: httpx.AsyncClient, program: Program, make_program: MakeProgram, diner: Person
) -> None:
    other = await make_program(diner, "Other")
    response = await client.post(
        f"{API}/dev/{program.appid}/versions",
        content=package(program.appid),
        headers={**other.basic, "Content-Type": "application/zip"},
    )
    assert response.status_code == 404


async def test_a_reset_secret_replaces_the_old_one(
    client: httpx.AsyncClient, program: Program
) -> None:
    reset = await client.post(program.path("/secret"), headers=program.owner.headers)
    assert reset.status_code == 200
    old = await client.get(
        f"{API}/dev/{program.appid}/code", params={"page": "pages/menu"}, headers=program.basic
    )
    assert old.status_code == 401


async def test_an_agent_of_the_brand_cannot_release(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await client.put(
        f"/api/v1/accounts/organisations/{program.organisation_id}/members",
        json={"omo_id": diner.omo_id, "role": "agent"},
        headers=program.owner.headers,
    )
    version = (await upload(client, program, package(program.appid))).json()["id"]
    response = await client.post(program.path(f"/versions/{version}/trial"), headers=diner.headers)
    assert response.status_code == 403
    listed = await client.get(program.path("/versions"), headers=diner.headers)
    assert listed.status_code == 200
