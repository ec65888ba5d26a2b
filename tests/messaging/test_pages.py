"""The chat pages render for their members, with the strings translated and no inline script."""

from __future__ import annotations

import httpx
from tests.messaging.conftest import MakePerson, direct, send


async def test_the_chat_list_shows_unread_counts_and_the_chat_page_its_conversation(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_demo", "Ana"), await make_person("bo_demo1", "Bo")
    conversation = await direct(client, ana, bo)
    await send(client, ana, conversation, "ciao", "c1")
    client.cookies.set("omo_session", bo.token)
    listed = await client.get("/chat")
    assert listed.status_code == 200
    assert "1 unread" in listed.text
    assert f'href="/chat/{conversation}"' in listed.text
    page = await client.get(f"/chat/{conversation}")
    assert page.status_code == 200
    assert 'role="log"' in page.text
    assert "<h1>Ana</h1>" in page.text
    assert "<script>" not in page.text
    italian = await client.get(f"/chat/{conversation}?lang=it")
    assert 'data-text-you="You"' not in italian.text
    client.cookies.clear()


async def test_the_chat_pages_need_a_login_and_membership(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo, eve = (
        await make_person("ana_demo"),
        await make_person("bo_demo1"),
        await make_person("eve_demo"),
    )
    conversation = await direct(client, ana, bo)
    assert (await client.get("/chat")).status_code == 303
    client.cookies.set("omo_session", eve.token)
    refused = await client.get(f"/chat/{conversation}")
    assert refused.status_code == 403
    client.cookies.clear()


async def test_a_personal_qr_code_leads_to_a_friend_request_page(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, _bo = await make_person("ana_demo", "Ana"), await make_person("bo_demo1", "Bo")
    client.cookies.set("omo_session", ana.token)
    listed = await client.get("/chat")
    assert "<svg" in listed.text
    assert "/chat/add/ana_demo" in listed.text
    page = await client.get("/chat/add/bo_demo1")
    assert page.status_code == 200
    assert "Add Bo as a friend" in page.text
    missing = await client.get("/chat/add/nobody_here")
    assert missing.status_code == 404
    client.cookies.clear()


async def test_the_chat_list_searches_ones_messages_in_japanese(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_demo", "Ana"), await make_person("bo_demo1", "Bo")
    conversation = await direct(client, ana, bo)
    await send(client, ana, conversation, "明日は東京で会おう", "c1")
    client.cookies.set("omo_session", bo.token)
    found = await client.get("/chat", params={"q": "東京"})
    assert found.status_code == 200
    assert "明日は東京で会おう" in found.text
    assert 'role="search"' in found.text
    nothing = await client.get("/chat", params={"q": "大阪"})
    results = nothing.text.split("data-search-results", 1)[1].split("</section>", 1)[0]
    assert "No messages found." in results
    assert "明日は東京で会おう" not in results
    client.cookies.clear()


async def test_a_group_page_offers_members_invitations_and_leaving_to_its_admin(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_demo", "Ana"), await make_person("bo_demo1", "Bo")
    await direct(client, ana, bo)  # friends first
    created = await client.post(
        "/api/v1/messaging/conversations/groups",
        json={"name": "Hikers", "members": ["bo_demo1"]},
        headers=ana.auth,
    )
    group = created.json()["id"]
    client.cookies.set("omo_session", ana.token)
    page = (await client.get(f"/chat/{group}")).text
    assert 'aria-label="Remove Bo from the group"' in page
    assert "data-invite" in page
    assert "data-leave" in page
    assert 'data-method="PATCH"' in page  # the owner may rename
    client.cookies.set("omo_session", bo.token)
    member_view = (await client.get(f"/chat/{group}")).text
    assert "Remove Bo" not in member_view
    assert 'data-method="PATCH"' not in member_view
    assert "data-leave" in member_view
    client.cookies.clear()
