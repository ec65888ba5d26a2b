"""Contacts and conversations over the REST API: friends, blocks, groups and their roles."""

from __future__ import annotations

import httpx
from tests.messaging.conftest import MakePerson, befriend, direct, send

API = "/api/v1/messaging"


async def test_a_friend_request_accepted_makes_both_friends(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    asked = await client.post(
        f"{API}/contacts/requests", json={"omo_id": "bo_demo1"}, headers=ana.auth
    )
    assert asked.json() == {"status": "outgoing"}
    incoming = (await client.get(f"{API}/contacts", headers=bo.auth)).json()["contacts"]
    assert [(c["person"]["omo_id"], c["status"]) for c in incoming] == [("ana_demo", "incoming")]
    await client.post(f"{API}/contacts/ana_demo/accept", headers=bo.auth)
    for person, other in ((ana, "bo_demo1"), (bo, "ana_demo")):
        contacts = (await client.get(f"{API}/contacts", headers=person.auth)).json()["contacts"]
        assert [(c["person"]["omo_id"], c["status"]) for c in contacts] == [(other, "friend")]


async def test_declining_removes_the_request(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    await client.post(f"{API}/contacts/requests", json={"omo_id": "bo_demo1"}, headers=ana.auth)
    declined = await client.post(f"{API}/contacts/ana_demo/decline", headers=bo.auth)
    assert declined.status_code == 200
    assert (await client.get(f"{API}/contacts", headers=bo.auth)).json()["contacts"] == []
    again = await client.post(f"{API}/contacts/ana_demo/accept", headers=bo.auth)
    assert again.json()["type"] == "/problems/friend-request-not-found"


async def test_only_friends_open_a_direct_chat(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, _bo = await make_person("ana_demo"), await make_person("bo_demo1")
    refused = await client.post(
        f"{API}/conversations/direct", json={"omo_id": "bo_demo1"}, headers=ana.auth
    )
    assert refused.status_code == 403
    assert refused.json()["type"] == "/problems/not-friends"


async def test_a_direct_chat_is_one_per_pair(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    first = await direct(client, ana, bo)
    second = await client.post(
        f"{API}/conversations/direct", json={"omo_id": "ana_demo"}, headers=bo.auth
    )
    assert second.json()["id"] == first


async def test_a_blocked_person_cannot_message(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_demo"), await make_person("bo_demo1")
    conversation = await direct(client, ana, bo)
    await client.post(f"{API}/blocks", json={"omo_id": "ana_demo"}, headers=bo.auth)
    refused = await send(client, ana, conversation, "hello?", "c1")
    assert refused.status_code == 403
    assert refused.json()["type"] == "/problems/blocked"
    # Bo can still write; unblocking lets Ana write again.
    assert (await send(client, bo, conversation, "hi", "c1")).status_code == 201
    await client.delete(f"{API}/blocks/ana_demo", headers=bo.auth)
    assert (await send(client, ana, conversation, "hello!", "c2")).status_code == 201


async def test_a_group_has_an_owner_admins_and_members(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    owner, ben, cai, dee = (
        await make_person("owner_1"),
        await make_person("ben_123"),
        await make_person("cai_123"),
        await make_person("dee_123"),
    )
    for friend in (ben, cai, dee):
        await befriend(client, owner, friend)
    created = await client.post(
        f"{API}/conversations/groups",
        json={"name": "Climbing", "members": ["ben_123", "cai_123"]},
        headers=owner.auth,
    )
    assert created.status_code == 201, created.text
    group = created.json()["id"]
    view = (await client.get(f"{API}/conversations/{group}", headers=ben.auth)).json()
    assert view["title"] == "Climbing"
    assert {m["person"]["omo_id"]: m["role"] for m in view["members"]} == {
        "owner_1": "owner",
        "ben_123": "member",
        "cai_123": "member",
    }
    # A member cannot rename or remove; the owner makes Ben an admin, who then can.
    rename = await client.patch(
        f"{API}/conversations/{group}", json={"name": "Bouldering"}, headers=ben.auth
    )
    assert rename.json()["type"] == "/problems/not-an-admin"
    await client.put(
        f"{API}/conversations/{group}/members/ben_123/role",
        json={"role": "admin"},
        headers=owner.auth,
    )
    renamed = await client.patch(
        f"{API}/conversations/{group}",
        json={"name": "Bouldering", "announcement": "Sunday 10:00"},
        headers=ben.auth,
    )
    assert (renamed.json()["name"], renamed.json()["announcement"]) == (
        "Bouldering",
        "Sunday 10:00",
    )
    removed = await client.delete(f"{API}/conversations/{group}/members/cai_123", headers=ben.auth)
    assert removed.status_code == 204
    refused = await send(client, cai, group, "still here?", "c1")
    assert refused.json()["type"] == "/problems/not-a-member"
    history = await client.get(f"{API}/conversations/{group}/messages?after=0", headers=cai.auth)
    assert history.json()["type"] == "/problems/not-a-member"
    # The owner invites Dee, who sees only what was said after joining.
    await send(client, owner, group, "before Dee", "c1")
    await client.post(
        f"{API}/conversations/{group}/members", json={"members": ["dee_123"]}, headers=owner.auth
    )
    await send(client, owner, group, "welcome Dee", "c2")
    seen = (
        await client.get(f"{API}/conversations/{group}/messages?after=0", headers=dee.auth)
    ).json()
    texts = [m["text"] for m in seen["messages"] if m["kind"] == "text"]
    assert texts == ["welcome Dee"]
    # The owner leaves: the admin inherits the group.
    await client.post(f"{API}/conversations/{group}/leave", headers=owner.auth)
    view = (await client.get(f"{API}/conversations/{group}", headers=ben.auth)).json()
    assert {m["person"]["omo_id"]: m["role"] for m in view["members"]} == {
        "ben_123": "owner",
        "dee_123": "member",
    }


async def test_only_admins_mention_everyone(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    owner, ben = await make_person("owner_1"), await make_person("ben_123")
    await befriend(client, owner, ben)
    group = (
        await client.post(
            f"{API}/conversations/groups",
            json={"name": "G", "members": ["ben_123"]},
            headers=owner.auth,
        )
    ).json()["id"]
    body = {"client_id": "m1", "text": "@all hello", "mention_all": True}
    refused = await client.post(
        f"{API}/conversations/{group}/messages", json=body, headers=ben.auth
    )
    assert refused.json()["type"] == "/problems/not-an-admin"
    allowed = await client.post(
        f"{API}/conversations/{group}/messages", json=body, headers=owner.auth
    )
    assert allowed.json()["message"]["mention_all"] is True
    mention = await client.post(
        f"{API}/conversations/{group}/messages",
        json={"client_id": "m2", "text": "@owner_1 hi", "mentions": ["owner_1"]},
        headers=ben.auth,
    )
    assert mention.json()["message"]["mentions"] == ["owner_1"]


async def test_the_chat_list_counts_unread_messages_and_mute(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_demo", "Ana"), await make_person("bo_demo1", "Bo")
    conversation = await direct(client, ana, bo)
    for n in range(3):
        await send(client, ana, conversation, f"hello {n}", f"c{n}")
    listed = (await client.get(f"{API}/conversations", headers=bo.auth)).json()
    assert [(c["title"], c["unread"], c["last_message"]["text"]) for c in listed] == [
        ("Ana", 3, "hello 2")
    ]
    assert (await client.get(f"{API}/conversations", headers=ana.auth)).json()[0]["unread"] == 0
    read = await client.post(
        f"{API}/conversations/{conversation}/read", json={"seq": 2}, headers=bo.auth
    )
    assert read.json() == {"read_seq": 2}
    await client.put(
        f"{API}/conversations/{conversation}/mute", json={"muted": True}, headers=bo.auth
    )
    listed = (await client.get(f"{API}/conversations", headers=bo.auth)).json()
    assert (listed[0]["unread"], listed[0]["muted"]) == (1, True)
