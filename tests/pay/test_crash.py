"""A server killed with SIGKILL in the middle of a payment load loses no acknowledged payment,
holds no half payment, and keeps the ledger balanced; retried unacknowledged orders resolve
exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI
from tests.identity.conftest import Person, SignUp
from tests.pay.conftest import phone, top_up
from tests.support.nodes import Node

from omo.pay.service import PayService

Load = tuple[dict[str, Any], dict[str, dict[str, Any]], list[asyncio.Task[None]]]


async def _pay_until(
    http: httpx.AsyncClient, customers: list[Person], cashier: Person, merchant: str
) -> Load:
    """Each customer pays 1.00 again and again; returns once 40 payments are acknowledged:
    (acknowledged payments, every attempted order's request, the still running loads)."""
    acked: dict[str, Any] = {}
    attempted: dict[str, dict[str, Any]] = {}

    async def customer(index: int, person: Person, http: httpx.AsyncClient) -> None:
        for n in range(10_000):
            code = await http.post("/api/v1/pay/codes", headers=person.auth)
            body = {
                "code": code.json()["code"],
                "amount": "1.00",
                "currency": "EUR",
                "order_id": f"k-{index}-{n}",
            }
            attempted[body["order_id"]] = body
            paid = await http.post(
                f"/api/v1/pay/merchants/{merchant}/payments", json=body, headers=cashier.auth
            )
            assert paid.status_code == 200, paid.text
            acked[body["order_id"]] = paid.json()["payment"]

    tasks = [asyncio.create_task(customer(i, p, http)) for i, p in enumerate(customers)]
    while len(acked) < 40 and not any(t.done() for t in tasks):
        await asyncio.sleep(0.01)
    return acked, attempted, tasks


async def test_a_server_killed_mid_payments_keeps_every_acked_payment_exactly_once(
    app: FastAPI, client: httpx.AsyncClient, sign_up: SignUp, start_node: Node
) -> None:
    pay: PayService = app.state.pay
    cashier = await sign_up(phone(), "Cashier")
    customers = [await sign_up(phone(), f"Payer {n}") for n in range(4)]
    created = await client.post(
        "/api/v1/pay/merchants",
        json={"organisation_id": "org-kill", "name": "Kill Shop"},
        headers=cashier.auth,
    )
    merchant = created.json()["id"]
    for person in customers:
        await top_up(client, person, "1000.00", "EUR")

    node = await start_node()
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as http:
        acked, attempted, tasks = await _pay_until(http, customers, cashier, merchant)
        node.kill()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert len(acked) >= 40

    # Restart; the cashier retries every unacknowledged order with the same order id and code.
    node = await start_node()
    orders = f"/api/v1/pay/merchants/{merchant}/orders"
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as http:
        for order_id, body in attempted.items():
            if order_id not in acked:
                retried = await http.post(
                    f"/api/v1/pay/merchants/{merchant}/payments", json=body, headers=cashier.auth
                )
                # Committed before the kill: that same payment. Never committed: paid now, or
                # refused cleanly (problem+json) if its code expired meanwhile.
                assert retried.status_code == 200 or retried.json()["type"].startswith(
                    "/problems/payment-code"
                ), retried.text
        statuses = {}
        for order_id in attempted:
            found = await http.get(f"{orders}/{order_id}", headers=cashier.auth)
            assert found.status_code in (200, 404), found.text
            if found.status_code == 200:
                statuses[order_id] = found.json()
    for order_id, payment in acked.items():
        assert statuses[order_id]["id"] == payment["id"]
        assert statuses[order_id]["status"] == "succeeded"

    assert await pay.ledger.totals() == {"EUR": 0}
    assert await pay.ledger.entries_balance()
    spent = 100 * sum(1 for p in statuses.values() if p["status"] == "succeeded")
    wallets = 0
    for person in customers:
        wallet = (await client.get("/api/v1/pay/wallet", headers=person.auth)).json()
        wallets += sum(b["minor"] for b in wallet["balances"])
    assert wallets == 4 * 100_000 - spent
