"""Care woken by the outbox announcement (not a poll), atomic assignment between racing
nodes, and snooze: out of the inbox until a time or the customer's next message, with the
resolution clock paused meanwhile."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from tests.accounts.conftest import Brand, MakePerson, Person
from tests.care.conftest import CARE, Desk, MakeDesk, add_member, only_conversation, write

from omo.care.service import CareService
from omo.core.clock import ManualClock

ALWAYS_OPEN = {str(day): [0, 24 * 60] for day in range(7)}


async def loads(client: httpx.AsyncClient, desk: Desk) -> dict[str, int]:
    teams = await client.get(
        f"{CARE}/organisations/{desk.brand.organisation_id}/teams", headers=desk.brand.owner.headers
    )
    assert teams.status_code == 200, teams.text
    team = next(t for t in teams.json() if t["id"] == desk.team_id)
    return {a["omo_id"]: a["load"] for a in team["agents"]}


async def test_a_message_wakes_care_at_once_without_waiting_for_a_poll(
    client: httpx.AsyncClient, app: FastAPI, desk: Desk, fan: Person, agent: Person
) -> None:
    care: CareService = app.state.care
    await care.stop()
    care.start(interval=600, sweep=600)  # a poll would take ten minutes
    account = f"/api/v1/accounts/{desk.brand.account_id}"
    await client.put(f"{account}/follow", json={}, headers=fan.headers)
    await asyncio.sleep(0.2)  # the loop's first round and the wake-up subscription
    sent = await client.post(
        f"{account}/messages",
        json={"text": "Is anyone there?"},
        headers=fan.headers,
    )
    assert sent.status_code in (200, 201), sent.text
    for _ in range(100):
        rows = (await client.get(desk.inbox, headers=agent.headers)).json()
        if rows and rows[0]["assignee"] == agent.omo_id:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("care did not wake up within 10 s")


async def test_a_message_committed_while_care_is_busy_is_handled_without_a_poll(
    client: httpx.AsyncClient,
    app: FastAPI,
    desk: Desk,
    person: MakePerson,
    agent: Person,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Care drains again only after a full batch; a message committed after its read, while
    it is still busy, has announced itself, so it is handled at once, not at the next poll."""
    care: CareService = app.state.care
    await care.stop()
    handled_first, go_on = asyncio.Event(), asyncio.Event()
    run_once = care.run_once

    async def busy_after_the_first() -> int:
        read = await run_once()
        if read and not handled_first.is_set():
            handled_first.set()
            await go_on.wait()  # the second message is committed and announced meanwhile
        return read

    monkeypatch.setattr(care, "run_once", busy_after_the_first)
    care.start(interval=600, sweep=600)  # a poll would take ten minutes
    account = f"/api/v1/accounts/{desk.brand.account_id}"
    first, second = await person("+393405550001", "First"), await person("+393405550002", "Second")
    for who in (first, second):
        await client.put(f"{account}/follow", json={}, headers=who.headers)
    await asyncio.sleep(0.2)  # the loop's first round and the wake-up subscription
    sent = await client.post(f"{account}/messages", json={"text": "one"}, headers=first.headers)
    assert sent.status_code in (200, 201), sent.text
    await asyncio.wait_for(handled_first.wait(), 10)
    sent = await client.post(f"{account}/messages", json={"text": "two"}, headers=second.headers)
    assert sent.status_code in (200, 201), sent.text
    go_on.set()
    for _ in range(50):
        rows = (await client.get(desk.inbox, headers=agent.headers)).json()
        if len(rows) == 2:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the second message waited for the poll")


async def test_two_nodes_racing_never_push_an_agent_over_capacity(
    app: FastAPI, make_desk: MakeDesk, brand: Brand, agent: Person
) -> None:
    desk = await make_desk(brand, [agent], capacity=1)
    nodes = [
        app.state.care,
        CareService(
            app.state.db, app.state.clock, app.state.identity, app.state.accounts, app.state.broker
        ),
    ]

    async def take(node: CareService) -> uuid.UUID | None:
        async with node.db.transaction() as session:
            return await node._take(session, uuid.UUID(desk.team_id), "least_loaded")

    got = await asyncio.gather(*(take(nodes[n % 2]) for n in range(6)), return_exceptions=True)
    taken = [g for g in got if isinstance(g, uuid.UUID)]
    assert len(taken) == 1, got
    team = await app.state.care.team(
        (await app.state.identity.find_by_omo_id(brand.owner.omo_id)).user_id,
        uuid.UUID(desk.team_id),
    )
    assert [a.load for a in team.agents] == [1]


async def test_a_snoozed_conversation_leaves_the_inbox_and_comes_back_when_its_time_comes(
    client: httpx.AsyncClient,
    app: FastAPI,
    desk: Desk,
    fan: Person,
    agent: Person,
    clock: ManualClock,
) -> None:
    await write(client, app, desk.brand, fan, "Call me back tomorrow")
    row = await only_conversation(client, desk, agent)
    until = clock.now() + timedelta(hours=20)
    snoozed = await client.post(
        desk.conversation(row["id"], "/snooze"),
        json={"until": until.isoformat()},
        headers=agent.headers,
    )
    assert snoozed.status_code == 200, snoozed.text
    assert snoozed.json()["status"] == "snoozed"
    assert snoozed.json()["snoozed_until"].startswith(until.isoformat()[:16])
    assert (await client.get(desk.inbox, headers=agent.headers)).json() == []
    aside = (await client.get(desk.inbox + "?status=snoozed", headers=agent.headers)).json()
    assert [r["id"] for r in aside] == [row["id"]]
    assert await loads(client, desk) == {agent.omo_id: 0}  # the place is free meanwhile
    assert await app.state.care.wake_snoozed() == 0
    clock.advance(hours=20, minutes=1)
    assert await app.state.care.wake_snoozed() == 1
    assert await app.state.care.wake_snoozed() == 0  # once
    back = await only_conversation(client, desk, agent)
    assert (back["status"], back["assignee"], back["snoozed_until"]) == (
        "open",
        agent.omo_id,
        None,
    )
    assert await loads(client, desk) == {agent.omo_id: 1}


async def test_a_conversation_snoozed_until_the_customer_writes_wakes_on_their_message(
    client: httpx.AsyncClient, app: FastAPI, desk: Desk, fan: Person, agent: Person
) -> None:
    await write(client, app, desk.brand, fan, "I will send the receipt")
    row = await only_conversation(client, desk, agent)
    snoozed = await client.post(
        desk.conversation(row["id"], "/snooze"), json={"until": None}, headers=agent.headers
    )
    assert snoozed.status_code == 200, snoozed.text
    assert (snoozed.json()["status"], snoozed.json()["snoozed_until"]) == ("snoozed", None)
    await write(client, app, desk.brand, fan, "Here it is")
    back = await only_conversation(client, desk, agent)
    assert (back["id"], back["status"], back["preview"]) == (row["id"], "open", "Here it is")


async def test_the_resolution_clock_waits_while_snoozed(
    client: httpx.AsyncClient,
    app: FastAPI,
    desk: Desk,
    fan: Person,
    agent: Person,
    clock: ManualClock,
) -> None:
    settings = await client.put(
        f"{CARE}/accounts/{desk.brand.account_id}/settings",
        json={"resolution_minutes": 60, "time_zone": "UTC", "hours": ALWAYS_OPEN},
        headers=desk.brand.owner.headers,
    )
    assert settings.status_code == 200, settings.text
    await write(client, app, desk.brand, fan, "Refund please")
    row = await only_conversation(client, desk, agent)
    clock.advance(minutes=10)  # 50 minutes left
    await client.post(
        desk.conversation(row["id"], "/snooze"),
        json={"until": (clock.now() + timedelta(hours=3)).isoformat()},
        headers=agent.headers,
    )
    clock.advance(hours=3, minutes=1)
    assert await app.state.care.sweep_sla() == 0  # no resolution breach while snoozed
    assert await app.state.care.wake_snoozed() == 1
    back = await only_conversation(client, desk, agent)
    woke = clock.now()
    assert back["resolution_due"].startswith((woke + timedelta(minutes=50)).isoformat()[:16])
    assert not back["breached"]


async def test_snooze_refusals(
    client: httpx.AsyncClient,
    app: FastAPI,
    make_desk: MakeDesk,
    brand: Brand,
    fan: Person,
    person: MakePerson,
    clock: ManualClock,
) -> None:
    marco, anna = await person("+393409999991", "Marco"), await person("+393409999992", "Anna")
    desk = await make_desk(brand, [marco, anna])
    await write(client, app, brand, fan, "Hello")
    row = await only_conversation(client, desk, brand.owner)
    holder = marco if row["assignee"] == marco.omo_id else anna
    other = anna if holder is marco else marco
    path = desk.conversation(row["id"], "/snooze")
    later = (clock.now() + timedelta(hours=1)).isoformat()
    for body, status, problem in (
        ({"until": (clock.now() - timedelta(minutes=5)).isoformat()}, 400, "care-invalid"),
        ({"until": (clock.now() + timedelta(seconds=20)).isoformat()}, 400, "care-invalid"),
        ({"until": (clock.now() + timedelta(days=400)).isoformat()}, 400, "care-invalid"),
        ({"until": "2026-12-01T10:00:00"}, 422, "validation-error"),  # no UTC offset
        ({"until": "tomorrow"}, 422, "validation-error"),
        ({"until": later, "extra": 1}, 422, "validation-error"),
        ({"until": later, "minutes": 60}, 400, "care-invalid"),  # one or the other
        ({"minutes": 0}, 422, "validation-error"),
        ({"minutes": 600_000}, 422, "validation-error"),
    ):
        answer = await client.post(path, json=body, headers=holder.headers)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["type"].endswith(problem), answer.text
    for_an_hour = await client.post(path, json={"minutes": 60}, headers=holder.headers)
    assert for_an_hour.status_code == 200, for_an_hour.text
    assert for_an_hour.json()["snoozed_until"].startswith(later[:16])
    # another agent of the team may not snooze a conversation that is not theirs
    theirs = await client.post(path, json={"until": later}, headers=other.headers)
    assert theirs.status_code == 403, theirs.text
    # an agent of another brand, a stranger, no one signed in: not even its existence
    rival = await person("+447911123456", "Olivia")
    stranger = await person("+447911000001", "Sam")
    await add_member(client, brand, stranger, "agent")  # a member, but in no team
    for who in (rival, stranger):
        answer = await client.post(path, json={"until": later}, headers=who.headers)
        assert answer.status_code == 404, answer.text
    assert (await client.post(path, json={"until": later})).status_code == 401
    # a resolved conversation cannot be snoozed
    await client.post(desk.conversation(row["id"], "/resolve"), headers=holder.headers)
    done = await client.post(path, json={"until": later}, headers=holder.headers)
    assert done.status_code == 400, done.text
    row = (await client.get(desk.inbox + "?status=resolved", headers=holder.headers)).json()[0]
    assert row["status"] == "resolved"
