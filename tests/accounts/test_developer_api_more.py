"""The developer API's template messages, temporary media and per-app rate limits, proven with
wechatpy as the brand's client (and raw calls for the exact WeChat shapes)."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
from fastapi import FastAPI
from tests.accounts.conftest import Brand, Person
from tests.accounts.test_accounts import follow, openid_of, thread
from tests.accounts.test_developer_api import OmoClient, served, token_for
from wechatpy.exceptions import APILimitedException, WeChatClientException

from omo.core.clock import ManualClock
from omo.core.ratelimit import Limit

__all__ = ["served"]  # the fixture, shared with the other developer API tests

API = "/api/v1/accounts"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200


def sdk_for(brand: Brand, base: str) -> OmoClient:
    sdk = OmoClient(brand.app_id, brand.app_secret)
    sdk.API_BASE_URL = base + "/cgi-bin/"
    return sdk


async def test_wechatpy_sends_templates_only_to_followers_who_accepted_them(
    client: httpx.AsyncClient, clock: ManualClock, served: str, brand: Brand, fan: Person
) -> None:
    created = await client.post(
        brand.manage("/templates"),
        json={"title": "Table ready", "content": "{{first.DATA}} Table {{table.DATA}}"},
        headers=brand.owner.headers,
    )
    template_id = created.json()["template_id"]
    await follow(client, brand, fan)
    openid = await openid_of(client, brand)
    clock.advance(hours=49)
    sdk = sdk_for(brand, served)
    data = {"first": {"value": "Welcome back!", "color": "#173177"}, "table": {"value": "12"}}

    def before_acceptance() -> tuple[Any, int]:
        listed = sdk.template.get_all_private_template()
        try:
            sdk.message.send_template(openid, template_id, data)
        except WeChatClientException as refused:
            return listed, refused.errcode
        return listed, 0

    listed, errcode = await asyncio.to_thread(before_acceptance)
    assert [t["template_id"] for t in listed["template_list"]] == [template_id]
    assert errcode == 43101
    with_text = await asyncio.to_thread(
        lambda: _errcode(lambda: sdk.message.send_text(openid, "free-form"))
    )
    assert with_text == 45015  # the window is closed for free-form messages

    await client.put(
        f"{API}/{brand.account_id}/templates/{template_id}/subscription", headers=fan.headers
    )
    sent = await asyncio.to_thread(
        lambda: sdk.message.send_template(
            openid, template_id, data, mini_program={"appid": "wxmenu", "pagepath": "tables/12"}
        )
    )
    assert sent["errcode"] == 0
    assert sent["msgid"] > 0
    cards = [i["body"] for i in await thread(client, brand, fan) if i["direction"] == "out"]
    assert cards == [
        {
            "card": {
                "type": "template",
                "title": "Table ready",
                "description": "Welcome back! Table 12",
                "url": "/mp/wxmenu/tables/12",
            }
        }
    ]
    deleted = await asyncio.to_thread(lambda: sdk.template.del_private_template(template_id))
    assert deleted["errcode"] == 0
    assert (await client.get(brand.manage("/templates"), headers=brand.owner.headers)).json() == []


def _errcode(call: Any) -> int:
    try:
        call()
    except WeChatClientException as refused:
        return int(refused.errcode)
    return 0


async def test_wechatpy_uploads_media_checked_by_content_and_size(
    client: httpx.AsyncClient, clock: ManualClock, served: str, brand: Brand, fan: Person
) -> None:
    await follow(client, brand, fan)
    openid = await openid_of(client, brand)
    sdk = sdk_for(brand, served)

    def brand_server_work() -> dict[str, Any]:
        out: dict[str, Any] = {}
        image = sdk.media.upload("image", ("menu.png", io.BytesIO(PNG)))
        out["image"] = image
        out["download"] = sdk.media.download(image["media_id"]).content
        sdk.message.send_image(openid, image["media_id"])
        out["thumb_ok"] = sdk.media.upload("thumb", ("t.jpg", io.BytesIO(JPEG)))["type"]
        out["png_as_thumb"] = _errcode(
            lambda: sdk.media.upload("thumb", ("t.png", io.BytesIO(PNG)))
        )
        out["text_as_image"] = _errcode(
            lambda: sdk.media.upload("image", ("x.png", io.BytesIO(b"hello, not a picture")))
        )
        big = JPEG + b"\x00" * (64 * 1024)
        out["big_thumb"] = _errcode(lambda: sdk.media.upload("thumb", ("big.jpg", io.BytesIO(big))))
        out["bad_kind"] = _errcode(lambda: sdk.media.upload("file", ("a.png", io.BytesIO(PNG))))
        return out

    out = await asyncio.to_thread(brand_server_work)
    assert out["image"]["type"] == "image"
    assert out["download"] == PNG
    assert out["thumb_ok"] == "thumb"
    assert out["png_as_thumb"] == 40005
    assert out["text_as_image"] == 40005
    assert out["big_thumb"] == 40006
    assert out["bad_kind"] == 40004
    media_id = out["image"]["media_id"]
    cards = [i["body"]["card"] for i in await thread(client, brand, fan) if i["direction"] == "out"]
    assert cards[0]["type"] == "image"
    assert cards[0]["url"] == f"{API}/media/{media_id}"
    shown = await client.get(cards[0]["url"], headers=fan.headers)
    assert shown.status_code == 200
    assert shown.headers["content-type"] == "image/png"
    assert shown.content == PNG
    assert (await client.get(cards[0]["url"])).status_code == 401
    clock.advance(days=3, seconds=1)  # temporary media lives 3 days
    token = await token_for(client, brand)
    expired = await client.get(
        "/cgi-bin/media/get", params={"access_token": token, "media_id": media_id}
    )
    assert expired.json()["errcode"] == 40007
    assert (await client.get(cards[0]["url"], headers=fan.headers)).status_code == 404


async def test_the_token_endpoint_is_rate_limited_per_app(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    params = {"grant_type": "client_credential", "appid": brand.app_id, "secret": brand.app_secret}
    for _ in range(20):
        answer = await client.get("/cgi-bin/token", params=params)
        assert "access_token" in answer.json(), answer.text
    limited = await client.get("/cgi-bin/token", params=params)
    assert limited.status_code == 200
    assert limited.json()["errcode"] == 45009
    assert int(limited.headers["Retry-After"]) >= 1
    wrong = await client.get("/cgi-bin/token", params=params | {"secret": "guess"})
    assert wrong.json()["errcode"] == 45009  # guessing the secret counts against it too


async def test_sends_are_rate_limited_per_app_on_both_apis(
    client: httpx.AsyncClient, app: FastAPI, served: str, brand: Brand, fan: Person
) -> None:
    app.state.accounts.send_limit = Limit("accounts-send", 3, 60)
    await follow(client, brand, fan)
    openid = await openid_of(client, brand)
    for n in range(2):
        ok = await client.post(
            brand.manage("/messages"),
            json={"openid": openid, "text": f"hello {n}"},
            headers=brand.owner.headers,
        )
        assert ok.status_code == 201, ok.text
    sdk = sdk_for(brand, served)
    assert (await asyncio.to_thread(lambda: sdk.message.send_text(openid, "third")))["errcode"] == 0

    def fourth() -> str:
        try:
            sdk.message.send_text(openid, "fourth")
        except APILimitedException as limited:
            return str(limited.errcode)
        return "sent"

    assert await asyncio.to_thread(fourth) == "45009"
    native = await client.post(
        brand.manage("/messages"),
        json={"openid": openid, "text": "fifth"},
        headers=brand.owner.headers,
    )
    assert native.status_code == 429
    assert native.json()["type"] == "/problems/rate-limited"
    assert int(native.headers["Retry-After"]) >= 1
    texts = [
        i["body"].get("text") for i in await thread(client, brand, fan) if i["direction"] == "out"
    ]
    assert texts == ["hello 0", "hello 1", "third"]
