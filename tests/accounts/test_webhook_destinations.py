"""A brand's webhook may only point at public addresses (unless the deployment allows private
networks): checked when the URL is saved and again before each delivery."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from tests.accounts.conftest import Brand, Person
from tests.accounts.test_developer_api import eventually

from omo.core.config import Settings

API = "/api/v1/accounts"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhooks_to_private_networks": False})


async def test_a_webhook_into_a_private_network_is_refused_when_saved(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    for url in (
        "http://127.0.0.1:8080/wechat",
        "http://169.254.169.254/latest",
        "http://10.0.0.5/",
    ):
        refused = await client.put(
            brand.manage("/webhook"), json={"url": url, "token": "tok"}, headers=brand.owner.headers
        )
        assert refused.status_code == 400, url
        assert refused.json()["type"] == "/problems/accounts-webhook-check-failed"
        assert "private network" in refused.json()["detail"]


async def test_a_private_destination_is_refused_again_at_delivery(
    client: httpx.AsyncClient, app: FastAPI, brand: Brand, fan: Person
) -> None:
    # saved before the rule (or its DNS answer changed since): not called, shown as failed
    await app.state.accounts.set_webhook(uuid.UUID(brand.account_id), "http://127.0.0.1:9/x", "t")
    await client.put(f"{API}/{brand.account_id}/follow", json={}, headers=fan.headers)

    async def failed() -> bool:
        answer = await client.get(brand.manage("/webhook/deliveries"), headers=brand.owner.headers)
        return [(d["status"], d["attempts"]) for d in answer.json()] == [("failed", 0)]

    await eventually(failed)
