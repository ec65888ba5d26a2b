"""Official accounts through the native API: brands and roles, follow = consent, the 48-hour
window, automation, menus, broadcasts by reference and their quota (also under races)."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
from fastapi import FastAPI
from tests.accounts.conftest import Brand, MakeBrand, MakePerson, Person

from omo.core.clock import ManualClock
from omo.messaging.service import user_channel

API = "/api/v1/accounts"


async def follow(client: httpx.AsyncClient, brand: Brand, who: Person, scene: str = "") -> None:
    answer = await client.put(
        f"{API}/{brand.account_id}/follow", json={"scene": scene}, headers=who.headers
    )
    assert answer.status_code == 204, answer.text


async def openid_of(client: httpx.AsyncClient, brand: Brand) -> str:
    followers = await client.get(brand.manage("/followers"), headers=brand.owner.headers)
    assert followers.status_code == 200, followers.text
    openids: list[str] = followers.json()["openids"]
    assert len(openids) == 1
    return openids[0]


async def thread(client: httpx.AsyncClient, brand: Brand, who: Person) -> list[dict[str, object]]:
    answer = await client.get(f"{API}/{brand.account_id}/messages", headers=who.headers)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, object]] = answer.json()
    return items


async def test_roles_decide_who_manages_the_brand(
    client: httpx.AsyncClient, brand: Brand, person: MakePerson
) -> None:
    agent = await person("+393409999999", "Marco")
    stranger = await person("+393408888888", "Luca")
    added = await client.put(
        f"{API}/organisations/{brand.organisation_id}/members",
        json={"omo_id": agent.omo_id, "role": "agent"},
        headers=brand.owner.headers,
    )
    assert added.status_code == 200, added.text
    assert {"omo_id": agent.omo_id, "role": "agent"} in added.json()["members"]
    # an agent serves (reads followers) but does not manage (broadcast, menu, members)
    assert (await client.get(brand.manage("/followers"), headers=agent.headers)).status_code == 200
    refused = await client.post(
        brand.manage("/broadcasts"), json={"text": "Hi"}, headers=agent.headers
    )
    assert refused.status_code == 403
    assert refused.json()["type"] == "/problems/accounts-not-allowed"
    # a stranger learns nothing, not even that the account is managed here
    for path in ("", "/followers", "/quota"):
        answer = await client.get(brand.manage(path), headers=stranger.headers)
        assert answer.status_code == 404
    org = await client.get(f"{API}/organisations/{brand.organisation_id}", headers=stranger.headers)
    assert org.status_code == 404


async def test_profile_shows_the_verified_badge_set_by_the_operator(
    client: httpx.AsyncClient, app: FastAPI, brand: Brand
) -> None:
    profile = await client.get(f"{API}/{brand.account_id}")
    assert profile.status_code == 200
    assert profile.json()["verified"] is False
    assert "app_id" not in profile.json()
    await app.state.accounts.verify(uuid.UUID(brand.account_id))
    assert (await client.get(f"{API}/{brand.account_id}")).json()["verified"] is True
    page = await client.get(f"/accounts/{brand.account_id}")
    assert page.status_code == 200
    assert "data-verified" in page.text
    assert "Caffè Roma" in page.text


async def test_follow_is_consent_and_unfollow_stops_every_brand_message(
    client: httpx.AsyncClient, brand: Brand, fan: Person
) -> None:
    await follow(client, brand, fan)
    openid = await openid_of(client, brand)
    sent = await client.post(
        brand.manage("/messages"),
        json={"openid": openid, "text": "Welcome!"},
        headers=brand.owner.headers,
    )
    assert sent.status_code == 201, sent.text
    assert [i["body"] for i in await thread(client, brand, fan)] == [{"text": "Welcome!"}]

    gone = await client.delete(f"{API}/{brand.account_id}/follow", headers=fan.headers)
    assert gone.status_code == 204
    refused = await client.post(
        brand.manage("/messages"),
        json={"openid": openid, "text": "Come back"},
        headers=brand.owner.headers,
    )
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/accounts-not-following"
    cast = await client.post(
        brand.manage("/broadcasts"), json={"text": "Sale!"}, headers=brand.owner.headers
    )
    assert cast.status_code == 201
    bodies = [i["body"] for i in await thread(client, brand, fan)]
    assert {"text": "Sale!"} not in bodies
    assert {"text": "Come back"} not in bodies
    assert (await client.get(brand.manage("/followers"), headers=brand.owner.headers)).json()[
        "total"
    ] == 0


async def test_the_brand_sees_pseudonyms_never_phone_numbers(
    client: httpx.AsyncClient, app: FastAPI, brand: Brand, make_brand: MakeBrand, fan: Person
) -> None:
    await follow(client, brand, fan, scene="store-12")
    openid = await openid_of(client, brand)
    info = await client.get(brand.manage(f"/followers/{openid}"), headers=brand.owner.headers)
    assert info.status_code == 200, info.text
    data = info.json()
    assert data["nickname"] == "Camille"
    assert data["scene"] == "store-12"
    assert set(data) == {
        "openid",
        "unionid",
        "nickname",
        "avatar_url",
        "followed_at",
        "scene",
        "tag_ids",
        "last_interaction_at",
    }
    user_id = await app.state.identity.resolve_openid(brand.app_id, openid)
    everything = (
        info.text + (await client.get(brand.manage("/followers"), headers=brand.owner.headers)).text
    )
    for secret in (fan.phone, fan.phone.lstrip("+"), "612345678", str(user_id), fan.omo_id):
        assert secret not in everything
    # another account of the same brand: another openid, the same unionid
    second = await client.post(
        f"/api/v1/accounts/organisations/{brand.organisation_id}/accounts",
        json={"kind": "service", "name": "Roma Service"},
        headers=brand.owner.headers,
    )
    other = Brand(
        brand.owner, brand.organisation_id, second.json()["id"], second.json()["app_id"], ""
    )
    await follow(client, other, fan)
    other_openid = await openid_of(client, other)
    assert other_openid != openid
    other_info = await client.get(
        other.manage(f"/followers/{other_openid}"), headers=brand.owner.headers
    )
    assert other_info.json()["unionid"] == data["unionid"]


async def test_free_form_replies_only_within_48_hours(
    client: httpx.AsyncClient, clock: ManualClock, brand: Brand, fan: Person
) -> None:
    await follow(client, brand, fan)
    openid = await openid_of(client, brand)
    clock.advance(hours=47)
    ok = await client.post(
        brand.manage("/messages"),
        json={"openid": openid, "text": "Hi"},
        headers=brand.owner.headers,
    )
    assert ok.status_code == 201
    clock.advance(hours=2)  # 49 h after the follow
    late = await client.post(
        brand.manage("/messages"),
        json={"openid": openid, "text": "Hi?"},
        headers=brand.owner.headers,
    )
    assert late.status_code == 409
    assert late.json()["type"] == "/problems/accounts-window-closed"
    # the person writes: the window opens again
    wrote = await client.post(
        f"{API}/{brand.account_id}/messages", json={"text": "Open today?"}, headers=fan.headers
    )
    assert wrote.status_code == 201
    again = await client.post(
        brand.manage("/messages"),
        json={"openid": openid, "text": "Yes, till 8pm"},
        headers=brand.owner.headers,
    )
    assert again.status_code == 201
    bodies = [i["body"]["text"] for i in await thread(client, brand, fan)]  # type: ignore[index]
    assert bodies == ["Hi", "Open today?", "Yes, till 8pm"]


async def test_auto_replies_on_follow_keywords_and_default(
    client: httpx.AsyncClient, brand: Brand, fan: Person
) -> None:
    rules = await client.put(
        brand.manage("/automation"),
        json={
            "welcome": "Thanks for following!",
            "default_reply": "We will answer soon.",
            "rules": [
                {"match": "exact", "keyword": "hours", "reply": "8am-8pm"},
                {"match": "contains", "keyword": "menu", "reply": "See our menu online."},
            ],
        },
        headers=brand.owner.headers,
    )
    assert rules.status_code == 200, rules.text
    await follow(client, brand, fan)
    for text in ("HOURS", "what's on the menu?", "hello"):
        sent = await client.post(
            f"{API}/{brand.account_id}/messages", json={"text": text}, headers=fan.headers
        )
        assert sent.status_code == 201, sent.text
    replies = [
        i["body"]["text"] for i in await thread(client, brand, fan) if i["direction"] == "out"
    ]  # type: ignore[index]
    assert replies == [
        "Thanks for following!",
        "8am-8pm",
        "See our menu online.",
        "We will answer soon.",
    ]


async def test_menus_hold_at_most_3_buttons_of_5(
    client: httpx.AsyncClient, brand: Brand, fan: Person
) -> None:
    leaf = {"type": "click", "name": "Deals", "key": "DEALS"}
    too_many = await client.put(
        brand.manage("/menu"), json={"button": [leaf] * 4}, headers=brand.owner.headers
    )
    assert too_many.status_code == 400
    assert too_many.json()["type"] == "/problems/accounts-invalid-menu"
    too_deep = await client.put(
        brand.manage("/menu"),
        json={"button": [{"name": "More", "sub_button": [leaf] * 6}]},
        headers=brand.owner.headers,
    )
    assert too_deep.status_code == 400
    menu = {
        "button": [
            leaf,
            {
                "name": "More",
                "sub_button": [
                    {"type": "view", "name": "Site", "url": "https://roma.example"},
                    {
                        "type": "miniprogram",
                        "name": "Order",
                        "url": "https://roma.example/order",
                        "appid": "mp1",
                        "pagepath": "pages/order",
                    },
                ],
            },
        ]
    }
    ok = await client.put(brand.manage("/menu"), json=menu, headers=brand.owner.headers)
    assert ok.status_code == 200, ok.text
    await follow(client, brand, fan)
    click = await client.post(
        f"{API}/{brand.account_id}/menu-clicks", json={"key": "DEALS"}, headers=fan.headers
    )
    assert click.status_code == 200
    assert click.json() == {"open_url": ""}
    view = await client.post(
        f"{API}/{brand.account_id}/menu-clicks",
        json={"key": "https://roma.example"},
        headers=fan.headers,
    )
    assert view.json() == {"open_url": "https://roma.example"}


async def test_broadcasts_are_read_by_reference_since_the_follow(
    client: httpx.AsyncClient,
    app: FastAPI,
    clock: ManualClock,
    brand: Brand,
    fan: Person,
    person: MakePerson,
) -> None:
    await app.state.accounts.set_quota(uuid.UUID(brand.account_id), 5)
    early = await client.post(
        brand.manage("/broadcasts"), json={"text": "Before you came"}, headers=brand.owner.headers
    )
    assert early.status_code == 201
    clock.advance(minutes=1)
    await follow(client, brand, fan)
    vip = await openid_of(client, brand)
    fan_user = await app.state.identity.resolve_openid(brand.app_id, vip)
    late = await person("+393407777777", "Sara")
    await follow(client, brand, late)
    fans_tag = await client.post(
        brand.manage("/tags"), json={"name": "VIP"}, headers=brand.owner.headers
    )
    tag_id = fans_tag.json()["id"]
    tagged = await client.post(
        brand.manage("/tagging"),
        json={"tag_id": tag_id, "openids": [vip]},
        headers=brand.owner.headers,
    )
    assert tagged.status_code == 204, tagged.text
    clock.advance(minutes=1)

    async with app.state.broker.subscribe(user_channel(fan_user)) as live:
        everyone = await client.post(
            brand.manage("/broadcasts"), json={"text": "Sale!"}, headers=brand.owner.headers
        )
        assert everyone.status_code == 201
        pushed = await live.get(timeout=5)
        assert pushed is not None
        assert pushed[1]["body"] == {"text": "Sale!"}
    clock.advance(minutes=1)
    only_vip = await client.post(
        brand.manage("/broadcasts"),
        json={
            "card": {"type": "coupon", "title": "VIP coupon", "url": "https://roma.example/c"},
            "tag_id": tag_id,
        },
        headers=brand.owner.headers,
    )
    assert only_vip.status_code == 201, only_vip.text

    seen = {}
    for who in (fan, late):
        items = await thread(client, brand, who)
        seen[who.phone] = [i["body"] for i in items if i["broadcast"]]
    assert {"text": "Before you came"} not in seen[fan.phone]
    assert {"text": "Sale!"} in seen[fan.phone]
    assert {"text": "Sale!"} in seen[late.phone]
    assert any("card" in b for b in seen[fan.phone])
    assert not any("card" in b for b in seen[late.phone])


async def test_a_broadcast_is_pushed_only_to_connected_followers(
    client: httpx.AsyncClient,
    app: FastAPI,
    clock: ManualClock,
    brand: Brand,
    fan: Person,
    person: MakePerson,
) -> None:
    """The push picks, among the people connected to this node, those who follow now (and
    carry the tag): not a connected stranger, not someone who unfollowed."""
    await app.state.accounts.set_quota(uuid.UUID(brand.account_id), 5)
    quitter = await person("+393407777777", "Sara")
    stranger = await person("+393406666666", "Luca")
    for who in (fan, quitter):
        await follow(client, brand, who)
    gone = await client.delete(f"{API}/{brand.account_id}/follow", headers=quitter.headers)
    assert gone.status_code == 204, gone.text
    tag = await client.post(
        brand.manage("/tags"), json={"name": "VIP"}, headers=brand.owner.headers
    )
    ids = {
        who.phone: (await app.state.identity.find_by_omo_id(who.omo_id)).user_id
        for who in (fan, quitter, stranger)
    }

    async def push(body: dict[str, object]) -> dict[str, list[dict[str, object]]]:
        """Broadcast with everyone connected; what each one's devices got."""
        clock.advance(minutes=1)
        subscriptions = {p: app.state.broker.subscribe(user_channel(u)) for p, u in ids.items()}
        for sub in subscriptions.values():
            await sub.open()
        try:
            sent = await client.post(
                brand.manage("/broadcasts"), json=body, headers=brand.owner.headers
            )
            assert sent.status_code == 201, sent.text
            first = await subscriptions[fan.phone].get(timeout=5)
            assert first is not None, "the follower got no push"
            # One push hands the frame to every connected follower at once.
            got: dict[str, list[dict[str, object]]] = {p: [] for p in subscriptions}
            for phone, sub in subscriptions.items():
                while sub.pending:
                    delivery = await sub.get(timeout=1)
                    assert delivery is not None
                    got[phone].append(delivery[1])
            got[fan.phone].insert(0, first[1])
            return got
        finally:
            for sub in subscriptions.values():
                await sub.close()

    everyone = await push({"text": "Sale!"})
    assert [f["body"] for f in everyone[fan.phone]] == [{"text": "Sale!"}]
    assert everyone[fan.phone][0]["account_id"] == brand.account_id
    assert everyone[quitter.phone] == []
    assert everyone[stranger.phone] == []

    # Tagged: while nobody carries the tag, nobody connected is pushed; then the fan is.
    tag_id = tag.json()["id"]
    async with app.state.broker.subscribe(user_channel(ids[fan.phone])) as live:
        pushed = await app.state.accounts._push_to_connected(
            uuid.UUID(brand.account_id), tag_id, {"type": "account-message"}
        )
        assert pushed == 0
        assert live.pending == 0
    tagged = await client.post(
        brand.manage("/tagging"),
        json={"tag_id": tag_id, "openids": [await openid_of(client, brand)]},
        headers=brand.owner.headers,
    )
    assert tagged.status_code == 204, tagged.text
    vip = await push({"text": "VIP now", "tag_id": tag_id})
    assert [f["body"] for f in vip[fan.phone]] == [{"text": "VIP now"}]
    assert vip[quitter.phone] == []
    assert vip[stranger.phone] == []


async def test_subscription_quota_one_broadcast_a_day_even_when_racing(
    client: httpx.AsyncClient, clock: ManualClock, brand: Brand
) -> None:
    async def cast(text: str) -> httpx.Response:
        return await client.post(
            brand.manage("/broadcasts"), json={"text": text}, headers=brand.owner.headers
        )

    answers = await asyncio.gather(*(cast(f"Race {n}") for n in range(6)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 409, 409, 409, 409, 409], [a.text for a in answers]
    refused = next(a for a in answers if a.status_code == 409)
    assert refused.json()["type"] == "/problems/accounts-quota-used"
    quota = await client.get(brand.manage("/quota"), headers=brand.owner.headers)
    assert quota.json() == {"period": "2026-11-25", "used": 1, "allowed": 1}
    clock.advance(days=1)
    assert (await cast("Tomorrow")).status_code == 201


async def test_service_quota_four_a_calendar_month_even_when_racing(
    client: httpx.AsyncClient, clock: ManualClock, make_brand: MakeBrand, owner: Person
) -> None:
    brand = await make_brand(owner, kind="service", name="Roma Care")

    async def cast(text: str) -> httpx.Response:
        return await client.post(
            brand.manage("/broadcasts"), json={"text": text}, headers=brand.owner.headers
        )

    answers = await asyncio.gather(*(cast(f"Race {n}") for n in range(8)))
    assert sorted(a.status_code for a in answers) == [201] * 4 + [409] * 4
    clock.advance(days=4)  # still November
    assert (await cast("Late November")).status_code == 409
    clock.advance(days=2)  # December 1st
    assert (await cast("December")).status_code == 201


async def test_scanning_the_qr_follows_with_its_scene(
    client: httpx.AsyncClient, brand: Brand, fan: Person
) -> None:
    qr = await client.get(brand.manage("/qr?scene=poster-7"), headers=brand.owner.headers)
    assert qr.status_code == 200
    assert qr.json()["url"].endswith(f"/accounts/{brand.account_id}?scene=poster-7")
    assert qr.json()["svg"].startswith("<svg")
    scanned = await client.post(
        f"{API}/{brand.account_id}/scans", json={"scene": "poster-7"}, headers=fan.headers
    )
    assert scanned.status_code == 204
    openid = await openid_of(client, brand)
    info = await client.get(brand.manage(f"/followers/{openid}"), headers=brand.owner.headers)
    assert info.json()["scene"] == "poster-7"
    following = await client.get(f"{API}/following", headers=fan.headers)
    assert [a["id"] for a in following.json()] == [brand.account_id]
    profile = await client.get(f"{API}/{brand.account_id}", headers=fan.headers)
    assert profile.json()["following"] is True
    assert profile.json()["followers"] == 1


async def test_a_message_to_an_account_you_do_not_follow_is_refused(
    client: httpx.AsyncClient, brand: Brand, fan: Person
) -> None:
    sent = await client.post(
        f"{API}/{brand.account_id}/messages", json={"text": "hi"}, headers=fan.headers
    )
    assert sent.status_code == 409
    assert json.loads(sent.text)["type"] == "/problems/accounts-not-following"


async def test_the_profile_page_follows_with_the_scene_and_shows_the_thread(
    client: httpx.AsyncClient, brand: Brand, fan: Person
) -> None:
    login = await client.post(
        "/api/v1/identity/login", json={"phone": fan.phone, "password": "correct horse battery"}
    )
    assert login.status_code == 200
    page = await client.get(f"/accounts/{brand.account_id}?scene=table-4")
    assert page.status_code == 200
    assert f'data-api="/api/v1/accounts/{brand.account_id}/scans"' in page.text
    assert 'value="table-4"' in page.text
    scanned = await client.post(
        f"{API}/{brand.account_id}/scans", json={"scene": "table-4"}, headers={"X-OMO-CSRF": "1"}
    )
    assert scanned.status_code == 204
    page = await client.get(f"/accounts/{brand.account_id}")
    assert "data-unfollow" in page.text
    assert "data-account-thread" in page.text
    missing = await client.get(f"/accounts/{uuid.uuid4()}")
    assert missing.status_code == 404


async def test_the_demo_world_has_a_verified_cafe_followed_by_the_demo_people(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    from omo.accounts.demo import seed_demo
    from omo.demo import DEMO_PASSWORD, PEOPLE

    await seed_demo(app)
    await seed_demo(app)  # idempotent
    giulia = PEOPLE[1]
    owner = await app.state.identity.ensure_person(giulia.phone, DEMO_PASSWORD, giulia.name)
    orgs = await app.state.accounts.organisations_of(owner)
    cafes = [o for o in orgs if o[1] == "Caffè Aurora"]
    assert len(cafes) == 1
    accounts = await app.state.accounts.accounts_of_organisation(owner, cafes[0][0])
    profile = await client.get(f"{API}/{accounts[0].id}")
    assert profile.json()["verified"] is True
    assert profile.json()["followers"] >= 1
