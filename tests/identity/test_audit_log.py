"""The audit log of one's own account: what happened, in order, and never rewritten."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError
from tests.identity.conftest import PASSWORD, SignUp

from omo.core.audit import AuditEntry


async def _actions(client: httpx.AsyncClient, auth: dict[str, str]) -> list[str]:
    response = await client.get("/api/v1/identity/audit-log", headers=auth)
    assert response.status_code == 200
    return [entry["action"] for entry in response.json()]


async def test_logins_failures_and_revocations_are_listed_newest_first(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up()
    await client.post(
        "/api/v1/identity/login", json={"phone": person.phone, "password": "wrong password!"}
    )
    laptop = await client.post(
        "/api/v1/identity/login",
        json={"phone": person.phone, "password": PASSWORD, "device_name": "Laptop"},
    )
    client.cookies.clear()
    await client.delete(
        f"/api/v1/identity/devices/{laptop.json()['session_id']}", headers=person.auth
    )
    assert await _actions(client, person.auth) == [
        "device_revoked",
        "login",
        "login_failed",
        "login",
    ]


async def test_entries_say_from_where_and_hold_no_secret(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up()
    entries = (await client.get("/api/v1/identity/audit-log", headers=person.auth)).json()
    assert entries[0]["client_address"] == "203.0.113.7"
    assert entries[0]["detail"]["device"] == "Pixel"
    text = str(entries)
    assert person.token not in text
    assert person.phone not in text


async def test_each_person_sees_only_their_own_trail(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    giulia = await sign_up()
    camille = await sign_up("+33612345678", "Camille")
    await client.post(
        "/api/v1/identity/login", json={"phone": giulia.phone, "password": "wrong password!"}
    )
    assert "login_failed" not in await _actions(client, camille.auth)


async def test_the_trail_cannot_be_rewritten_or_erased(app: object, sign_up: SignUp) -> None:
    await sign_up()
    async with app.state.db.sessions() as session:  # type: ignore[attr-defined]
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(update(AuditEntry).values(action="nothing happened"))
        await session.rollback()
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(delete(AuditEntry))
