"""Resource factories for the pay and coupons contexts' routes in the authorization matrix."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from tests.safety.matrix import Caller, ResourceFactory

PAY = "/api/v1/pay"


def _ok(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, f"{response.status_code} {response.text}"
    body: dict[str, Any] = response.json()
    return body


async def merchant_of(client: httpx.AsyncClient, member: Caller) -> str:
    """A merchant account for a brand organisation the caller owns (so a member of it)."""
    org = _ok(
        await client.post(
            "/api/v1/accounts/organisations",
            json={"name": "Matrix shop"},
            headers=member.headers,
        ),
        201,
    )
    merchant = _ok(
        await client.post(
            f"{PAY}/merchants",
            json={"organisation_id": org["id"], "name": "Matrix shop"},
            headers=member.headers,
        ),
        201,
    )
    return str(merchant["id"])


async def _merchant(client: httpx.AsyncClient, member: Caller) -> dict[str, str]:
    """The caller's merchant, with one order on it (routes name `merchant_id`, `order_id`)."""
    merchant_id = await merchant_of(client, member)
    order_id = f"M-{uuid.uuid4().hex[:12]}"
    _ok(
        await client.post(
            f"{PAY}/merchants/{merchant_id}/orders",
            json={"amount": "1.00", "currency": "EUR", "order_id": order_id},
            headers=member.headers,
        ),
        201,
    )
    return {"merchant_id": merchant_id, "order_id": order_id}


async def _top_up(client: httpx.AsyncClient, person: Caller, amount: str) -> None:
    _ok(
        await client.post(
            f"{PAY}/wallet/top-ups",
            json={
                "request_id": f"matrix-{uuid.uuid4().hex}",
                "bank_account": "DE89370400440532013000",
                "amount": amount,
                "currency": "EUR",
            },
            headers=person.headers,
        ),
        200,
    )


# The matrix's platform operator (tests/safety/conftest.py logs this person in and names
# them in OMO_OPERATORS); merchants wait for an operator's approval before taking payments.
OPERATOR_PHONE, OPERATOR_PASSWORD = "+393471112233", "correct horse battery"


async def approve(client: httpx.AsyncClient, merchant_id: str) -> None:
    login = _ok(
        await client.post(
            "/api/v1/identity/login",
            json={"phone": OPERATOR_PHONE, "password": OPERATOR_PASSWORD},
        ),
        200,
    )
    client.cookies.clear()
    _ok(
        await client.post(
            f"{PAY}/operator/merchants/{merchant_id}/review",
            json={"decision": "approve"},
            headers={"Authorization": f"Bearer {login['token']}"},
        ),
        200,
    )


async def _payment(client: httpx.AsyncClient, customer: Caller) -> dict[str, str]:
    """A payment the caller made at a store (its QR scanned, a small amount paid)."""
    merchant_id = await merchant_of(client, customer)
    await approve(client, merchant_id)
    store = _ok(
        await client.post(
            f"{PAY}/merchants/{merchant_id}/stores",
            json={"name": "Matrix store"},
            headers=customer.headers,
        ),
        201,
    )
    token = str(store["qr_url"]).rsplit("/", 1)[1]
    await _top_up(client, customer, "10.00")
    paid = await client.post(
        f"{PAY}/qr/{token}/pay",
        json={"request_id": uuid.uuid4().hex, "amount": "1.00", "currency": "EUR"},
        headers=customer.headers,
    )
    return {"payment_id": str(_ok(paid, 200)["payment"]["id"])}


async def _reservation(client: httpx.AsyncClient, buyer: Caller) -> dict[str, str]:
    """A flash-sale unit the caller reserved (from a sale of their own merchant)."""
    merchant_id = await merchant_of(client, buyer)
    sale = _ok(
        await client.post(
            "/api/v1/coupons/flash-sales",
            json={
                "merchant_id": merchant_id,
                "product": "Matrix bag",
                "price": "1.00",
                "currency": "EUR",
                "stock": 5,
                "starts_at": datetime(2000, 1, 1, tzinfo=UTC).isoformat(),
            },
            headers=buyer.headers,
        ),
        201,
    )
    reservation = _ok(
        await client.post(
            f"/api/v1/coupons/flash-sales/{sale['id']}/reservations", headers=buyer.headers
        ),
        201,
    )
    return {"reservation_id": str(reservation["id"])}


async def _award(client: httpx.AsyncClient, owner: Caller) -> dict[str, str]:
    """A payment award of the caller's merchant, handing out its own campaign's coupons."""
    merchant_id = await merchant_of(client, owner)
    campaign = _ok(
        await client.post(
            "/api/v1/coupons/campaigns",
            json={
                "issuer": merchant_id,
                "title": "Matrix coupon",
                "kind": "cash_off",
                "value": "1.00",
                "currency": "EUR",
                "starts_at": datetime(2000, 1, 1, tzinfo=UTC).isoformat(),
                "ends_at": datetime(2100, 1, 1, tzinfo=UTC).isoformat(),
                "total_stock": 10,
            },
            headers=owner.headers,
        ),
        201,
    )
    award = _ok(
        await client.post(
            f"/api/v1/coupons/merchants/{merchant_id}/payment-awards",
            json={"campaign_id": campaign["id"], "min_spend": "0"},
            headers=owner.headers,
        ),
        201,
    )
    return {"merchant_id": merchant_id, "award_id": str(award["id"])}


FACTORIES: dict[str, ResourceFactory] = {
    "coupons.award": _award,
    "pay.merchant": _merchant,
    "pay.payment": _payment,
    "coupons.reservation": _reservation,
}
