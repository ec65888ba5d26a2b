"""Likes, comments, replies, deletes, shares, notifications (list and realtime) and events."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from tests.social.conftest import API, Connect, MakePerson, befriend, people, publish

from omo.core.events import OutboxEvent


async def _post(client: httpx.AsyncClient, who: Any, post: dict[str, Any]) -> dict[str, Any]:
    response = await client.get(f"{API}/posts/{post['id']}", headers=who.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_viewer_sees_only_likes_and_comments_of_their_own_friends(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo, cai = await people(make_person, "i1", "ana", "bo", "cai")
    # Bo and Cai are both Ana's friends, but not each other's.
    await befriend(client, ana, bo)
    await befriend(client, ana, cai)
    post = await publish(client, ana, "sunset")
    assert (await client.put(f"{API}/posts/{post['id']}/like", headers=cai.auth)).status_code == 204
    said = await client.post(
        f"{API}/posts/{post['id']}/comments", json={"text": "wow"}, headers=cai.auth
    )
    assert said.status_code == 201, said.text
    as_bo = await _post(client, bo, post)
    assert as_bo["likes"] == []
    assert as_bo["comments"] == []
    assert "count" not in str(as_bo.keys()), "no public counts"
    as_ana = await _post(client, ana, post)
    assert [p["omo_id"] for p in as_ana["likes"]] == [cai.omo_id]
    assert [c["text"] for c in as_ana["comments"]] == ["wow"]
    await befriend(client, bo, cai)
    as_bo = await _post(client, bo, post)
    assert [p["omo_id"] for p in as_bo["likes"]] == [cai.omo_id]


async def test_the_authors_own_comments_are_seen_by_everyone_who_sees_the_post(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await people(make_person, "i2", "ana", "bo")
    await befriend(client, ana, bo)
    post = await publish(client, ana, "sunset")
    await client.post(
        f"{API}/posts/{post['id']}/comments", json={"text": "thanks"}, headers=ana.auth
    )
    assert [c["text"] for c in (await _post(client, bo, post))["comments"]] == ["thanks"]


async def test_a_reply_names_the_comment_and_notifies_its_author(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await people(make_person, "i3", "ana", "bo")
    await befriend(client, ana, bo)
    post = await publish(client, ana, "sunset")
    first = await client.post(
        f"{API}/posts/{post['id']}/comments", json={"text": "where?"}, headers=bo.auth
    )
    reply = await client.post(
        f"{API}/posts/{post['id']}/comments",
        json={"text": "Positano", "reply_to": first.json()["id"]},
        headers=ana.auth,
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["reply_to"]["omo_id"] == bo.omo_id
    notes = (await client.get(f"{API}/notifications", headers=bo.auth)).json()
    assert [(n["kind"], n["actor"]["omo_id"]) for n in notes] == [("reply", ana.omo_id)]


async def test_a_reply_to_an_unseen_comment_is_refused(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo, cai = await people(make_person, "i4", "ana", "bo", "cai")
    await befriend(client, ana, bo)
    await befriend(client, ana, cai)
    post = await publish(client, ana, "sunset")
    theirs = await client.post(
        f"{API}/posts/{post['id']}/comments", json={"text": "hi"}, headers=cai.auth
    )
    refused = await client.post(
        f"{API}/posts/{post['id']}/comments",
        json={"text": "who are you", "reply_to": theirs.json()["id"]},
        headers=bo.auth,
    )
    assert refused.status_code == 404


async def test_a_stranger_can_neither_like_nor_comment(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, eve = await people(make_person, "i5", "ana", "eve")
    post = await publish(client, ana, "sunset")
    assert (await client.put(f"{API}/posts/{post['id']}/like", headers=eve.auth)).status_code == 404
    said = await client.post(
        f"{API}/posts/{post['id']}/comments", json={"text": "hi"}, headers=eve.auth
    )
    assert said.status_code == 404
    shared = await client.post(
        f"{API}/posts/{post['id']}/shares", json={"to": "chat"}, headers=eve.auth
    )
    assert shared.status_code == 404


async def test_own_comments_and_comments_on_own_posts_can_be_deleted_others_not(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo, cai = await people(make_person, "i6", "ana", "bo", "cai")
    await befriend(client, ana, bo)
    await befriend(client, ana, cai)
    await befriend(client, bo, cai)
    post = await publish(client, ana, "sunset")
    by_bo = (
        await client.post(f"{API}/posts/{post['id']}/comments", json={"text": "a"}, headers=bo.auth)
    ).json()
    by_cai = (
        await client.post(
            f"{API}/posts/{post['id']}/comments", json={"text": "b"}, headers=cai.auth
        )
    ).json()
    assert (
        await client.delete(f"{API}/comments/{by_bo['id']}", headers=cai.auth)
    ).status_code == 404
    assert (
        await client.delete(f"{API}/comments/{by_bo['id']}", headers=bo.auth)
    ).status_code == 204
    assert (
        await client.delete(f"{API}/comments/{by_cai['id']}", headers=ana.auth)
    ).status_code == 204
    assert (await _post(client, bo, post))["comments"] == []


async def test_likes_comments_and_mentions_notify_by_list_and_realtime(
    client: httpx.AsyncClient, make_person: MakePerson, connect: Connect
) -> None:
    ana, bo = await people(make_person, "i7", "ana", "bo")
    await befriend(client, ana, bo)
    bo_socket = await connect(bo)
    ana_socket = await connect(ana)
    post = await publish(client, ana, "with @bo", mentions=[bo.omo_id])
    pushed = await bo_socket.expect_type("moments", event="mention")
    assert pushed["who"] == ana.omo_id
    assert pushed["post"] == post["id"]
    await client.put(f"{API}/posts/{post['id']}/like", headers=bo.auth)
    await ana_socket.expect_type("moments", event="like", who=bo.omo_id)
    await client.post(f"{API}/posts/{post['id']}/comments", json={"text": "yay"}, headers=bo.auth)
    await ana_socket.expect_type("moments", event="comment", who=bo.omo_id)
    kinds = [n["kind"] for n in (await client.get(f"{API}/notifications", headers=ana.auth)).json()]
    assert kinds == ["comment", "like"]
    assert [
        n["kind"] for n in (await client.get(f"{API}/notifications", headers=bo.auth)).json()
    ] == ["mention"]
    assert (await client.post(f"{API}/notifications/read", headers=ana.auth)).status_code == 204
    notes = (await client.get(f"{API}/notifications", headers=ana.auth)).json()
    assert all(n["read"] for n in notes)


async def test_a_mention_outside_the_posts_audience_notifies_no_one(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await people(make_person, "i8", "ana", "bo")
    await befriend(client, ana, bo)
    await publish(client, ana, "secret", visibility="private", mentions=[bo.omo_id])
    assert (await client.get(f"{API}/notifications", headers=bo.auth)).json() == []


async def test_every_like_comment_and_share_is_an_event_in_the_outbox(
    client: httpx.AsyncClient, make_person: MakePerson, app: FastAPI
) -> None:
    ana, bo = await people(make_person, "i9", "ana", "bo")
    await befriend(client, ana, bo)
    post = await publish(client, ana, "sunset")
    await client.put(f"{API}/posts/{post['id']}/like", headers=bo.auth)
    await client.put(f"{API}/posts/{post['id']}/like", headers=bo.auth)  # once only
    await client.post(f"{API}/posts/{post['id']}/comments", json={"text": "yay"}, headers=bo.auth)
    shared = await client.post(
        f"{API}/posts/{post['id']}/shares", json={"to": "chat"}, headers=bo.auth
    )
    assert shared.status_code == 204
    async with app.state.db.sessions() as session:
        rows = (
            await session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.topic.like("social.%"))
                .order_by(OutboxEvent.id)
            )
        ).all()
    topics = [r.topic for r in rows if r.payload.get("post_id") == post["id"]]
    assert topics == [
        "social.post_published",
        "social.post_liked",
        "social.post_commented",
        "social.post_shared",
    ]
    assert all(r.payload.get("user_id") == str(bo.user_id) for r in rows[-3:])


async def test_unliking_removes_the_like(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await people(make_person, "i10", "ana", "bo")
    await befriend(client, ana, bo)
    post = await publish(client, ana, "sunset")
    await client.put(f"{API}/posts/{post['id']}/like", headers=bo.auth)
    assert (await _post(client, bo, post))["liked"]
    assert (
        await client.delete(f"{API}/posts/{post['id']}/like", headers=bo.auth)
    ).status_code == 204
    after = await _post(client, bo, post)
    assert not after["liked"]
    assert after["likes"] == []
