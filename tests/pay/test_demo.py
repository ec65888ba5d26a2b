"""The demo world gets wallets in CNY, EUR and JPY and a café that takes payments."""

from __future__ import annotations

from fastapi import FastAPI

from omo.core.money import Money
from omo.demo import PEOPLE
from omo.pay.demo import seed_demo


async def test_demo_people_hold_three_currencies_and_seeding_twice_changes_nothing(
    app: FastAPI,
) -> None:
    await seed_demo(app)
    await seed_demo(app)
    li_wei = await app.state.identity.ensure_person(PEOPLE[0].phone, "x", "x")
    wallet = await app.state.pay.wallet(li_wei)
    assert wallet == [Money.of("2000", "CNY"), Money.of("300", "EUR"), Money.of("40000", "JPY")]
    merchants = await app.state.pay.my_merchants(li_wei)
    assert [m.name for m in merchants] == ["Caffè Aurora"]
    assert await app.state.pay.ledger.totals() == {"CNY": 0, "EUR": 0, "JPY": 0}
