"""requestPayment: orders created by the mini program's server through pay, paid in the
host's sheet with the PIN; refused for another mini program's order, a changed amount, a paid
order presented again."""

from __future__ import annotations

import uuid

import httpx
from tests.miniapps.conftest import API, MakeProgram, Person, Program, released

PIN = "246810"


async def _merchant(client: httpx.AsyncClient, program: Program) -> None:
    response = await client.post(
        "/api/v1/pay/merchants",
        json={"organisation_id": program.organisation_id, "name": "Trattoria"},
        headers=program.owner.headers,
    )
    assert response.status_code == 201, response.text


async def _wallet(client: httpx.AsyncClient, person: Person) -> None:
    topped = await client.post(
        "/api/v1/pay/wallet/top-ups",
        json={
            "request_id": uuid.uuid4().hex,
            "bank_account": "DE89370400440532013000",
            "amount": "50.00",
            "currency": "EUR",
        },
        headers=person.headers,
    )
    assert topped.status_code == 200, topped.text
    pin = await client.put("/api/v1/pay/wallet/pin", json={"pin": PIN}, headers=person.headers)
    assert pin.status_code == 200, pin.text


async def _ready(client: httpx.AsyncClient, program: Program, diner: Person) -> None:
    await released(client, program)
    await _merchant(client, program)
    await _wallet(client, diner)
    accepted = await client.post(f"{API}/launch/{program.appid}/privacy", headers=diner.headers)
    assert accepted.status_code == 200


async def _order(
    client: httpx.AsyncClient, program: Program, order_id: str = "T12-1", amount: str = "12.50"
) -> dict[str, str]:
    response = await client.post(
        f"{API}/dev/{program.appid}/orders",
        json={"order_id": order_id, "amount": amount, "currency": "EUR", "description": "Pizza"},
        headers=program.basic,
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


async def _pay(
    client: httpx.AsyncClient, program: Program, diner: Person, prepay: str, **body: str
) -> httpx.Response:
    return await client.post(
        f"{API}/launch/{program.appid}/payments/{prepay}",
        json={"pin": PIN, **body},
        headers=diner.headers,
    )


async def test_an_order_is_shown_then_paid_and_the_server_sees_it_paid(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await _ready(client, program, diner)
    order = await _order(client, program)
    sheet = await client.get(
        f"{API}/launch/{program.appid}/payments/{order['prepay_id']}", headers=diner.headers
    )
    assert sheet.status_code == 200, sheet.text
    assert sheet.json()["amount"]["minor"] == 1250
    assert sheet.json()["merchant_name"] == "Trattoria"
    paid = await _pay(client, program, diner, order["prepay_id"])
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "succeeded"
    queried = await client.get(f"{API}/dev/{program.appid}/orders/T12-1", headers=program.basic)
    assert queried.json()["status"] == "succeeded"


async def test_a_paid_order_presented_again_is_refused(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await _ready(client, program, diner)
    order = await _order(client, program)
    assert (await _pay(client, program, diner, order["prepay_id"])).status_code == 200
    again = await _pay(client, program, diner, order["prepay_id"])
    assert again.status_code == 409
    assert again.json()["type"] == "/problems/miniapps-order-paid"
    wallet = await client.get("/api/v1/pay/wallet", headers=diner.headers)
    assert "37.5" in wallet.text  # charged once: 50.00 - 12.50


async def test_an_amount_changed_in_the_frame_is_refused(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await _ready(client, program, diner)
    order = await _order(client, program)
    response = await _pay(client, program, diner, order["prepay_id"], amount="0.01")
    assert response.status_code == 409
    assert response.json()["type"] == "/problems/miniapps-amount-mismatch"


async def test_an_order_of_another_mini_program_is_refused(
    client: httpx.AsyncClient, program: Program, make_program: MakeProgram, diner: Person
) -> None:
    await _ready(client, program, diner)
    other = await make_program(diner, "Other")
    await released(client, other)
    await client.post(f"{API}/launch/{other.appid}/privacy", headers=diner.headers)
    order = await _order(client, program)
    response = await _pay(client, other, diner, order["prepay_id"])
    assert response.status_code == 404
    query = await client.get(f"{API}/dev/{other.appid}/orders/T12-1", headers=other.basic)
    assert query.status_code == 404


async def test_a_wrong_pin_does_not_pay(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await _ready(client, program, diner)
    order = await _order(client, program)
    response = await _pay(client, program, diner, order["prepay_id"], pin="000000")
    assert response.status_code in (401, 403)
    queried = await client.get(f"{API}/dev/{program.appid}/orders/T12-1", headers=program.basic)
    assert queried.json()["status"] != "succeeded"


async def test_the_server_refunds_a_paid_order(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await _ready(client, program, diner)
    order = await _order(client, program)
    await _pay(client, program, diner, order["prepay_id"])
    refund = await client.post(
        f"{API}/dev/{program.appid}/orders/T12-1/refunds",
        json={"refund_id": "r1", "amount": "12.50", "currency": "EUR"},
        headers=program.basic,
    )
    assert refund.status_code == 200, refund.text
    assert refund.json()["status"] in ("refunded", "succeeded")


async def test_an_organisation_without_merchant_cannot_create_orders(
    client: httpx.AsyncClient, program: Program
) -> None:
    response = await client.post(
        f"{API}/dev/{program.appid}/orders",
        json={"order_id": "x", "amount": "1.00", "currency": "EUR"},
        headers=program.basic,
    )
    assert response.status_code == 409
    assert response.json()["type"] == "/problems/miniapps-no-merchant"
