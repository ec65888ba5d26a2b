"""Payment receipts: a customer who follows the merchant's brand gets a receipt card in their
conversation with it (their language's money format, the coupon shown, never their balance);
a customer who does not follow gets no message from the brand."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.accounts.conftest import Brand, MakePerson, Person
from tests.accounts.test_accounts import follow, thread
from tests.accounts.test_developer_api import eventually

from omo.accounts import receipts
from omo.accounts.receipts import BATCH, ReceiptWorker

API = "/api/v1/accounts"


async def pay(client: httpx.AsyncClient, brand: Brand, customer: Person, order_id: str) -> None:
    top_up = await client.post(
        "/api/v1/pay/wallet/top-ups",
        json={
            "request_id": f"t-{uuid.uuid4().hex}",
            "bank_account": "DE89370400440532013000",
            "amount": "100.00",
            "currency": "EUR",
        },
        headers=customer.headers,
    )
    assert top_up.status_code == 200, top_up.text
    code = await client.post("/api/v1/pay/codes", headers=customer.headers)
    assert code.status_code == 201, code.text
    merchants = await client.get("/api/v1/pay/merchants", headers=brand.owner.headers)
    merchant_id = merchants.json()[0]["id"]
    paid = await client.post(
        f"/api/v1/pay/merchants/{merchant_id}/payments",
        json={
            "code": code.json()["code"],
            "amount": "12.40",
            "currency": "EUR",
            "order_id": order_id,
        },
        headers=brand.owner.headers,
    )
    assert paid.status_code == 200, paid.text


async def test_a_follower_gets_a_receipt_from_the_brand_and_a_stranger_does_not(
    client: httpx.AsyncClient, app: FastAPI, brand: Brand, fan: Person, person: MakePerson
) -> None:
    merchant = await client.post(
        "/api/v1/pay/merchants",
        json={"organisation_id": brand.organisation_id, "name": "Caffè Roma"},
        headers=brand.owner.headers,
    )
    assert merchant.status_code == 201, merchant.text
    await client.patch("/api/v1/identity/me", json={"locale": "it"}, headers=fan.headers)
    await follow(client, brand, fan)
    stranger = await person("+393405555555", "Bruno")
    await pay(client, brand, fan, "A-1")
    await pay(client, brand, stranger, "A-2")

    async def receipts() -> list[dict[str, Any]]:
        return [
            i["body"]
            for i in await thread(client, brand, fan)
            if i["direction"] == "out" and "receipt" in i["body"]
        ]

    async def arrived() -> bool:
        return len(await receipts()) == 1

    await eventually(arrived)
    (body,) = await receipts()
    assert body["card"]["type"] == "receipt"
    assert body["card"]["title"] == "Pagamento a Caffè Roma"
    assert body["card"]["description"] == "Pagato 12,40\xa0€"
    assert body["receipt"]["order_id"] == "A-1"
    assert body["receipt"]["paid_minor"] == 1240
    assert body["receipt"]["coupon_applied"] is False
    assert "balance" not in str(body)
    # the brand's side reads the same thread: no wallet balance there either (ids aside,
    # which are random and may hold the digits by chance)
    without_ids = {k: v for k, v in body["receipt"].items() if not k.endswith("_id")}
    assert "87" not in str(without_ids) + str(body["card"])
    # the stranger never consented: no conversation with the brand at all
    await follow(client, brand, stranger)
    assert [i for i in await thread(client, brand, stranger) if "receipt" in i["body"]] == []
    # and the consumer does not send it again
    await app.state.accounts_receipts.run_once()
    assert len(await receipts()) == 1


async def test_a_receipt_shows_the_coupon_in_the_followers_money_format(
    app: FastAPI, client: httpx.AsyncClient, brand: Brand, fan: Person
) -> None:
    await client.patch("/api/v1/identity/me", json={"locale": "ja"}, headers=fan.headers)
    await follow(client, brand, fan)
    service = app.state.accounts
    user_id = (await app.state.identity.find_by_omo_id(fan.omo_id)).user_id
    async with app.state.db.transaction() as session:
        written = await service.append_receipt(
            session,
            organisation_id=uuid.UUID(brand.organisation_id),
            merchant_name="Caffè Roma",
            user_id=user_id,
            payment_id=str(uuid.uuid4()),
            order_id="J-1",
            currency="JPY",
            amount_minor=1500,
            discount_minor=200,
        )
    assert written is not None
    account_id, item = written
    assert str(account_id) == brand.account_id
    assert item.body["receipt"]["paid_minor"] == 1300
    assert item.body["receipt"]["coupon_applied"] is True
    description = item.body["card"]["description"]
    assert "￥1,300" in description
    assert "￥1,500" in description
    assert "￥200" in description
    async with app.state.db.transaction() as session:
        nobody = await service.append_receipt(
            session,
            organisation_id=uuid.uuid4(),
            merchant_name="Elsewhere",
            user_id=user_id,
            payment_id=str(uuid.uuid4()),
            order_id="J-2",
            currency="JPY",
            amount_minor=100,
            discount_minor=0,
        )
    assert nobody is None


async def test_the_worker_waits_between_rounds_that_were_not_full(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round that found fewer events than a batch lets the next ones gather (many receipts
    per transaction under a stream of payments); a full one is followed at once."""
    worker = ReceiptWorker(app.state.accounts, app.state.db, lambda: None, interval=0.25)
    rounds = iter([BATCH, 3, BATCH, 0])
    log: list[str] = []

    async def run_once() -> int:
        read = next(rounds, None)
        if read is None:
            raise asyncio.CancelledError
        log.append(f"round {read}")
        return read

    async def sleep(seconds: float) -> None:
        log.append(f"sleep {seconds}")

    monkeypatch.setattr(worker, "run_once", run_once)
    monkeypatch.setattr(receipts.asyncio, "sleep", sleep)
    with pytest.raises(asyncio.CancelledError):
        await worker._run_forever()
    assert log == [
        f"round {BATCH}",
        "round 3",
        "sleep 0.25",
        f"round {BATCH}",
        "round 0",
        "sleep 0.25",
    ]
