"""A person's own data: they can take it away (export) and make it go away (erasure)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from tests.identity.conftest import PASSWORD, SignUp

from omo.identity.models import User


async def test_export_holds_the_profile_devices_and_audit_log(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up()
    response = await client.get("/api/v1/identity/me/export", headers=person.auth)
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    data = response.json()
    assert data["profile"]["phone"] == person.phone
    assert data["profile"]["display_name"] == "Giulia"
    assert [d["name"] for d in data["devices"]] == ["Pixel"]
    assert "login" in [entry["action"] for entry in data["audit_log"]]
    assert person.token not in response.text


async def test_an_export_is_recorded_in_the_audit_log(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up()
    await client.get("/api/v1/identity/me/export", headers=person.auth)
    log = (await client.get("/api/v1/identity/audit-log", headers=person.auth)).json()
    assert log[0]["action"] == "export"


async def test_export_needs_a_session(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/identity/me/export")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_erasure_with_a_wrong_password_erases_nothing(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up()
    response = await client.post(
        "/api/v1/identity/me/erase", json={"password": "not it at all"}, headers=person.auth
    )
    assert response.status_code == 403
    assert response.json()["type"].endswith("/wrong-password")
    me = await client.get("/api/v1/identity/me", headers=person.auth)
    assert me.status_code == 200
    assert me.json()["display_name"] == "Giulia"


async def test_erasure_ends_every_session_and_every_login(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up()
    erased = await client.post(
        "/api/v1/identity/me/erase", json={"password": PASSWORD}, headers=person.auth
    )
    assert erased.status_code == 200
    assert erased.json() == {"status": "erased"}
    client.cookies.clear()
    assert (await client.get("/api/v1/identity/me", headers=person.auth)).status_code == 401
    login = await client.post(
        "/api/v1/identity/login", json={"phone": person.phone, "password": PASSWORD}
    )
    assert login.status_code == 401


async def test_an_erased_person_cannot_be_found(client: httpx.AsyncClient, sign_up: SignUp) -> None:
    person = await sign_up()
    omo_id = (await client.get("/api/v1/identity/me", headers=person.auth)).json()["omo_id"]
    other = await sign_up("+33612345678", "Camille")
    await client.post("/api/v1/identity/me/erase", json={"password": PASSWORD}, headers=person.auth)
    client.cookies.clear()
    found = await client.get(f"/api/v1/identity/people/{omo_id}", headers=other.auth)
    assert found.status_code == 404


async def test_erasure_leaves_a_tombstone_with_no_personal_data(
    app: FastAPI, client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up()
    await client.post("/api/v1/identity/me/erase", json={"password": PASSWORD}, headers=person.auth)
    async with app.state.db.sessions() as session:
        assert await session.scalar(select(User).where(User.phone_e164 == person.phone)) is None
        tombstone = await session.scalar(select(User).where(User.erased_at.is_not(None)))
    assert tombstone is not None
    assert (tombstone.display_name, tombstone.password_hash, tombstone.avatar_id) == ("—", "", None)
    assert not tombstone.phone_e164.startswith("+")


async def test_erasure_is_rate_limited_against_password_guessing(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up()
    statuses = [
        (
            await client.post(
                "/api/v1/identity/me/erase", json={"password": f"guess {i}"}, headers=person.auth
            )
        ).status_code
        for i in range(6)
    ]
    assert statuses[:5] == [403] * 5
    assert statuses[5] == 429
