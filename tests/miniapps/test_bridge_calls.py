"""chooseCoupon and requestPayment with the chosen coupon, requestSubscribeMessage and the
developer's subscribed messages (refused beyond what the person allowed), coupons issued by
the developer (refused for another organisation's campaign, an unknown openid, no stock, the
per-person limit), the recently used list, search, and the operator's verification."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.miniapps.conftest import (
    API,
    MakePerson,
    MakeProgram,
    Person,
    Program,
    package,
    upload,
)

from omo.core.auth import SESSION_COOKIE

PIN = "246810"


def _cookie(person: Person) -> dict[str, str]:
    return {SESSION_COOKIE: person.headers["Authorization"].split(" ", 1)[1]}


PERMISSIONS = [
    {"name": "payment", "reason": "To pay for your order"},
    {"name": "coupons", "reason": "To use your coupons"},
    {"name": "subscribe_message", "reason": "To tell you when your order is ready"},
    {"name": "share", "reason": "To share the menu"},
]


def _ok(response: httpx.Response, *statuses: int) -> Any:
    assert response.status_code in statuses, response.text
    return response.json() if response.content else None


async def _release(client: httpx.AsyncClient, program: Program, **overrides: Any) -> None:
    data = package(program.appid, 1, **overrides)
    version = _ok(await upload(client, program, data), 201)
    for step in ("trial", "release"):
        _ok(
            await client.post(
                program.path(f"/versions/{version['id']}/{step}"), headers=program.owner.headers
            ),
            200,
        )


async def _merchant(client: httpx.AsyncClient, program: Program) -> str:
    made = _ok(
        await client.post(
            "/api/v1/pay/merchants",
            json={"organisation_id": program.organisation_id, "name": "Trattoria"},
            headers=program.owner.headers,
        ),
        201,
    )
    return str(made["merchant_id"] if "merchant_id" in made else made["id"])


async def _campaign(client: httpx.AsyncClient, owner: Person, merchant: str, **extra: Any) -> str:
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    body = {
        "issuer": merchant,
        "title": "2 euro off",
        "kind": "cash_off",
        "currency": "EUR",
        "value": "2.00",
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=30)).isoformat(),
        "total_stock": 10,
        "per_user_limit": 1,
        **extra,
    }
    made = _ok(
        await client.post("/api/v1/coupons/campaigns", json=body, headers=owner.headers), 201
    )
    return str(made["id"])


async def _openid(client: httpx.AsyncClient, program: Program, person: Person) -> str:
    code = _ok(
        await client.post(f"{API}/launch/{program.appid}/login", headers=person.headers), 200
    )
    session = _ok(
        await client.post(
            f"{API}/dev/{program.appid}/sessions",
            json={"code": code["code"]},
            headers=program.basic,
        ),
        200,
    )
    return str(session["openid"])


async def _accept(client: httpx.AsyncClient, program: Program, person: Person) -> None:
    _ok(await client.post(f"{API}/launch/{program.appid}/privacy", headers=person.headers), 200)


async def _grant(client: httpx.AsyncClient, program: Program, person: Person, name: str) -> None:
    _ok(
        await client.put(
            f"{API}/launch/{program.appid}/grants/{name}",
            json={"granted": True},
            headers=person.headers,
        ),
        200,
    )


async def _template(client: httpx.AsyncClient, program: Program) -> str:
    account = _ok(
        await client.post(
            f"/api/v1/accounts/organisations/{program.organisation_id}/accounts",
            json={"kind": "service", "name": "Trattoria"},
            headers=program.owner.headers,
        ),
        201,
    )
    template = _ok(
        await client.post(
            f"/api/v1/accounts/manage/{account['id']}/templates",
            json={"title": "Order ready", "content": "Table {{table.DATA}}: your order is ready"},
            headers=program.owner.headers,
        ),
        201,
    )
    return str(template["template_id"])


@pytest.fixture
async def shop(client: httpx.AsyncClient, program: Program) -> Program:
    await _release(client, program, req_permissions=PERMISSIONS)
    return program


# -- chooseCoupon and requestPayment with it -------------------------------------------------


async def test_choose_coupon_lists_the_persons_usable_coupons_and_pays_with_the_chosen_one(
    client: httpx.AsyncClient, shop: Program, diner: Person
) -> None:
    merchant = await _merchant(client, shop)
    small = await _campaign(client, shop.owner, merchant)
    big = await _campaign(client, shop.owner, merchant, title="5 euro off", value="5.00")
    for campaign in (small, big):
        _ok(
            await client.post(
                "/api/v1/coupons/claims", json={"campaign_id": campaign}, headers=diner.headers
            ),
            201,
        )
    await _accept(client, shop, diner)
    coupons = f"{API}/launch/{shop.appid}/coupons"
    # asked before the person allowed `coupons`: refused, nothing listed
    refused = await client.get(coupons, headers=diner.headers)
    assert refused.status_code == 403
    assert refused.json()["type"] == "/problems/miniapps-permission-denied"
    await _grant(client, shop, diner, "coupons")
    listed = _ok(await client.get(coupons, headers=diner.headers), 200)
    assert {c["title"] for c in listed} == {"2 euro off", "5 euro off"}
    # with an order: what each takes off, best first
    await client.post(
        "/api/v1/pay/wallet/top-ups",
        json={
            "request_id": uuid.uuid4().hex,
            "bank_account": "DE89370400440532013000",
            "amount": "50.00",
            "currency": "EUR",
        },
        headers=diner.headers,
    )
    await client.put("/api/v1/pay/wallet/pin", json={"pin": PIN}, headers=diner.headers)
    order = _ok(
        await client.post(
            f"{API}/dev/{shop.appid}/orders",
            json={"order_id": "T1", "amount": "20.00", "currency": "EUR", "description": "Pizza"},
            headers=shop.basic,
        ),
        201,
    )
    priced = _ok(
        await client.get(coupons, params={"prepay_id": order["prepay_id"]}, headers=diner.headers),
        200,
    )
    assert [c["discount"]["minor"] for c in priced] == [500, 200]
    # the person chooses the smaller one: it is the one used, not the best
    chosen = next(c for c in priced if c["title"] == "2 euro off")
    paid = _ok(
        await client.post(
            f"{API}/launch/{shop.appid}/payments/{order['prepay_id']}",
            json={"pin": PIN, "coupon_id": chosen["coupon_id"]},
            headers=diner.headers,
        ),
        200,
    )
    assert paid["discount"]["minor"] == 200
    assert paid["paid"]["minor"] == 1800
    left = _ok(await client.get(coupons, headers=diner.headers), 200)
    assert [c["title"] for c in left] == ["5 euro off"]


async def test_choose_coupon_is_refused_when_the_manifest_does_not_ask_for_it(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await _release(client, program)  # asks for payment only
    await _accept(client, program, diner)
    refused = await client.get(f"{API}/launch/{program.appid}/coupons", headers=diner.headers)
    assert refused.status_code == 403
    assert refused.json()["type"] == "/problems/miniapps-permission-not-declared"


# -- requestSubscribeMessage and the developer's subscribed messages -------------------------


async def test_subscribed_messages_are_sent_exactly_as_many_times_as_allowed(
    client: httpx.AsyncClient, app: FastAPI, shop: Program, diner: Person
) -> None:
    template = await _template(client, shop)
    await _accept(client, shop, diner)
    openid = await _openid(client, shop, diner)
    prompt = _ok(
        await client.get(
            f"{API}/launch/{shop.appid}/subscriptions",
            params={"template_id": template},
            headers=diner.headers,
        ),
        200,
    )
    assert prompt == [{"template_id": template, "title": "Order ready", "remaining": 0}]
    allowed = _ok(
        await client.put(
            f"{API}/launch/{shop.appid}/subscriptions",
            json={"templates": {template: 2}},
            headers=diner.headers,
        ),
        200,
    )
    assert allowed[0]["remaining"] == 2
    send = f"{API}/dev/{shop.appid}/messages"
    body = {
        "touser": openid,
        "template_id": template,
        "page": "pages/order",
        "data": {"table": {"value": "12"}},
    }
    assert _ok(await client.post(send, json=body, headers=shop.basic), 200) == {"remaining": 1}
    assert _ok(await client.post(send, json=body, headers=shop.basic), 200) == {"remaining": 0}
    third = await client.post(send, json=body, headers=shop.basic)
    assert third.status_code == 403
    assert third.headers["content-type"].startswith("application/problem+json")
    assert third.json()["type"] == "/problems/miniapps-not-subscribed"
    # delivered: two cards in the person's thread with the organisation's account, opening
    # the mini program's page
    mine = await client.get("/api/v1/miniapps/me/subscriptions", headers=diner.headers)
    assert mine.json() == []
    accounts = _ok(
        await client.get(
            f"/api/v1/accounts/organisations/{shop.organisation_id}/accounts",
            headers=shop.owner.headers,
        ),
        200,
    )
    thread = await app.state.accounts.conversation(
        await app.state.identity.resolve_openid(f"miniapp:{shop.appid}", openid),
        uuid.UUID(accounts[0]["id"]),
    )
    cards = [item.body["card"] for item in thread]
    assert len(cards) == 2
    assert cards[0]["description"] == "Table 12: your order is ready"
    assert cards[0]["url"].endswith(f"/mp/{shop.appid}/pages/order")


async def test_subscribed_message_refusals(
    client: httpx.AsyncClient,
    shop: Program,
    diner: Person,
    make_program: MakeProgram,
    person: MakePerson,
) -> None:
    template = await _template(client, shop)
    await _accept(client, shop, diner)
    openid = await _openid(client, shop, diner)
    send = f"{API}/dev/{shop.appid}/messages"
    body = {"touser": openid, "template_id": template}
    # never allowed
    never = await client.post(send, json=body, headers=shop.basic)
    assert never.status_code == 403
    assert never.json()["type"] == "/problems/miniapps-not-subscribed"
    # an openid of no one here
    stranger = await client.post(send, json={**body, "touser": "o" + "x" * 27}, headers=shop.basic)
    assert stranger.status_code == 404
    assert stranger.json()["type"] == "/problems/miniapps-unknown-openid"
    # another organisation's template, asked by the frame or sent by the server
    rival = await make_program(await person("+393409999999", "Rival"), "Rival")
    await _release(client, rival, req_permissions=PERMISSIONS)
    theirs = await _template(client, rival)
    asked = await client.put(
        f"{API}/launch/{shop.appid}/subscriptions",
        json={"templates": {theirs: 1}},
        headers=diner.headers,
    )
    assert asked.status_code == 404
    assert asked.json()["type"] == "/problems/miniapps-unknown-template"
    sent = await client.post(send, json={**body, "template_id": theirs}, headers=shop.basic)
    assert sent.status_code == 404
    # a wrong secret
    wrong = await client.post(send, json=body, headers={"Authorization": "Basic " + "bXA6bm8="})
    assert wrong.status_code in (401, 404)
    # more than allowed at once
    greedy = await client.put(
        f"{API}/launch/{shop.appid}/subscriptions",
        json={"templates": {template: 500}},
        headers=diner.headers,
    )
    assert greedy.status_code == 422


async def test_a_withdrawn_subscription_stops_the_messages(
    client: httpx.AsyncClient, shop: Program, diner: Person
) -> None:
    template = await _template(client, shop)
    await _accept(client, shop, diner)
    openid = await _openid(client, shop, diner)
    await client.put(
        f"{API}/launch/{shop.appid}/subscriptions",
        json={"templates": {template: 3}},
        headers=diner.headers,
    )
    listed = _ok(await client.get(f"{API}/me/subscriptions", headers=diner.headers), 200)
    assert listed[0]["remaining"] == 3
    assert listed[0]["title"] == "Order ready"
    gone = await client.delete(
        f"{API}/me/subscriptions/{shop.appid}/{template}", headers=diner.headers
    )
    assert gone.status_code == 204
    refused = await client.post(
        f"{API}/dev/{shop.appid}/messages",
        json={"touser": openid, "template_id": template},
        headers=shop.basic,
    )
    assert refused.status_code == 403


async def test_subscribing_needs_the_permission_in_the_manifest(
    client: httpx.AsyncClient, program: Program, diner: Person
) -> None:
    await _release(client, program)
    template = await _template(client, program)
    await _accept(client, program, diner)
    refused = await client.put(
        f"{API}/launch/{program.appid}/subscriptions",
        json={"templates": {template: 1}},
        headers=diner.headers,
    )
    assert refused.status_code == 403
    assert refused.json()["type"] == "/problems/miniapps-permission-not-declared"


# -- coupons issued by the mini program's server ---------------------------------------------


async def test_the_developer_issues_its_organisations_coupons_within_the_limits(
    client: httpx.AsyncClient,
    shop: Program,
    diner: Person,
    make_program: MakeProgram,
    person: MakePerson,
) -> None:
    merchant = await _merchant(client, shop)
    campaign = await _campaign(client, shop.owner, merchant, total_stock=1)
    await _accept(client, shop, diner)
    openid = await _openid(client, shop, diner)
    issue = f"{API}/dev/{shop.appid}/coupons"
    issued = _ok(
        await client.post(
            issue, json={"openid": openid, "campaign_id": campaign}, headers=shop.basic
        ),
        201,
    )
    assert issued["title"] == "2 euro off"
    wallet = _ok(await client.get("/api/v1/coupons/wallet", headers=diner.headers), 200)
    assert issued["coupon_id"] in str(wallet)
    # the per-person limit (1)
    again = await client.post(
        issue, json={"openid": openid, "campaign_id": campaign}, headers=shop.basic
    )
    assert again.status_code == 409
    # no stock left for someone else
    other = await person("+33699999999", "Other")
    await _accept(client, shop, other)
    other_openid = await _openid(client, shop, other)
    empty = await client.post(
        issue, json={"openid": other_openid, "campaign_id": campaign}, headers=shop.basic
    )
    assert empty.status_code == 409
    assert empty.json()["type"] == "/problems/coupon-out-of-stock"
    # an openid of no one here (a valid openid of another mini program included)
    unknown = await client.post(
        issue, json={"openid": "nobody", "campaign_id": campaign}, headers=shop.basic
    )
    assert unknown.status_code == 404
    assert unknown.json()["type"] == "/problems/miniapps-unknown-openid"
    # another organisation's campaign
    rival = await make_program(await person("+393409999998", "Rival"), "Rival")
    rival_merchant = await _merchant(client, rival)
    theirs = await _campaign(client, rival.owner, rival_merchant, total_stock=5)
    refused = await client.post(
        issue, json={"openid": openid, "campaign_id": theirs}, headers=shop.basic
    )
    assert refused.status_code == 403
    assert refused.json()["type"] == "/problems/miniapps-campaign-not-yours"
    missing = await client.post(
        issue, json={"openid": openid, "campaign_id": str(uuid.uuid4())}, headers=shop.basic
    )
    assert missing.status_code == 403


# -- recents, search, verification ------------------------------------------------------------


async def test_recently_used_search_and_the_verified_badge(
    client: httpx.AsyncClient, app: FastAPI, shop: Program, diner: Person
) -> None:
    assert _ok(await client.get(f"{API}/me/recent", headers=diner.headers), 200) == []
    client.cookies.update(_cookie(diner))
    page = await client.get(f"/mp/{shop.appid}/pages/menu")
    client.cookies.clear()
    assert page.status_code == 200
    recent = _ok(await client.get(f"{API}/me/recent", headers=diner.headers), 200)
    assert [r["appid"] for r in recent] == [shop.appid]
    assert recent[0]["url"] == f"/mp/{shop.appid}/pages/menu"
    found = _ok(
        await client.get(f"{API}/search", params={"q": "tratt"}, headers=diner.headers), 200
    )
    assert [f["appid"] for f in found] == [shop.appid]
    assert (
        _ok(await client.get(f"{API}/search", params={"q": "zz"}, headers=diner.headers), 200) == []
    )
    # only the platform's operator verifies (the owner of the mini program cannot)
    refused = await client.put(
        shop.path("/verification"), json={"verified": True}, headers=shop.owner.headers
    )
    assert refused.status_code in (403, 404)
    launch = _ok(await client.get(f"{API}/launch/{shop.appid}", headers=diner.headers), 200)
    assert launch["verified"] is False
    app.state.accounts.operators = {diner.omo_id.lower()}
    done = _ok(
        await client.put(
            shop.path("/verification"), json={"verified": True}, headers=diner.headers
        ),
        200,
    )
    assert done["verified"] is True
    launch = _ok(await client.get(f"{API}/launch/{shop.appid}", headers=diner.headers), 200)
    assert launch["verified"] is True
    client.cookies.update(_cookie(diner))
    host = await client.get(f"/mp/{shop.appid}/pages/menu")
    client.cookies.clear()
    assert "data-verified" in host.text


async def test_an_official_account_menu_button_opens_the_mini_program(
    client: httpx.AsyncClient, shop: Program, diner: Person
) -> None:
    account = _ok(
        await client.post(
            f"/api/v1/accounts/organisations/{shop.organisation_id}/accounts",
            json={"kind": "service", "name": "Trattoria"},
            headers=shop.owner.headers,
        ),
        201,
    )
    button = {
        "type": "miniprogram",
        "name": "Order at the table",
        "url": "https://trattoria.example/menu",
        "appid": shop.appid,
        "pagepath": "pages/order",
    }
    _ok(
        await client.put(
            f"/api/v1/accounts/manage/{account['id']}/menu",
            json={"button": [button]},
            headers=shop.owner.headers,
        ),
        200,
    )
    follow = await client.put(
        f"/api/v1/accounts/{account['id']}/follow", json={}, headers=diner.headers
    )
    assert follow.status_code == 204
    client.cookies.update(_cookie(diner))
    profile = await client.get(f"/accounts/{account['id']}")
    client.cookies.clear()
    assert f'href="/mp/{shop.appid}/pages/order" data-miniapp-button' in profile.text
