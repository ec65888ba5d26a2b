"""The console's pages: the inbox and a conversation render for the team, in the caller's
language; others are sent to log in or told there is nothing here."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from tests.accounts.conftest import MakePerson, Person
from tests.care.conftest import Desk, only_conversation, write


async def _log_in_cookie(client: httpx.AsyncClient, who: Person) -> dict[str, str]:
    login = await client.post(
        "/api/v1/identity/login", json={"phone": who.phone, "password": "correct horse battery"}
    )
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    client.cookies.clear()
    return {"Cookie": f"omo_session={token}"}


async def test_the_inbox_and_the_conversation_show_the_customer_without_a_phone(
    client: httpx.AsyncClient, app: FastAPI, desk: Desk, fan: Person, agent: Person
) -> None:
    await write(client, app, desk.brand, fan, "Il mio ordine?")
    row = await only_conversation(client, desk, agent)
    cookie = await _log_in_cookie(client, agent)
    inbox = await client.get(f"/console/{desk.brand.organisation_id}", headers=cookie)
    assert inbox.status_code == 200, inbox.text
    assert f'data-conversation-row="{row["id"]}"' in inbox.text
    page = await client.get(f"/console/conversations/{row['id']}", headers=cookie)
    assert page.status_code == 200, page.text
    assert "Il mio ordine?" in page.text
    assert row["openid"] in page.text
    assert fan.phone not in page.text
    home = await client.get("/console", headers=cookie, follow_redirects=False)
    assert home.status_code == 303
    assert home.headers["location"] == f"/console/{desk.brand.organisation_id}"


async def test_the_console_speaks_the_chosen_language(
    client: httpx.AsyncClient, desk: Desk, agent: Person
) -> None:
    cookie = await _log_in_cookie(client, agent)
    page = await client.get(
        f"/console/{desk.brand.organisation_id}",
        headers={**cookie, "Accept-Language": "ja"},
    )
    assert page.status_code == 200
    assert '<html lang="ja">' in page.text
    assert "受信トレイ" in page.text  # "Inbox"


async def test_strangers_get_nothing_and_visitors_are_sent_to_log_in(
    client: httpx.AsyncClient,
    app: FastAPI,
    desk: Desk,
    fan: Person,
    agent: Person,
    person: MakePerson,
) -> None:
    await write(client, app, desk.brand, fan, "Hello")
    row = await only_conversation(client, desk, agent)
    stranger = await _log_in_cookie(client, await person("+447911123456", "Olivia"))
    for path in (f"/console/{desk.brand.organisation_id}", f"/console/conversations/{row['id']}"):
        assert (await client.get(path, headers=stranger)).status_code == 404
        visitor = await client.get(path, follow_redirects=False)
        assert visitor.status_code == 303
        assert visitor.headers["location"].startswith("/login")
