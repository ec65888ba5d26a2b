"""The WeChat-compatible developer API (/cgi-bin) and the signed webhook, proven with the real
SDKs: wechatpy as the brand's API client, a WeRoBot app as the brand's webhook server."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
import uvicorn
import werobot
from fastapi import FastAPI
from tests.accounts.conftest import Brand, Person
from tests.support.live import free_port
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from omo.accounts.webhook import signature
from omo.core.clock import ManualClock

API = "/api/v1/accounts"


async def token_for(client: httpx.AsyncClient, brand: Brand) -> str:
    answer = await client.get(
        "/cgi-bin/token",
        params={
            "grant_type": "client_credential",
            "appid": brand.app_id,
            "secret": brand.app_secret,
        },
    )
    assert answer.status_code == 200
    assert answer.json()["expires_in"] == 7200
    token: str = answer.json()["access_token"]
    return token


async def test_errors_have_wechats_shape(
    client: httpx.AsyncClient, clock: ManualClock, brand: Brand, fan: Person
) -> None:
    wrong = await client.get(
        "/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": brand.app_id, "secret": "nope"},
    )
    assert wrong.status_code == 200
    assert wrong.json()["errcode"] == 40001
    assert set(wrong.json()) == {"errcode", "errmsg"}
    missing = await client.get("/cgi-bin/menu/get")
    assert missing.json()["errcode"] == 41001
    bogus = await client.get("/cgi-bin/menu/get", params={"access_token": "bogus"})
    assert bogus.json()["errcode"] == 40001

    token = await token_for(client, brand)
    leaf = {"type": "click", "name": "A", "key": "A"}
    too_big = await client.post(
        "/cgi-bin/menu/create", params={"access_token": token}, json={"button": [leaf] * 4}
    )
    assert too_big.json()["errcode"] == 40016
    assert (await client.get("/cgi-bin/menu/get", params={"access_token": token})).json()[
        "errcode"
    ] == 46003

    # nobody follows yet: nothing can be sent
    lonely = await client.post(
        "/cgi-bin/message/custom/send",
        params={"access_token": token},
        json={"touser": "o-nobody", "msgtype": "text", "text": {"content": "hi"}},
    )
    assert lonely.json()["errcode"] == 43004
    garbage = await client.post(
        "/cgi-bin/message/custom/send", params={"access_token": token}, content=b"<not json"
    )
    assert garbage.json()["errcode"] == 47001

    await client.put(f"{API}/{brand.account_id}/follow", json={}, headers=fan.headers)
    followers = await client.get("/cgi-bin/user/get", params={"access_token": token})
    openid = followers.json()["data"]["openid"][0]
    clock.advance(hours=49)
    expired = await client.get("/cgi-bin/menu/get", params={"access_token": token})
    assert expired.json()["errcode"] == 42001
    closed = await client.post(
        "/cgi-bin/message/custom/send",
        params={"access_token": await token_for(client, brand)},
        json={"touser": openid, "msgtype": "text", "text": {"content": "hi"}},
    )
    assert closed.json()["errcode"] == 45015


@pytest.fixture
async def served(app: FastAPI) -> Any:
    """The app on a loopback port, in this event loop, for SDKs that speak real HTTP."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


class OmoClient(WeChatClient):  # type: ignore[misc]
    """wechatpy's own client; only the base URL changes (its token URL is hard-wired)."""

    def fetch_access_token(self) -> Any:
        return self._fetch_access_token(
            url=self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


async def test_wechatpy_drives_the_account(
    client: httpx.AsyncClient, served: str, brand: Brand, fan: Person
) -> None:
    await client.put(
        f"{API}/{brand.account_id}/follow", json={"scene": "store-3"}, headers=fan.headers
    )
    sdk = OmoClient(brand.app_id, brand.app_secret)
    sdk.API_BASE_URL = served + "/cgi-bin/"

    def brand_server_work() -> dict[str, Any]:
        out: dict[str, Any] = {}
        sdk.menu.create(
            {
                "button": [
                    {"type": "click", "name": "Deals", "key": "DEALS"},
                    {
                        "name": "More",
                        "sub_button": [
                            {"type": "view", "name": "Site", "url": "https://roma.example"}
                        ],
                    },
                ]
            }
        )
        out["menu"] = sdk.menu.get()
        followers = sdk.user.get_followers()
        openid = followers["data"]["openid"][0]
        out["info"] = sdk.user.get(openid)
        tag = sdk.tag.create("VIP")
        sdk.tag.tag_user(tag["id"], [openid])
        out["tags"] = sdk.tag.get()
        out["qr"] = sdk.qrcode.create(
            {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "door"}}}
        )
        sdk.message.send_text(openid, "Your table is ready")
        out["mass"] = sdk.message.send_mass_text(None, "Happy hour at 6pm!", is_to_all=True)
        try:
            sdk.message.send_mass_text(None, "Again!", is_to_all=True)
        except WeChatClientException as refused:
            out["second_mass"] = refused.errcode
        sdk.menu.delete()
        return out

    out = await asyncio.to_thread(brand_server_work)
    assert out["menu"]["menu"]["button"][0]["key"] == "DEALS"
    info = out["info"]
    assert info["subscribe"] == 1
    assert info["nickname"] == "Camille"
    assert info["qr_scene_str"] == "store-3"
    assert fan.phone.lstrip("+") not in str(info)
    assert [(t["name"], t["count"]) for t in out["tags"]] == [("VIP", 1)]
    assert out["qr"]["url"].endswith("scene=door")
    assert out["second_mass"] == 45028
    thread = await client.get(f"{API}/{brand.account_id}/messages", headers=fan.headers)
    texts = [i["body"].get("text") for i in thread.json()]
    assert "Your table is ready" in texts
    assert "Happy hour at 6pm!" in texts
    profile = await client.get(f"{API}/{brand.account_id}")
    assert profile.json()["menu"] == []


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def robot_server() -> Iterator[tuple[str, werobot.WeRoBot, list[tuple[str, str]]]]:
    """The brand's webhook server: a WeRoBot app on loopback."""
    robot = werobot.WeRoBot(token="brandtoken42", SESSION_STORAGE=False)
    heard: list[tuple[str, str]] = []

    @robot.subscribe  # type: ignore[misc]
    def on_subscribe(message: Any) -> str:
        heard.append(("subscribe", message.key))
        return "Welcome, robot speaking"

    @robot.unsubscribe  # type: ignore[misc]
    def on_unsubscribe(message: Any) -> str:
        heard.append(("unsubscribe", ""))
        return ""

    @robot.click  # type: ignore[misc]
    def on_click(message: Any) -> str:
        heard.append(("click", message.key))
        return ""

    @robot.text  # type: ignore[misc]
    def on_text(message: Any) -> str:
        heard.append(("text", message.content))
        return "Robot says: " + message.content

    server = make_server(
        "127.0.0.1", free_port(), robot.wsgi, server_class=WSGIServer, handler_class=QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/wechat", robot, heard
    server.shutdown()
    server.server_close()


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_werobot_hears_events_and_its_replies_reach_the_follower(
    client: httpx.AsyncClient,
    brand: Brand,
    fan: Person,
    robot_server: tuple[str, werobot.WeRoBot, list[tuple[str, str]]],
) -> None:
    url, _robot, heard = robot_server
    bad = await client.put(
        brand.manage("/webhook"),
        json={"url": url, "token": "wrongtoken"},
        headers=brand.owner.headers,
    )
    assert bad.status_code == 400  # WeRoBot refuses the handshake signed with another token
    assert bad.json()["type"] == "/problems/accounts-webhook-check-failed"
    ok = await client.put(
        brand.manage("/webhook"),
        json={"url": url, "token": "brandtoken42"},
        headers=brand.owner.headers,
    )
    assert ok.status_code == 204, ok.text
    await client.put(
        brand.manage("/menu"),
        json={"button": [{"type": "click", "name": "Deals", "key": "DEALS"}]},
        headers=brand.owner.headers,
    )
    await client.post(
        f"{API}/{brand.account_id}/scans", json={"scene": "door"}, headers=fan.headers
    )
    await client.post(
        f"{API}/{brand.account_id}/menu-clicks", json={"key": "DEALS"}, headers=fan.headers
    )
    await client.post(
        f"{API}/{brand.account_id}/messages", json={"text": "ciao"}, headers=fan.headers
    )

    async def replies() -> list[str]:
        thread = await client.get(f"{API}/{brand.account_id}/messages", headers=fan.headers)
        return [i["body"].get("text") for i in thread.json() if i["direction"] == "out"]

    async def both_replied() -> bool:
        return len(await replies()) == 2

    await eventually(both_replied)
    assert await replies() == ["Welcome, robot speaking", "Robot says: ciao"]
    assert heard == [("subscribe", "qrscene_door"), ("click", "DEALS"), ("text", "ciao")]
    deliveries = await client.get(brand.manage("/webhook/deliveries"), headers=brand.owner.headers)
    assert {d["status"] for d in deliveries.json()} == {"delivered"}


async def test_a_brand_server_that_is_down_is_retried_then_shown_as_failed(
    client: httpx.AsyncClient, app: FastAPI, brand: Brand, fan: Person
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/wechat"
    await app.state.accounts.set_webhook(uuid.UUID(brand.account_id), dead, "tok")
    await client.put(f"{API}/{brand.account_id}/follow", json={}, headers=fan.headers)

    async def failed() -> bool:
        answer = await client.get(brand.manage("/webhook/deliveries"), headers=brand.owner.headers)
        return [d["status"] for d in answer.json()] == ["failed"]

    await eventually(failed)
    answer = await client.get(brand.manage("/webhook/deliveries"), headers=brand.owner.headers)
    assert answer.json()[0]["attempts"] == 3


def test_the_signature_is_sha1_of_the_sorted_token_timestamp_and_nonce() -> None:
    from werobot.utils import check_signature

    sig = signature("tok", "1700000000", "abc")
    assert check_signature("tok", "1700000000", "abc", sig)
    assert not check_signature("other", "1700000000", "abc", sig)
