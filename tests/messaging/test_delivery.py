"""Delivery semantics: sequence, idempotent retries, sync by gap, recall, delete-for-me."""

from __future__ import annotations

import asyncio

import httpx
from tests.messaging.conftest import MakePerson, direct, send

from omo.core.clock import ManualClock

API = "/api/v1/messaging"


async def test_messages_get_increasing_sequences_and_a_retry_is_not_stored_twice(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    conversation = await direct(client, ana, bo)
    first = await send(client, ana, conversation, "one", "client-1")
    assert first.status_code == 201
    assert first.json()["message"]["seq"] == 1
    retry = await send(client, ana, conversation, "one", "client-1")
    assert retry.status_code == 200
    assert retry.json() == {**first.json(), "duplicate": True}
    second = await send(client, bo, conversation, "two", "client-1")  # same id, other sender
    assert second.json()["message"]["seq"] == 2
    page = (
        await client.get(f"{API}/conversations/{conversation}/messages", headers=bo.auth)
    ).json()
    assert [(m["seq"], m["sender"], m["text"]) for m in page["messages"]] == [
        (1, "ana_demo", "one"),
        (2, "bo_demo1", "two"),
    ]


async def test_concurrent_sends_and_retries_get_distinct_gapless_sequences(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    conversation = await direct(client, ana, bo)
    sends = [
        send(client, who, conversation, f"{who.omo_id} {n}", f"id-{n}")
        for n in range(30)
        for who in (ana, bo, ana)  # Ana retries every message once, concurrently
    ]
    responses = await asyncio.gather(*sends)
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    page = (
        await client.get(
            f"{API}/conversations/{conversation}/messages?after=0&limit=200", headers=bo.auth
        )
    ).json()
    assert [m["seq"] for m in page["messages"]] == list(range(1, 61))
    assert len({(m["sender"], m["client_id"]) for m in page["messages"]}) == 60


async def test_sync_returns_exactly_the_gap(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    conversation = await direct(client, ana, bo)
    for n in range(1, 8):
        await send(client, ana, conversation, f"m{n}", f"c{n}")
    page = (
        await client.get(
            f"{API}/conversations/{conversation}/messages?after=3&limit=2", headers=bo.auth
        )
    ).json()
    assert ([m["seq"] for m in page["messages"]], page["until"], page["more"]) == ([4, 5], 5, True)
    page = (
        await client.get(f"{API}/conversations/{conversation}/messages?after=5", headers=bo.auth)
    ).json()
    assert ([m["seq"] for m in page["messages"]], page["until"], page["more"]) == ([6, 7], 7, False)
    latest = (
        await client.get(
            f"{API}/conversations/{conversation}/messages?before=7&limit=3", headers=bo.auth
        )
    ).json()
    assert [m["seq"] for m in latest["messages"]] == [4, 5, 6]


async def test_recall_within_two_minutes_only_and_only_ones_own(
    client: httpx.AsyncClient, make_person: MakePerson, clock: ManualClock
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    conversation = await direct(client, ana, bo)
    await send(client, ana, conversation, "oops", "c1")
    await send(client, ana, conversation, "fine", "c2")
    not_mine = await client.post(
        f"{API}/conversations/{conversation}/messages/1/recall", headers=bo.auth
    )
    assert not_mine.json()["type"] == "/problems/forbidden"
    clock.advance(seconds=119)
    recalled = await client.post(
        f"{API}/conversations/{conversation}/messages/1/recall", headers=ana.auth
    )
    assert recalled.status_code == 200, recalled.text
    assert (recalled.json()["message"]["kind"], recalled.json()["message"]["target_seq"]) == (
        "recall",
        1,
    )
    again = await client.post(
        f"{API}/conversations/{conversation}/messages/1/recall", headers=ana.auth
    )
    assert again.json()["duplicate"] is True
    clock.advance(seconds=2)
    late = await client.post(
        f"{API}/conversations/{conversation}/messages/2/recall", headers=ana.auth
    )
    assert late.status_code == 409
    assert late.json()["type"] == "/problems/recall-too-late"
    page = (
        await client.get(f"{API}/conversations/{conversation}/messages", headers=bo.auth)
    ).json()
    assert [(m["seq"], m["kind"], m["text"], m["recalled"]) for m in page["messages"]] == [
        (1, "text", "", True),
        (2, "text", "fine", False),
        (3, "recall", "", False),
    ]


async def test_delete_for_me_hides_only_for_me_and_the_cursor_moves_past_it(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    conversation = await direct(client, ana, bo)
    await send(client, ana, conversation, "one", "c1")
    await send(client, ana, conversation, "two", "c2")
    hidden = await client.delete(f"{API}/conversations/{conversation}/messages/2", headers=bo.auth)
    assert hidden.status_code == 204
    mine = (
        await client.get(f"{API}/conversations/{conversation}/messages?after=1", headers=bo.auth)
    ).json()
    assert (mine["messages"], mine["until"]) == ([], 2)
    theirs = (
        await client.get(f"{API}/conversations/{conversation}/messages?after=1", headers=ana.auth)
    ).json()
    assert [m["text"] for m in theirs["messages"]] == ["two"]


async def test_refusals_are_problem_details(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo, eve = (
        await make_person("ana_demo"),
        await make_person("bo_demo1"),
        await make_person("eve_demo"),
    )
    conversation = await direct(client, ana, bo)
    outsider = await send(client, eve, conversation, "hi", "c1")
    assert (outsider.status_code, outsider.json()["type"]) == (403, "/problems/not-a-member")
    unknown = await send(client, ana, "0190a000-0000-7000-8000-000000000000", "hi", "c1")
    assert (unknown.status_code, unknown.json()["type"]) == (
        404,
        "/problems/conversation-not-found",
    )
    too_big = await send(client, ana, conversation, "é" * (8 * 1024 + 1), "c1")
    assert too_big.json()["type"] == "/problems/message-too-large"
    empty = await send(client, ana, conversation, "   ", "c1")
    assert empty.json()["type"] == "/problems/invalid-message"
    card = await client.post(
        f"{API}/conversations/{conversation}/messages",
        json={"client_id": "c2", "card": {"url": "javascript:alert(1)"}},
        headers=ana.auth,
    )
    assert card.json()["type"] == "/problems/invalid-message"
    good_card = await client.post(
        f"{API}/conversations/{conversation}/messages",
        json={"client_id": "c3", "card": {"url": "https://omo.example.org", "title": "OMO"}},
        headers=ana.auth,
    )
    assert good_card.json()["message"]["card"]["title"] == "OMO"
