"""Campaigns, claims, the offer engine, redemption at payment and flash sales."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI
from tests.identity.conftest import SignUp
from tests.pay.conftest import MakeShop, Shop, code_of, make_shop, phone, sign_up, top_up

from omo.core.clock import ManualClock
from omo.core.errors import ProblemError
from omo.core.money import Money

__all__ = ["make_shop", "sign_up"]


async def campaign(
    client: httpx.AsyncClient, shop: Shop, clock: ManualClock, **fields: object
) -> dict[str, object]:
    body = {
        "issuer": shop.merchant_id,
        "title": "5 off",
        "kind": "cash_off",
        "currency": "EUR",
        "value": "5.00",
        "starts_at": (clock.now() - timedelta(hours=1)).isoformat(),
        "ends_at": (clock.now() + timedelta(days=7)).isoformat(),
        "total_stock": 100,
        **fields,
    }
    response = await client.post("/api/v1/coupons/campaigns", json=body, headers=shop.owner.auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_claimed_coupon_is_applied_at_payment_by_itself_and_returned_on_refund(
    client: httpx.AsyncClient, make_shop: MakeShop, clock: ManualClock, app: FastAPI
) -> None:
    shop = await make_shop()
    offer = await campaign(client, shop, clock, min_spend="20.00")
    claimed = await client.post(
        "/api/v1/coupons/claims",
        json={"claim_code": offer["claim_code"]},
        headers=shop.customer.auth,
    )
    assert claimed.status_code == 201, claimed.text
    code = await code_of(client, shop.customer)
    paid = await client.post(
        shop.charge_url(),
        json={"code": code, "amount": "25.00", "currency": "EUR", "order_id": "C-1"},
        headers=shop.owner.auth,
    )
    payment = paid.json()["payment"]
    assert payment["discount"]["amount"] == "5.00"
    assert payment["paid"]["amount"] == "20.00"
    wallet = (await client.get("/api/v1/pay/wallet", headers=shop.customer.auth)).json()
    assert wallet["balances"][0]["amount"] == "80.00"
    coupons = (await client.get("/api/v1/coupons/wallet", headers=shop.customer.auth)).json()
    assert coupons[0]["status"] == "redeemed"
    refund = await client.post(
        f"/api/v1/pay/merchants/{shop.merchant_id}/orders/C-1/refunds",
        json={"refund_id": "all", "amount": "20.00", "currency": "EUR"},
        headers=shop.owner.auth,
    )
    assert refund.status_code == 200, refund.text
    coupons = (await client.get("/api/v1/coupons/wallet", headers=shop.customer.auth)).json()
    assert coupons[0]["status"] == "available"
    assert await app.state.pay.ledger.totals() == {"EUR": 0}


async def test_claims_respect_stock_per_user_limit_and_window(
    client: httpx.AsyncClient, make_shop: MakeShop, clock: ManualClock, sign_up: SignUp
) -> None:
    shop = await make_shop()
    offer = await campaign(client, shop, clock, total_stock=2)
    claim = {"campaign_id": offer["id"]}
    first = await client.post("/api/v1/coupons/claims", json=claim, headers=shop.customer.auth)
    assert first.status_code == 201
    again = await client.post("/api/v1/coupons/claims", json=claim, headers=shop.customer.auth)
    assert again.json()["type"] == "/problems/coupon-limit-reached"
    other = await client.post("/api/v1/coupons/claims", json=claim, headers=shop.owner.auth)
    assert other.status_code == 201
    third = await client.post(
        "/api/v1/coupons/claims", json=claim, headers=(await sign_up(phone(), "Third")).auth
    )
    assert third.json()["type"] == "/problems/coupon-out-of-stock"
    clock.advance(days=8)
    late = await campaign(
        client, shop, clock, starts_at=(clock.now() + timedelta(days=1)).isoformat()
    )
    early = await client.post(
        "/api/v1/coupons/claims", json={"campaign_id": late["id"]}, headers=shop.customer.auth
    )
    assert early.json()["type"] == "/problems/campaign-not-open"


async def test_the_basket_shows_the_best_offer_and_the_nearest_one_to_unlock(
    client: httpx.AsyncClient, make_shop: MakeShop, clock: ManualClock
) -> None:
    shop = await make_shop()
    tiers = [{"spend": "100", "off": "10"}, {"spend": "200", "off": "30"}]
    offer = await campaign(client, shop, clock, kind="threshold", title="Tiers", tiers=tiers)
    percent = await campaign(
        client, shop, clock, kind="percent_off", title="8%", percent=8, cap="12.00"
    )
    for item in (offer, percent):
        await client.post(
            "/api/v1/coupons/claims", json={"campaign_id": item["id"]}, headers=shop.customer.auth
        )
    basket = await client.post(
        "/api/v1/coupons/baskets",
        json={"merchant_id": shop.merchant_id, "amount": "120.00", "currency": "EUR"},
        headers=shop.customer.auth,
    )
    body = basket.json()
    assert body["best"]["title"] == "Tiers"
    assert body["best"]["discount"]["amount"] == "10.00"
    assert [o["discount"]["amount"] for o in body["offers"]] == ["10.00", "9.60"]
    assert body["nearest"]["spend_more"]["amount"] == "80.00"
    assert body["nearest"]["discount"]["amount"] == "30.00"


async def test_a_cross_merchant_coupon_works_only_at_partner_stores(
    client: httpx.AsyncClient, make_shop: MakeShop, clock: ManualClock, app: FastAPI
) -> None:
    vending = await make_shop("org-vending")
    bakery = await make_shop("org-bakery")
    offer = await campaign(client, vending, clock, merchants=[bakery.merchant_id], value="1.00")
    for _shop in (vending, bakery):
        await client.post(
            "/api/v1/coupons/claims",
            json={"campaign_id": offer["id"]},
            headers=bakery.customer.auth,
        )
    code = await code_of(client, bakery.customer)
    paid = await client.post(
        bakery.charge_url(),
        json={"code": code, "amount": "4.00", "currency": "EUR", "order_id": "X-1"},
        headers=bakery.owner.auth,
    )
    assert paid.json()["payment"]["discount"]["amount"] == "1.00"
    # The bakery is paid in full: the vending company's coupon fund carries the discount.
    assert paid.json()["balance"]["amount"] == "3.98"
    funds = await app.state.pay.ledger.balances("coupon", vending.merchant_id)
    assert funds == [Money.of("-1.00", "EUR")]


async def test_racing_payments_redeem_one_coupon_once(
    client: httpx.AsyncClient, make_shop: MakeShop, clock: ManualClock, app: FastAPI
) -> None:
    shop = await make_shop()
    offer = await campaign(client, shop, clock)
    claimed = await client.post(
        "/api/v1/coupons/claims", json={"campaign_id": offer["id"]}, headers=shop.customer.auth
    )
    coupon_id = uuid.UUID(claimed.json()["id"])
    pay = app.state.pay
    customer = await app.state.identity.authenticate(shop.customer.token)
    store = await pay.stores(uuid.UUID(shop.merchant_id))

    async def attempt(index: int) -> str:
        try:
            result = await pay.pay_qr(
                customer.user_id,
                customer.session_id,
                store[0].qr_token,
                f"race-{index}",
                None,
                Money.of("10.00", "EUR"),
                coupon_id,
            )
        except ProblemError as refusal:
            return refusal.slug
        return str(result.payment.status)

    outcomes = await asyncio.gather(*(attempt(i) for i in range(8)))
    assert outcomes.count("succeeded") == 1
    assert set(outcomes) == {"succeeded", "coupon-not-usable"}
    assert await pay.ledger.totals() == {"EUR": 0}


async def test_a_flash_sale_never_oversells_and_unpaid_units_return(
    client: httpx.AsyncClient, make_shop: MakeShop, clock: ManualClock, app: FastAPI
) -> None:
    shop = await make_shop(fund=("5000.00", "EUR"))
    sale = await client.post(
        "/api/v1/coupons/flash-sales",
        json={
            "merchant_id": shop.merchant_id,
            "product": "Limited bag",
            "price": "900.00",
            "currency": "EUR",
            "stock": 3,
            "starts_at": clock.now().isoformat(),
            "hold_seconds": 60,
            "per_user_limit": 1,
        },
        headers=shop.owner.auth,
    )
    assert sale.status_code == 201, sale.text
    sale_id = uuid.UUID(sale.json()["id"])
    coupons = app.state.coupons
    buyers = [uuid.uuid4() for _ in range(30)]

    async def reserve(buyer: uuid.UUID) -> str:
        try:
            await coupons.reserve(buyer, sale_id)
        except ProblemError as refusal:
            return refusal.slug
        return "held"

    outcomes = await asyncio.gather(*(reserve(b) for b in buyers))
    assert outcomes.count("held") == 3
    again = await client.post(
        f"/api/v1/coupons/flash-sales/{sale_id}/reservations", headers=shop.customer.auth
    )
    assert again.json()["type"] == "/problems/flash-sale-sold-out"
    clock.advance(seconds=61)
    mine = await client.post(
        f"/api/v1/coupons/flash-sales/{sale_id}/reservations", headers=shop.customer.auth
    )
    assert mine.status_code == 201, mine.text
    twice = await client.post(
        f"/api/v1/coupons/flash-sales/{sale_id}/reservations", headers=shop.customer.auth
    )
    assert twice.json()["type"] == "/problems/flash-sale-limit-reached"
    await client.put("/api/v1/pay/wallet/pin", json={"pin": "135790"}, headers=shop.customer.auth)
    paid = await client.post(
        f"/api/v1/pay/flash/reservations/{mine.json()['id']}/pay",
        json={"pin": "135790"},
        headers=shop.customer.auth,
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["balance"]["amount"] == "4100.00"
    assert await coupons.sold(sale_id) == 1
    assert (await coupons.sale(sale_id)).taken <= 3
    await top_up(client, shop.customer, "1.00", "EUR")
