"""Demo money: every demo person's wallet holds CNY, EUR and JPY; a café takes payments."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from omo.core.errors import ProblemError
from omo.core.money import Money
from omo.demo import DEMO_PASSWORD, PEOPLE
from omo.pay.service import PayService

DEMO_ORGANISATION = "demo-caffe-aurora"
OPENING = (("CNY", "2000.00"), ("EUR", "300.00"), ("JPY", "40000"))


async def seed_demo(app: FastAPI) -> None:
    pay: PayService = app.state.pay
    identity = app.state.identity
    people = [
        await identity.ensure_person(p.phone, DEMO_PASSWORD, p.name, p.omo_id) for p in PEOPLE
    ]
    for user_id in people:
        for currency, amount in OPENING:
            await pay.top_up(user_id, f"demo-{currency}", "DEMO-BANK", Money.of(amount, currency))
    owner, cashier = people[1], people[0]
    try:
        # The demo seeds the platform as its operator would: the café is approved.
        merchant = await pay.create_merchant(
            owner, DEMO_ORGANISATION, "Caffè Aurora", approved=True
        )
    except ProblemError:
        return
    await pay.add_store(owner, merchant.id, "Caffè Aurora · Brera", 45.4719, 9.1881)
    await pay.add_cashier(owner, merchant.id, cashier)
    now = app.state.clock.now()
    await app.state.coupons.create_campaign(
        issuer=str(merchant.id),
        title="2 off over 10",
        kind="threshold",
        currency="EUR",
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=90),
        total_stock=1000,
        per_user_limit=3,
        tiers=[[1000, 200], [3000, 800]],
    )
