"""Web login by QR code: one-time, short-lived, confirmed only by a logged-in phone."""

from __future__ import annotations

import asyncio

import httpx
from tests.identity.conftest import SignUp

from omo.core.clock import ManualClock


async def _ticket(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/api/v1/identity/qr-tickets")
    assert response.status_code == 201
    body = response.json()
    body["scan_code"] = body["scan_url"].rsplit("/", 1)[1]
    return dict(body)


async def _claim(
    client: httpx.AsyncClient, ticket: dict[str, str], wait: float = 0
) -> httpx.Response:
    return await client.post(
        f"/api/v1/identity/qr-tickets/{ticket['ticket_id']}/claim",
        json={"poll_token": ticket["poll_token"], "wait_seconds": wait},
    )


async def test_the_qr_code_holds_the_scan_url_and_not_the_poll_token(
    client: httpx.AsyncClient,
) -> None:
    ticket = await _ticket(client)
    assert ticket["qr_svg"].startswith("<svg")
    assert ticket["poll_token"] not in ticket["scan_url"]


async def test_a_confirmed_ticket_logs_the_browser_in_as_the_phone_user(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    phone = await sign_up()
    ticket = await _ticket(client)
    scanned = await client.post(
        "/api/v1/identity/qr-tickets/scan",
        json={"scan_code": ticket["scan_code"]},
        headers=phone.auth,
    )
    assert scanned.json()["status"] == "scanned"
    assert (await _claim(client, ticket)).json()["status"] == "scanned"
    confirmed = await client.post(
        "/api/v1/identity/qr-tickets/confirm",
        json={"scan_code": ticket["scan_code"]},
        headers=phone.auth,
    )
    assert confirmed.status_code == 200
    claim = (await _claim(client, ticket)).json()
    assert claim["status"] == "consumed"
    web_auth = {"Authorization": f"Bearer {claim['session']['token']}"}
    client.cookies.clear()
    me = await client.get("/api/v1/identity/me", headers=web_auth)
    assert me.json()["phone"] == phone.phone


async def test_a_waiting_browser_is_woken_by_the_confirmation(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    phone = await sign_up()
    ticket = await _ticket(client)
    waiting = asyncio.create_task(_claim(client, ticket, wait=10))
    await asyncio.sleep(0.2)
    await client.post(
        "/api/v1/identity/qr-tickets/confirm",
        json={"scan_code": ticket["scan_code"]},
        headers=phone.auth,
    )
    response = await asyncio.wait_for(waiting, timeout=5)
    assert response.json()["status"] == "consumed"


async def test_a_ticket_cannot_be_claimed_twice(client: httpx.AsyncClient, sign_up: SignUp) -> None:
    phone = await sign_up()
    ticket = await _ticket(client)
    await client.post(
        "/api/v1/identity/qr-tickets/confirm",
        json={"scan_code": ticket["scan_code"]},
        headers=phone.auth,
    )
    assert (await _claim(client, ticket)).json()["status"] == "consumed"
    again = await _claim(client, ticket)
    assert again.status_code == 409
    assert again.json()["type"] == "/problems/qr-ticket-used"


async def test_a_confirmed_ticket_cannot_be_confirmed_again(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    phone = await sign_up()
    ticket = await _ticket(client)
    body = {"scan_code": ticket["scan_code"]}
    await client.post("/api/v1/identity/qr-tickets/confirm", json=body, headers=phone.auth)
    again = await client.post("/api/v1/identity/qr-tickets/confirm", json=body, headers=phone.auth)
    assert again.status_code == 409


async def test_only_a_logged_in_person_can_confirm(client: httpx.AsyncClient) -> None:
    ticket = await _ticket(client)
    response = await client.post(
        "/api/v1/identity/qr-tickets/confirm", json={"scan_code": ticket["scan_code"]}
    )
    assert response.status_code == 401
    assert (await _claim(client, ticket)).json()["status"] == "pending"


async def test_a_ticket_scanned_by_one_person_cannot_be_confirmed_by_another(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    giulia = await sign_up()
    camille = await sign_up("+33612345678", "Camille")
    ticket = await _ticket(client)
    body = {"scan_code": ticket["scan_code"]}
    await client.post("/api/v1/identity/qr-tickets/scan", json=body, headers=giulia.auth)
    stolen = await client.post(
        "/api/v1/identity/qr-tickets/confirm", json=body, headers=camille.auth
    )
    assert stolen.status_code == 409


async def test_a_ticket_expires_after_two_minutes(
    client: httpx.AsyncClient, sign_up: SignUp, clock: ManualClock
) -> None:
    phone = await sign_up()
    ticket = await _ticket(client)
    clock.advance(seconds=121)
    late = await client.post(
        "/api/v1/identity/qr-tickets/confirm",
        json={"scan_code": ticket["scan_code"]},
        headers=phone.auth,
    )
    assert late.status_code == 410
    assert late.json()["type"] == "/problems/qr-ticket-expired"
    assert (await _claim(client, ticket)).json()["status"] == "expired"


async def test_the_poll_token_is_needed_to_collect_the_session(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    phone = await sign_up()
    ticket = await _ticket(client)
    await client.post(
        "/api/v1/identity/qr-tickets/confirm",
        json={"scan_code": ticket["scan_code"]},
        headers=phone.auth,
    )
    thief = {**ticket, "poll_token": ticket["scan_code"]}
    response = await _claim(client, thief)
    assert response.status_code == 404
    assert (await _claim(client, ticket)).json()["status"] == "consumed"
