"""The flash-sale stock gate: exactly `stock` units under racing claims, the per-user limit
under races, expired holds back exactly once, paid ones never, a gate rebuilt from the
database on restart, and two `omo serve` processes sharing one Redis gate."""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from argon2 import PasswordHasher
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import func, select
from tests.conftest import POSTGRES_URL, REDIS_URL
from tests.identity.conftest import SignUp
from tests.pay.conftest import MakeShop, make_shop, sign_up
from tests.support.answers import comparable
from tests.support.nodes import Node

from omo.app import create_app
from omo.core.clock import ManualClock
from omo.core.config import Settings
from omo.core.errors import ProblemError
from omo.core.money import Money
from omo.coupons import fastpath
from omo.coupons import service as coupons_service
from omo.coupons.gate import MemoryGate
from omo.coupons.models import FlashSale, Reservation
from omo.coupons.service import CouponService

__all__ = ["make_shop", "sign_up"]

_phones = itertools.count(1)


async def _sale(
    coupons: CouponService,
    clock: ManualClock,
    stock: int,
    limit: int = 1,
    hold: int = 60,
    starts_in: timedelta = timedelta(0),
) -> uuid.UUID:
    view = await coupons.create_sale(
        merchant=str(uuid.uuid4()),
        store=None,
        product="Limited bag",
        price=Money.of("900.00", "EUR"),
        stock=stock,
        starts_at=clock.now() + starts_in,
        hold_seconds=hold,
        per_user_limit=limit,
    )
    return view.id


async def _claim(coupons: CouponService, buyer: uuid.UUID, sale_id: uuid.UUID) -> str:
    try:
        await coupons.reserve(buyer, sale_id)
    except ProblemError as refusal:
        return refusal.slug
    return "held"


async def _in_database(coupons: CouponService, sale_id: uuid.UUID) -> tuple[int, dict[str, int]]:
    """The sale's `taken` counter and its reservations by status, read from the database."""
    async with coupons.db.sessions() as session:
        taken = await session.scalar(select(FlashSale.taken).where(FlashSale.id == sale_id))
        rows = await session.execute(
            select(Reservation.status, func.count())
            .where(Reservation.sale_id == sale_id)
            .group_by(Reservation.status)
        )
        return int(taken or 0), {status: int(count) for status, count in rows.all()}


async def test_racing_claims_reserve_exactly_the_stock(app: FastAPI, clock: ManualClock) -> None:
    coupons: CouponService = app.state.coupons
    sale_id = await _sale(coupons, clock, stock=7)
    outcomes = await asyncio.gather(*(_claim(coupons, uuid.uuid4(), sale_id) for _ in range(80)))
    assert outcomes.count("held") == 7
    assert set(outcomes) == {"held", "flash-sale-sold-out"}
    assert await _in_database(coupons, sale_id) == (7, {"held": 7})


async def test_the_per_user_limit_holds_under_racing_claims_of_one_buyer(
    app: FastAPI, clock: ManualClock
) -> None:
    coupons: CouponService = app.state.coupons
    sale_id = await _sale(coupons, clock, stock=10, limit=2)
    buyer = uuid.uuid4()
    outcomes = await asyncio.gather(*(_claim(coupons, buyer, sale_id) for _ in range(12)))
    assert outcomes.count("held") == 2
    assert outcomes.count("flash-sale-limit-reached") == 10
    assert await _in_database(coupons, sale_id) == (2, {"held": 2})


async def test_a_wrong_gate_never_oversells(app: FastAPI, clock: ManualClock) -> None:
    """The database's conditional update stays the guarantee, whatever the gate says."""
    coupons: CouponService = app.state.coupons
    sale_id = await _sale(coupons, clock, stock=3)
    await coupons.gate.load(sale_id, 100, {}, replace=True)
    outcomes = await asyncio.gather(*(_claim(coupons, uuid.uuid4(), sale_id) for _ in range(30)))
    assert outcomes.count("held") == 3
    assert await _in_database(coupons, sale_id) == (3, {"held": 3})


async def test_expired_holds_return_exactly_once_and_a_paid_one_never(
    app: FastAPI, clock: ManualClock
) -> None:
    coupons: CouponService = app.state.coupons
    sale_id = await _sale(coupons, clock, stock=2, hold=60)
    payer, leaver = uuid.uuid4(), uuid.uuid4()
    paid = await coupons.reserve(payer, sale_id)
    assert await _claim(coupons, leaver, sale_id) == "held"
    async with coupons.db.transaction() as session:
        await coupons_service.take_reservation(
            session, reservation_id=paid.id, user_id=payer, payment_ref="p-1", now=clock.now()
        )
    assert await _claim(coupons, uuid.uuid4(), sale_id) == "flash-sale-sold-out"
    clock.advance(seconds=61)
    # Many buyers (and two sweeps) race for the one unit that came back.
    outcomes, *_ = await asyncio.gather(
        asyncio.gather(*(_claim(coupons, uuid.uuid4(), sale_id) for _ in range(20))),
        coupons._expire(sale_id, clock.now()),
        coupons._expire(sale_id, clock.now()),
    )
    assert outcomes.count("held") == 1, (outcomes, await _in_database(coupons, sale_id))
    assert await _in_database(coupons, sale_id) == (2, {"paid": 1, "expired": 1, "held": 1})
    # The leaver's hold ended, so they may reserve again once a unit is free; the payer may not.
    # (a shared gate may answer "sold out" from its short-lived note, also true)
    assert await _claim(coupons, payer, sale_id) in {
        "flash-sale-limit-reached",
        "flash-sale-sold-out",
    }
    clock.advance(seconds=61)
    assert await _claim(coupons, leaver, sale_id) == "held"
    assert await _claim(coupons, uuid.uuid4(), sale_id) == "flash-sale-sold-out"
    assert await _in_database(coupons, sale_id) == (2, {"paid": 1, "expired": 2, "held": 1})


async def test_a_restarted_server_rebuilds_the_gate_from_the_database(
    settings: Settings, clock: ManualClock
) -> None:
    first = create_app(settings, clock)
    async with LifespanManager(first):
        coupons: CouponService = first.state.coupons
        sale_id = await _sale(coupons, clock, stock=4)
        held = [await _claim(coupons, uuid.uuid4(), sale_id) for _ in range(3)]
        assert held == ["held"] * 3
        # A gate that lost track (a crash between a database commit and the gate's update).
        await coupons.gate.load(sale_id, 50, {}, replace=True)
    again = create_app(settings, clock)
    async with LifespanManager(again):
        coupons = again.state.coupons
        left = await coupons.gate.take(sale_id, uuid.uuid4(), 1)
        assert left == "ok"  # the one unit left; the rebuilt gate knows of no other
        assert await coupons.gate.take(sale_id, uuid.uuid4(), 1) == "sold-out"
        await coupons.gate.give_back(sale_id, [uuid.uuid4()], holds=False)
        outcomes = await asyncio.gather(
            *(_claim(coupons, uuid.uuid4(), sale_id) for _ in range(15))
        )
        assert outcomes.count("held") == 1
        assert await _in_database(coupons, sale_id) == (4, {"held": 4})


def test_the_memory_gate_decides_limit_first_then_stock() -> None:
    gate, sale, buyer = MemoryGate(), uuid.uuid4(), uuid.uuid4()
    assert gate.decide(sale, buyer, 1) == "unloaded"
    asyncio.run(gate.load(sale, 1, {buyer: 1}, replace=False))
    assert gate.decide(sale, buyer, 1) == "limit"
    other = uuid.uuid4()
    assert gate.decide(sale, other, 1) == "ok"
    assert gate.decide(sale, uuid.uuid4(), 1) == "sold-out"
    asyncio.run(gate.give_back(sale, [other]))
    assert gate.left(sale) == 1
    assert gate.decide(sale, other, 1) == "ok"


async def _buyers(app: FastAPI, count: int) -> list[str]:
    identity = app.state.identity
    identity._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    tokens = []
    for _ in range(count):
        phone = f"+39347{next(_phones):07d}"
        await identity.ensure_person(phone, "gate test password", "Buyer")
        issued = await identity.log_in(
            phone,
            "gate test password",
            device_name="test",
            kind="app",
            user_agent="test",
            client_address="203.0.113.9",
        )
        tokens.append(issued.token)
    return tokens


@pytest.mark.skipif(
    not (POSTGRES_URL and REDIS_URL), reason="needs OMO_TEST_POSTGRES_URL and OMO_TEST_REDIS_URL"
)
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_two_server_processes_on_redis_sell_exactly_the_stock(
    app: FastAPI, start_node: Node
) -> None:
    """Real `omo serve` processes, one Redis gate: racing buyers on both, each buyer on both."""
    coupons: CouponService = app.state.coupons
    view = await coupons.create_sale(
        merchant=str(uuid.uuid4()),
        store=None,
        product="Limited bag",
        price=Money.of("900.00", "EUR"),
        stock=5,
        starts_at=datetime.now(coupons.clock.now().tzinfo) - timedelta(seconds=1),
        hold_seconds=600,
        per_user_limit=1,
    )
    tokens = await _buyers(app, 16)
    first, second = await start_node(), await start_node()
    path = f"/api/v1/coupons/flash-sales/{view.id}/reservations"
    async with httpx.AsyncClient(timeout=30) as http:

        async def claim(node_url: str, token: str) -> tuple[int, str]:
            answer = await http.post(node_url + path, headers={"Authorization": f"Bearer {token}"})
            body = answer.json()
            return answer.status_code, body.get("type", "") if answer.status_code != 201 else ""

        outcomes = await asyncio.gather(
            *(claim(node.url, token) for token in tokens for node in (first, second))
        )
    statuses = [status for status, _ in outcomes]
    assert statuses.count(201) == 5
    assert {kind for status, kind in outcomes if status != 201} <= {
        "/problems/flash-sale-sold-out",
        "/problems/flash-sale-limit-reached",
    }
    taken, by_status = await _in_database(coupons, view.id)
    assert (taken, by_status) == (5, {"held": 5})
    async with coupons.db.sessions() as session:
        holders = await session.scalars(
            select(func.count(func.distinct(Reservation.user_id))).where(
                Reservation.sale_id == view.id
            )
        )
        assert holders.one() == 5


async def test_the_claim_answers_like_the_routed_api_and_refuses_strangers(
    client: httpx.AsyncClient, make_shop: MakeShop, clock: ManualClock, app: FastAPI
) -> None:
    """The claim skips the router (coupons.fastpath) but authenticates and answers alike."""
    shop = await make_shop()
    sale_id = await _sale(app.state.coupons, clock, stock=2)
    path = f"/api/v1/coupons/flash-sales/{sale_id}/reservations"
    anonymous = await client.post(path)
    assert anonymous.status_code == 401
    assert anonymous.json()["type"] == "/problems/unauthenticated"
    forged = await client.post(path, headers={"Authorization": "Bearer not-a-session"})
    assert forged.status_code == 401
    client.cookies.set("omo_session", shop.customer.token)
    cookie_only = await client.post(path)
    client.cookies.clear()
    assert cookie_only.json()["type"] == "/problems/csrf-failed"
    assert await app.state.coupons.sold(sale_id) == 0
    unknown = await client.post(
        f"/api/v1/coupons/flash-sales/{uuid.uuid4()}/reservations", headers=shop.customer.auth
    )
    assert unknown.status_code == 404
    assert unknown.json()["type"] == "/problems/flash-sale-not-found"
    malformed = await client.post(
        "/api/v1/coupons/flash-sales/not-a-sale/reservations", headers=shop.customer.auth
    )
    assert malformed.status_code == 422
    held = await client.post(path, headers=shop.customer.auth)
    assert held.status_code == 201, held.text
    assert held.headers["content-type"] == "application/json"
    assert held.headers["x-content-type-options"] == "nosniff"
    routed = await client.get(
        f"/api/v1/coupons/reservations/{held.json()['id']}", headers=shop.customer.auth
    )
    assert routed.json() == held.json()
    assert held.json()["status"] == "held"
    assert (held.json()["price"]["amount"], held.json()["price"]["currency"]) == ("900.00", "EUR")
    again = await client.post(path, headers={**shop.customer.auth, "Accept-Language": "it"})
    assert again.status_code == 409
    assert again.json()["type"] == "/problems/flash-sale-limit-reached"


async def test_the_claim_answers_byte_for_byte_like_the_router(
    client: httpx.AsyncClient,
    sign_up: SignUp,
    clock: ManualClock,
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each answer of the fast claim (coupons.fastpath: raw ASGI, the problems' bytes kept per
    language) has the status, headers and bytes the routed API sends for the same request:
    every refusal, in several languages, and the reservation itself."""
    holder, buyer, late, last = [
        await sign_up(f"+3934099{next(_phones):05d}", "Buyer") for _ in range(4)
    ]
    coupons = app.state.coupons
    sale_id = await _sale(coupons, clock, stock=3)
    path = f"/api/v1/coupons/flash-sales/{sale_id}/reservations"
    later = await _sale(coupons, clock, stock=5, starts_in=timedelta(hours=1))

    async def both(
        url: str, headers: dict[str, str], cookies: dict[str, str] | None = None
    ) -> tuple[httpx.Response, httpx.Response]:
        answers = []
        for routed in (False, True):
            with monkeypatch.context() as patch:
                if routed:  # a claim path that never matches: the router answers
                    patch.setattr(fastpath, "CLAIM_PATH", re.compile(r"(?!)"))
                client.cookies.clear()
                for name, value in (cookies or {}).items():
                    client.cookies.set(name, value)
                answers.append(await client.post(url, headers=headers))
        client.cookies.clear()
        return answers[0], answers[1]

    async def same(
        url: str, headers: dict[str, str], status: int, cookies: dict[str, str] | None = None
    ) -> None:
        fast, routed = await both(url, headers, cookies)
        assert fast.status_code == status, fast.text
        assert comparable(fast) == comparable(routed)

    held = await client.post(path, headers=holder.auth)
    assert held.status_code == 201, held.text
    for language in ("en", "it", "zh-CN,zh;q=0.9", "fr;q=0.1, de"):
        lang = {"Accept-Language": language}
        await same(path, lang, 401)
        await same(path, {**lang, "Authorization": "Bearer not-a-session"}, 401)
        await same(path, {**lang, "Authorization": "Basic " + holder.token}, 401)
        await same(path, {**lang, "Authorization": "Bearer"}, 401)
        await same(path, lang, 403, {"omo_session": holder.token})
        await same(path, {**lang, "X-OMO-CSRF": "1"}, 409, {"omo_session": holder.token})
        await same(path, {**lang, **holder.auth}, 409)  # the per-user limit
        await same(f"/api/v1/coupons/flash-sales/{later}/reservations", holder.auth, 409)
        await same(
            f"/api/v1/coupons/flash-sales/{uuid.uuid4()}/reservations", lang | holder.auth, 404
        )
    await same(path + "?lang=it", holder.auth, 409)
    # The reservation itself: the same headers; the body differs only by its id and expiry.
    fast, routed = await both(path, buyer.auth)
    assert fast.status_code == 201
    assert routed.status_code == 409  # the buyer's second claim, by the router: the limit
    monkeypatch.setattr(fastpath, "CLAIM_PATH", re.compile(r"(?!)"))
    by_router = await client.post(path, headers=late.auth)
    monkeypatch.undo()
    assert by_router.status_code == 201
    assert comparable(fast)[:2] == comparable(by_router)[:2]
    assert fast.json().keys() == by_router.json().keys()
    assert fast.json()["price"] == by_router.json()["price"]
    # Sold out now (stock 3): the same refusal both ways, in two languages.
    for language in ("en", "it"):
        await same(path, {**last.auth, "Accept-Language": language}, 409)
