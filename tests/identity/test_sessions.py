"""Log in, devices, log out, revocation and login rate limits."""

from __future__ import annotations

import httpx
from tests.identity.conftest import PASSWORD, SignUp

from omo.core.clock import ManualClock


async def test_login_returns_a_token_that_authenticates(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up()
    me = await client.get("/api/v1/identity/me", headers=person.auth)
    assert me.status_code == 200
    assert me.json()["display_name"] == "Giulia"


async def test_wrong_password_is_refused_without_saying_which_part_was_wrong(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    await sign_up()
    wrong = await client.post(
        "/api/v1/identity/login", json={"phone": "+393401234567", "password": "wrong password!"}
    )
    unknown = await client.post(
        "/api/v1/identity/login", json={"phone": "+393409999999", "password": PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["type"] == unknown.json()["type"] == "/problems/invalid-credentials"
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_no_token_means_unauthenticated(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/identity/me")
    assert response.status_code == 401
    assert response.json()["type"] == "/problems/unauthenticated"


async def test_a_made_up_token_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/v1/identity/me", headers={"Authorization": "Bearer not-a-real-token"}
    )
    assert response.status_code == 401


async def test_each_login_is_a_device_listed_with_the_current_one_marked(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up()
    await client.post(
        "/api/v1/identity/login",
        json={"phone": person.phone, "password": PASSWORD, "device_name": "Laptop", "kind": "web"},
    )
    client.cookies.clear()
    devices = (await client.get("/api/v1/identity/devices", headers=person.auth)).json()
    assert sorted(d["device_name"] for d in devices) == ["Laptop", "Pixel"]
    assert [d["device_name"] for d in devices if d["current"]] == ["Pixel"]


async def test_a_revoked_device_token_stops_working(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up()
    laptop = await client.post(
        "/api/v1/identity/login",
        json={"phone": person.phone, "password": PASSWORD, "device_name": "Laptop"},
    )
    client.cookies.clear()
    laptop_auth = {"Authorization": f"Bearer {laptop.json()['token']}"}
    revoked = await client.delete(
        f"/api/v1/identity/devices/{laptop.json()['session_id']}", headers=person.auth
    )
    assert revoked.json() == {"status": "revoked"}
    response = await client.get("/api/v1/identity/me", headers=laptop_auth)
    assert response.status_code == 401


async def test_nobody_can_revoke_another_persons_device(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    giulia = await sign_up()
    camille = await sign_up("+33612345678", "Camille")
    camille_device = (await client.get("/api/v1/identity/devices", headers=camille.auth)).json()[0]
    response = await client.delete(
        f"/api/v1/identity/devices/{camille_device['id']}", headers=giulia.auth
    )
    assert response.status_code == 404
    still = await client.get("/api/v1/identity/me", headers=camille.auth)
    assert still.status_code == 200


async def test_logout_ends_the_session(client: httpx.AsyncClient, sign_up: SignUp) -> None:
    person = await sign_up()
    assert (await client.post("/api/v1/identity/logout", headers=person.auth)).status_code == 200
    assert (await client.get("/api/v1/identity/me", headers=person.auth)).status_code == 401


async def test_a_device_in_use_stays_logged_in(
    client: httpx.AsyncClient, sign_up: SignUp, clock: ManualClock
) -> None:
    person = await sign_up()
    for _ in range(4):
        clock.advance(days=60)
        assert (await client.get("/api/v1/identity/me", headers=person.auth)).status_code == 200


async def test_idle_sessions_expire(
    client: httpx.AsyncClient, sign_up: SignUp, clock: ManualClock
) -> None:
    person = await sign_up()
    clock.advance(days=91)
    assert (await client.get("/api/v1/identity/me", headers=person.auth)).status_code == 401


async def test_login_attempts_are_rate_limited_per_phone(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up()
    statuses = []
    for _ in range(12):
        response = await client.post(
            "/api/v1/identity/login", json={"phone": person.phone, "password": "wrong password!"}
        )
        statuses.append(response.status_code)
    assert 429 in statuses
    limited = await client.post(
        "/api/v1/identity/login", json={"phone": person.phone, "password": PASSWORD}
    )
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0


async def test_cookie_sessions_need_the_csrf_header_to_change_anything(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up()
    client.cookies.set("omo_session", person.token)
    refused = await client.patch("/api/v1/identity/me", json={"display_name": "Evil"})
    assert refused.status_code == 403
    assert refused.json()["type"] == "/problems/csrf-failed"
    allowed = await client.patch(
        "/api/v1/identity/me", json={"display_name": "Giulia R."}, headers={"X-OMO-CSRF": "1"}
    )
    assert allowed.status_code == 200
    client.cookies.clear()


async def test_login_sets_an_http_only_same_site_cookie(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up()
    response = await client.post(
        "/api/v1/identity/login", json={"phone": person.phone, "password": PASSWORD, "kind": "web"}
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    client.cookies.clear()
