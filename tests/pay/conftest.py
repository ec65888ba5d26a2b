from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.identity.conftest import Person, SignUp, sign_up

__all__ = ["Shop", "sign_up"]

_phones = itertools.count(1000)


def phone() -> str:
    return f"+39340{next(_phones):07d}"


@dataclass
class Shop:
    """A merchant with one store, its owner (also its cashier) and a customer with money."""

    owner: Person
    customer: Person
    merchant_id: str
    store_id: str
    store_qr: str

    def charge_url(self) -> str:
        return f"/api/v1/pay/merchants/{self.merchant_id}/payments"


async def top_up(
    client: httpx.AsyncClient, person: Person, amount: str, currency: str, request_id: str = ""
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/pay/wallet/top-ups",
        json={
            "request_id": request_id or f"t-{next(_phones)}",
            "bank_account": "DE89370400440532013000",
            "amount": amount,
            "currency": currency,
        },
        headers=person.auth,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def code_of(client: httpx.AsyncClient, person: Person) -> str:
    response = await client.post("/api/v1/pay/codes", headers=person.auth)
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


MakeShop = Callable[..., Awaitable[Shop]]


@pytest.fixture
def make_shop(client: httpx.AsyncClient, sign_up: SignUp, app: FastAPI) -> MakeShop:
    async def _make(
        organisation: str = "org-coffee", fund: tuple[str, str] = ("100.00", "EUR")
    ) -> Shop:
        owner = await sign_up(phone(), "Owner")
        customer = await sign_up(phone(), "Customer")
        merchant = await client.post(
            "/api/v1/pay/merchants",
            json={"organisation_id": organisation, "name": "Caffè Rossi"},
            headers=owner.auth,
        )
        assert merchant.status_code == 201, merchant.text
        merchant_id = merchant.json()["id"]
        store = await client.post(
            f"/api/v1/pay/merchants/{merchant_id}/stores",
            json={"name": "Via Roma", "latitude": 45.46, "longitude": 9.19},
            headers=owner.auth,
        )
        assert store.status_code == 201, store.text
        if fund[0] != "0":
            await top_up(client, customer, *fund)
        return Shop(
            owner,
            customer,
            merchant_id,
            store.json()["id"],
            store.json()["qr_url"].rsplit("/", 1)[1],
        )

    return _make
