"""Customer care through its API: the inbox fills from followers' messages, assignment within
capacity and the queue, replies through the account (48 hours, consent), who sees what,
notes, labels, canned replies, CJK search, SLA, CSAT, bot hand-over and reports."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from tests.accounts.conftest import Brand, MakeBrand, MakePerson, Person
from tests.care.conftest import CARE, Desk, MakeDesk, add_member, only_conversation, write

from omo.care.sla import Calendar, add_business_minutes
from omo.core.clock import ManualClock
from omo.messaging.service import user_channel


async def thread_texts(client: httpx.AsyncClient, brand: Brand, who: Person) -> list[str]:
    answer = await client.get(f"/api/v1/accounts/{brand.account_id}/messages", headers=who.headers)
    return [item["body"].get("text", "") for item in answer.json()]


async def test_a_followers_message_opens_a_conversation_assigned_to_an_agent(
    client: httpx.AsyncClient, app: FastAPI, desk: Desk, fan: Person, agent: Person
) -> None:
    await write(client, app, desk.brand, fan, "My order has not arrived")
    row = await only_conversation(client, desk, agent)
    assert row["status"] == "open"
    assert row["assignee"] == agent.omo_id
    assert row["preview"] == "My order has not arrived"
    detail = await client.get(desk.conversation(row["id"]), headers=agent.headers)
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["customer"]["nickname"] == "Camille"
    assert body["customer"]["openid"] == row["openid"]
    assert [t["text"] for t in body["thread"]] == ["My order has not arrived"]
    # the team never sees who the person is: no phone number, anywhere
    assert fan.phone not in detail.text
    assert fan.phone.lstrip("+") not in detail.text


async def test_a_second_message_joins_the_open_conversation(
    client: httpx.AsyncClient, app: FastAPI, desk: Desk, fan: Person, agent: Person
) -> None:
    await write(client, app, desk.brand, fan, "Hello")
    await write(client, app, desk.brand, fan, "Anyone there?")
    row = await only_conversation(client, desk, agent)
    assert row["preview"] == "Anyone there?"


async def test_full_agents_leave_conversations_queued_then_served_oldest_first(
    client: httpx.AsyncClient,
    app: FastAPI,
    make_desk: MakeDesk,
    brand: Brand,
    person: MakePerson,
    clock: ManualClock,
) -> None:
    marco, anna = await person("+393409999991", "Marco"), await person("+393409999992", "Anna")
    desk = await make_desk(brand, [marco, anna], capacity=1)
    customers = [await person(f"+3361234560{i}", f"C{i}") for i in range(4)]
    for i, customer in enumerate(customers):
        await write(client, app, brand, customer, f"help {i}")
        clock.advance(minutes=1)
    rows = (await client.get(desk.inbox, headers=brand.owner.headers)).json()
    by_preview = {r["preview"]: r for r in rows}
    assigned = {by_preview["help 0"]["assignee"], by_preview["help 1"]["assignee"]}
    assert assigned == {marco.omo_id, anna.omo_id}  # one each: capacity 1
    assert by_preview["help 2"]["assignee"] is None
    assert by_preview["help 3"]["assignee"] is None
    # Marco resolves his: the oldest waiting conversation (help 2) is his at once
    mine = next(r for r in rows if r["assignee"] == marco.omo_id)
    done = await client.post(desk.conversation(mine["id"], "/resolve"), headers=marco.headers)
    assert done.status_code == 200, done.text
    rows = (await client.get(desk.inbox, headers=brand.owner.headers)).json()
    by_preview = {r["preview"]: r for r in rows}
    assert by_preview["help 2"]["assignee"] == marco.omo_id
    assert by_preview["help 3"]["assignee"] is None


async def test_round_robin_takes_turns(
    client: httpx.AsyncClient,
    app: FastAPI,
    make_desk: MakeDesk,
    brand: Brand,
    person: MakePerson,
    clock: ManualClock,
) -> None:
    marco, anna = await person("+393409999991", "Marco"), await person("+393409999992", "Anna")
    desk = await make_desk(brand, [marco, anna], capacity=10, strategy="round_robin")
    for i in range(4):
        await write(client, app, brand, await person(f"+3361234561{i}", f"C{i}"), f"q{i}")
        clock.advance(seconds=10)
    rows = (await client.get(desk.inbox, headers=brand.owner.headers)).json()
    order = [r["assignee"] for r in sorted(rows, key=lambda r: r["preview"])]
    assert order[0] != order[1]
    assert order[0] == order[2]
    assert order[1] == order[3]


async def test_agents_of_another_team_or_brand_are_refused(
    client: httpx.AsyncClient,
    app: FastAPI,
    desk: Desk,
    fan: Person,
    person: MakePerson,
    make_brand: MakeBrand,
    make_desk: MakeDesk,
) -> None:
    await write(client, app, desk.brand, fan, "Hello")
    row = await only_conversation(client, desk, desk.agents[0])
    # an agent of the same brand whose team serves another account
    other_account = await client.post(
        f"/api/v1/accounts/organisations/{desk.brand.organisation_id}/accounts",
        json={"kind": "service", "name": "Roma Shop"},
        headers=desk.brand.owner.headers,
    )
    sofia = await person("+393401111111", "Sofia")
    await add_member(client, desk.brand, sofia, "agent")
    team = await client.post(
        f"{CARE}/organisations/{desk.brand.organisation_id}/teams",
        json={"name": "Shop", "account_ids": [other_account.json()["id"]]},
        headers=desk.brand.owner.headers,
    )
    await client.put(
        f"{CARE}/teams/{team.json()['id']}/agents",
        json={"omo_id": sofia.omo_id, "capacity": 3},
        headers=desk.brand.owner.headers,
    )
    # an agent of another brand
    rival_owner = await person("+447911123456", "Olivia")
    rival = await make_brand(rival_owner, name="Rival")
    await make_desk(rival, [await person("+447911000000", "Oscar")])
    for who in (sofia, rival_owner):
        for method, path, body in (
            ("GET", "", None),
            ("POST", "/replies", {"text": "hi"}),
            ("POST", "/notes", {"text": "x"}),
            ("POST", "/resolve", None),
            ("PUT", "/labels", {"labels": ["x"]}),
        ):
            answer = await client.request(
                method, desk.conversation(row["id"], path), json=body, headers=who.headers
            )
            assert answer.status_code == 404, (who.omo_id, path, answer.text)
    assert (await client.get(desk.inbox, headers=sofia.headers)).json() == []
    assert (await client.get(desk.inbox, headers=rival_owner.headers)).status_code == 404
    assert await thread_texts(client, desk.brand, fan) == ["Hello"]  # nothing was sent


async def test_an_agents_reply_reaches_the_customer_through_the_account(
    client: httpx.AsyncClient, app: FastAPI, desk: Desk, fan: Person, agent: Person
) -> None:
    await write(client, app, desk.brand, fan, "Is the shop open on Sunday?")
    row = await only_conversation(client, desk, agent)
    channel = user_channel(await _user_id(app, fan))
    async with app.state.broker.subscribe(channel) as live:
        sent = await client.post(
            desk.conversation(row["id"], "/replies"),
            json={"text": "Yes, from 10 to 18."},
            headers=agent.headers,
        )
        assert sent.status_code == 201, sent.text
        frame = await live.get(timeout=2)
    assert frame is not None
    assert frame[1]["body"] == {"text": "Yes, from 10 to 18."}
    assert await thread_texts(client, desk.brand, fan) == [
        "Is the shop open on Sunday?",
        "Yes, from 10 to 18.",
    ]
    row = await only_conversation(client, desk, agent)
    assert row["first_response_at"] is not None


async def _user_id(app: FastAPI, who: Person) -> object:
    return (await app.state.identity.find_by_omo_id(who.omo_id)).user_id


async def test_a_reply_outside_48_hours_is_refused_and_nothing_is_sent(
    client: httpx.AsyncClient,
    app: FastAPI,
    desk: Desk,
    fan: Person,
    agent: Person,
    clock: ManualClock,
) -> None:
    await write(client, app, desk.brand, fan, "Hello")
    row = await only_conversation(client, desk, agent)
    clock.advance(hours=48, seconds=1)
    refused = await client.post(
        desk.conversation(row["id"], "/replies"), json={"text": "Sorry!"}, headers=agent.headers
    )
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/accounts-window-closed"
    assert await thread_texts(client, desk.brand, fan) == ["Hello"]


async def test_a_reply_to_someone_who_unfollowed_is_refused(
    client: httpx.AsyncClient, app: FastAPI, desk: Desk, fan: Person, agent: Person
) -> None:
    await write(client, app, desk.brand, fan, "Hello")
    row = await only_conversation(client, desk, agent)
    await client.delete(f"/api/v1/accounts/{desk.brand.account_id}/follow", headers=fan.headers)
    refused = await client.post(
        desk.conversation(row["id"], "/replies"), json={"text": "Hi"}, headers=agent.headers
    )
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/accounts-not-following"
    detail = (await client.get(desk.conversation(row["id"]), headers=agent.headers)).json()
    assert detail["customer"]["following"] is False


async def test_notes_with_mentions_stay_private_and_notify_the_mentioned(
    client: httpx.AsyncClient, app: FastAPI, desk: Desk, fan: Person, agent: Person
) -> None:
    await write(client, app, desk.brand, fan, "Refund please")
    row = await only_conversation(client, desk, agent)
    owner_id = await _user_id(app, desk.brand.owner)
    async with app.state.broker.subscribe(user_channel(owner_id)) as live:  # type: ignore[arg-type]
        note = await client.post(
            desk.conversation(row["id"], "/notes"),
            json={"text": f"@{desk.brand.owner.omo_id} can we refund? @nobody_here"},
            headers=agent.headers,
        )
        assert note.status_code == 201, note.text
        frame = await live.get(timeout=2)
    assert note.json()["mentions"] == [desk.brand.owner.omo_id]
    assert frame is not None
    assert frame[1]["event"] == "mention"
    assert frame[1]["by"] == agent.omo_id
    assert await thread_texts(client, desk.brand, fan) == ["Refund please"]


async def test_canned_replies_fill_in_their_variables(
    client: httpx.AsyncClient, app: FastAPI, desk: Desk, fan: Person, agent: Person
) -> None:
    saved = await client.put(
        f"{CARE}/organisations/{desk.brand.organisation_id}/canned",
        json={"shortcut": "hi", "text": "Hello {nickname}, {agent} of {account} here."},
        headers=desk.brand.owner.headers,
    )
    assert saved.status_code == 200, saved.text
    refused = await client.put(
        f"{CARE}/organisations/{desk.brand.organisation_id}/canned",
        json={"shortcut": "x", "text": "y"},
        headers=agent.headers,
    )
    assert refused.status_code == 403
    await write(client, app, desk.brand, fan, "Hi")
    row = await only_conversation(client, desk, agent)
    sent = await client.post(
        desk.conversation(row["id"], "/replies"), json={"text": "/hi"}, headers=agent.headers
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["text"] == "Hello Camille, Marco of Caffè Roma here."


async def test_labels_filter_the_inbox(
    client: httpx.AsyncClient, app: FastAPI, desk: Desk, fan: Person, agent: Person
) -> None:
    await write(client, app, desk.brand, fan, "Broken cup")
    row = await only_conversation(client, desk, agent)
    labelled = await client.put(
        desk.conversation(row["id"], "/labels"),
        json={"labels": ["refund", "vip", "refund"]},
        headers=agent.headers,
    )
    assert labelled.json()["labels"] == ["refund", "vip"]
    assert len((await client.get(desk.inbox + "?label=vip", headers=agent.headers)).json()) == 1
    assert (await client.get(desk.inbox + "?label=other", headers=agent.headers)).json() == []


async def test_search_finds_chinese_and_japanese_two_character_words(
    client: httpx.AsyncClient,
    app: FastAPI,
    desk: Desk,
    fan: Person,
    agent: Person,
    person: MakePerson,
) -> None:
    await write(client, app, desk.brand, fan, "我想退货，咖啡机坏了")
    other = await person("+81312345678", "Haruto")
    await write(client, app, desk.brand, other, "東京の店舗で買いました")

    async def found(q: str) -> list[str]:
        answer = await client.get(desk.inbox, params={"q": q}, headers=agent.headers)
        assert answer.status_code == 200, answer.text
        return [r["preview"] for r in answer.json()]

    assert await found("咖啡") == ["我想退货，咖啡机坏了"]
    assert await found("退货") == ["我想退货，咖啡机坏了"]
    assert await found("東京") == ["東京の店舗で買いました"]
    assert await found("店舗") == ["東京の店舗で買いました"]
    assert await found("退款") == []
    assert await found("京都") == []


async def test_resolving_asks_for_a_rating_and_the_answer_is_recorded(
    client: httpx.AsyncClient, app: FastAPI, desk: Desk, fan: Person, agent: Person
) -> None:
    await write(client, app, desk.brand, fan, "Where is my parcel?")
    row = await only_conversation(client, desk, agent)
    await client.post(
        desk.conversation(row["id"], "/replies"), json={"text": "On its way"}, headers=agent.headers
    )
    done = await client.post(desk.conversation(row["id"], "/resolve"), headers=agent.headers)
    assert done.json()["status"] == "resolved"
    texts = await thread_texts(client, desk.brand, fan)
    assert texts[-1].startswith("How did we do?")
    again = await client.post(desk.conversation(row["id"], "/resolve"), headers=agent.headers)
    assert again.status_code == 400
    await write(client, app, desk.brand, fan, "4 quick, thanks")
    rated = await only_conversation(client, desk, agent)
    assert (rated["csat_score"], rated["csat_comment"]) == (4, "quick, thanks")
    assert rated["status"] == "resolved"
    # the next message is a new conversation, with the past one in the side panel
    await write(client, app, desk.brand, fan, "Another question")
    rows = (await client.get(desk.inbox + "?status=open", headers=agent.headers)).json()
    assert [r["preview"] for r in rows] == ["Another question"]
    panel = (await client.get(desk.conversation(rows[0]["id"]), headers=agent.headers)).json()
    assert [p["id"] for p in panel["customer"]["past"]] == [row["id"]]


async def test_agents_transfer_only_their_own_conversations(
    client: httpx.AsyncClient,
    app: FastAPI,
    make_desk: MakeDesk,
    brand: Brand,
    person: MakePerson,
    fan: Person,
) -> None:
    marco, anna = await person("+393409999991", "Marco"), await person("+393409999992", "Anna")
    desk = await make_desk(brand, [marco, anna], capacity=5)
    await write(client, app, brand, fan, "Hello")
    row = await only_conversation(client, desk, marco)
    holder = marco if row["assignee"] == marco.omo_id else anna
    other = anna if holder is marco else marco
    refused = await client.put(
        desk.conversation(row["id"], "/assignee"),
        json={"omo_id": other.omo_id},
        headers=other.headers,
    )
    assert refused.status_code == 403
    stranger = await person("+393407777777", "Luca")
    not_agent = await client.put(
        desk.conversation(row["id"], "/assignee"),
        json={"omo_id": stranger.omo_id},
        headers=holder.headers,
    )
    assert not_agent.status_code == 409
    moved = await client.put(
        desk.conversation(row["id"], "/assignee"),
        json={"omo_id": other.omo_id},
        headers=holder.headers,
    )
    assert moved.json()["assignee"] == other.omo_id
    team = (
        await client.get(
            f"{CARE}/organisations/{brand.organisation_id}/teams", headers=brand.owner.headers
        )
    ).json()[0]
    loads = {a["omo_id"]: a["load"] for a in team["agents"]}
    assert loads == {holder.omo_id: 0, other.omo_id: 1}


async def test_the_bot_holds_a_conversation_until_a_person_takes_over(
    client: httpx.AsyncClient, app: FastAPI, desk: Desk, fan: Person, agent: Person
) -> None:
    settings = await client.put(
        f"{CARE}/accounts/{desk.brand.account_id}/settings",
        json={"bot_first": True},
        headers=desk.brand.owner.headers,
    )
    assert settings.status_code == 200, settings.text
    await write(client, app, desk.brand, fan, "menu")
    row = await only_conversation(client, desk, agent)
    assert (row["status"], row["held_by_bot"], row["assignee"]) == ("pending", True, None)
    taken = await client.post(desk.conversation(row["id"], "/take-over"), headers=agent.headers)
    assert taken.status_code == 200, taken.text
    assert (taken.json()["status"], taken.json()["assignee"]) == ("open", agent.omo_id)


async def test_settings_are_for_the_brands_managers_only(
    client: httpx.AsyncClient, desk: Desk, agent: Person
) -> None:
    path = f"{CARE}/accounts/{desk.brand.account_id}/settings"
    assert (await client.get(path, headers=agent.headers)).status_code == 403
    bad_zone = await client.put(
        path, json={"time_zone": "Mars/Olympus"}, headers=desk.brand.owner.headers
    )
    assert bad_zone.status_code == 400
    a_folder = await client.put(
        path, json={"time_zone": "Europe"}, headers=desk.brand.owner.headers
    )
    assert a_folder.status_code == 400


def test_business_minutes_skip_nights_weekends_and_holidays() -> None:
    calendar = Calendar("Europe/Rome")
    friday_evening = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)  # 17:30 in Rome
    assert add_business_minutes(friday_evening, 60, calendar) == datetime(
        2026, 11, 30, 8, 30, tzinfo=UTC
    )  # Monday 09:30 in Rome
    holiday = Calendar("Europe/Rome", holidays=frozenset({datetime(2026, 11, 30).date()}))
    assert add_business_minutes(friday_evening, 60, holiday) == datetime(
        2026, 12, 1, 8, 30, tzinfo=UTC
    )
    assert add_business_minutes(friday_evening, 10, Calendar(hours={})) is None


async def test_a_missed_first_response_target_is_a_breach_in_the_inbox(
    client: httpx.AsyncClient,
    app: FastAPI,
    desk: Desk,
    fan: Person,
    agent: Person,
    clock: ManualClock,
) -> None:
    await client.put(
        f"{CARE}/accounts/{desk.brand.account_id}/settings",
        json={"first_response_minutes": 30, "time_zone": "UTC"},
        headers=desk.brand.owner.headers,
    )
    await write(client, app, desk.brand, fan, "Hello?")  # Wednesday 09:00 UTC
    row = await only_conversation(client, desk, agent)
    assert row["first_response_due"].startswith("2026-11-25T09:30")
    assert await app.state.care.sweep_sla() == 0
    clock.advance(minutes=31)
    assert await app.state.care.sweep_sla() == 1
    assert await app.state.care.sweep_sla() == 0  # once
    late = (await client.get(desk.inbox + "?breached=true", headers=agent.headers)).json()
    assert [r["id"] for r in late] == [row["id"]]


async def test_reports_count_volume_times_csat_and_sla(
    client: httpx.AsyncClient,
    app: FastAPI,
    desk: Desk,
    fan: Person,
    agent: Person,
    clock: ManualClock,
) -> None:
    await client.put(
        f"{CARE}/accounts/{desk.brand.account_id}/settings",
        json={"first_response_minutes": 30, "time_zone": "UTC"},
        headers=desk.brand.owner.headers,
    )
    await write(client, app, desk.brand, fan, "Hi")
    row = await only_conversation(client, desk, agent)
    clock.advance(minutes=10)
    await client.post(
        desk.conversation(row["id"], "/replies"), json={"text": "Hello"}, headers=agent.headers
    )
    clock.advance(minutes=10)
    await client.post(desk.conversation(row["id"], "/resolve"), headers=agent.headers)
    await write(client, app, desk.brand, fan, "5")
    report = await client.get(
        f"{CARE}/organisations/{desk.brand.organisation_id}/report",
        headers=desk.brand.owner.headers,
    )
    assert report.status_code == 200, report.text
    total = report.json()["total"]
    assert total["conversations"] == 1
    assert total["resolved"] == 1
    assert total["first_response_seconds"] == 600.0
    assert total["resolution_seconds"] == 1200.0
    assert (total["csat"], total["csat_count"], total["sla_hit_rate"]) == (5.0, 1, 1.0)
    assert [r["key"] for r in report.json()["by_agent"]] == [agent.omo_id]
    refused = await client.get(
        f"{CARE}/organisations/{desk.brand.organisation_id}/report", headers=agent.headers
    )
    assert refused.status_code == 403


async def test_the_queue_serves_the_soonest_due_before_the_oldest(
    client: httpx.AsyncClient,
    app: FastAPI,
    brand: Brand,
    make_desk: MakeDesk,
    agent: Person,
    person: MakePerson,
    clock: ManualClock,
) -> None:
    desk = await make_desk(brand, [agent], capacity=1)
    shop = await client.post(
        f"/api/v1/accounts/organisations/{brand.organisation_id}/accounts",
        json={"kind": "service", "name": "Roma Shop"},
        headers=brand.owner.headers,
    )
    shop_brand = Brand(brand.owner, brand.organisation_id, shop.json()["id"], "", "")
    await client.put(
        f"{CARE}/teams/{desk.team_id}/accounts",
        json={"account_ids": [brand.account_id, shop_brand.account_id]},
        headers=brand.owner.headers,
    )
    await client.put(
        f"{CARE}/accounts/{shop_brand.account_id}/settings",
        json={"first_response_minutes": 30, "time_zone": "UTC"},
        headers=brand.owner.headers,
    )
    await write(client, app, brand, await person("+33612345601", "A"), "first, assigned")
    clock.advance(minutes=1)
    await write(client, app, brand, await person("+33612345602", "B"), "older, no target")
    clock.advance(minutes=1)
    await write(client, app, shop_brand, await person("+33612345603", "C"), "newer, due soon")
    rows = {r["preview"]: r for r in (await client.get(desk.inbox, headers=agent.headers)).json()}
    assert rows["older, no target"]["assignee"] is None
    assert rows["newer, due soon"]["assignee"] is None
    await client.post(
        desk.conversation(rows["first, assigned"]["id"], "/resolve"), headers=agent.headers
    )
    rows = {r["preview"]: r for r in (await client.get(desk.inbox, headers=agent.headers)).json()}
    assert rows["newer, due soon"]["assignee"] == agent.omo_id
    assert rows["older, no target"]["assignee"] is None
