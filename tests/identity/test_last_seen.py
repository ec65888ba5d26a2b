"""'Last seen' off the request path: noted in memory, written in batches, never at the cost
of a refusal (a revoked or expired session is refused on its very next request)."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import select
from tests.identity.conftest import PASSWORD, SignUp

from omo.app import create_app
from omo.core.clock import ManualClock
from omo.core.config import Settings
from omo.identity.models import DeviceSession
from omo.identity.service import IdentityService


async def _stored(app: FastAPI) -> dict[str, datetime]:
    async with app.state.db.sessions() as session:
        row = (await session.scalars(select(DeviceSession))).one()
        return {"last_seen_at": row.last_seen_at, "expires_at": row.expires_at}


async def test_last_seen_is_written_by_the_flush_not_by_the_request(
    app: FastAPI, client: httpx.AsyncClient, sign_up: SignUp, clock: ManualClock
) -> None:
    person = await sign_up()
    logged_in = await _stored(app)
    clock.advance(minutes=10)
    assert (await client.get("/api/v1/identity/me", headers=person.auth)).status_code == 200
    assert await _stored(app) == logged_in  # nothing written on the request's path
    await app.state.identity.flush_touches()
    after = await _stored(app)
    assert after["last_seen_at"] == clock.now()
    ttl = timedelta(days=app.state.settings.session_ttl_days)
    assert after["expires_at"] == clock.now() + ttl


async def test_a_session_is_noted_at_most_once_per_interval(
    app: FastAPI, client: httpx.AsyncClient, sign_up: SignUp, clock: ManualClock
) -> None:
    person = await sign_up()
    clock.advance(minutes=10)
    seen = clock.now()
    await client.get("/api/v1/identity/me", headers=person.auth)
    await app.state.identity.flush_touches()
    clock.advance(minutes=2)  # within the touch interval: no new note, nothing to write
    await client.get("/api/v1/identity/me", headers=person.auth)
    assert app.state.identity._touches == {}
    await app.state.identity.flush_touches()
    assert (await _stored(app))["last_seen_at"] == seen


async def test_a_revoked_session_is_refused_at_once_even_with_a_note_pending(
    client: httpx.AsyncClient, sign_up: SignUp, clock: ManualClock
) -> None:
    person = await sign_up()
    laptop = await client.post(
        "/api/v1/identity/login",
        json={"phone": person.phone, "password": PASSWORD, "device_name": "Laptop"},
    )
    client.cookies.clear()
    laptop_auth = {"Authorization": f"Bearer {laptop.json()['token']}"}
    clock.advance(minutes=10)
    assert (await client.get("/api/v1/identity/me", headers=laptop_auth)).status_code == 200
    revoked = await client.delete(
        f"/api/v1/identity/devices/{laptop.json()['session_id']}", headers=person.auth
    )
    assert revoked.status_code == 200
    assert (await client.get("/api/v1/identity/me", headers=laptop_auth)).status_code == 401


async def test_a_session_about_to_expire_is_written_at_once(
    app: FastAPI, client: httpx.AsyncClient, sign_up: SignUp, clock: ManualClock
) -> None:
    """Another node, which holds no note, must not find it expired a moment later."""
    person = await sign_up()
    clock.advance(days=app.state.settings.session_ttl_days, hours=-12)
    assert (await client.get("/api/v1/identity/me", headers=person.auth)).status_code == 200
    assert (await _stored(app))["last_seen_at"] == clock.now()
    assert app.state.identity._touches == {}


async def test_a_note_never_moves_last_seen_back(
    app: FastAPI, client: httpx.AsyncClient, sign_up: SignUp, clock: ManualClock
) -> None:
    """Two nodes flush in any order: the later 'last seen' stays."""
    person = await sign_up()
    other_node = IdentityService(
        app.state.db,
        clock,
        app.state.settings,
        app.state.identity.sms,
        app.state.limiter,
        app.state.broker,
    )
    clock.advance(minutes=10)
    assert await app.state.identity.authenticate(person.token) is not None  # noted at T
    clock.advance(minutes=10)
    assert await other_node.authenticate(person.token) is not None  # noted at T + 10 min
    later = clock.now()
    await other_node.flush_touches()
    await app.state.identity.flush_touches()
    assert (await _stored(app))["last_seen_at"] == later


async def test_the_notes_are_written_when_the_server_stops(
    settings: Settings, clock: ManualClock, sign_up: SignUp, app: FastAPI
) -> None:
    person = await sign_up()
    second = create_app(settings, clock)
    async with LifespanManager(second):
        transport = httpx.ASGITransport(app=second)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            clock.advance(minutes=10)
            me = await http.get("/api/v1/identity/me", headers=person.auth)
            assert me.status_code == 200
            assert second.state.identity._touches  # noted, not written yet
    assert (await _stored(app))["last_seen_at"] == clock.now()


async def test_the_devices_list_shows_when_each_device_was_really_last_seen(
    client: httpx.AsyncClient, sign_up: SignUp, clock: ManualClock
) -> None:
    person = await sign_up()
    clock.advance(minutes=10)
    devices = await client.get("/api/v1/identity/devices", headers=person.auth)
    assert devices.status_code == 200
    seen = datetime.fromisoformat(devices.json()[0]["last_seen_at"])
    assert seen == clock.now()


async def test_a_device_check_counts_the_noted_last_seen(
    app: FastAPI, client: httpx.AsyncClient, sign_up: SignUp, clock: ManualClock
) -> None:
    """`session_active` (a payment code's device) agrees with authentication before a flush."""
    person = await sign_up()
    identity: IdentityService = app.state.identity
    principal = await identity.authenticate(person.token)
    assert principal is not None
    ttl = app.state.settings.session_ttl_days
    clock.advance(days=ttl - 2)
    assert await identity.authenticate(person.token) is not None  # noted, not written
    clock.advance(days=3)  # past the stored expiry, within the noted one
    assert await identity.session_active(principal.user_id, principal.session_id)
    revoked = await client.delete(
        f"/api/v1/identity/devices/{principal.session_id}", headers=person.auth
    )
    assert revoked.status_code == 200
    assert not await identity.session_active(principal.user_id, principal.session_id)
