"""Remarks and labels on friends; the two Moments switches; only friends can be labelled."""

from __future__ import annotations

import httpx
from tests.social.conftest import API, MakePerson, befriend, people, publish


async def test_a_remark_and_labels_show_on_the_friend_and_their_posts(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, bo = await people(make_person, "f1", "ana", "bo")
    await befriend(client, ana, bo)
    for name in ("family", "colleagues"):
        made = await client.post(
            f"{API}/labels", json={"name": name, "members": [bo.omo_id]}, headers=ana.auth
        )
        assert made.status_code == 201, made.text
    set_ = await client.patch(
        f"{API}/friends/{bo.omo_id}", json={"remark": "Bo from Milan"}, headers=ana.auth
    )
    assert set_.json()["remark"] == "Bo from Milan"
    assert set_.json()["labels"] == ["colleagues", "family"]
    await publish(client, bo, "hello")
    timeline = (await client.get(f"{API}/timeline", headers=ana.auth)).json()
    assert timeline["posts"][0]["remark"] == "Bo from Milan"
    labels = (await client.get(f"{API}/labels", headers=ana.auth)).json()
    assert [(label["name"], len(label["members"])) for label in labels] == [
        ("colleagues", 1),
        ("family", 1),
    ]


async def test_labels_remarks_and_switches_are_for_friends_only(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, eve = await people(make_person, "f2", "ana", "eve")
    label = await client.post(
        f"{API}/labels", json={"name": "x", "members": [eve.omo_id]}, headers=ana.auth
    )
    assert label.status_code == 422
    remark = await client.patch(
        f"{API}/friends/{eve.omo_id}", json={"remark": "?"}, headers=ana.auth
    )
    assert remark.status_code == 422


async def test_someone_elses_label_cannot_be_read_changed_or_deleted(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    ana, eve = await people(make_person, "f3", "ana", "eve")
    label = (await client.post(f"{API}/labels", json={"name": "x"}, headers=ana.auth)).json()
    assert (await client.get(f"{API}/labels", headers=eve.auth)).json() == []
    patched = await client.patch(
        f"{API}/labels/{label['id']}", json={"name": "y"}, headers=eve.auth
    )
    assert patched.status_code == 404
    assert (await client.delete(f"{API}/labels/{label['id']}", headers=eve.auth)).status_code == 404
    assert (await client.delete(f"{API}/labels/{label['id']}", headers=ana.auth)).status_code == 204


async def test_label_names_are_unique_per_person(
    client: httpx.AsyncClient, make_person: MakePerson
) -> None:
    (ana,) = await people(make_person, "f4", "ana")
    assert (
        await client.post(f"{API}/labels", json={"name": "x"}, headers=ana.auth)
    ).status_code == 201
    assert (
        await client.post(f"{API}/labels", json={"name": "x"}, headers=ana.auth)
    ).status_code == 422
