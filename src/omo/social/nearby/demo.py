"""The demo world nearby, in Brera (Milan): a bookshop's official account that has a place but
no store, with an open offer, and two demo people visible in People Nearby."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from omo.demo import DEMO_PASSWORD, PEOPLE
from omo.social.nearby.service import NearbyService

BOOKSHOP = "Libreria del Borgo"
BOOKSHOP_PLACE = (45.4728, 9.1869)  # a short walk from Caffè Aurora
VISIBLE = {2: (45.4716, 9.1877), 3: (45.4731, 9.1893)}  # Camille and Yuki


async def seed_demo(app: FastAPI) -> None:
    """Idempotent: the bookshop is made once; People Nearby is turned on again at each start
    (it turns itself off after a few hours)."""
    nearby: NearbyService = app.state.nearby
    accounts = app.state.accounts
    identity = app.state.identity
    people = [
        await identity.ensure_person(p.phone, DEMO_PASSWORD, p.name, p.omo_id) for p in PEOPLE
    ]
    owner = people[3]
    if not any(name == BOOKSHOP for _id, name, _role in await accounts.organisations_of(owner)):
        org = await accounts.create_organisation(owner, BOOKSHOP)
        created = await accounts.create_account(
            owner,
            org.id,
            kind="subscription",
            name=BOOKSHOP,
            description="New and second-hand books, and readings on Thursdays.",
        )
        await accounts.verify(created.account.id)
        await nearby.set_account_place(
            owner, created.account.id, "Libreria del Borgo · Via Fiori Chiari", *BOOKSHOP_PLACE
        )
        merchant = await app.state.pay.create_merchant(owner, str(org.id), BOOKSHOP)
        now = app.state.clock.now()
        await app.state.coupons.create_campaign(
            issuer=str(merchant.id),
            title="3 off any paperback",
            kind="cash_off",
            currency="EUR",
            value_minor=300,
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=90),
            total_stock=500,
        )
    for index, (latitude, longitude) in VISIBLE.items():
        await nearby.turn_on(people[index], latitude, longitude)
