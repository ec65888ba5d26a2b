"""Each visibility rule of docs/SOCIAL.md, pinned by one test (timeline and post page agree)."""

from __future__ import annotations

import httpx
from tests.social.conftest import API, MakePerson, befriend, people, publish, sees

from omo.core.clock import ManualClock


async def test_friends_see_a_post_for_all_friends_and_strangers_do_not(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo, eve = (
        await make_person("ana_mo_v1"),
        await make_person("bo_mo_v1"),
        await make_person("eve_mo_v1"),
    )
    await befriend(client, ana, bo)
    post = await publish(client, ana, "dinner at Luigi's")
    assert await sees(client, bo, post)
    assert await sees(client, ana, post)
    assert not await sees(client, eve, post)


async def test_a_private_post_is_seen_by_its_author_only(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_mo_v2"), await make_person("bo_mo_v2")
    await befriend(client, ana, bo)
    post = await publish(client, ana, "note to self", visibility="private")
    assert await sees(client, ana, post)
    assert not await sees(client, bo, post)


async def test_only_these_friends_and_labels_limits_the_audience(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo, cai, dan = await people(make_person, "v3", "ana", "bo", "cai", "dan")
    for friend in (bo, cai, dan):
        await befriend(client, ana, friend)
    label = await client.post(
        f"{API}/labels", json={"name": "family", "members": [cai.omo_id]}, headers=ana.auth
    )
    assert label.status_code == 201, label.text
    post = await publish(
        client,
        ana,
        "family only",
        visibility="only",
        people=[bo.omo_id],
        labels=[label.json()["id"]],
    )
    assert await sees(client, bo, post)
    assert await sees(client, cai, post)
    assert not await sees(client, dan, post)


async def test_all_except_these_friends_and_labels_leaves_them_out(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo, cai, dan = await people(make_person, "v4", "ana", "bo", "cai", "dan")
    for friend in (bo, cai, dan):
        await befriend(client, ana, friend)
    label = await client.post(
        f"{API}/labels", json={"name": "colleagues", "members": [cai.omo_id]}, headers=ana.auth
    )
    post = await publish(
        client,
        ana,
        "not for work",
        visibility="except",
        people=[bo.omo_id],
        labels=[label.json()["id"]],
    )
    assert not await sees(client, bo, post)
    assert not await sees(client, cai, post)
    assert await sees(client, dan, post)


async def test_a_labels_audience_is_fixed_when_the_post_is_published(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo, cai = await people(make_person, "v5", "ana", "bo", "cai")
    await befriend(client, ana, bo)
    await befriend(client, ana, cai)
    label = await client.post(
        f"{API}/labels", json={"name": "family", "members": [bo.omo_id]}, headers=ana.auth
    )
    label_id = label.json()["id"]
    post = await publish(client, ana, "family dinner", visibility="only", labels=[label_id])
    changed = await client.patch(
        f"{API}/labels/{label_id}", json={"members": [cai.omo_id]}, headers=ana.auth
    )
    assert changed.status_code == 200, changed.text
    assert await sees(client, bo, post)
    assert not await sees(client, cai, post)
    later = await publish(client, ana, "second dinner", visibility="only", labels=[label_id])
    assert await sees(client, cai, later)
    assert not await sees(client, bo, later)


async def test_dont_let_them_see_my_moments_hides_old_posts_too(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_mo_v6"), await make_person("bo_mo_v6")
    await befriend(client, ana, bo)
    post = await publish(client, ana, "before the switch")
    assert await sees(client, bo, post)
    switched = await client.patch(
        f"{API}/friends/{bo.omo_id}", json={"hide_my_moments": True}, headers=ana.auth
    )
    assert switched.status_code == 200, switched.text
    assert not await sees(client, bo, post)
    # Ana still sees Bo's posts: the switch is one way.
    theirs = await publish(client, bo, "bo's post")
    assert await sees(client, ana, theirs)


async def test_hide_their_moments_leaves_them_out_of_my_timeline(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_mo_v7"), await make_person("bo_mo_v7")
    await befriend(client, ana, bo)
    post = await publish(client, bo, "bo's lunch")
    await client.patch(
        f"{API}/friends/{bo.omo_id}", json={"hide_their_moments": True}, headers=ana.auth
    )
    assert not await sees(client, ana, post)
    mine = await publish(client, ana, "ana's lunch")
    assert await sees(client, bo, mine)


async def test_unfriending_hides_old_posts_at_once(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_mo_v8"), await make_person("bo_mo_v8")
    await befriend(client, ana, bo)
    post = await publish(client, ana, "while friends")
    assert await sees(client, bo, post)
    removed = await client.delete(f"/api/v1/messaging/contacts/{bo.omo_id}", headers=ana.auth)
    assert removed.status_code == 200
    assert not await sees(client, bo, post)


async def test_blocking_hides_posts_both_ways_while_still_friends(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_mo_v9"), await make_person("bo_mo_v9")
    await befriend(client, ana, bo)
    hers, his = await publish(client, ana, "ana's"), await publish(client, bo, "bo's")
    blocked = await client.post(
        "/api/v1/messaging/blocks", json={"omo_id": bo.omo_id}, headers=ana.auth
    )
    assert blocked.status_code == 200
    assert not await sees(client, bo, hers)
    assert not await sees(client, ana, his)


async def test_the_authors_window_applies_to_old_posts_at_read_time(
    client: httpx.AsyncClient, make_person: MakePerson, clock: ManualClock
) -> None:
    ana, bo = await make_person("ana_mo_v10"), await make_person("bo_mo_v10")
    await befriend(client, ana, bo)
    old = await publish(client, ana, "four days ago")
    clock.advance(days=4)
    recent = await publish(client, ana, "today")
    window = await client.put(f"{API}/settings/window", json={"window": "3d"}, headers=ana.auth)
    assert window.status_code == 200
    assert not await sees(client, bo, old)
    assert await sees(client, bo, recent)
    assert await sees(client, ana, old), "the author always sees their own posts"
    await client.put(f"{API}/settings/window", json={"window": "all"}, headers=ana.auth)
    assert await sees(client, bo, old)


async def test_a_deleted_post_is_gone_for_everyone(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await make_person("ana_mo_v11"), await make_person("bo_mo_v11")
    await befriend(client, ana, bo)
    post = await publish(client, ana, "oops")
    refused = await client.delete(f"{API}/posts/{post['id']}", headers=bo.auth)
    assert refused.status_code == 404
    deleted = await client.delete(f"{API}/posts/{post['id']}", headers=ana.auth)
    assert deleted.status_code == 204
    assert not await sees(client, bo, post)
    assert not await sees(client, ana, post)


async def test_a_profile_page_follows_the_same_rules(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo, eve = await people(make_person, "v12", "ana", "bo", "eve")
    await befriend(client, ana, bo)
    await publish(client, ana, "public to friends")
    await publish(client, ana, "just me", visibility="private")
    as_bo = await client.get(f"{API}/people/{ana.omo_id}/posts", headers=bo.auth)
    as_eve = await client.get(f"{API}/people/{ana.omo_id}/posts", headers=eve.auth)
    assert [p["text"] for p in as_bo.json()["posts"]] == ["public to friends"]
    assert as_eve.json()["posts"] == []
    assert as_bo.json()["posts"][0]["visibility"] == "", "the audience is the author's business"


async def test_an_audience_of_strangers_or_someone_elses_label_is_refused(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo, eve = await people(make_person, "v13", "ana", "bo", "eve")
    await befriend(client, ana, bo)
    stranger = await client.post(
        f"{API}/posts",
        json={"text": "x", "visibility": "only", "people": [eve.omo_id]},
        headers=ana.auth,
    )
    assert stranger.status_code == 422
    theirs = await client.post(
        f"{API}/labels", json={"name": "mine", "members": []}, headers=eve.auth
    )
    borrowed = await client.post(
        f"{API}/posts",
        json={"text": "x", "visibility": "only", "labels": [theirs.json()["id"]]},
        headers=ana.auth,
    )
    assert borrowed.status_code == 422
