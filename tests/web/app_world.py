"""A signed-in person's little world for browser tests of the app's pages: a friend, a 1:1
chat with a message, a group, money in the wallet, a merchant, a brand account, and a
friend's Moment that the person liked and commented on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from playwright.sync_api import APIRequestContext
from tests.web.conftest import LiveServer, SmsGateway
from tests.web.test_accessibility import PASSWORD, api_sign_up

CSRF = {"X-OMO-CSRF": "1"}


@dataclass
class World:
    friend_omo_id: str
    direct: str
    group: str
    account: str
    moment: str = ""


def _ok(response: Any) -> Any:
    assert response.ok, response.text()
    return response.json()


def _friend(server: LiveServer, gateway: SmsGateway, phone: str) -> tuple[str, dict[str, str]]:
    api_sign_up(server, gateway, phone, "Ben")
    login = httpx.post(
        server.url + "/api/v1/identity/login", json={"phone": phone, "password": PASSWORD}
    )
    bearer = {"Authorization": f"Bearer {login.json()['token']}"}
    me = httpx.get(server.url + "/api/v1/identity/me", headers=bearer).json()
    return str(me["omo_id"]), bearer


def app_world(
    request: APIRequestContext, server: LiveServer, gateway: SmsGateway, phone: str
) -> World:
    """A friend, a 1:1 chat with a message, a group, a merchant with money, a brand account."""
    api = server.url + "/api/v1"
    friend, bearer = _friend(server, gateway, phone[:-1] + str((int(phone[-1]) + 1) % 10))
    me = _ok(request.get(api + "/identity/me"))["omo_id"]
    _ok(request.post(api + "/messaging/contacts/requests", data={"omo_id": friend}, headers=CSRF))
    accepted = httpx.post(f"{api}/messaging/contacts/{me}/accept", headers=bearer)
    assert accepted.status_code == 200, accepted.text
    direct = _ok(
        request.post(api + "/messaging/conversations/direct", data={"omo_id": friend}, headers=CSRF)
    )["id"]
    _ok(
        request.post(
            f"{api}/messaging/conversations/{direct}/messages",
            data={"client_id": "a11y-1", "text": "明日 10:00 に会いましょう"},
            headers=CSRF,
        )
    )
    group = _ok(
        request.post(
            api + "/messaging/conversations/groups",
            data={"name": "Team", "members": [friend]},
            headers=CSRF,
        )
    )["id"]
    top_up = {
        "request_id": "a11y",
        "bank_account": "IBAN-A11Y",
        "amount": "50.00",
        "currency": "EUR",
    }
    _ok(request.post(api + "/pay/wallet/top-ups", data=top_up, headers=CSRF))
    _ok(
        request.post(
            api + "/pay/merchants",
            data={"organisation_id": "org-a11y", "name": "Caffè"},
            headers=CSRF,
        )
    )
    organisation = _ok(
        request.post(api + "/accounts/organisations", data={"name": "Brand"}, headers=CSRF)
    )["id"]
    account = _ok(
        request.post(
            f"{api}/accounts/organisations/{organisation}/accounts",
            data={"kind": "subscription", "name": "Brand news"},
            headers=CSRF,
        )
    )["id"]
    # following, with a card in the thread, so the account page shows its conversation
    request.put(f"{api}/accounts/{account}/follow", data={}, headers=CSRF)
    _ok(
        request.post(
            f"{api}/accounts/manage/{account}/broadcasts",
            data={
                "card": {
                    "type": "article",
                    "title": "Autumn menu",
                    "description": "Chestnut cake is back",
                    "url": "https://brand.example/menu",
                }
            },
            headers=CSRF,
        )
    )
    moment = httpx.post(
        f"{api}/social/posts",
        json={"text": "Cena da Luigi", "place": {"name": "Luigi"}},
        headers=bearer,
    )
    assert moment.status_code == 201, moment.text
    post = moment.json()["id"]
    assert request.put(f"{api}/social/posts/{post}/like", headers=CSRF).ok
    _ok(
        request.post(
            f"{api}/social/posts/{post}/comments", data={"text": "Buon appetito"}, headers=CSRF
        )
    )
    _ok(
        request.post(
            f"{api}/social/labels", data={"name": "Family", "members": [friend]}, headers=CSRF
        )
    )
    return World(friend, direct, group, account, post)
