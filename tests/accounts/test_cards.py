"""Rich cards from an account: coupon cards of the brand's own campaigns (claimed from the
card) and mini program cards opening a page — on the native API and as WeChat's wxcard and
miniprogrampage messages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from tests.accounts.conftest import Brand, MakeBrand, Person
from tests.accounts.test_accounts import follow, openid_of, thread
from tests.accounts.test_developer_api import token_for

from omo.core.clock import ManualClock

API = "/api/v1/accounts"


async def campaign_of(client: httpx.AsyncClient, clock: ManualClock, brand: Brand) -> str:
    merchant = await client.post(
        "/api/v1/pay/merchants",
        json={"organisation_id": brand.organisation_id, "name": "Caffè Roma"},
        headers=brand.owner.headers,
    )
    assert merchant.status_code == 201, merchant.text
    created = await client.post(
        "/api/v1/coupons/campaigns",
        json={
            "issuer": merchant.json()["id"],
            "title": "2 off any coffee",
            "kind": "cash_off",
            "currency": "EUR",
            "value": "2.00",
            "starts_at": (clock.now() - timedelta(hours=1)).isoformat(),
            "ends_at": (clock.now() + timedelta(days=7)).isoformat(),
            "total_stock": 10,
        },
        headers=brand.owner.headers,
    )
    assert created.status_code == 201, created.text
    campaign_id: str = created.json()["id"]
    return campaign_id


async def test_a_coupon_card_of_the_brands_campaign_is_claimed_from_the_thread(
    client: httpx.AsyncClient, clock: ManualClock, brand: Brand, fan: Person
) -> None:
    campaign_id = await campaign_of(client, clock, brand)
    await follow(client, brand, fan)
    sent = await client.post(
        brand.manage("/broadcasts"),
        json={"card": {"type": "coupon", "campaign_id": campaign_id}},
        headers=brand.owner.headers,
    )
    assert sent.status_code == 201, sent.text
    card = sent.json()["body"]["card"]
    assert card["campaign_id"] == campaign_id
    assert card["title"] == "2 off any coffee"
    login = await client.post(
        "/api/v1/identity/login", json={"phone": fan.phone, "password": "correct horse battery"}
    )
    assert login.status_code == 200
    page = await client.get(f"/accounts/{brand.account_id}")
    client.cookies.clear()
    assert f'value="{campaign_id}"' in page.text
    assert "data-claim-coupon" in page.text
    claimed = await client.post(
        "/api/v1/coupons/claims",
        json={"campaign_id": campaign_id, "source": "broadcast"},
        headers=fan.headers,
    )
    assert claimed.status_code == 201, claimed.text


async def test_a_coupon_card_of_another_brands_campaign_is_refused(
    client: httpx.AsyncClient,
    clock: ManualClock,
    brand: Brand,
    make_brand: MakeBrand,
    fan: Person,
    person: Any,
) -> None:
    other_owner = await person("+393402222222", "Rival")
    rival = await make_brand(other_owner, name="Rival Bar")
    foreign = await campaign_of(client, clock, rival)
    await follow(client, brand, fan)
    openid = await openid_of(client, brand)
    for body in (
        {"card": {"type": "coupon", "campaign_id": foreign}},
        {"card": {"type": "coupon", "campaign_id": "00000000-0000-7000-8000-000000000000"}},
    ):
        refused = await client.post(
            brand.manage("/messages"), json={"openid": openid, **body}, headers=brand.owner.headers
        )
        assert refused.status_code == 400
        assert refused.json()["type"] == "/problems/accounts-invalid-message"
    assert [i for i in await thread(client, brand, fan) if i["direction"] == "out"] == []


async def test_wechat_wxcard_and_miniprogrampage_become_cards(
    client: httpx.AsyncClient, clock: ManualClock, brand: Brand, fan: Person
) -> None:
    campaign_id = await campaign_of(client, clock, brand)
    await follow(client, brand, fan)
    openid = await openid_of(client, brand)
    token = await token_for(client, brand)
    coupon = await client.post(
        "/cgi-bin/message/custom/send",
        params={"access_token": token},
        json={"touser": openid, "msgtype": "wxcard", "wxcard": {"card_id": campaign_id}},
    )
    assert coupon.json()["errcode"] == 0, coupon.text
    program = await client.post(
        "/cgi-bin/message/custom/send",
        params={"access_token": token},
        json={
            "touser": openid,
            "msgtype": "miniprogrampage",
            "miniprogrampage": {
                "title": "Order at table",
                "appid": "wxmenu",
                "pagepath": "/tables/12",
            },
        },
    )
    assert program.json()["errcode"] == 0, program.text
    bad = await client.post(
        "/cgi-bin/message/custom/send",
        params={"access_token": token},
        json={"touser": openid, "msgtype": "wxcard", "wxcard": {"card_id": "not-a-campaign"}},
    )
    assert bad.json()["errcode"] == 44003
    cards = [i["body"]["card"] for i in await thread(client, brand, fan) if i["direction"] == "out"]
    assert cards[0]["type"] == "coupon"
    assert cards[0]["campaign_id"] == campaign_id
    assert cards[1] == {
        "type": "miniprogram",
        "title": "Order at table",
        "description": "",
        "url": "/mp/wxmenu/tables/12",
        "appid": "wxmenu",
        "pagepath": "tables/12",
    }
