"""The brand's bot holds a conversation per conversation, driven by the brand's own server:
a WeRoBot app as its webhook (a passive text reply = the bot has it; a
`transfer_customer_service` reply = to the people, optionally a named agent) and wechatpy's
`customservice` session calls (kfsession create / close / getsession / getwaitcase) — with
only the base URL changed. A person takes over with one action."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
import werobot
from fastapi import FastAPI
from tests.accounts.conftest import Brand, MakePerson, Person
from tests.accounts.test_developer_api import OmoClient, served  # noqa: F401 (fixture)
from tests.care.conftest import Desk, MakeDesk, add_member
from tests.support.live import free_port
from werobot.replies import TransferCustomerServiceReply

API = "/api/v1/accounts"


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def robot() -> Iterator[tuple[str, dict[str, str]]]:
    """The brand's webhook server: answers by itself, unless asked for a person."""
    bot = werobot.WeRoBot(token="caretoken42", SESSION_STORAGE=False)
    route: dict[str, str] = {"kf": ""}

    @bot.text  # type: ignore[misc]
    def on_text(message: Any) -> Any:
        if "human" in message.content:
            if route["kf"]:
                return TransferCustomerServiceReply(message=message, account=route["kf"])
            return TransferCustomerServiceReply(message=message)
        return "Bot: " + message.content

    server = make_server(
        "127.0.0.1", free_port(), bot.wsgi, server_class=WSGIServer, handler_class=QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/wechat", route
    server.shutdown()
    server.server_close()


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def conversation(client: httpx.AsyncClient, desk: Desk) -> dict[str, Any]:
    rows = (await client.get(desk.inbox, headers=desk.brand.owner.headers)).json()
    assert len(rows) == 1, rows
    row: dict[str, Any] = rows[0]
    return row


async def in_state(
    client: httpx.AsyncClient, desk: Desk, status: str, assignee: str | None
) -> None:
    async def there() -> bool:
        rows = (await client.get(desk.inbox, headers=desk.brand.owner.headers)).json()
        return len(rows) == 1 and (rows[0]["status"], rows[0]["assignee"]) == (status, assignee)

    await eventually(there)


def sdk_for(brand: Brand, served: str) -> OmoClient:  # noqa: F811
    sdk = OmoClient(brand.app_id, brand.app_secret)
    sdk.API_BASE_URL = served + "/cgi-bin/"
    real = sdk._request

    def request(method: str, url_or_endpoint: str, **kwargs: Any) -> Any:
        # WeChat's kf session URLs are absolute in wechatpy: the same base-URL change
        url = url_or_endpoint.replace("https://api.weixin.qq.com", served)
        return real(method, url, **kwargs)

    sdk._request = request
    return sdk


async def test_the_brands_server_holds_hands_over_and_takes_back_a_conversation(
    client: httpx.AsyncClient,
    app: FastAPI,
    served: str,  # noqa: F811
    desk: Desk,
    fan: Person,
    agent: Person,
    robot: tuple[str, dict[str, str]],
) -> None:
    url, route = robot
    hooked = await client.put(
        desk.brand.manage("/webhook"),
        json={"url": url, "token": "caretoken42"},
        headers=desk.brand.owner.headers,
    )
    assert hooked.status_code == 204, hooked.text
    account = f"{API}/{desk.brand.account_id}"
    await client.put(f"{account}/follow", json={}, headers=fan.headers)
    await client.post(f"{account}/messages", json={"text": "opening hours?"}, headers=fan.headers)
    # the bot answered by itself: the conversation is the bot's, pending, no one's place taken
    await in_state(client, desk, "pending", None)
    row = await conversation(client, desk)
    assert row["held_by_bot"] is True
    thread = await client.get(f"{account}/messages", headers=fan.headers)
    assert "Bot: opening hours?" in [i["body"].get("text") for i in thread.json()]
    # the customer asks for a person: the bot transfers, the conversation is assigned
    await client.post(f"{account}/messages", json={"text": "a human please"}, headers=fan.headers)
    await in_state(client, desk, "open", agent.omo_id)
    # the brand's server ends the agent's session through the kf API: the bot has it again
    sdk = sdk_for(desk.brand, served)
    openid = row["openid"]

    def close_then_look() -> tuple[dict[str, Any], dict[str, Any]]:
        sdk.customservice.close_session(openid, agent.omo_id + "@gh_caffe")
        return sdk.customservice.get_session(openid), sdk.customservice.get_wait_case()

    session, waiting = await asyncio.to_thread(close_then_look)
    assert session["kf_account"] == ""
    assert waiting["count"] == 1
    assert waiting["waitcaselist"][0]["openid"] == openid
    await in_state(client, desk, "pending", None)
    # one action: the agent takes over in the console; later bot answers leave it theirs
    taken = await client.post(desk.conversation(row["id"], "/take-over"), headers=agent.headers)
    assert (taken.json()["status"], taken.json()["assignee"]) == ("open", agent.omo_id)
    await client.post(f"{account}/messages", json={"text": "thanks"}, headers=fan.headers)

    async def bot_answered_thanks() -> bool:
        thread = await client.get(f"{account}/messages", headers=fan.headers)
        return "Bot: thanks" in [i["body"].get("text") for i in thread.json()]

    await eventually(bot_answered_thanks)
    await app.state.care.run_once()
    row = await conversation(client, desk)
    assert (row["status"], row["assignee"]) == ("open", agent.omo_id)
    # the brand's server opens a session for a named agent (kfsession/create)
    route["kf"] = agent.omo_id

    def sessions() -> tuple[Any, Any]:
        sdk.customservice.close_session(openid, agent.omo_id)
        sdk.customservice.create_session(openid, agent.omo_id + "@gh_caffe")
        return sdk.customservice.get_session(openid), sdk.customservice.get_session_list(
            agent.omo_id
        )

    session, listed = await asyncio.to_thread(sessions)
    assert session["kf_account"] == agent.omo_id
    assert [s["openid"] for s in listed] == [openid]
    row = await conversation(client, desk)
    assert (row["status"], row["assignee"], row["held_by_bot"]) == ("open", agent.omo_id, False)


async def test_kf_session_refusals(
    client: httpx.AsyncClient,
    app: FastAPI,
    served: str,  # noqa: F811
    make_desk: MakeDesk,
    brand: Brand,
    make_brand: Callable[..., Awaitable[Brand]],
    fan: Person,
    person: MakePerson,
) -> None:
    marco = await person("+393409999991", "Marco")
    desk = await make_desk(brand, [marco])
    account = f"{API}/{brand.account_id}"
    await client.put(f"{account}/follow", json={}, headers=fan.headers)
    await client.post(f"{account}/messages", json={"text": "hello"}, headers=fan.headers)
    await app.state.care.run_once()
    row = await conversation(client, desk)
    openid = row["openid"]
    # another brand's agent, a member of this brand in no team, someone unknown
    rival_owner = await person("+447911123456", "Olivia")
    rival = await make_brand(rival_owner, name="Rival")
    oscar = await person("+447911000000", "Oscar")
    await make_desk(rival, [oscar])
    idle = await person("+393400000042", "Idle")
    await add_member(client, brand, idle, "agent")
    base = f"{served}/customservice/kfsession"
    async with httpx.AsyncClient() as http:
        token = (
            await http.get(
                f"{served}/cgi-bin/token",
                params={
                    "grant_type": "client_credential",
                    "appid": brand.app_id,
                    "secret": brand.app_secret,
                },
            )
        ).json()["access_token"]
        rival_token = (
            await http.get(
                f"{served}/cgi-bin/token",
                params={
                    "grant_type": "client_credential",
                    "appid": rival.app_id,
                    "secret": rival.app_secret,
                },
            )
        ).json()["access_token"]

        async def call(path: str, body: dict[str, Any], with_token: str | None) -> int:
            params = {"access_token": with_token} if with_token is not None else {}
            answer = await http.post(f"{base}/{path}", params=params, json=body)
            assert answer.status_code == 200, answer.text
            errcode: int = answer.json()["errcode"]
            return errcode

        for kf in (oscar.omo_id, idle.omo_id, "nobody_at_all", ""):
            assert await call("create", {"kf_account": kf, "openid": openid}, token) == 65401
        marco_unknown = {"kf_account": marco.omo_id, "openid": "o-unknown"}
        assert await call("create", marco_unknown, token) == 65413
        assert await call("create", {"kf_account": marco.omo_id, "openid": ""}, token) == 40003
        # the rival's token reaches only the rival's followers (their openids differ)
        oscar_here = {"kf_account": oscar.omo_id, "openid": openid}
        assert await call("create", oscar_here, rival_token) == 65413
        assert await call("create", {"kf_account": marco.omo_id, "openid": openid}, None) == 41001
        assert await call("create", {"kf_account": marco.omo_id, "openid": openid}, "bad") == 40001
        # closing a session the agent does not have
        idle_close = {"kf_account": idle.omo_id, "openid": openid}
        assert await call("close", idle_close, token) == 65413
        waiting = await http.get(f"{base}/getwaitcase", params={"access_token": "bad"})
        assert waiting.json()["errcode"] == 40001
        listed = await http.get(
            f"{base}/getsessionlist", params={"access_token": token, "kf_account": oscar.omo_id}
        )
        assert listed.json()["errcode"] == 65401
    row = await conversation(client, desk)
    assert (row["status"], row["assignee"]) == ("open", marco.omo_id)  # nothing changed
