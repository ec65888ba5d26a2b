"""A deployment may keep an allow-list of brand servers (OMO_ACCOUNTS_WEBHOOK_HOSTS): a webhook
to any other host is refused when saved and again before each delivery (nothing is sent)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.accounts.conftest import Brand, Person
from tests.accounts.test_developer_api import eventually, robot_server

from omo.accounts.webhook import allowed_hosts, host_allowed
from omo.core.config import Settings

__all__ = ["robot_server"]  # the fixture
API = "/api/v1/accounts"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # loopback is allowed as a network here, so only the host list decides
    return settings.model_copy(
        update={
            "webhooks_to_private_networks": True,
            "accounts_webhook_hosts": " 127.0.0.1 , *.brand.example ",
        }
    )


def test_the_allow_list_matches_hosts_and_subdomains() -> None:
    hosts = allowed_hosts("Shop.Example.org, *.brand.example,")
    assert hosts == ("shop.example.org", "*.brand.example")
    assert host_allowed("https://shop.example.org/wx", hosts)
    assert host_allowed("https://SHOP.example.org./wx", hosts)
    assert host_allowed("https://api.eu.brand.example/wx", hosts)
    assert not host_allowed("https://brand.example/wx", hosts)  # the apex is not a subdomain
    assert not host_allowed("https://evilbrand.example/wx", hosts)
    assert not host_allowed("https://shop.example.org.evil.test/wx", hosts)
    assert not host_allowed("https://user@evil.test/shop.example.org", hosts)
    assert host_allowed("https://anything.test/", ())  # no list: any (public) host


async def test_a_webhook_to_an_unlisted_host_is_refused_when_saved(
    client: httpx.AsyncClient, brand: Brand, robot_server: tuple[str, Any, list[Any]]
) -> None:
    url, _robot, _heard = robot_server
    unlisted = url.replace("127.0.0.1", "localhost")
    refused = await client.put(
        brand.manage("/webhook"),
        json={"url": unlisted, "token": "brandtoken42"},
        headers=brand.owner.headers,
    )
    assert refused.status_code == 400
    assert refused.json()["type"] == "/problems/accounts-webhook-check-failed"
    assert "approved" in refused.json()["detail"]
    listed = await client.put(
        brand.manage("/webhook"),
        json={"url": url, "token": "brandtoken42"},
        headers=brand.owner.headers,
    )
    assert listed.status_code == 204, listed.text


async def test_an_unlisted_destination_is_refused_again_at_delivery(
    client: httpx.AsyncClient,
    app: FastAPI,
    brand: Brand,
    fan: Person,
    robot_server: tuple[str, Any, list[Any]],
) -> None:
    url, _robot, heard = robot_server
    # saved before the list changed: not called, shown as failed with no attempt
    unlisted = url.replace("127.0.0.1", "localhost")
    await app.state.accounts.set_webhook(uuid.UUID(brand.account_id), unlisted, "brandtoken42")
    await client.put(f"{API}/{brand.account_id}/follow", json={}, headers=fan.headers)

    async def failed() -> bool:
        answer = await client.get(brand.manage("/webhook/deliveries"), headers=brand.owner.headers)
        return [(d["status"], d["attempts"]) for d in answer.json()] == [("failed", 0)]

    await eventually(failed)
    assert heard == []


async def test_only_accounts_with_a_webhook_are_delivery_targets(
    app: FastAPI, brand: Brand
) -> None:
    accounts = app.state.accounts
    account_id = uuid.UUID(brand.account_id)
    assert await accounts.webhook_targets([account_id, uuid.uuid4()]) == {}
    await accounts.set_webhook(account_id, "https://shop.brand.example/wx", "brandtoken42")
    targets = await accounts.webhook_targets([account_id, account_id])
    assert list(targets) == [account_id]
    assert targets[account_id][:2] == ("https://shop.brand.example/wx", "brandtoken42")
