"""Brand membership changes: who may remove whom, and every role change in the audit trail of
both the member and the manager who changed it."""

from __future__ import annotations

from typing import Any

import httpx
from tests.accounts.conftest import Brand, MakePerson, Person

API = "/api/v1/accounts"


async def audit_of(client: httpx.AsyncClient, who: Person) -> list[dict[str, Any]]:
    answer = await client.get("/api/v1/identity/audit-log", headers=who.headers)
    assert answer.status_code == 200, answer.text
    return [e for e in answer.json() if e["action"] == "role_changed"]


async def set_role(
    client: httpx.AsyncClient, brand: Brand, by: Person, omo_id: str, role: str
) -> httpx.Response:
    return await client.put(
        f"{API}/organisations/{brand.organisation_id}/members",
        json={"omo_id": omo_id, "role": role},
        headers=by.headers,
    )


async def test_role_changes_are_in_the_audit_trail(
    client: httpx.AsyncClient, brand: Brand, person: MakePerson
) -> None:
    agent = await person("+393409999999", "Marco")
    assert (await set_role(client, brand, brand.owner, agent.omo_id, "agent")).status_code == 200
    assert (await set_role(client, brand, brand.owner, agent.omo_id, "admin")).status_code == 200
    assert (await set_role(client, brand, brand.owner, agent.omo_id, "admin")).status_code == 200
    removed = await client.post(
        f"{API}/organisations/{brand.organisation_id}/member-removals",
        json={"omo_id": agent.omo_id},
        headers=brand.owner.headers,
    )
    assert removed.status_code == 200, removed.text
    assert agent.omo_id not in [m["omo_id"] for m in removed.json()["members"]]
    mine = await audit_of(client, agent)
    changes = [(e["detail"]["from"], e["detail"]["to"]) for e in reversed(mine)]
    assert changes == [(None, "agent"), ("agent", "admin"), ("admin", None)]  # no-op not logged
    assert {e["actor"] for e in mine} == {brand.owner.omo_id}
    assert {e["detail"]["organisation_id"] for e in mine} == {brand.organisation_id}
    theirs = await audit_of(client, brand.owner)
    assert [e["detail"]["member"] for e in theirs] == [agent.omo_id] * 3
    # the member can no longer reach the brand
    gone = await client.get(brand.manage(), headers=agent.headers)
    assert gone.status_code == 404


async def test_only_owners_remove_owners_and_the_last_owner_stays(
    client: httpx.AsyncClient, brand: Brand, person: MakePerson
) -> None:
    admin = await person("+393407777777", "Sara")
    await set_role(client, brand, brand.owner, admin.omo_id, "admin")
    url = f"{API}/organisations/{brand.organisation_id}/member-removals"
    by_admin = await client.post(url, json={"omo_id": brand.owner.omo_id}, headers=admin.headers)
    assert by_admin.status_code == 403
    assert by_admin.json()["type"] == "/problems/accounts-not-allowed"
    last = await client.post(url, json={"omo_id": brand.owner.omo_id}, headers=brand.owner.headers)
    assert last.status_code == 403
    stranger = await person("+393406666666", "Paolo")
    not_member = await client.post(url, json={"omo_id": stranger.omo_id}, headers=admin.headers)
    assert not_member.status_code == 404
    refused = await client.post(url, json={"omo_id": admin.omo_id}, headers=stranger.headers)
    assert refused.status_code == 404
    assert await audit_of(client, stranger) == []
    org = await client.get(
        f"{API}/organisations/{brand.organisation_id}", headers=brand.owner.headers
    )
    assert sorted(m["role"] for m in org.json()["members"]) == ["admin", "owner"]
