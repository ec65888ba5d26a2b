"""The platform operator (named by OMO ID in settings OMO_OPERATORS) verifies accounts and sets
their broadcast quotas; nobody else may, not even the brand's owner."""

from __future__ import annotations

import httpx
import pytest
from tests.accounts.conftest import Brand, MakePerson, Person

from omo.core.config import Settings

API = "/api/v1/accounts"
OPERATOR_OMO_ID = "platform-op"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"operators": f" {OPERATOR_OMO_ID.upper()} ,other-op"})


@pytest.fixture
async def operator(client: httpx.AsyncClient, person: MakePerson) -> Person:
    who = await person("+393471112233", "Ornella")
    renamed = await client.put(
        "/api/v1/identity/me/omo-id", json={"omo_id": OPERATOR_OMO_ID}, headers=who.headers
    )
    assert renamed.status_code == 200, renamed.text
    return Person(who.phone, OPERATOR_OMO_ID, who.headers)


async def test_the_operator_verifies_an_account_and_the_badge_shows(
    client: httpx.AsyncClient, brand: Brand, operator: Person, fan: Person
) -> None:
    verified = await client.put(
        f"{API}/operator/{brand.account_id}/verification",
        json={"verified": True},
        headers=operator.headers,
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["verified"] is True
    assert (await client.get(f"{API}/{brand.account_id}")).json()["verified"] is True
    await client.put(f"{API}/{brand.account_id}/follow", json={}, headers=fan.headers)
    following = await client.get(f"{API}/following", headers=fan.headers)
    assert [a["verified"] for a in following.json()] == [True]
    page = await client.get(f"/accounts/{brand.account_id}")
    assert "data-verified" in page.text
    taken = await client.put(
        f"{API}/operator/{brand.account_id}/verification",
        json={"verified": False},
        headers=operator.headers,
    )
    assert taken.json()["verified"] is False
    assert "data-verified" not in (await client.get(f"/accounts/{brand.account_id}")).text


async def test_operator_routes_refuse_everyone_else(
    client: httpx.AsyncClient, brand: Brand, fan: Person
) -> None:
    for path, body in (("/verification", {"verified": True}), ("/quota", {"allowed": 9})):
        url = f"{API}/operator/{brand.account_id}{path}"
        assert (await client.put(url, json=body)).status_code == 401
        for who in (brand.owner, fan):
            refused = await client.put(url, json=body, headers=who.headers)
            assert refused.status_code == 403
            assert refused.json()["type"] == "/problems/accounts-not-operator"
    assert (await client.get(f"{API}/{brand.account_id}")).json()["verified"] is False
    quota = await client.get(brand.manage("/quota"), headers=brand.owner.headers)
    assert quota.json()["allowed"] == 1


async def test_the_operator_sets_an_accounts_broadcast_quota(
    client: httpx.AsyncClient, brand: Brand, operator: Person
) -> None:
    url = f"{API}/operator/{brand.account_id}/quota"
    raised = await client.put(url, json={"allowed": 2}, headers=operator.headers)
    assert raised.status_code == 200, raised.text
    assert raised.json()["allowed"] == 2
    for n in range(2):
        sent = await client.post(
            brand.manage("/broadcasts"), json={"text": f"news {n}"}, headers=brand.owner.headers
        )
        assert sent.status_code == 201, sent.text
    third = await client.post(
        brand.manage("/broadcasts"), json={"text": "more"}, headers=brand.owner.headers
    )
    assert third.json()["type"] == "/problems/accounts-quota-used"
    back = await client.put(url, json={"allowed": None}, headers=operator.headers)
    assert back.json() == {"period": "2026-11-25", "used": 2, "allowed": 1}
    negative = await client.put(url, json={"allowed": -1}, headers=operator.headers)
    assert negative.status_code == 422
    missing = await client.put(
        f"{API}/operator/00000000-0000-7000-8000-000000000000/quota",
        json={"allowed": 3},
        headers=operator.headers,
    )
    assert missing.status_code == 404
