"""Searching one's messages, in Chinese and Japanese too, never beyond what one may read."""

from __future__ import annotations

import httpx
from tests.messaging.conftest import MakePerson, direct, send

API = "/api/v1/messaging"


async def _search(client: httpx.AsyncClient, auth: dict[str, str], q: str) -> list[str]:
    response = await client.get(f"{API}/search", params={"q": q}, headers=auth)
    assert response.status_code == 200, response.text
    return [m["text"] for m in response.json()["messages"]]


async def test_a_two_character_chinese_word_finds_the_message(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    conversation = await direct(client, ana, bo)
    await send(client, ana, conversation, "我们明天去喝咖啡吧", "c1")
    await send(client, ana, conversation, "明天见", "c2")
    assert await _search(client, bo.auth, "咖啡") == ["我们明天去喝咖啡吧"]
    assert await _search(client, bo.auth, "明天") == ["明天见", "我们明天去喝咖啡吧"]


async def test_a_two_character_japanese_word_finds_the_message(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    conversation = await direct(client, ana, bo)
    await send(client, ana, conversation, "週末は東京でラーメンを食べよう", "c1")
    await send(client, ana, conversation, "京都の写真", "c2")
    assert await _search(client, bo.auth, "東京") == ["週末は東京でラーメンを食べよう"]
    assert await _search(client, bo.auth, "京都") == ["京都の写真"]


async def test_every_word_must_be_present_and_words_match_as_prefixes(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    conversation = await direct(client, ana, bo)
    await send(client, ana, conversation, "Ci vediamo al caffè domani", "c1")
    await send(client, ana, conversation, "Domani piove", "c2")
    assert await _search(client, bo.auth, "caffe dom") == ["Ci vediamo al caffè domani"]


async def test_no_one_finds_messages_of_conversations_they_are_not_in(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo, cy = (
        await make_person("ana_demo"),
        await make_person("bo_demo1"),
        await make_person("cy_demo1"),
    )
    conversation = await direct(client, ana, bo)
    await send(client, ana, conversation, "秘密の暗号", "c1")
    assert await _search(client, cy.auth, "暗号") == []
    anonymous = await client.get(f"{API}/search", params={"q": "暗号"})
    assert anonymous.status_code == 401


async def test_recalled_and_hidden_messages_are_not_found(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    conversation = await direct(client, ana, bo)
    await send(client, ana, conversation, "first draft 草稿", "c1")
    await send(client, ana, conversation, "second 草稿", "c2")
    recalled = await client.post(
        f"{API}/conversations/{conversation}/messages/1/recall", headers=ana.auth
    )
    assert recalled.status_code == 200, recalled.text
    hidden = await client.delete(f"{API}/conversations/{conversation}/messages/2", headers=bo.auth)
    assert hidden.status_code == 204, hidden.text
    assert await _search(client, bo.auth, "草稿") == []
    assert await _search(client, ana.auth, "草稿") == ["second 草稿"]


async def test_an_empty_query_is_refused_with_a_problem(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana = await make_person("ana_demo")
    response = await client.get(f"{API}/search", params={"q": ""}, headers=ana.auth)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
