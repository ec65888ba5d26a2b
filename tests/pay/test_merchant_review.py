"""Merchant status is granted by a platform operator (OMO_OPERATORS): the organisation applies,
an operator approves or rejects (with a reason), and until approved the merchant cannot take
payments. Everyone who is not an operator is refused the review routes."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from tests.identity.conftest import Person, SignUp
from tests.pay.conftest import code_of, phone, top_up

from omo.core.config import Settings

PAY = "/api/v1/pay"
OPERATOR_OMO_ID = "pay-op"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"operators": f" {OPERATOR_OMO_ID.upper()} ,other-op"})


@pytest.fixture
async def operator(client: httpx.AsyncClient, sign_up: SignUp) -> Person:
    who = await sign_up(phone(), "Ornella")
    renamed = await client.put(
        "/api/v1/identity/me/omo-id", json={"omo_id": OPERATOR_OMO_ID}, headers=who.auth
    )
    assert renamed.status_code == 200, renamed.text
    return who


async def _apply(client: httpx.AsyncClient, owner: Person, organisation: str) -> str:
    applied = await client.post(
        f"{PAY}/merchants",
        json={"organisation_id": organisation, "name": "Bottega Verde"},
        headers=owner.auth,
    )
    assert applied.status_code == 201, applied.text
    assert applied.json()["status"] == "pending"
    return str(applied.json()["id"])


async def _charge(
    client: httpx.AsyncClient, owner: Person, customer: Person, merchant_id: str, order: str
) -> httpx.Response:
    return await client.post(
        f"{PAY}/merchants/{merchant_id}/payments",
        json={
            "code": await code_of(client, customer),
            "amount": "3.00",
            "currency": "EUR",
            "order_id": order,
        },
        headers=owner.auth,
    )


async def _wallet(client: httpx.AsyncClient, person: Person) -> list[dict[str, str]]:
    wallet = await client.get(f"{PAY}/wallet", headers=person.auth)
    return list(wallet.json()["balances"])


async def test_a_merchant_takes_payments_only_once_an_operator_approves_it(
    client: httpx.AsyncClient, sign_up: SignUp, operator: Person
) -> None:
    owner = await sign_up(phone(), "Owner")
    customer = await sign_up(phone(), "Customer")
    await top_up(client, customer, "20.00", "EUR")
    merchant_id = await _apply(client, owner, "org-bottega")
    store = await client.post(
        f"{PAY}/merchants/{merchant_id}/stores", json={"name": "Corso"}, headers=owner.auth
    )
    assert store.status_code == 201, store.text  # setting up the shop may go on meanwhile
    before = await _wallet(client, customer)

    refused = await _charge(client, owner, customer, merchant_id, "o-1")
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("/merchant-not-approved")
    token = store.json()["qr_url"].rsplit("/", 1)[1]
    by_qr = await client.post(
        f"{PAY}/qr/{token}/pay",
        json={"request_id": "r-1", "amount": "2.00", "currency": "EUR"},
        headers=customer.auth,
    )
    assert by_qr.status_code == 409, by_qr.text
    assert by_qr.json()["type"].endswith("/merchant-not-approved")
    assert await _wallet(client, customer) == before  # no money moved

    waiting = await client.get(f"{PAY}/operator/merchants", headers=operator.auth)
    assert waiting.status_code == 200, waiting.text
    [application] = [a for a in waiting.json() if a["id"] == merchant_id]
    assert application["status"] == "pending"
    assert application["organisation_id"] == "org-bottega"

    approved = await client.post(
        f"{PAY}/operator/merchants/{merchant_id}/review",
        json={"decision": "approve"},
        headers=operator.auth,
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    mine = await client.get(f"{PAY}/merchants/{merchant_id}", headers=owner.auth)
    assert mine.json()["status"] == "approved"

    paid = await _charge(client, owner, customer, merchant_id, "o-2")
    assert paid.status_code == 200, paid.text
    assert paid.json()["payment"]["status"] == "succeeded"
    # Reviewed once: a second review is refused, the decision stands.
    again = await client.post(
        f"{PAY}/operator/merchants/{merchant_id}/review",
        json={"decision": "reject", "reason": "changed my mind"},
        headers=operator.auth,
    )
    assert again.status_code == 409
    assert again.json()["type"].endswith("/merchant-review-invalid")
    assert (await _charge(client, owner, customer, merchant_id, "o-3")).status_code == 200

    # Both sides find the decision in their audit log.
    for who, actor in ((operator, "self"), (owner, "operator")):
        log = (await client.get("/api/v1/identity/audit-log", headers=who.auth)).json()
        entries = [e for e in log if e["action"] == "merchant_approved"]
        assert len(entries) == 1, log
        assert entries[0]["actor"] == actor
        assert entries[0]["detail"]["merchant_id"] == merchant_id


async def test_a_rejection_carries_its_reason_and_the_owner_may_apply_again(
    client: httpx.AsyncClient, sign_up: SignUp, operator: Person
) -> None:
    owner = await sign_up(phone(), "Owner")
    customer = await sign_up(phone(), "Customer")
    await top_up(client, customer, "20.00", "EUR")
    merchant_id = await _apply(client, owner, "org-fake-luxury")
    url = f"{PAY}/operator/merchants/{merchant_id}/review"

    no_reason = await client.post(url, json={"decision": "reject"}, headers=operator.auth)
    assert no_reason.status_code == 409
    assert no_reason.json()["type"].endswith("/merchant-review-invalid")
    blank = await client.post(
        url, json={"decision": "reject", "reason": "   "}, headers=operator.auth
    )
    assert blank.status_code == 409
    rejected = await client.post(
        url,
        json={"decision": "reject", "reason": "Not the brand's registered company"},
        headers=operator.auth,
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["review_reason"] == "Not the brand's registered company"

    refused = await _charge(client, owner, customer, merchant_id, "o-1")
    assert refused.status_code == 409
    assert "Not the brand's registered company" in refused.json()["detail"]
    listed = await client.get(
        f"{PAY}/operator/merchants", params={"status": "rejected"}, headers=operator.auth
    )
    assert merchant_id in [a["id"] for a in listed.json()]
    log = (await client.get("/api/v1/identity/audit-log", headers=owner.auth)).json()
    assert [e["detail"]["reason"] for e in log if e["action"] == "merchant_rejected"] == [
        "Not the brand's registered company"
    ]

    # A pending application cannot "apply again"; a rejected one can, and waits once more.
    again = await client.post(f"{PAY}/merchants/{merchant_id}/application", headers=owner.auth)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "pending"
    twice = await client.post(f"{PAY}/merchants/{merchant_id}/application", headers=owner.auth)
    assert twice.status_code == 409
    assert (await _charge(client, owner, customer, merchant_id, "o-2")).status_code == 409
    approved = await client.post(url, json={"decision": "approve"}, headers=operator.auth)
    assert approved.status_code == 200
    assert (await _charge(client, owner, customer, merchant_id, "o-3")).status_code == 200


async def test_only_operators_review_merchants(
    client: httpx.AsyncClient, sign_up: SignUp, operator: Person
) -> None:
    owner = await sign_up(phone(), "Owner")
    stranger = await sign_up(phone(), "Stranger")
    merchant_id = await _apply(client, owner, "org-self-approver")
    url = f"{PAY}/operator/merchants/{merchant_id}/review"
    for who in (owner, stranger):
        for decision in ("approve", "reject"):
            tried = await client.post(
                url, json={"decision": decision, "reason": "x"}, headers=who.auth
            )
            assert tried.status_code == 403, tried.text
            assert tried.json()["type"].endswith("/pay-not-operator")
        listed = await client.get(f"{PAY}/operator/merchants", headers=who.auth)
        assert listed.status_code == 403
    assert (await client.post(url, json={"decision": "approve"})).status_code == 401
    # Another person's owner cannot re-apply for it either.
    other = await client.post(f"{PAY}/merchants/{merchant_id}/application", headers=stranger.auth)
    assert other.status_code == 403
    unknown = await client.post(
        f"{PAY}/operator/merchants/0190a0a0-0000-7000-8000-000000000000/review",
        json={"decision": "approve"},
        headers=operator.auth,
    )
    assert unknown.status_code == 404
    still = await client.get(f"{PAY}/merchants/{merchant_id}", headers=owner.auth)
    assert still.json()["status"] == "pending"


async def test_without_operators_merchants_start_approved(
    client: httpx.AsyncClient, sign_up: SignUp, app: FastAPI
) -> None:
    app.state.pay.config.merchant_approval = False
    owner = await sign_up(phone(), "Owner")
    created = await client.post(
        f"{PAY}/merchants",
        json={"organisation_id": "org-solo", "name": "Solo"},
        headers=owner.auth,
    )
    assert created.json()["status"] == "approved"


async def test_the_operator_sets_a_merchants_fee_and_nobody_else_may(
    client: httpx.AsyncClient, sign_up: SignUp, operator: Person
) -> None:
    owner = await sign_up(phone(), "Owner")
    customer = await sign_up(phone(), "Customer")
    await top_up(client, customer, "20.00", "EUR")
    merchant_id = await _apply(client, owner, "org-fees")
    approved = await client.post(
        f"{PAY}/operator/merchants/{merchant_id}/review",
        json={"decision": "approve"},
        headers=operator.auth,
    )
    assert approved.json()["fee_bps"] == 60  # the platform's default
    url = f"{PAY}/operator/merchants/{merchant_id}/fee"
    for who in (owner, customer):
        refused = await client.put(url, json={"fee_bps": 0}, headers=who.auth)
        assert refused.status_code == 403, refused.text
    for bad in (-1, 10_001):
        invalid = await client.put(url, json={"fee_bps": bad}, headers=operator.auth)
        assert invalid.status_code == 422
    changed = await client.put(url, json={"fee_bps": 500}, headers=operator.auth)
    assert changed.status_code == 200, changed.text
    assert changed.json()["fee_bps"] == 500

    paid = await _charge(client, owner, customer, merchant_id, "o-fee")
    assert paid.status_code == 200, paid.text
    # 3.00 paid, 5 % to the platform: the merchant's settlement account holds 2.85.
    assert paid.json()["balance"]["amount"] == "2.85"
    log = (await client.get("/api/v1/identity/audit-log", headers=operator.auth)).json()
    [entry] = [e for e in log if e["action"] == "merchant_fee_changed"]
    assert entry["detail"] == {"merchant_id": merchant_id, "before": 60, "after": 500}
