"""A person cannot erase their account while their wallet holds money: it would be stranded."""

from __future__ import annotations

import httpx
from tests.identity.conftest import PASSWORD, SignUp
from tests.pay.conftest import phone, top_up


async def test_erasure_is_refused_while_the_wallet_holds_money(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up(phone(), "Saver")
    await top_up(client, person, "12.00", "EUR")
    response = await client.post(
        "/api/v1/identity/me/erase", json={"password": PASSWORD}, headers=person.auth
    )
    assert response.status_code == 409
    assert response.json()["type"].endswith("/erasure-blocked-by-balance")
    assert "EUR" in response.json()["detail"]
    me = await client.get("/api/v1/identity/me", headers=person.auth)
    assert me.status_code == 200


async def test_erasure_goes_ahead_once_the_wallet_is_empty(
    client: httpx.AsyncClient, sign_up: SignUp
) -> None:
    person = await sign_up(phone(), "Spender")
    await top_up(client, person, "5.00", "EUR")
    withdrawn = await client.post(
        "/api/v1/pay/wallet/withdrawals",
        json={
            "request_id": "w-erase-1",
            "bank_account": "DE89370400440532013000",
            "amount": "5.00",
            "currency": "EUR",
        },
        headers=person.auth,
    )
    assert withdrawn.status_code == 200, withdrawn.text
    response = await client.post(
        "/api/v1/identity/me/erase", json={"password": PASSWORD}, headers=person.auth
    )
    assert response.status_code == 200, response.text
