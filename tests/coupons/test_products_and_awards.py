"""Coupons for products (counted on the basket's lines) and coupons handed out by a payment
(the vending machine whose receipt carries a coupon for the shop next door)."""

from __future__ import annotations

from typing import Any

import httpx
from tests.coupons.test_coupons import campaign
from tests.pay.conftest import MakeShop, Shop, code_of, make_shop, sign_up

from omo.core.clock import ManualClock

__all__ = ["make_shop", "sign_up"]


async def _claim(client: httpx.AsyncClient, shop: Shop, offer: dict[str, Any]) -> None:
    claimed = await client.post(
        "/api/v1/coupons/claims", json={"campaign_id": offer["id"]}, headers=shop.customer.auth
    )
    assert claimed.status_code == 201, claimed.text


async def _pay(
    client: httpx.AsyncClient, shop: Shop, amount: str, order: str, **extra: Any
) -> httpx.Response:
    code = await code_of(client, shop.customer)
    return await client.post(
        shop.charge_url(),
        json={"code": code, "amount": amount, "currency": "EUR", "order_id": order, **extra},
        headers=shop.owner.auth,
    )


async def _wallet(client: httpx.AsyncClient, shop: Shop) -> list[dict[str, Any]]:
    return list((await client.get("/api/v1/coupons/wallet", headers=shop.customer.auth)).json())


async def test_a_product_coupon_counts_only_its_products_lines(
    client: httpx.AsyncClient, make_shop: MakeShop, clock: ManualClock
) -> None:
    shop = await make_shop(fund=("200.00", "EUR"))
    offer = await campaign(
        client, shop, clock, kind="percent_off", value="0", percent=20, products=["ESPRESSO"]
    )
    assert offer["products"] == ["ESPRESSO"]
    await _claim(client, shop, offer)
    basket = [{"product": "ESPRESSO", "amount": "10.00"}, {"product": "CAKE", "amount": "30.00"}]
    paid = await _pay(client, shop, "40.00", "P-1", items=basket)
    assert paid.status_code == 200, paid.text
    assert paid.json()["payment"]["discount"]["amount"] == "2.00"  # 20 % of the 10.00 only


async def test_a_product_coupon_is_not_applied_without_a_basket(
    client: httpx.AsyncClient, make_shop: MakeShop, clock: ManualClock
) -> None:
    shop = await make_shop()
    offer = await campaign(client, shop, clock, products=["ESPRESSO"])
    await _claim(client, shop, offer)
    paid = await _pay(client, shop, "20.00", "P-2")
    assert paid.json()["payment"]["discount"]["amount"] == "0.00"
    assert (await _wallet(client, shop))[0]["status"] == "available"


async def test_the_basket_engine_unlocks_a_product_threshold_on_its_lines(
    client: httpx.AsyncClient, make_shop: MakeShop, clock: ManualClock
) -> None:
    shop = await make_shop()
    await campaign(
        client,
        shop,
        clock,
        kind="threshold",
        value="0",
        tiers=[{"spend": "30.00", "off": "5.00"}],
        products=["WINE"],
    )
    answer = await client.post(
        "/api/v1/coupons/baskets",
        json={
            "merchant_id": shop.merchant_id,
            "amount": "50.00",
            "currency": "EUR",
            "items": [
                {"product": "WINE", "amount": "20.00"},
                {"product": "BREAD", "amount": "30.00"},
            ],
        },
        headers=shop.customer.auth,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["nearest"]["spend_more"]["amount"] == "10.00"


async def test_a_basket_that_does_not_add_up_is_refused_and_nothing_moves(
    client: httpx.AsyncClient, make_shop: MakeShop
) -> None:
    shop = await make_shop()
    paid = await _pay(client, shop, "40.00", "P-3", items=[{"product": "A", "amount": "10.00"}])
    assert paid.status_code == 422
    assert paid.json()["type"] == "/problems/basket-mismatch"
    wallet = (await client.get("/api/v1/pay/wallet", headers=shop.customer.auth)).json()
    assert wallet["balances"][0]["amount"] == "100.00"


async def test_a_payment_hands_out_the_partner_shops_coupon_once_per_limit(
    client: httpx.AsyncClient, make_shop: MakeShop, clock: ManualClock
) -> None:
    vending = await make_shop("org-vending")
    bakery = await make_shop("org-bakery")
    # The bakery's coupon names the vending machine as a partner; the vending machine's owner
    # chooses to hand it out after payments of at least 2.00.
    offer = await campaign(
        client, bakery, clock, title="1 off bread", value="1.00", merchants=[vending.merchant_id]
    )
    url = f"/api/v1/coupons/merchants/{vending.merchant_id}/payment-awards"
    award = await client.post(
        url, json={"campaign_id": offer["id"], "min_spend": "2.00"}, headers=vending.owner.auth
    )
    assert award.status_code == 201, award.text
    assert (await _pay(client, vending, "1.50", "V-1")).status_code == 200
    assert await _wallet(client, vending) == []  # below the minimum spend
    assert (await _pay(client, vending, "2.50", "V-2")).status_code == 200
    coupons = await _wallet(client, vending)
    assert [(c["campaign"]["title"], c["status"]) for c in coupons] == [
        ("1 off bread", "available")
    ]
    assert (await _pay(client, vending, "3.00", "V-3")).status_code == 200
    assert len(await _wallet(client, vending)) == 1  # per-user limit 1: no second coupon


async def test_a_payment_still_succeeds_when_the_awarded_campaign_is_out_of_stock(
    client: httpx.AsyncClient, make_shop: MakeShop, clock: ManualClock, sign_up: Any
) -> None:
    shop = await make_shop()
    offer = await campaign(client, shop, clock, total_stock=1)
    other = await sign_up("+393409999001", "Other")
    await client.post(
        "/api/v1/coupons/claims", json={"campaign_id": offer["id"]}, headers=other.auth
    )
    url = f"/api/v1/coupons/merchants/{shop.merchant_id}/payment-awards"
    await client.post(
        url, json={"campaign_id": offer["id"], "min_spend": "0"}, headers=shop.owner.auth
    )
    paid = await _pay(client, shop, "3.00", "S-1")
    assert paid.status_code == 200, paid.text
    assert await _wallet(client, shop) == []


async def test_a_merchant_cannot_hand_out_a_campaign_that_does_not_name_it(
    client: httpx.AsyncClient, make_shop: MakeShop, clock: ManualClock
) -> None:
    vending = await make_shop("org-vending")
    bakery = await make_shop("org-bakery")
    offer = await campaign(client, bakery, clock)
    url = f"/api/v1/coupons/merchants/{vending.merchant_id}/payment-awards"
    refused = await client.post(
        url, json={"campaign_id": offer["id"], "min_spend": "0"}, headers=vending.owner.auth
    )
    assert refused.status_code == 403
    assert refused.json()["type"] == "/problems/campaign-not-partner"
    stranger = await client.post(
        url, json={"campaign_id": offer["id"], "min_spend": "0"}, headers=bakery.owner.auth
    )
    assert stranger.status_code in (403, 404)
