"""Merchant notifications: signed with HMAC-SHA256 over "timestamp.body", retried until taken."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import replace

import httpx
import pytest
from fastapi import FastAPI

from omo.core.clock import ManualClock
from omo.core.errors import ProblemError
from omo.core.money import Money
from omo.pay.service import PayService


async def test_a_payment_notifies_the_merchant_with_a_signature_and_retries(
    app: FastAPI, clock: ManualClock
) -> None:
    received: list[httpx.Request] = []
    answers = iter([500, 200])

    def merchant_server(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(next(answers))

    pay: PayService = app.state.pay
    pay.session_active = None
    pay.http = httpx.AsyncClient(transport=httpx.MockTransport(merchant_server))
    owner, customer = uuid.uuid4(), uuid.uuid4()
    merchant = await pay.create_merchant(owner, "org-hook", "Hook", "https://shop.example/hook")
    await pay.top_up(customer, "t", "IBAN", Money.of("10.00", "EUR"))
    code = await pay.issue_code(customer, uuid.uuid4())
    await pay.charge_code(owner, merchant.id, code.code, Money.of("2.50", "EUR"), "W-1")

    await pay.queue_webhooks()
    assert await pay.deliver_webhooks() == 0
    assert await pay.deliver_webhooks() == 0  # not due yet: retried later
    clock.advance(seconds=31)
    assert await pay.deliver_webhooks() == 1
    assert len(received) == 2
    request = received[-1]
    timestamp = request.headers["X-OMO-Timestamp"]
    expected = hmac.new(
        merchant.webhook_secret.encode(),
        timestamp.encode() + b"." + request.content,
        hashlib.sha256,
    ).hexdigest()
    assert request.headers["X-OMO-Signature"] == f"sha256={expected}"
    body = json.loads(request.content)
    assert body["type"] == "payment.succeeded"
    assert body["data"]["order_id"] == "W-1"
    assert body["data"]["amount_minor"] == 250
    assert str(customer) not in request.content.decode()  # the payer's internal id: never
    assert "user_id" not in body["data"]
    await pay.http.aclose()


async def test_a_webhook_url_into_a_private_network_is_refused(app: FastAPI) -> None:
    pay: PayService = app.state.pay
    pay.config = replace(pay.config, webhooks_to_private_networks=False)
    owner = uuid.uuid4()
    with pytest.raises(ProblemError) as refused:
        await pay.create_merchant(owner, "org-ssrf", "SSRF", "http://169.254.169.254/latest")
    assert refused.value.slug == "webhook-url-refused"
    merchant = await pay.create_merchant(owner, "org-ssrf", "SSRF")
    with pytest.raises(ProblemError):
        await pay.update_merchant(owner, merchant.id, "http://127.0.0.1:5432/")


async def test_a_saved_url_that_now_points_inside_is_not_called(
    app: FastAPI, clock: ManualClock
) -> None:
    received: list[httpx.Request] = []
    pay: PayService = app.state.pay
    pay.session_active = None
    pay.http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: received.append(r) or httpx.Response(200))
    )
    owner, customer = uuid.uuid4(), uuid.uuid4()
    merchant = await pay.create_merchant(owner, "org-dns", "DNS", "http://127.0.0.1:9/hook")
    pay.config = replace(pay.config, webhooks_to_private_networks=False)
    await pay.top_up(customer, "t", "IBAN", Money.of("10.00", "EUR"))
    code = await pay.issue_code(customer, uuid.uuid4())
    await pay.charge_code(owner, merchant.id, code.code, Money.of("1.00", "EUR"), "D-1")
    await pay.queue_webhooks()
    assert await pay.deliver_webhooks() == 0
    assert received == []
    await pay.http.aclose()
