"""The developer API's basket: the coupons engine's view of a basket for one of the mini
program's own users ("spend X more to unlock Y", best coupon held); refused with a wrong
secret and for an openid of another mini program."""

from __future__ import annotations

import base64
from datetime import timedelta

import httpx
from fastapi import FastAPI
from tests.miniapps.conftest import API, MakeProgram, Person, Program, released
from tests.miniapps.test_payments import _merchant


async def _openid(client: httpx.AsyncClient, program: Program, person: Person) -> str:
    await client.post(f"{API}/launch/{program.appid}/privacy", headers=person.headers)
    code = (
        await client.post(f"{API}/launch/{program.appid}/login", headers=person.headers)
    ).json()["code"]
    session = await client.post(
        f"{API}/dev/{program.appid}/sessions", json={"code": code}, headers=program.basic
    )
    openid: str = session.json()["openid"]
    return openid


async def _basket(
    client: httpx.AsyncClient, program: Program, openid: str, amount: str, **headers: str
) -> httpx.Response:
    return await client.post(
        f"{API}/dev/{program.appid}/baskets",
        json={"openid": openid, "amount": amount, "currency": "EUR"},
        headers=headers or program.basic,
    )


async def test_the_basket_shows_the_best_coupon_and_what_spending_more_unlocks(
    client: httpx.AsyncClient,
    app: FastAPI,
    program: Program,
    diner: Person,
    make_program: MakeProgram,
) -> None:
    await released(client, program)
    await _merchant(client, program)
    merchant = await app.state.pay.organisation_merchant(program.organisation_id)
    now = app.state.clock.now()
    campaign = await app.state.coupons.create_campaign(
        issuer=str(merchant[0]),
        title="3 off over 20",
        kind="threshold",
        currency="EUR",
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=30),
        total_stock=10,
        per_user_limit=1,
        tiers=[[2000, 300], [5000, 1000]],
    )
    me = await client.get("/api/v1/identity/me", headers=diner.headers)
    user_id = await app.state.identity.find_by_omo_id(me.json()["omo_id"])
    await app.state.coupons.claim(user_id.user_id, campaign_id=campaign.id)
    openid = await _openid(client, program, diner)

    small = await _basket(client, program, openid, "17.80")
    assert small.status_code == 200, small.text
    assert small.json()["best"] is None
    assert small.json()["nearest"]["spend_more"]["amount"] == "2.20"
    assert small.json()["nearest"]["discount"]["amount"] == "3.00"
    big = (await _basket(client, program, openid, "26.70")).json()
    assert big["best"] == {
        "title": "3 off over 20",
        "discount": {"amount": "3.00", "currency": "EUR", "minor": 300},
    }
    assert big["nearest"]["spend_more"]["amount"] == "23.30"

    wrong = base64.b64encode(f"{program.appid}:nope".encode()).decode()
    refused = await _basket(client, program, openid, "10.00", Authorization=f"Basic {wrong}")
    assert refused.status_code == 401
    # Another organisation's mini program cannot ask about this mini program's user.
    other = await make_program(diner, "Other shop")
    await released(client, other)
    await _merchant(client, other)
    stranger = await _basket(client, other, openid, "10.00")
    assert stranger.status_code == 404
    unknown = await _basket(client, program, "o" + "x" * 27, "10.00")
    assert unknown.status_code == 404
